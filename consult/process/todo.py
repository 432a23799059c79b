"""What waits for the committee: the to-do list on a committee member's home page (reads only).

Six kinds of work, each found with one query over every consultation the user manages:
objections awaiting an answer, votes closing within 48 hours (with their turnout), paper
ballots that do not count yet, stages whose deadline passed, works without their final
(completion) report, and defect reports that are new or overdue. The consultations they
concern are then loaded in one more query.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, exists, func, or_, select, true
from sqlalchemy.orm import joinedload

from consult.ballots.models import Ballot, BallotEntry, EntryState, RollEntry
from consult.consultations.models import Consultation
from consult.consultations.states import UNCOUNTED_VOTE_STAGES, Action, Stage
from consult.core.models import utcnow
from consult.core.policy import compound_scope
from consult.extensions import db
from consult.feedback import service as feedback
from consult.implementation.models import ProgressEntry
from consult.notices.models import Notice, NoticeKind, Objection

# A vote closing within this time is on the list, with its turnout.
CLOSING_SOON = timedelta(hours=48)

# Kinds of work, in the order they are ranked when their deadlines are equal.
OBJECTIONS = "objections"
VOTE_CLOSING = "vote_closing"
PAPERS = "papers"
OVERDUE = "overdue"
NO_FINAL_REPORT = "no_final_report"
DEFECTS = "defects"
_RANK = {OVERDUE: 0, OBJECTIONS: 1, PAPERS: 2, VOTE_CLOSING: 3, NO_FINAL_REPORT: 4, DEFECTS: 5}

# The step a passed deadline calls for, by stage.
_OVERDUE_ACTIONS = {
    Stage.SOLICITING: Action.START_PROPOSING,
    Stage.VOTING: Action.CLOSE_VOTE,
    Stage.RESOLUTION_PUBLIC: Action.START_IMPLEMENTATION,
    Stage.RESULT_PUBLIC: Action.CLOSE,
}
_NOTICE_OF_STAGE = {Stage.RESOLUTION_PUBLIC: NoticeKind.RESOLUTION,
                    Stage.RESULT_PUBLIC: NoticeKind.RESULT}


@dataclass
class Todo:
    """One piece of the committee's work on one consultation, with its numbers."""

    kind: str
    consultation_id: int
    due: datetime | None = None  # the deadline it is ranked by (None: none, ranked last)
    count: int = 0               # objections, or papers awaiting their second entry
    differs: int = 0             # papers whose entries differ
    authorisation: int = 0       # proxy papers awaiting their written authorisation
    voted: int = 0               # households with a ballot (a vote closing soon)
    roll: int = 0                # households on the roll
    notice_id: int | None = None
    action: Action | None = None  # the next step a passed deadline calls for
    percent: int | None = None   # the latest progress of the whole works
    late: int = 0                # defect reports past their due day (``count``: new ones)
    consultation: Consultation | None = None

    @property
    def hours_left(self) -> int:
        """Whole hours until ``due`` (0 once it passed), rounded up: "closes in 20 h"."""
        if self.due is None:
            return 0
        seconds = (self.due - utcnow()).total_seconds()
        return max(0, int(-(-seconds // 3600)))


def _in_scope(scope: frozenset[int] | None) -> ColumnElement[bool]:
    return true() if scope is None else Consultation.compound_id.in_(scope)


def todo_for(user: Any, now: datetime | None = None) -> list[Todo]:
    """The committee's work in the compounds ``user`` may manage consultations in, most urgent
    first (passed and nearest deadlines first, work without a deadline last). Empty for a
    user who manages none."""
    scope = compound_scope(user, "consultation.manage")
    if scope is not None and not scope:
        return []
    now = now or utcnow()
    todos = [*_objections(scope), *_votes_closing(scope, now), *_papers(scope, now),
             *_overdue(scope, now), *_without_final_report(scope), *_defects(scope, now)]
    if not todos:
        return []
    consultations = {c.id: c for c in db.session.scalars(
        select(Consultation).options(joinedload(Consultation.compound))
        .where(Consultation.id.in_({t.consultation_id for t in todos})))}
    for todo in todos:
        todo.consultation = consultations[todo.consultation_id]
    far = datetime.max.replace(tzinfo=now.tzinfo)
    return sorted(todos, key=lambda t: (t.due is None, t.due or far, _RANK[t.kind],
                                        -t.consultation_id))


def _objections(scope: frozenset[int] | None) -> list[Todo]:
    """Notices in force with objections that have no public answer yet."""
    rows = db.session.execute(
        select(Notice.id, Consultation.id, Notice.period_ends_at, func.count(Objection.id))
        .join(Objection, Objection.notice_id == Notice.id)
        .join(Consultation, Consultation.id == Notice.consultation_id)
        .where(Objection.answered_at.is_(None), Notice.superseded_at.is_(None), _in_scope(scope))
        .group_by(Notice.id, Consultation.id, Notice.period_ends_at))
    return [Todo(OBJECTIONS, consultation_id, due=ends, count=n, notice_id=notice_id)
            for notice_id, consultation_id, ends, n in rows]


def _votes_closing(scope: frozenset[int] | None, now: datetime) -> list[Todo]:
    """Open votes whose deadline is within 48 hours, with how many households voted."""
    voted = (select(func.count(Ballot.id))
             .where(Ballot.consultation_id == Consultation.id, Ballot.round == Consultation.round)
             .correlate(Consultation).scalar_subquery())
    roll = (select(func.count(RollEntry.id))
            .where(RollEntry.consultation_id == Consultation.id,
                   RollEntry.round == Consultation.round)
            .correlate(Consultation).scalar_subquery())
    rows = db.session.execute(
        select(Consultation.id, Consultation.vote_deadline, voted.label("voted"),
               roll.label("roll"))
        .where(Consultation.stage == Stage.VOTING.value, Consultation.vote_deadline > now,
               Consultation.vote_deadline <= now + CLOSING_SOON, _in_scope(scope)))
    return [Todo(VOTE_CLOSING, row.id, due=row.vote_deadline, voted=row.voted, roll=row.roll)
            for row in rows]


def _papers(scope: frozenset[int] | None, now: datetime) -> list[Todo]:
    """Paper ballots of the current round that do not count yet, by what they wait for."""
    rows = db.session.execute(
        select(Consultation.id, Consultation.stage, Consultation.vote_deadline, BallotEntry.state,
               func.count(BallotEntry.id))
        .join(BallotEntry, and_(BallotEntry.consultation_id == Consultation.id,
                                BallotEntry.round == Consultation.round))
        .where(BallotEntry.first_id.is_(None),
               BallotEntry.state.in_([EntryState.AWAITING_SECOND.value,
                                      EntryState.DIFFERS.value,
                                      EntryState.AWAITING_AUTHORISATION.value]),
               Consultation.stage.in_([s.value for s in UNCOUNTED_VOTE_STAGES]),
               _in_scope(scope))
        .group_by(Consultation.id, Consultation.stage, Consultation.vote_deadline,
                  BallotEntry.state))
    todos: dict[int, Todo] = {}
    for consultation_id, stage, deadline, state, n in rows:
        # A closed vote waits for its papers to be counted: that is due now.
        due = deadline if stage == Stage.VOTING.value else now
        todo = todos.setdefault(consultation_id, Todo(PAPERS, consultation_id, due=due))
        if state == EntryState.AWAITING_SECOND.value:
            todo.count = n
        elif state == EntryState.DIFFERS.value:
            todo.differs = n
        else:
            todo.authorisation = n
    return list(todos.values())


def _overdue(scope: frozenset[int] | None, now: datetime) -> list[Todo]:
    """Stages whose deadline passed and that wait for the committee's next step: opinions
    still collected, a vote still open, a notice whose publicity period is over."""
    notice_end = (select(func.max(Notice.period_ends_at))
                  .where(Notice.consultation_id == Consultation.id,
                         Notice.superseded_at.is_(None),
                         or_(*(and_(Consultation.stage == stage.value, Notice.kind == kind.value)
                               for stage, kind in _NOTICE_OF_STAGE.items())))
                  .correlate(Consultation).scalar_subquery())
    rows = db.session.execute(
        select(Consultation.id, Consultation.stage, Consultation.solicitation_deadline,
               Consultation.vote_deadline, notice_end)
        .where(Consultation.stage.in_([s.value for s in _OVERDUE_ACTIONS]), _in_scope(scope)))
    todos = []
    for consultation_id, stage, solicitation, vote, notice in rows:
        deadline = {Stage.SOLICITING.value: solicitation,
                    Stage.VOTING.value: vote}.get(stage, notice)
        if deadline is not None and deadline <= now:
            todos.append(Todo(OVERDUE, consultation_id, due=deadline,
                              action=_OVERDUE_ACTIONS[Stage(stage)]))
    return todos


def _without_final_report(scope: frozenset[int] | None) -> list[Todo]:
    """Works under way without their final progress report, with their latest progress."""
    latest = (select(ProgressEntry.percent)
              .where(ProgressEntry.consultation_id == Consultation.id,
                     ProgressEntry.item_id.is_(None))
              .order_by(ProgressEntry.created_at.desc(), ProgressEntry.id.desc()).limit(1)
              .correlate(Consultation).scalar_subquery())
    final = exists().where(ProgressEntry.consultation_id == Consultation.id,
                           ProgressEntry.is_final.is_(True))
    rows = db.session.execute(
        select(Consultation.id, latest.label("percent"))
        .where(Consultation.stage == Stage.IMPLEMENTING.value, ~final, _in_scope(scope)))
    return [Todo(NO_FINAL_REPORT, row.id, percent=row.percent) for row in rows]


def _defects(scope: frozenset[int] | None, now: datetime) -> list[Todo]:
    """Defect reports waiting for the committee: new ones to accept or reject, and assigned
    ones past their due day (those rank as a passed deadline, at the top)."""
    return [Todo(DEFECTS, consultation_id, due=now if late else None, count=new, late=late)
            for consultation_id, new, late in feedback.waiting_by_consultation(scope, now)]
