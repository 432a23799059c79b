"""The vote's own stages: a closed vote waiting for its papers to be settled (vote_closed), and
a counted vote whose resolution is not published yet (vote_counted). A consultation still
'voting' after its vote closed moves to the stage its timestamps say; downgrading moves it back.

Revision ID: cfda44e217df
Revises: aad6046ec30e
Create Date: 2026-12-03 16:30:26.246236

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'cfda44e217df'
down_revision = 'aad6046ec30e'
branch_labels = None
depends_on = None

BEFORE = ('draft', 'soliciting', 'proposing', 'discussing', 'voting', 'resolution_public',
          'implementing', 'result_public', 'closed', 'withdrawn')
AFTER = ('draft', 'soliciting', 'proposing', 'discussing', 'voting', 'vote_closed',
         'vote_counted', 'resolution_public', 'implementing', 'result_public', 'closed',
         'withdrawn')

consultation = sa.table('consultation', sa.column('stage', sa.String(20)),
                        sa.column('vote_closed_at', sa.DateTime()),
                        sa.column('vote_counted_at', sa.DateTime()))


def _allow(stages):
    with op.batch_alter_table('consultation', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_consultation_stage'), type_='check')
        batch_op.create_check_constraint(
            'stage', "stage IN ({})".format(", ".join(f"'{s}'" for s in stages)))


def upgrade():
    _allow(AFTER)
    voting = consultation.c.stage == 'voting'
    op.execute(consultation.update()
               .where(voting, consultation.c.vote_counted_at.isnot(None))
               .values(stage='vote_counted'))
    op.execute(consultation.update()
               .where(voting, consultation.c.vote_closed_at.isnot(None))
               .values(stage='vote_closed'))


def downgrade():
    # The timestamps still say the vote closed and when it was counted.
    op.execute(consultation.update()
               .where(consultation.c.stage.in_(['vote_closed', 'vote_counted']))
               .values(stage='voting'))
    _allow(BEFORE)
