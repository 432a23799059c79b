"""One audit chain per consultation, anchored in the global chain.

Every existing event becomes an event of the global chain (``chain_id`` 0) at the position it
had (``chain_seq`` = ``seq``), so its stored hash still verifies; ``seq`` becomes the event's
number, given by the database. ``audit_head`` gets one row per chain: the old single row (id 1)
is the global chain's.

Revision ID: c3e9a1f5b742
Revises: b7d2f4a6c813
Create Date: 2026-12-04 22:40:00.000000

"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = 'c3e9a1f5b742'
down_revision = 'b7d2f4a6c813'
branch_labels = None
depends_on = None


def upgrade():
    postgresql = op.get_bind().dialect.name == 'postgresql'
    with op.batch_alter_table('audit_event', schema=None) as batch_op:
        batch_op.add_column(sa.Column('chain_id', sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column('chain_seq', sa.BigInteger(), nullable=True))
    op.execute('UPDATE audit_event SET chain_id = 0, chain_seq = seq')
    with op.batch_alter_table('audit_event', schema=None) as batch_op:
        batch_op.alter_column('chain_id', existing_type=sa.BigInteger(), nullable=False)
        batch_op.alter_column('chain_seq', existing_type=sa.BigInteger(), nullable=False)
        if not postgresql:
            # SQLite numbers the rows itself only for an INTEGER PRIMARY KEY (the rowid).
            batch_op.alter_column('seq', existing_type=sa.BigInteger(), type_=sa.Integer(),
                                  existing_nullable=False, autoincrement=True)
        batch_op.create_unique_constraint(
            batch_op.f('uq_audit_event_chain_id_chain_seq'), ['chain_id', 'chain_seq'])
    if postgresql:
        # The database numbers the events from now on, after the last one.
        op.execute('CREATE SEQUENCE audit_event_seq_seq OWNED BY audit_event.seq')
        op.execute("SELECT setval('audit_event_seq_seq', "
                   "COALESCE((SELECT max(seq) FROM audit_event), 0) + 1, false)")
        op.execute("ALTER TABLE audit_event ALTER COLUMN seq "
                   "SET DEFAULT nextval('audit_event_seq_seq')")

    with op.batch_alter_table('audit_head', schema=None) as batch_op:
        batch_op.alter_column('id', new_column_name='chain_id', existing_type=sa.Integer(),
                              type_=sa.BigInteger(), existing_nullable=False)
    op.execute('UPDATE audit_head SET chain_id = 0 WHERE chain_id = 1')

    # The notices issued so far name a head of the global chain.
    with op.batch_alter_table('notice', schema=None) as batch_op:
        batch_op.add_column(sa.Column('chain_id', sa.BigInteger(), nullable=False,
                                      server_default='0'))
    with op.batch_alter_table('notice', schema=None) as batch_op:
        batch_op.alter_column('chain_id', existing_type=sa.BigInteger(), server_default=None)


def downgrade():
    postgresql = op.get_bind().dialect.name == 'postgresql'
    with op.batch_alter_table('notice', schema=None) as batch_op:
        batch_op.drop_column('chain_id')
    # Only the global chain can go back to being the single chain.
    op.execute('DELETE FROM audit_head WHERE chain_id <> 0')
    op.execute('UPDATE audit_head SET chain_id = 1 WHERE chain_id = 0')
    with op.batch_alter_table('audit_head', schema=None) as batch_op:
        batch_op.alter_column('chain_id', new_column_name='id', existing_type=sa.BigInteger(),
                              type_=sa.Integer(), existing_nullable=False)
    op.execute('DELETE FROM audit_event WHERE chain_id <> 0')
    op.execute('UPDATE audit_event SET seq = chain_seq')
    if postgresql:
        op.execute('ALTER TABLE audit_event ALTER COLUMN seq DROP DEFAULT')
        op.execute('DROP SEQUENCE audit_event_seq_seq')
    with op.batch_alter_table('audit_event', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('uq_audit_event_chain_id_chain_seq'),
                                 type_='unique')
        if not postgresql:
            batch_op.alter_column('seq', existing_type=sa.Integer(), type_=sa.BigInteger(),
                                  existing_nullable=False, autoincrement=False)
        batch_op.drop_column('chain_seq')
        batch_op.drop_column('chain_id')
