"""A household may withdraw its own opinion or comment while its stage is open: the row stays
(for the audit trail), marked with the time it was withdrawn, and leaves lists and counts.

Revision ID: 7e1f0a2b9c4d
Revises: 7d3e5a91c2f4
Create Date: 2026-12-03 19:45:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '7e1f0a2b9c4d'
down_revision = '7d3e5a91c2f4'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('opinion', schema=None) as batch_op:
        batch_op.add_column(sa.Column('withdrawn_at', sa.DateTime(), nullable=True))
    with op.batch_alter_table('comment', schema=None) as batch_op:
        batch_op.add_column(sa.Column('withdrawn_at', sa.DateTime(), nullable=True))


def downgrade():
    with op.batch_alter_table('comment', schema=None) as batch_op:
        batch_op.drop_column('withdrawn_at')
    with op.batch_alter_table('opinion', schema=None) as batch_op:
        batch_op.drop_column('withdrawn_at')
