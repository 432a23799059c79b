"""Demo data: a door-to-door follow-up (再入户) under way in the demo's running vote — its
households without a ballot split between two teams, a few visits already recorded."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import select

from consult.ballots import visits
from consult.consultations.models import Consultation
from consult.core.models import utcnow
from consult.extensions import db
from consult.registry.models import Compound, Household

RUNNING_VOTE = "1号楼1单元加装电梯"
TEAMS = "第一小组: 李红梅, 赵国庆\n第二小组: 孙淑珍, 陈卫东"


def seed_visits(compound: Compound, committee: Any, resident_home: Household) -> int:
    """Make the follow-up list of the running vote once; returns how many visits it holds."""
    consultation = db.session.scalar(select(Consultation).where(
        Consultation.compound_id == compound.id, Consultation.title == RUNNING_VOTE))
    if consultation is None or not consultation.vote_is_open() or visits.lists_of(consultation):
        return 0
    planned = visits.plan(consultation, [visits.NOT_VOTED, visits.NOT_REACHED], None, TEAMS,
                          "count")
    visit_list = visits.create_list(committee, consultation, planned)
    now = utcnow() - timedelta(hours=2)
    # The demo resident still votes for itself: its visit stays open.
    rows = [row for row in visits.rows(visit_list) if row.visit.household_id != resident_home.id]
    outcomes = ["answered", "not_home", "refused"]
    for row, outcome in zip(rows[::2], outcomes, strict=False):
        answers = ({item.id: "agree" for item in consultation.items}
                   if outcome == "answered" else {})
        visits.record_visit(committee, row.visit, outcome, answers,
                            "老人在家，子女代为说明情况" if outcome == "not_home" else "", now=now)
    return len(visits.rows(visit_list))
