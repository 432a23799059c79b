"""Scoring rounds (观摩评比): their sheets, compounds and scores; a notice may belong to a
scoring round (its published ranking) instead of a consultation.

Revision ID: c5d2e8f4a017
Revises: d7a3b9c1e5f8
Create Date: 2026-12-04 12:50:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'c5d2e8f4a017'
down_revision = 'd7a3b9c1e5f8'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('scoring_round',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('period_start', sa.Date(), nullable=False),
    sa.Column('period_end', sa.Date(), nullable=False),
    sa.Column('status', sa.String(length=10), nullable=False),
    sa.Column('inspector_weight_pct', sa.Integer(), nullable=False),
    sa.Column('decimals', sa.Integer(), nullable=False),
    sa.Column('honour_count', sa.Integer(), nullable=False),
    sa.Column('outlier_points', sa.Integer(), nullable=False),
    sa.Column('locale', sa.String(length=10), nullable=False),
    sa.Column('created_by_id', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('closed_at', sa.DateTime(), nullable=True),
    sa.Column('result_json', sa.Text(), nullable=True),
    sa.CheckConstraint("status IN ('open', 'closed')", name=op.f('ck_scoring_round_status')),
    sa.CheckConstraint('inspector_weight_pct >= 0 AND inspector_weight_pct <= 100', name=op.f('ck_scoring_round_inspector_weight')),
    sa.CheckConstraint('decimals >= 0 AND decimals <= 2', name=op.f('ck_scoring_round_decimals')),
    sa.CheckConstraint('honour_count >= 0', name=op.f('ck_scoring_round_honour_count')),
    sa.CheckConstraint('outlier_points > 0', name=op.f('ck_scoring_round_outlier_points')),
    sa.ForeignKeyConstraint(['created_by_id'], ['user_account.id'], name=op.f('fk_scoring_round_created_by_id_user_account')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_scoring_round'))
    )
    op.create_table('scoring_criterion',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('round_id', sa.Integer(), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('weight', sa.Integer(), nullable=False),
    sa.Column('max_points', sa.Integer(), nullable=False),
    sa.CheckConstraint('weight > 0', name=op.f('ck_scoring_criterion_weight')),
    sa.CheckConstraint('max_points > 0', name=op.f('ck_scoring_criterion_max_points')),
    sa.ForeignKeyConstraint(['round_id'], ['scoring_round.id'], name=op.f('fk_scoring_criterion_round_id_scoring_round')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_scoring_criterion'))
    )
    with op.batch_alter_table('scoring_criterion', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_scoring_criterion_round_id'), ['round_id'], unique=False)

    op.create_table('scoring_participant',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('round_id', sa.Integer(), nullable=False),
    sa.Column('compound_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['compound_id'], ['compound.id'], name=op.f('fk_scoring_participant_compound_id_compound')),
    sa.ForeignKeyConstraint(['round_id'], ['scoring_round.id'], name=op.f('fk_scoring_participant_round_id_scoring_round')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_scoring_participant')),
    sa.UniqueConstraint('round_id', 'compound_id', name=op.f('uq_scoring_participant_round_id_compound_id'))
    )
    with op.batch_alter_table('scoring_participant', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_scoring_participant_compound_id'), ['compound_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_scoring_participant_round_id'), ['round_id'], unique=False)

    op.create_table('scoring_score',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('round_id', sa.Integer(), nullable=False),
    sa.Column('criterion_id', sa.Integer(), nullable=False),
    sa.Column('target_compound_id', sa.Integer(), nullable=False),
    sa.Column('scorer_key', sa.String(length=60), nullable=False),
    sa.Column('scorer_compound_id', sa.Integer(), nullable=True),
    sa.Column('inspector', sa.String(length=50), nullable=True),
    sa.Column('points_centi', sa.Integer(), nullable=False),
    sa.Column('entered_by_id', sa.Integer(), nullable=True),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.CheckConstraint('points_centi >= 0', name=op.f('ck_scoring_score_points')),
    sa.CheckConstraint('(scorer_compound_id IS NULL) <> (inspector IS NULL)', name=op.f('ck_scoring_score_scorer')),
    sa.CheckConstraint('scorer_compound_id IS NULL OR scorer_compound_id <> target_compound_id', name=op.f('ck_scoring_score_not_self')),
    sa.ForeignKeyConstraint(['criterion_id'], ['scoring_criterion.id'], name=op.f('fk_scoring_score_criterion_id_scoring_criterion')),
    sa.ForeignKeyConstraint(['entered_by_id'], ['user_account.id'], name=op.f('fk_scoring_score_entered_by_id_user_account')),
    sa.ForeignKeyConstraint(['round_id'], ['scoring_round.id'], name=op.f('fk_scoring_score_round_id_scoring_round')),
    sa.ForeignKeyConstraint(['scorer_compound_id'], ['compound.id'], name=op.f('fk_scoring_score_scorer_compound_id_compound')),
    sa.ForeignKeyConstraint(['target_compound_id'], ['compound.id'], name=op.f('fk_scoring_score_target_compound_id_compound')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_scoring_score')),
    sa.UniqueConstraint('round_id', 'scorer_key', 'target_compound_id', 'criterion_id', name=op.f('uq_scoring_score_round_id_scorer_key_target_compound_id_criterion_id'))
    )
    with op.batch_alter_table('scoring_score', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_scoring_score_round_id'), ['round_id'], unique=False)

    with op.batch_alter_table('notice', schema=None) as batch_op:
        batch_op.add_column(sa.Column('scoring_round_id', sa.Integer(), nullable=True))
        batch_op.alter_column('consultation_id', existing_type=sa.Integer(), nullable=True)
        batch_op.create_index(batch_op.f('ix_notice_scoring_round_id'), ['scoring_round_id'], unique=False)
        batch_op.create_foreign_key(batch_op.f('fk_notice_scoring_round_id_scoring_round'), 'scoring_round', ['scoring_round_id'], ['id'])
        batch_op.drop_constraint(op.f('ck_notice_kind'), type_='check')
        batch_op.create_check_constraint('kind', "kind IN ('vote', 'resolution', 'result', 'ranking')")
        batch_op.create_check_constraint('subject', '(consultation_id IS NULL) <> (scoring_round_id IS NULL)')
        batch_op.create_check_constraint('ranking_subject', "(kind = 'ranking') = (scoring_round_id IS NOT NULL)")


def downgrade():
    op.execute("DELETE FROM notice WHERE scoring_round_id IS NOT NULL")
    with op.batch_alter_table('notice', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_notice_ranking_subject'), type_='check')
        batch_op.drop_constraint(op.f('ck_notice_subject'), type_='check')
        batch_op.drop_constraint(op.f('ck_notice_kind'), type_='check')
        batch_op.create_check_constraint('kind', "kind IN ('vote', 'resolution', 'result')")
        batch_op.drop_constraint(batch_op.f('fk_notice_scoring_round_id_scoring_round'), type_='foreignkey')
        batch_op.drop_index(batch_op.f('ix_notice_scoring_round_id'))
        batch_op.alter_column('consultation_id', existing_type=sa.Integer(), nullable=False)
        batch_op.drop_column('scoring_round_id')

    with op.batch_alter_table('scoring_score', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_scoring_score_round_id'))
    op.drop_table('scoring_score')
    with op.batch_alter_table('scoring_participant', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_scoring_participant_round_id'))
        batch_op.drop_index(batch_op.f('ix_scoring_participant_compound_id'))
    op.drop_table('scoring_participant')
    with op.batch_alter_table('scoring_criterion', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_scoring_criterion_round_id'))
    op.drop_table('scoring_criterion')
    op.drop_table('scoring_round')
