"""Proposal papers: attachments of a consultation and of its items, and items whose cost the
households share by floor area.

Revision ID: 7d3e5a91c2f4
Revises: cfda44e217df
Create Date: 2026-12-03 19:50:00.000000

"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = '7d3e5a91c2f4'
down_revision = 'cfda44e217df'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('consultation_attachment',
    sa.Column('consultation_id', sa.Integer(), nullable=False),
    sa.Column('attachment_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['attachment_id'], ['attachment.id'], name=op.f('fk_consultation_attachment_attachment_id_attachment')),
    sa.ForeignKeyConstraint(['consultation_id'], ['consultation.id'], name=op.f('fk_consultation_attachment_consultation_id_consultation')),
    sa.PrimaryKeyConstraint('consultation_id', 'attachment_id', name=op.f('pk_consultation_attachment'))
    )
    op.create_table('item_attachment',
    sa.Column('item_id', sa.Integer(), nullable=False),
    sa.Column('attachment_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['attachment_id'], ['attachment.id'], name=op.f('fk_item_attachment_attachment_id_attachment')),
    sa.ForeignKeyConstraint(['item_id'], ['item.id'], name=op.f('fk_item_attachment_item_id_item')),
    sa.PrimaryKeyConstraint('item_id', 'attachment_id', name=op.f('pk_item_attachment'))
    )
    with op.batch_alter_table('item', schema=None) as batch_op:
        batch_op.add_column(sa.Column('cost_split_by_area', sa.Boolean(), nullable=False,
                                      server_default=sa.false()))


def downgrade():
    with op.batch_alter_table('item', schema=None) as batch_op:
        batch_op.drop_column('cost_split_by_area')
    op.drop_table('item_attachment')
    op.drop_table('consultation_attachment')
