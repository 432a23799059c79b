"""Defect feedback after completion (查漏补缺): the warranty period of a consultation's works,
defect reports on its finished items and their photos.

Revision ID: e1a7c3d9f201
Revises: b3f1c7a9d2e4
Create Date: 2026-12-04 15:45:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'e1a7c3d9f201'
down_revision = 'b3f1c7a9d2e4'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('consultation', schema=None) as batch_op:
        batch_op.add_column(sa.Column('warranty_months', sa.Integer(), server_default='24',
                                      nullable=False))

    op.create_table('defect_report',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('consultation_id', sa.Integer(), nullable=False),
    sa.Column('item_id', sa.Integer(), nullable=False),
    sa.Column('building_id', sa.Integer(), nullable=False),
    sa.Column('household_id', sa.Integer(), nullable=True),
    sa.Column('reporter_id', sa.Integer(), nullable=True),
    sa.Column('reporter_role', sa.String(length=20), nullable=False),
    sa.Column('text', sa.Text(), nullable=False),
    sa.Column('state', sa.String(length=20), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('assignee', sa.String(length=100), nullable=False),
    sa.Column('due_on', sa.Date(), nullable=True),
    sa.Column('fix_note', sa.Text(), nullable=False),
    sa.Column('fix_photo_id', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.Column('fixed_at', sa.DateTime(), nullable=True),
    sa.Column('closed_at', sa.DateTime(), nullable=True),
    sa.CheckConstraint("state IN ('open', 'accepted', 'rejected', 'assigned', 'fixed', 'confirmed')", name=op.f('ck_defect_report_state')),
    sa.ForeignKeyConstraint(['building_id'], ['building.id'], name=op.f('fk_defect_report_building_id_building')),
    sa.ForeignKeyConstraint(['consultation_id'], ['consultation.id'], name=op.f('fk_defect_report_consultation_id_consultation')),
    sa.ForeignKeyConstraint(['fix_photo_id'], ['attachment.id'], name=op.f('fk_defect_report_fix_photo_id_attachment')),
    sa.ForeignKeyConstraint(['household_id'], ['household.id'], name=op.f('fk_defect_report_household_id_household')),
    sa.ForeignKeyConstraint(['item_id'], ['item.id'], name=op.f('fk_defect_report_item_id_item')),
    sa.ForeignKeyConstraint(['reporter_id'], ['user_account.id'], name=op.f('fk_defect_report_reporter_id_user_account')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_defect_report'))
    )
    with op.batch_alter_table('defect_report', schema=None) as batch_op:
        batch_op.create_index('ix_defect_report_consultation_state', ['consultation_id', 'state'], unique=False)
        batch_op.create_index(batch_op.f('ix_defect_report_household_id'), ['household_id'], unique=False)

    op.create_table('defect_photo',
    sa.Column('report_id', sa.Integer(), nullable=False),
    sa.Column('attachment_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['attachment_id'], ['attachment.id'], name=op.f('fk_defect_photo_attachment_id_attachment')),
    sa.ForeignKeyConstraint(['report_id'], ['defect_report.id'], name=op.f('fk_defect_photo_report_id_defect_report')),
    sa.PrimaryKeyConstraint('report_id', 'attachment_id', name=op.f('pk_defect_photo'))
    )


def downgrade():
    op.drop_table('defect_photo')
    with op.batch_alter_table('defect_report', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_defect_report_household_id'))
        batch_op.drop_index('ix_defect_report_consultation_state')
    op.drop_table('defect_report')
    with op.batch_alter_table('consultation', schema=None) as batch_op:
        batch_op.drop_column('warranty_months')
