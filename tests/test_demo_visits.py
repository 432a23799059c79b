"""The demo's follow-up in progress: the running vote's visit list, two teams, some visits
recorded, an answer entered through the entry rules."""

from sqlalchemy import select

from consult.ballots import visits
from consult.ballots.models import BallotEntry, Visit, VisitList
from consult.extensions import db


def test_demo_has_a_follow_up_in_progress(runner):
    result = runner.invoke(args=["demo", "seed"], env={"CONSULT_LANG": "en"})
    assert result.exit_code == 0, result.output
    visit_list = db.session.scalars(select(VisitList)).one()
    assert visit_list.consultation.title == "1号楼1单元加装电梯"
    progress = visits.progress(visit_list)
    assert [p.team.name for p in progress] == ["第一小组", "第二小组"]
    assigned = [p.assigned for p in progress]
    assert max(assigned) - min(assigned) <= 1  # split by count
    total = visits.totals(progress)
    assert total.visited == 3 and total.by_outcome["answered"] == 1
    answered = db.session.scalars(select(Visit).where(Visit.outcome == "answered")).one()
    entry = db.session.get(BallotEntry, answered.entry_id)
    assert entry is not None and entry.channel == "door_to_door"
    runner.invoke(args=["demo", "seed"], env={"CONSULT_LANG": "en"})
    assert len(db.session.scalars(select(VisitList)).all()) == 1  # idempotent
