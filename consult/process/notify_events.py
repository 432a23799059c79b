"""Events that concern several domains, for the notification centre: a stage that asks the
households something, votes about to close, and the committee's new to-do items.

``stage_opened`` runs inside ``workflow.apply`` (the stage's transaction); ``produce_due``
runs from ``flask send-notifications`` (cron) and is idempotent: every event carries a
dedupe key, so a second run notifies nobody twice.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import and_, select

from consult.accounts.models import User
from consult.ballots import service as ballots
from consult.ballots.models import Ballot, RollEntry
from consult.consultations.models import Consultation
from consult.consultations.states import Stage
from consult.core.models import utcnow
from consult.core.policy import can
from consult.extensions import db
from consult.notices import service as notices
from consult.notices.models import NoticeKind
from consult.notifications import events
from consult.notifications.service import household_accounts, notify, path_for
from consult.process import todo

_NOTICE_OF_STAGE = {Stage.RESOLUTION_PUBLIC: NoticeKind.RESOLUTION,
                    Stage.RESULT_PUBLIC: NoticeKind.RESULT}


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def stage_opened(consultation: Consultation, stage: Stage, now: datetime) -> int:
    """Tell every household in the consultation's scope that a stage needing it has opened
    (collecting opinions, discussion, the vote, a notice open to objections); other stages
    notify nobody. Returns how many accounts were notified."""
    if stage not in events.STAGE_ASKS:
        return 0
    deadline = None
    if stage is Stage.SOLICITING:
        deadline = consultation.solicitation_deadline
    elif stage is Stage.VOTING:
        deadline = consultation.vote_deadline
    elif stage in _NOTICE_OF_STAGE:
        notice = notices.current_notice(consultation, _NOTICE_OF_STAGE[stage])
        deadline = notice.period_ends_at if notice is not None else None
    if stage is Stage.VOTING:  # the frozen roll: exactly who may vote
        household_ids = list(db.session.scalars(select(RollEntry.household_id).where(
            RollEntry.consultation_id == consultation.id,
            RollEntry.round == consultation.round)))
    else:
        scope = ballots.households_in_scope(consultation).subquery()
        household_ids = list(db.session.scalars(select(scope.c.id)))
    return notify(
        events.STAGE_OPENED, household_accounts(household_ids),
        {"consultation": consultation.title, "stage": stage.value,
         "deadline": _iso(deadline), "locale": consultation.locale},
        path_for("consultations.show", consultation_id=consultation.id),
        f"stage:{consultation.id}:{consultation.round}:{stage.value}", now=now)


def vote_reminders(now: datetime) -> int:
    """Remind the households on the roll of a vote closing within 48 hours that have not voted
    (once per household and vote round). Returns how many accounts were reminded."""
    closing = db.session.scalars(select(Consultation).where(
        Consultation.stage == Stage.VOTING.value, Consultation.vote_deadline > now,
        Consultation.vote_deadline <= now + todo.CLOSING_SOON)
        .order_by(Consultation.id)).all()
    reminded = 0
    for consultation in closing:
        not_voted = select(RollEntry.household_id).outerjoin(Ballot, and_(
            Ballot.consultation_id == RollEntry.consultation_id,
            Ballot.round == RollEntry.round, Ballot.household_id == RollEntry.household_id,
        )).where(RollEntry.consultation_id == consultation.id,
                 RollEntry.round == consultation.round, Ballot.id.is_(None))
        reminded += notify(
            events.VOTE_CLOSING, household_accounts(db.session.scalars(not_voted)),
            {"consultation": consultation.title, "deadline": _iso(consultation.vote_deadline),
             "locale": consultation.locale},
            path_for("consultations.show", consultation_id=consultation.id),
            f"vote_closing:{consultation.id}:{consultation.round}", now=now)
    return reminded


def staff_todos(now: datetime) -> int:
    """One notification per new item on each staff member's to-do list (``process.todo``):
    an item is new while its key (kind, consultation, round, notice) has not been notified to
    that person. Returns how many notifications were written."""
    written = 0
    staff = db.session.scalars(select(User).where(
        User.active.is_(True), User.household_id.is_(None)).order_by(User.id)).all()
    for user in staff:
        if not can(user, "consultation.manage"):
            continue
        for item in todo.todo_for(user, now):
            consultation = item.consultation
            assert consultation is not None
            key = (f"todo:{item.kind}:{consultation.id}:{consultation.round}:"
                   f"{item.notice_id or ''}:{item.action.value if item.action else ''}")
            written += notify(
                events.STAFF_TODO, [user],
                {"consultation": consultation.title, "kind": item.kind,
                 "deadline": _iso(item.due), "locale": consultation.locale},
                path_for("consultations.show", consultation_id=consultation.id), key, now=now)
    return written


def produce_due(now: datetime | None = None) -> dict[str, int]:
    """The time-based events (run from cron before sending): counts by kind."""
    now = now or utcnow()
    return {"vote_closing": vote_reminders(now), "staff_todo": staff_todos(now)}
