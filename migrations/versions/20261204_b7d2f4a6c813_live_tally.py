"""The live count of a running vote, kept between page views with the ballots it counted.

Revision ID: b7d2f4a6c813
Revises: d5e1a7b3f645
Create Date: 2026-12-04 19:20:00.000000

"""
from alembic import op
import sqlalchemy as sa



# revision identifiers, used by Alembic.
revision = 'b7d2f4a6c813'
down_revision = 'd5e1a7b3f645'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('live_tally',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('consultation_id', sa.Integer(), nullable=False),
    sa.Column('round', sa.Integer(), nullable=False),
    sa.Column('version', sa.String(length=80), nullable=True),
    sa.Column('data', sa.Text(), nullable=True),
    sa.Column('counted_at', sa.DateTime(), nullable=True),
    sa.Column('claimed_until', sa.DateTime(), nullable=True),
    sa.ForeignKeyConstraint(['consultation_id'], ['consultation.id'], name=op.f('fk_live_tally_consultation_id_consultation')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_live_tally')),
    sa.UniqueConstraint('consultation_id', 'round', name=op.f('uq_live_tally_consultation_id_round'))
    )


def downgrade():
    op.drop_table('live_tally')
