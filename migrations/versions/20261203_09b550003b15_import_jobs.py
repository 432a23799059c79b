"""Household imports as jobs: the uploaded file and the outcome of each import, and the staging
table its checked rows wait in until one short transaction writes them.

Revision ID: 09b550003b15
Revises: de5ebb36d648
Create Date: 2026-12-03 12:55:07.829090

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '09b550003b15'
down_revision = 'de5ebb36d648'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('import_job',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('compound_id', sa.Integer(), nullable=True),
    sa.Column('status', sa.String(length=10), nullable=False),
    sa.Column('filename', sa.String(length=200), nullable=False),
    sa.Column('data', sa.LargeBinary(), nullable=True),
    sa.Column('create_buildings', sa.Boolean(), nullable=False),
    sa.Column('locale', sa.String(length=10), nullable=False),
    sa.Column('done', sa.Integer(), nullable=False),
    sa.Column('total', sa.Integer(), nullable=False),
    sa.Column('message', sa.String(length=500), nullable=False),
    sa.Column('problems', sa.Text(), nullable=True),
    sa.Column('summary', sa.Text(), nullable=True),
    sa.Column('requested_by_id', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('finished_at', sa.DateTime(), nullable=True),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.CheckConstraint("status IN ('queued', 'checking', 'writing', 'done', 'failed')", name=op.f('ck_import_job_status')),
    sa.ForeignKeyConstraint(['compound_id'], ['compound.id'], name=op.f('fk_import_job_compound_id_compound')),
    sa.ForeignKeyConstraint(['requested_by_id'], ['user_account.id'], name=op.f('fk_import_job_requested_by_id_user_account')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_import_job'))
    )
    with op.batch_alter_table('import_job', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_import_job_compound_id'), ['compound_id'], unique=False)

    op.create_table('import_staged_household',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('job_id', sa.Integer(), nullable=False),
    sa.Column('line', sa.Integer(), nullable=False),
    sa.Column('compound_id', sa.Integer(), nullable=False),
    sa.Column('building_id', sa.Integer(), nullable=True),
    sa.Column('building_name', sa.String(length=50), nullable=False),
    sa.Column('unit', sa.String(length=20), nullable=False),
    sa.Column('floor', sa.Integer(), nullable=True),
    sa.Column('room', sa.String(length=20), nullable=False),
    sa.Column('area_dm2', sa.Integer(), nullable=False),
    sa.Column('owner_name', sa.String(length=100), nullable=False),
    sa.Column('owner_key', sa.String(length=128), nullable=True),
    sa.Column('phone', sa.String(length=30), nullable=True),
    sa.Column('sort_key', sa.String(length=120).with_variant(sa.String(length=120, collation='C'), 'postgresql'), nullable=False),
    sa.Column('household_id', sa.Integer(), nullable=True),
    sa.Column('seen_updated_at', sa.DateTime(), nullable=True),
    sa.Column('changed', sa.Boolean(), nullable=False),
    sa.ForeignKeyConstraint(['job_id'], ['import_job.id'], name=op.f('fk_import_staged_household_job_id_import_job')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_import_staged_household'))
    )
    with op.batch_alter_table('import_staged_household', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_import_staged_household_job_id'), ['job_id'], unique=False)



def downgrade():
    with op.batch_alter_table('import_staged_household', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_import_staged_household_job_id'))

    op.drop_table('import_staged_household')
    with op.batch_alter_table('import_job', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_import_job_compound_id'))

    op.drop_table('import_job')
