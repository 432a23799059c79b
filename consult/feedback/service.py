"""Defect reports after completion: the warranty period, reporting, and ``move``, the one
function that changes a report's state (over ``states.TRANSITIONS``).

Every change is checked against the policy table here as well as in the view (the service is
called by views, commands and tests alike, with the acting user as an argument), and writes
its audit event in the caller's transaction. Notifications, once there are any, hook into
``move`` and ``report``.

The clock is this module's ``utcnow`` (tests replace it); a report is overdue when it is
assigned and its due day (in Beijing) has passed without a fix.
"""

from __future__ import annotations

import calendar
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import ColumnElement, Select, and_, case, func, or_, select
from sqlalchemy.orm import joinedload
from werkzeug.datastructures import FileStorage

from consult.audit import service as audit
from consult.audit.actions import describe, describe_kinds, describe_objects
from consult.audit.models import AuditEvent
from consult.consultations import service as consultations
from consult.consultations.models import Consultation, Item
from consult.consultations.states import Stage
from consult.core.database import lock_row
from consult.core.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from consult.core.models import utcnow
from consult.core.policy import Role, authorize, can, role_of
from consult.core.times import LOCAL, format_date, plausible
from consult.core.validation import field_text
from consult.extensions import db
from consult.feedback.models import DefectReport
from consult.feedback.states import (
    DONE_STATES,
    OPEN_STATES,
    TRANSITIONS,
    Action,
    Need,
    State,
    Who,
)
from consult.notices.models import Notice, NoticeKind
from consult.notifications import events
from consult.notifications import service as notifications
from consult.registry.models import Building, Household
from consult.uploads import service as uploads
from consult.uploads.models import Attachment, Visibility

AUDIT_ACTIONS = {
    Action.ACCEPT: "feedback.accepted",
    Action.REJECT: "feedback.rejected",
    Action.ASSIGN: "feedback.assigned",
    Action.MARK_FIXED: "feedback.fixed",
    Action.CONFIRM: "feedback.confirmed",
    Action.REOPEN: "feedback.reopened",
}
REPORTED = "feedback.reported"
WARRANTY_SET = "feedback.warranty_set"

describe({
    REPORTED: _l("Defect reported"),
    "feedback.accepted": _l("Defect report accepted"),
    "feedback.rejected": _l("Defect report rejected"),
    "feedback.assigned": _l("Defect report assigned"),
    "feedback.fixed": _l("Defect marked as fixed"),
    "feedback.confirmed": _l("Fix of a defect confirmed"),
    "feedback.reopened": _l("Defect report reopened"),
    WARRANTY_SET: _l("Warranty period changed"),
}, kind="feedback")
describe_kinds({"feedback": _l("Defect feedback")})
describe_objects({"defect_report": _l("Defect report")})

# The policy action each side of the table needs.
WHO_ACTIONS = {Who.COMMITTEE: "feedback.manage", Who.CHECKER: "feedback.check"}

MAX_TEXT_LENGTH = 2000
MAX_REASON_LENGTH = 1000
MAX_ASSIGNEE_LENGTH = 100
MAX_PHOTOS = 5
MIN_WARRANTY_MONTHS, MAX_WARRANTY_MONTHS = 1, 120
# Stages in which the works are finished and their result published.
FINISHED_STAGES = frozenset({Stage.RESULT_PUBLIC.value, Stage.CLOSED.value})


# --- the warranty period ----------------------------------------------------------------------


def add_months(moment: datetime, months: int) -> datetime:
    """``moment`` plus whole calendar months (31 January + 1 month → 28/29 February)."""
    index = moment.month - 1 + months
    year, month = moment.year + index // 12, index % 12 + 1
    day = min(moment.day, calendar.monthrange(year, month)[1])
    return moment.replace(year=year, month=month, day=day)


def warranty_start(consultation: Consultation) -> datetime | None:
    """When the warranty began: when the first result notice (实施结果公开) was published,
    the event that marks the works as finished. None before that."""
    return db.session.scalar(select(func.min(Notice.published_at)).where(
        Notice.consultation_id == consultation.id, Notice.kind == NoticeKind.RESULT.value))


@dataclass(frozen=True)
class Warranty:
    """The warranty period of a consultation's works, and whether reports are accepted now."""

    months: int
    start: datetime | None
    end: datetime | None
    open: bool
    why_closed: str | None


def warranty(consultation: Consultation, now: datetime | None = None) -> Warranty:
    """The warranty period as it stands at ``now``, with the reason reports are refused."""
    now = now or utcnow()
    start = warranty_start(consultation) if consultation.stage in FINISHED_STAGES else None
    months = consultation.warranty_months
    if start is None:
        return Warranty(months, None, None, False, _(
            "Problems with the works can be reported once the works are finished and their "
            "result notice is published."))
    end = add_months(start, months)
    if now >= end:
        return Warranty(months, start, end, False, _(
            "The warranty period of these works ended on %(end)s: reports are no longer "
            "accepted here. Please contact your committee.", end=format_date(end)))
    return Warranty(months, start, end, True, None)


def check_warranty_open(consultation: Consultation, now: datetime) -> None:
    period = warranty(consultation, now)
    if not period.open:
        raise Conflict(period.why_closed or "")


def set_warranty(actor: Any, consultation: Consultation, months: Any) -> None:
    """The committee sets the warranty period (whole months)."""
    authorize(actor, "feedback.manage", consultation)
    try:
        value = int(str(months).strip())
    except (TypeError, ValueError):
        value = 0
    if not MIN_WARRANTY_MONTHS <= value <= MAX_WARRANTY_MONTHS:
        message = _("Enter a number of months from %(min)s to %(max)s.",
                    min=MIN_WARRANTY_MONTHS, max=MAX_WARRANTY_MONTHS)
        raise ValidationFailed(message, {"months": [message]})
    if value == consultation.warranty_months:
        return
    before = consultation.warranty_months
    consultation.warranty_months = value
    db.session.flush()
    audit.record(actor, WARRANTY_SET, consultation, {"months": {"from": before, "to": value}})


# --- reporting --------------------------------------------------------------------------------


def finished_items(consultation: Consultation) -> list[Item]:
    """The items ticked off as finished: the ones a defect can be reported on."""
    return [item for item in consultation.items if item.completed_at is not None]


def buildings_of(consultation: Consultation) -> list[Building]:
    """The buildings the consultation concerns (all of the compound's when it has no scope)."""
    wanted = {s.building_id for s in consultation.scopes}
    found = db.session.scalars(select(Building).where(
        Building.compound_id == consultation.compound_id).order_by(Building.sort_key,
                                                                   Building.id))
    return [b for b in found if not wanted or b.id in wanted]


def households_of(consultation: Consultation) -> list[Household]:
    """The households a grid worker may report for: those the consultation concerns."""
    found = db.session.scalars(
        select(Household).join(Building, Building.id == Household.building_id)
        .options(joinedload(Household.building))
        .where(Building.compound_id == consultation.compound_id)
        .order_by(Building.sort_key, Household.sort_key))
    return [h for h in found if consultations.household_in_scope(consultation, h)]


@dataclass(frozen=True)
class ReportInput:
    item_id: int | None
    building_id: int | None
    text: str | None
    household_id: int | None = None  # a grid worker names the household
    photos: Sequence[FileStorage] = ()


def _reporting_household(actor: Any, consultation: Consultation, data: ReportInput
                         ) -> Household | None:
    """The household a report is made for, by who reports it."""
    role = role_of(actor)
    if role is Role.RESIDENT:
        household = actor.household
        authorize(actor, "feedback.report", household)
        if not consultations.household_in_scope(consultation, household):
            raise PermissionDenied(_("Your household is not among those this consultation "
                                     "concerns."))
        return household
    authorize(actor, "feedback.report", consultation)
    if role is Role.GRID_WORKER:
        household = db.session.get(Household, data.household_id) if data.household_id else None
        if household is None or not consultations.household_in_scope(consultation, household):
            message = _("Choose the household you report for.")
            raise ValidationFailed(message, {"household_id": [message]})
        return household
    return None  # a supervisor's own report


def _checked_photos(files: Sequence[FileStorage], field: str, limit: int) -> list[Any]:
    """Every photo checked (real type, size) before any is stored; one bad photo stores none."""
    if len(files) > limit:
        message = _("At most %(n)s photos at a time.", n=limit)
        raise ValidationFailed(message, {field: [message]})
    checked = []
    for upload in files:
        try:
            checked.append(uploads.check(upload, images_only=True))
        except ValidationFailed as exc:
            message = f"{upload.filename}: {exc.message}"
            raise ValidationFailed(message, {field: [message]}) from exc
    return checked


def report(actor: Any, consultation: Consultation, data: ReportInput,
           now: datetime | None = None) -> DefectReport:
    """A household (itself or through a grid worker) or a supervisor reports a defect in a
    finished item during the warranty period. Photos are for staff only: they may show the
    inside of a home."""
    now = now or utcnow()
    household = _reporting_household(actor, consultation, data)
    check_warranty_open(consultation, now)
    errors: dict[str, list[str]] = {}
    item = next((i for i in finished_items(consultation) if i.id == data.item_id), None)
    if item is None:
        errors["item_id"] = [_("Choose a finished item of these works.")]
    building = next((b for b in buildings_of(consultation) if b.id == data.building_id), None)
    if building is None:
        errors["building_id"] = [_("Choose the building where the problem is.")]
    try:
        text = field_text(data.text, field="text", what=_("The description"),
                          max_length=MAX_TEXT_LENGTH, required=True, multiline=True)
    except ValidationFailed as exc:
        errors.update(exc.errors)
    if errors:
        raise ValidationFailed(next(iter(errors.values()))[0], errors)
    checked = _checked_photos(data.photos, "photos", MAX_PHOTOS)
    assert item is not None and building is not None
    found = DefectReport(consultation_id=consultation.id, item_id=item.id,
                         building_id=building.id,
                         household_id=household.id if household else None,
                         reporter_id=getattr(actor, "id", None),
                         reporter_role=role_of(actor).value, text=text,
                         state=State.OPEN.value, created_at=now, updated_at=now)
    found.photos = [uploads.save(actor, c, consultation=consultation,
                                 visibility=Visibility.STAFF) for c in checked]
    db.session.add(found)
    db.session.flush()
    audit.record(actor, REPORTED, found, {
        "consultation_id": consultation.id, "item": item.number, "building": building.name,
        "household_id": found.household_id, "by": found.reporter_role,
        "length": len(text), "photos": [p.id for p in found.photos]})
    _tell_household(found, actor, now)
    return found


def _tell_household(found: DefectReport, actor: Any, now: datetime) -> None:
    """The household hears of every step on its report that someone else took (a grid
    worker reporting for it, the committee answering, a supervisor confirming); once per step,
    in the caller's transaction."""
    if found.household_id is None or getattr(actor, "household_id", None) == found.household_id:
        return
    consultation = found.consultation
    notifications.notify(
        events.DEFECT_REPORT_CHANGED, notifications.household_accounts([found.household_id]),
        {"consultation": consultation.title, "report": found.id, "state": found.state,
         "locale": consultation.locale},
        notifications.path_for("feedback.show", report_id=found.id),
        f"defect:{found.id}:{found.state}:{now.isoformat()}", now=now)


# --- the life of a report ---------------------------------------------------------------------


def get_or_404(report_id: int) -> DefectReport:
    found = db.session.get(DefectReport, report_id)
    if found is None:
        raise NotFound(_("No such defect report."))
    return found


def may_take(actor: Any, found: DefectReport, action: Action) -> bool:
    """Whether ``actor`` may take ``action`` on the report now (state and person)."""
    transition = TRANSITIONS[action]
    return (found.state_enum in transition.sources
            and can(actor, WHO_ACTIONS[transition.who], found))


def actions_for(actor: Any, found: DefectReport) -> list[Action]:
    """The steps ``actor`` may take on the report now, in the table's order."""
    return [a for a in TRANSITIONS if may_take(actor, found, a)]


def _authorize_step(actor: Any, found: DefectReport, action: Action) -> None:
    transition = TRANSITIONS[action]
    if can(actor, WHO_ACTIONS[transition.who], found):
        return
    if transition.who is Who.CHECKER and role_of(actor) is Role.RESIDENT:
        raise PermissionDenied(_("This report was made for another household: only that "
                                 "household or a supervisor may confirm or reopen it."))
    authorize(actor, WHO_ACTIONS[transition.who], found)


class StepNotAllowed(Conflict):
    """A step the report's state does not allow (confirming a report not fixed yet...)."""

    code = "feedback_step_not_allowed"


_REFUSALS = {
    Action.ACCEPT: _l("Only a new report can be accepted."),
    Action.REJECT: _l("Only a new or accepted report can be rejected."),
    Action.ASSIGN: _l("Only an accepted report can be assigned."),
    Action.MARK_FIXED: _l("Only an assigned report can be marked as fixed."),
    Action.CONFIRM: _l("Only a fixed report can be confirmed: this one is not fixed yet."),
    Action.REOPEN: _l("Only a fixed report can be reopened."),
}


def _due_on(value: Any, today: date) -> date:
    if isinstance(value, datetime):
        value = value.date()
    if not isinstance(value, date):
        message = _("Enter the day the fix is due.")
        raise ValidationFailed(message, {"due_on": [message]})
    if not plausible(datetime(value.year, value.month, value.day)):
        message = _("Enter a due day between the years 2000 and 2100.")
        raise ValidationFailed(message, {"due_on": [message]})
    if value < today:
        message = _("The due day cannot be in the past.")
        raise ValidationFailed(message, {"due_on": [message]})
    return value


def move(found: DefectReport, action: Action | str, actor: Any, *, reason: str | None = None,
         assignee: str | None = None, due_on: date | None = None,
         photo: FileStorage | None = None, note: str | None = None,
         now: datetime | None = None) -> DefectReport:
    """Take ``action`` on a report: the one place a report's state changes.

    Checks who may (the table's ``who`` through the policy), from which state, and what the
    step needs; records the step in the audit trail in the caller's transaction.
    Raises PermissionDenied, Conflict (wrong state) or ValidationFailed (missing fields).
    """
    now = now or utcnow()
    try:
        step = Action(action)
    except ValueError:
        raise ValidationFailed(_("Choose a step to take.")) from None
    transition = TRANSITIONS[step]
    _authorize_step(actor, found, step)
    lock_row(found)  # two members clicking at once: the second sees the first's state
    if found.state_enum not in transition.sources:
        raise StepNotAllowed(str(_REFUSALS[step]))
    data: dict[str, Any] = {"from": found.state, "to": transition.target.value}
    errors: dict[str, list[str]] = {}

    def text(value: str | None, field: str, what: str, limit: int, required: bool) -> str:
        try:
            return field_text(value, field=field, what=what, max_length=limit,
                              required=required, multiline=True)
        except ValidationFailed as exc:
            errors.update(exc.errors)
            return ""

    if Need.REASON in transition.needs:
        found.reason = text(reason, "reason", _("The reason"), MAX_REASON_LENGTH, True)
        data["reason"] = found.reason
    if Need.ASSIGNEE in transition.needs:
        name = text(assignee, "assignee", _("Who fixes it"), MAX_ASSIGNEE_LENGTH, True)
        if "\n" in name:
            errors["assignee"] = [_("Write the name on one line.")]
        try:
            day = _due_on(due_on, local_day(now))
        except ValidationFailed as exc:
            errors.update(exc.errors)
        if not errors:
            found.assignee, found.due_on = name, day
            data.update(assignee=name, due_on=day.isoformat())
    fix_note = ""
    if Need.NOTE in transition.needs:
        fix_note = text(note, "note", _("The note"), MAX_TEXT_LENGTH, True)
    checked = None
    if Need.PHOTO in transition.needs:
        if photo is None or not photo.filename:
            errors["photo"] = [_("Add a photo of the fixed defect as evidence.")]
        elif not errors:
            checked = _checked_photos([photo], "photo", 1)[0]
    if errors:
        raise ValidationFailed(next(iter(errors.values()))[0], errors)
    if checked is not None:
        attachment: Attachment = uploads.save(actor, checked, consultation=found.consultation)
        found.fix_photo = attachment
        found.fix_note = fix_note
        found.fixed_at = now
        db.session.flush()
        data.update(photo=attachment.id, note=fix_note)
    if step is Action.REOPEN:
        # Back to the committee: the old assignment is history, a new one gets a new date.
        found.fixed_at = None
        found.due_on = None
    found.state = transition.target.value
    found.closed_at = now if transition.target in (State.REJECTED, State.CONFIRMED) else None
    found.updated_at = now
    db.session.flush()
    audit.record(actor, AUDIT_ACTIONS[step], found, data)
    _tell_household(found, actor, now)
    return found


# --- reading ----------------------------------------------------------------------------------


def local_day(now: datetime) -> date:
    """The day ``now`` falls on in Beijing: due days are days there."""
    return now.astimezone(LOCAL).date()


def is_overdue(found: DefectReport, now: datetime | None = None) -> bool:
    """Assigned, with a due day that passed without a fix."""
    return (found.state == State.ASSIGNED.value and found.due_on is not None
            and found.due_on < local_day(now or utcnow()))


def overdue_clause(today: date) -> ColumnElement[bool]:
    """``is_overdue`` in SQL, for ``today`` (Beijing)."""
    return and_(DefectReport.state == State.ASSIGNED.value, DefectReport.due_on < today)


def days_to_fix(found: DefectReport) -> int | None:
    """Whole days from the report to its fix (None while not fixed)."""
    if found.fixed_at is None:
        return None
    return max(0, (found.fixed_at - found.created_at).days)


def staff_reports(scope: frozenset[int] | None, state: str | None = None,
                  now: datetime | None = None) -> list[DefectReport]:
    """Reports of the compounds in ``scope`` (None: all), overdue ones first, then new ones,
    then the rest, newest first; ``state`` filters ("overdue" is a filter too)."""
    today = local_day(now or utcnow())
    overdue = overdue_clause(today)
    query = (select(DefectReport).join(Consultation,
                                       Consultation.id == DefectReport.consultation_id)
             .options(joinedload(DefectReport.building), joinedload(DefectReport.item),
                      joinedload(DefectReport.consultation).joinedload(Consultation.compound)))
    if scope is not None:
        query = query.where(Consultation.compound_id.in_(scope))
    if state == "overdue":
        query = query.where(overdue)
    elif state in {s.value for s in State}:
        query = query.where(DefectReport.state == state)
    rank = case((overdue, 0), (DefectReport.state == State.OPEN.value, 1), else_=2)
    return list(db.session.scalars(query.order_by(rank, DefectReport.created_at.desc(),
                                                  DefectReport.id.desc())).unique())


def reports_of(consultation: Consultation,
               household: Household | None = None) -> Select[DefectReport]:
    """The reports on a consultation, newest first: a household's own when ``household`` is
    given (what it sees), else all of them (what the compound's staff see)."""
    query = select(DefectReport).where(DefectReport.consultation_id == consultation.id)
    if household is not None:
        query = query.where(DefectReport.household_id == household.id)
    return query.order_by(DefectReport.id.desc())


def household_reports(consultation: Consultation, household: Household) -> list[DefectReport]:
    """What a household reported on a consultation, newest first."""
    return list(db.session.scalars(reports_of(consultation, household)))


@dataclass(frozen=True)
class PublicRow:
    """A report as the public list shows it: where (building only), what, and when."""

    number: int
    consultation: str
    building: str
    item: str
    state: State
    reported_at: datetime
    fixed_at: datetime | None
    days_to_fix: int | None
    overdue: bool


def public_rows(compound_id: int, now: datetime | None = None) -> list[PublicRow]:
    """Every report of a compound's consultations, for everyone: the building, the item and
    the dates — never the text (it may name people or rooms), the household or the reporter."""
    now = now or utcnow()
    found = db.session.scalars(
        select(DefectReport).join(Consultation, Consultation.id == DefectReport.consultation_id)
        .options(joinedload(DefectReport.building), joinedload(DefectReport.item),
                 joinedload(DefectReport.consultation))
        .where(Consultation.compound_id == compound_id,
               Consultation.stage != Stage.DRAFT.value)
        .order_by(DefectReport.created_at.desc(), DefectReport.id.desc()))
    return [PublicRow(r.id, r.consultation.title, r.building.name,
                      f"{r.item.number}. {r.item.title}", r.state_enum, r.created_at,
                      r.fixed_at, days_to_fix(r), is_overdue(r, now)) for r in found]


@dataclass(frozen=True)
class Step:
    """One step of a report's history, from its audit event."""

    at: datetime
    action: str
    role: str | None
    data: dict[str, Any]


def history(found: DefectReport) -> list[Step]:
    """The report's steps, oldest first, read from the audit trail (the record of each)."""
    import json

    from consult.accounts.models import User

    rows = db.session.execute(
        select(AuditEvent, User.role).outerjoin(User, User.id == AuditEvent.actor_id)
        .where(AuditEvent.object_type == DefectReport.__tablename__,
               AuditEvent.object_id == str(found.id))
        .order_by(AuditEvent.seq))
    steps = []
    for event, role in rows:
        data = json.loads(event.payload or "{}")
        if data.get("due_on"):
            data["due_on"] = date.fromisoformat(data["due_on"])
        steps.append(Step(event.created_at, event.action, role, data))
    return steps


@dataclass
class Counts:
    """A compound's reports: still open (new, accepted or assigned), overdue, and fixed."""

    open: int = 0
    overdue: int = 0
    fixed: int = 0


def counts_by_compound(compound_ids: Any, now: datetime | None = None) -> dict[int, Counts]:
    """Counts per compound id, for the compounds ``compound_ids`` (ids or a subquery);
    one statement."""
    today = local_day(now or utcnow())
    rows: Any = db.session.execute(
        select(Consultation.compound_id,
               func.sum(case((DefectReport.state.in_([s.value for s in OPEN_STATES]), 1),
                             else_=0)),
               func.sum(case((overdue_clause(today), 1), else_=0)),
               func.sum(case((DefectReport.state.in_([s.value for s in DONE_STATES]), 1),
                             else_=0)))
        .join(Consultation, Consultation.id == DefectReport.consultation_id)
        .where(Consultation.compound_id.in_(compound_ids))
        .group_by(Consultation.compound_id))
    return {cid: Counts(int(o or 0), int(d or 0), int(f or 0)) for cid, o, d, f in rows}


def waiting_by_consultation(scope: frozenset[int] | None, now: datetime | None = None
                            ) -> list[tuple[int, int, int]]:
    """(consultation id, new reports, overdue reports) for the consultations in ``scope`` that
    have either: the committee's to-do."""
    today = local_day(now or utcnow())
    where = [or_(DefectReport.state == State.OPEN.value, overdue_clause(today))]
    if scope is not None:
        where.append(Consultation.compound_id.in_(scope))
    rows: Any = db.session.execute(
        select(DefectReport.consultation_id,
               func.sum(case((DefectReport.state == State.OPEN.value, 1), else_=0)),
               func.sum(case((overdue_clause(today), 1), else_=0)))
        .join(Consultation, Consultation.id == DefectReport.consultation_id)
        .where(*where).group_by(DefectReport.consultation_id))
    return [(cid, int(new or 0), int(late or 0)) for cid, new, late in rows]
