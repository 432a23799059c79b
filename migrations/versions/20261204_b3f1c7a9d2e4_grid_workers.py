"""Grid workers (网格员): a staff role scoped to grids. A user scope may name a grid, and
names exactly one of a community, a compound or a grid.

Revision ID: b3f1c7a9d2e4
Revises: c5d2e8f4a017
Create Date: 2026-12-04 12:50:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'b3f1c7a9d2e4'
down_revision = 'c5d2e8f4a017'
branch_labels = None
depends_on = None

OLD_ROLES = "role IN ('resident', 'committee', 'supervisor', 'admin')"
NEW_ROLES = "role IN ('resident', 'committee', 'supervisor', 'admin', 'grid_worker')"
OLD_TARGET = "(community_id IS NULL) <> (compound_id IS NULL)"
NEW_TARGET = ("(CASE WHEN community_id IS NULL THEN 0 ELSE 1 END"
              " + CASE WHEN compound_id IS NULL THEN 0 ELSE 1 END"
              " + CASE WHEN grid_id IS NULL THEN 0 ELSE 1 END) = 1")


def upgrade():
    with op.batch_alter_table('user_scope', schema=None) as batch_op:
        batch_op.add_column(sa.Column('grid_id', sa.Integer(), nullable=True))
        batch_op.create_index(batch_op.f('ix_user_scope_grid_id'), ['grid_id'], unique=False)
        batch_op.create_foreign_key(batch_op.f('fk_user_scope_grid_id_grid'), 'grid',
                                    ['grid_id'], ['id'])
        batch_op.create_unique_constraint(batch_op.f('uq_user_scope_user_id_grid_id'),
                                          ['user_id', 'grid_id'])
        batch_op.drop_constraint(op.f('ck_user_scope_one_target'), type_='check')
        batch_op.create_check_constraint('one_target', NEW_TARGET)
    with op.batch_alter_table('user_account', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_user_account_role'), type_='check')
        batch_op.create_check_constraint('role', NEW_ROLES)


def downgrade():
    op.execute("DELETE FROM user_scope WHERE grid_id IS NOT NULL")
    op.execute("DELETE FROM user_scope WHERE user_id IN "
               "(SELECT id FROM user_account WHERE role = 'grid_worker')")
    with op.batch_alter_table('user_account', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_user_account_role'), type_='check')
        batch_op.create_check_constraint('role', OLD_ROLES)
    with op.batch_alter_table('user_scope', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_user_scope_one_target'), type_='check')
        batch_op.create_check_constraint('one_target', OLD_TARGET)
        batch_op.drop_constraint(batch_op.f('uq_user_scope_user_id_grid_id'), type_='unique')
        batch_op.drop_constraint(batch_op.f('fk_user_scope_grid_id_grid'), type_='foreignkey')
        batch_op.drop_index(batch_op.f('ix_user_scope_grid_id'))
        batch_op.drop_column('grid_id')
