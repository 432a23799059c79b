"""Ballot proofs: each counted round's tree of ballots (its leaves, its root with the result),
longer receipts, and a secret per consultation that keys its owner tokens.

Every existing consultation gets its own random secret here; rounds counted before keep no
tree (their ``tree_root`` stays empty).

Revision ID: 4fce4ce3c81c
Revises: 09b550003b15
Create Date: 2026-12-03 16:20:00.000000

"""
import secrets

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = '4fce4ce3c81c'
down_revision = '09b550003b15'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('consultation', schema=None) as batch_op:
        batch_op.add_column(sa.Column('owner_token_key', sa.String(length=64), nullable=True))
    consultation = sa.table('consultation', sa.column('id', sa.Integer()),
                            sa.column('owner_token_key', sa.String(64)))
    connection = op.get_bind()
    for (consultation_id,) in connection.execute(sa.select(consultation.c.id)).all():
        connection.execute(consultation.update().where(consultation.c.id == consultation_id)
                           .values(owner_token_key=secrets.token_hex(32)))
    with op.batch_alter_table('consultation', schema=None) as batch_op:
        batch_op.alter_column('owner_token_key', existing_type=sa.String(length=64),
                              nullable=False)

    with op.batch_alter_table('ballot', schema=None) as batch_op:
        batch_op.alter_column('receipt', existing_type=sa.String(length=16),
                              type_=sa.String(length=24), existing_nullable=False)

    with op.batch_alter_table('vote_result', schema=None) as batch_op:
        batch_op.add_column(sa.Column('tree_root', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('tree_size', sa.Integer(), nullable=True))

    op.create_table('ballot_leaf',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('consultation_id', sa.Integer(), nullable=False),
    sa.Column('round', sa.Integer(), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('receipt_hash', sa.String(length=64), nullable=False),
    sa.Column('data', sa.Text(), nullable=False),
    sa.ForeignKeyConstraint(['consultation_id'], ['consultation.id'], name=op.f('fk_ballot_leaf_consultation_id_consultation')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_ballot_leaf')),
    sa.UniqueConstraint('consultation_id', 'round', 'position', name=op.f('uq_ballot_leaf_consultation_id_round_position'))
    )
    with op.batch_alter_table('ballot_leaf', schema=None) as batch_op:
        batch_op.create_index('ix_ballot_leaf_receipt', ['consultation_id', 'round', 'receipt_hash'], unique=False)


def downgrade():
    with op.batch_alter_table('ballot_leaf', schema=None) as batch_op:
        batch_op.drop_index('ix_ballot_leaf_receipt')

    op.drop_table('ballot_leaf')
    with op.batch_alter_table('vote_result', schema=None) as batch_op:
        batch_op.drop_column('tree_size')
        batch_op.drop_column('tree_root')

    # The receipt column stays 24 characters wide: receipts issued since are 19 long.

    with op.batch_alter_table('consultation', schema=None) as batch_op:
        batch_op.drop_column('owner_token_key')
