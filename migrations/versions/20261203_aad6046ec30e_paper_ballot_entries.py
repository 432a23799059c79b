"""Paper ballots entered by the committee: every entry kept as typed (double entry, corrections
with their reason and evidence, proxies awaiting their written authorisation); a consultation's
double-entry and authorisation settings, and when its closed vote was counted.

Revision ID: aad6046ec30e
Revises: 4fce4ce3c81c
Create Date: 2026-12-03 14:17:10.656737

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'aad6046ec30e'
down_revision = '4fce4ce3c81c'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('ballot_entry',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('consultation_id', sa.Integer(), nullable=False),
    sa.Column('round', sa.Integer(), nullable=False),
    sa.Column('household_id', sa.Integer(), nullable=False),
    sa.Column('first_id', sa.Integer(), nullable=True),
    sa.Column('state', sa.String(length=25), nullable=False),
    sa.Column('source', sa.String(length=10), nullable=False),
    sa.Column('channel', sa.String(length=15), nullable=False),
    sa.Column('serial', sa.String(length=40), nullable=True),
    sa.Column('proxy_name', sa.String(length=100), nullable=True),
    sa.Column('proxy_identity', sa.String(length=140), nullable=True),
    sa.Column('proxy_document_id', sa.Integer(), nullable=True),
    sa.Column('choices_json', sa.Text(), nullable=False),
    sa.Column('correction_reason', sa.String(length=500), nullable=True),
    sa.Column('evidence_id', sa.Integer(), nullable=True),
    sa.Column('entered_by_id', sa.Integer(), nullable=True),
    sa.Column('entered_at', sa.DateTime(), nullable=False),
    sa.Column('settled_at', sa.DateTime(), nullable=True),
    sa.Column('settled_by_id', sa.Integer(), nullable=True),
    sa.Column('counted_id', sa.Integer(), nullable=True),
    sa.Column('ballot_version', sa.Integer(), nullable=True),
    sa.Column('replaced_json', sa.Text(), nullable=True),
    sa.Column('note', sa.String(length=500), nullable=False),
    sa.CheckConstraint("channel IN ('paper', 'door_to_door', 'proxy')", name=op.f('ck_ballot_entry_channel')),
    sa.CheckConstraint("source IN ('form', 'import', 'decision')", name=op.f('ck_ballot_entry_source')),
    sa.CheckConstraint("state IN ('awaiting_second', 'differs', 'awaiting_authorisation', 'counted', 'set_aside', 'matched', 'decision')", name=op.f('ck_ballot_entry_state')),
    sa.ForeignKeyConstraint(['consultation_id'], ['consultation.id'], name=op.f('fk_ballot_entry_consultation_id_consultation')),
    sa.ForeignKeyConstraint(['counted_id'], ['ballot_entry.id'], name=op.f('fk_ballot_entry_counted_id_ballot_entry')),
    sa.ForeignKeyConstraint(['entered_by_id'], ['user_account.id'], name=op.f('fk_ballot_entry_entered_by_id_user_account')),
    sa.ForeignKeyConstraint(['evidence_id'], ['attachment.id'], name=op.f('fk_ballot_entry_evidence_id_attachment')),
    sa.ForeignKeyConstraint(['first_id'], ['ballot_entry.id'], name=op.f('fk_ballot_entry_first_id_ballot_entry')),
    sa.ForeignKeyConstraint(['household_id'], ['household.id'], name=op.f('fk_ballot_entry_household_id_household')),
    sa.ForeignKeyConstraint(['proxy_document_id'], ['attachment.id'], name=op.f('fk_ballot_entry_proxy_document_id_attachment')),
    sa.ForeignKeyConstraint(['settled_by_id'], ['user_account.id'], name=op.f('fk_ballot_entry_settled_by_id_user_account')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_ballot_entry'))
    )
    with op.batch_alter_table('ballot_entry', schema=None) as batch_op:
        batch_op.create_index('ix_ballot_entry_household', ['consultation_id', 'round', 'household_id'], unique=False)
        batch_op.create_index('ix_ballot_entry_state', ['consultation_id', 'round', 'state'], unique=False)
        batch_op.create_index('uq_ballot_entry_open_case', ['consultation_id', 'round', 'household_id'], unique=True, sqlite_where=sa.text("first_id IS NULL AND state IN ('awaiting_second', 'differs', 'awaiting_authorisation')"), postgresql_where=sa.text("first_id IS NULL AND state IN ('awaiting_second', 'differs', 'awaiting_authorisation')"))

    with op.batch_alter_table('consultation', schema=None) as batch_op:
        batch_op.add_column(sa.Column('double_entry', sa.Boolean(), nullable=True))
        batch_op.add_column(sa.Column('proxy_document_required', sa.Boolean(), server_default=sa.false(), nullable=False))
        batch_op.add_column(sa.Column('vote_counted_at', sa.DateTime(), nullable=True))

    # A vote already open keeps entering ballots as it did (one entry each); one not yet open
    # follows its rule. Every vote closed so far was counted when it closed.
    consultation = sa.table('consultation', sa.column('double_entry', sa.Boolean()),
                            sa.column('vote_opened_at', sa.DateTime()),
                            sa.column('vote_closed_at', sa.DateTime()),
                            sa.column('vote_counted_at', sa.DateTime()))
    op.execute(consultation.update().where(consultation.c.vote_opened_at.isnot(None))
               .values(double_entry=False))
    op.execute(consultation.update().where(consultation.c.vote_closed_at.isnot(None))
               .values(vote_counted_at=consultation.c.vote_closed_at))



def downgrade():
    with op.batch_alter_table('consultation', schema=None) as batch_op:
        batch_op.drop_column('vote_counted_at')
        batch_op.drop_column('proxy_document_required')
        batch_op.drop_column('double_entry')

    with op.batch_alter_table('ballot_entry', schema=None) as batch_op:
        batch_op.drop_index('uq_ballot_entry_open_case', sqlite_where=sa.text("first_id IS NULL AND state IN ('awaiting_second', 'differs', 'awaiting_authorisation')"), postgresql_where=sa.text("first_id IS NULL AND state IN ('awaiting_second', 'differs', 'awaiting_authorisation')"))
        batch_op.drop_index('ix_ballot_entry_state')
        batch_op.drop_index('ix_ballot_entry_household')

    op.drop_table('ballot_entry')
