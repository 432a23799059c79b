"""Revocable sessions and per-code guessing limits: a row per sign-in and an epoch per account
that ends them all; access codes get a selector hash, a per-code count of wrong tries and
pause, and the client that used them (for the grace period).

Existing sessions (cookies without a session token) and existing codes (without a selector)
keep working; see consult/accounts/sessions.py and service.code_sign_in.

Revision ID: de5ebb36d648
Revises: 5e7a1c9d2b40
Create Date: 2026-12-03 09:00:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'de5ebb36d648'
down_revision = '5e7a1c9d2b40'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('user_account', schema=None) as batch_op:
        batch_op.add_column(sa.Column('session_epoch', sa.Integer(), server_default='0',
                                      nullable=False))

    with op.batch_alter_table('access_code', schema=None) as batch_op:
        batch_op.add_column(sa.Column('selector_hash', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('used_by_client', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('failures', sa.Integer(), server_default='0',
                                      nullable=False))
        batch_op.add_column(sa.Column('pauses', sa.Integer(), server_default='0',
                                      nullable=False))
        batch_op.add_column(sa.Column('paused_until', sa.DateTime(), nullable=True))
        batch_op.create_unique_constraint(batch_op.f('uq_access_code_selector_hash'),
                                          ['selector_hash'])

    op.create_table('user_session',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('epoch', sa.Integer(), nullable=False),
    sa.Column('method', sa.String(length=20), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('ended_at', sa.DateTime(), nullable=True),
    sa.Column('welcome_until', sa.DateTime(), nullable=True),
    sa.Column('welcome_used_at', sa.DateTime(), nullable=True),
    sa.Column('access_code_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['access_code_id'], ['access_code.id'],
                            name=op.f('fk_user_session_access_code_id_access_code')),
    sa.ForeignKeyConstraint(['user_id'], ['user_account.id'],
                            name=op.f('fk_user_session_user_id_user_account')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_user_session')),
    sa.UniqueConstraint('token_hash', name=op.f('uq_user_session_token_hash'))
    )
    with op.batch_alter_table('user_session', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_user_session_user_id'), ['user_id'], unique=False)


def downgrade():
    with op.batch_alter_table('user_session', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_user_session_user_id'))
    op.drop_table('user_session')

    with op.batch_alter_table('access_code', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('uq_access_code_selector_hash'), type_='unique')
        batch_op.drop_column('paused_until')
        batch_op.drop_column('pauses')
        batch_op.drop_column('failures')
        batch_op.drop_column('used_by_client')
        batch_op.drop_column('selector_hash')

    with op.batch_alter_table('user_account', schema=None) as batch_op:
        batch_op.drop_column('session_epoch')
