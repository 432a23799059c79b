"""The roll in address order: an index for the ballot list, the notice appendix and the tally's
per-building counts at district scale.

Revision ID: 5e7a1c9d2b40
Revises: cb8068a20f0b
Create Date: 2026-11-21 10:20:00.000000

"""
from alembic import op


# revision identifiers, used by Alembic.
revision = '5e7a1c9d2b40'
down_revision = 'cb8068a20f0b'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('roll_entry', schema=None) as batch_op:
        batch_op.create_index('ix_roll_entry_address',
                              ['consultation_id', 'round', 'building_sort', 'household_sort'],
                              unique=False)


def downgrade():
    with op.batch_alter_table('roll_entry', schema=None) as batch_op:
        batch_op.drop_index('ix_roll_entry_address')
