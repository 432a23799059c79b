"""Meetings (议事会, 联席会议, 恳谈会): when and where, who came, what was said and decided, and
the papers and photos of it.

Every function flushes (never commits), checks the stage and records its audit event. Times
are entered in Asia/Shanghai and stored in UTC.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import Select, select
from werkzeug.datastructures import FileStorage

from consult.audit import service as audit
from consult.audit.actions import describe, describe_objects
from consult.consultations.models import Consultation, Meeting
from consult.consultations.states import FINAL_STAGES
from consult.core.errors import Conflict, NotFound, ValidationFailed
from consult.core.times import local_to_utc, out_of_range_message
from consult.extensions import db
from consult.uploads import service as uploads

describe({
    "meeting.recorded": _l("Meeting recorded"),
    "meeting.updated": _l("Meeting record changed"),
}, kind="opinions")
describe_objects({"meeting": _l("Meeting")})

# Who sits at a joint meeting (联席会议), in the order minutes list them.
ATTENDEE_ROLES = ("community", "committee", "representatives", "contractors", "others")
ATTENDEE_LABELS = {
    "community": _l("Community (社区)"),
    "committee": _l("Residents' self-management committee or owners' committee (自管会/业委会)"),
    "representatives": _l("Resident representatives"),
    "contractors": _l("Contractors"),
    "others": _l("Others"),
}
MAX_ATTENDEES = 1000
MAX_PLACE = 200
MAX_MARKDOWN = 20000


@dataclass(frozen=True)
class MeetingData:
    held_at: datetime  # aware UTC
    place: str
    attendees: dict[str, str]
    minutes: str
    decisions: str

    def attendees_json(self) -> str:
        return json.dumps(self.attendees, ensure_ascii=False, sort_keys=True,
                          separators=(",", ":"))


def _clean(value: str | None, what: str, limit: int, errors: dict[str, list[str]], field: str,
           *, required: bool = False) -> str:
    value = (value or "").replace("\r\n", "\n").replace("\r", "\n").strip()
    if required and not value:
        errors[field] = [_("%(what)s is required.", what=what)]
    elif len(value) > limit:
        errors[field] = [_("%(what)s is longer than %(max)s characters.", what=what,
                           max=limit)]
    return value


def meeting_data(*, held_at_local: datetime | None, place: str | None,
                 attendees: Mapping[str, str | None], minutes: str | None,
                 decisions: str | None) -> MeetingData:
    """Validate a meeting record; ``held_at_local`` is a wall-clock time in Asia/Shanghai.

    Raises ValidationFailed with messages per field (attendee fields are named after their
    role)."""
    errors: dict[str, list[str]] = {}
    try:
        held_at = local_to_utc(held_at_local)
    except ValueError:
        held_at, errors["held_at"] = None, [out_of_range_message()]
    else:
        if held_at is None:
            errors["held_at"] = [_("Give the date and time of the meeting.")]
    values = {
        "place": _clean(place, _("The place"), MAX_PLACE, errors, "place", required=True),
        "minutes": _clean(minutes, _("The minutes"), MAX_MARKDOWN, errors, "minutes"),
        "decisions": _clean(decisions, _("The decisions"), MAX_MARKDOWN, errors, "decisions"),
    }
    people = {}
    for role in ATTENDEE_ROLES:
        text = _clean(attendees.get(role), str(ATTENDEE_LABELS[role]), MAX_ATTENDEES, errors,
                      role)
        if text:
            people[role] = text
    if errors or held_at is None:
        raise ValidationFailed(_("Please correct the marked fields."), errors)
    return MeetingData(held_at=held_at, attendees=people, **values)


def attendees_of(meeting: Meeting) -> list[tuple[str, str]]:
    """(role label, names) pairs in the usual order, only the roles that were present."""
    try:
        data = json.loads(meeting.attendees_json or "{}")
    except ValueError:
        data = {}
    return [(str(ATTENDEE_LABELS[role]), data[role]) for role in ATTENDEE_ROLES
            if data.get(role)]


def attendee_values(meeting: Meeting) -> dict[str, str]:
    try:
        data = json.loads(meeting.attendees_json or "{}")
    except ValueError:
        data = {}
    return {role: data.get(role, "") for role in ATTENDEE_ROLES}


def check_recordable(consultation: Consultation) -> None:
    """Raise Conflict when the consultation is closed or withdrawn."""
    if consultation.stage_enum in FINAL_STAGES:
        raise Conflict(_("A closed or withdrawn consultation can no longer change."))


def record(actor: Any, consultation: Consultation, data: MeetingData,
           files: Sequence[FileStorage] | None = None) -> Meeting:
    """Record a meeting with its attachments (photos or PDFs, public)."""
    check_recordable(consultation)
    attachments = uploads.store_all(actor, uploads.chosen(files), consultation=consultation)
    meeting = Meeting(consultation_id=consultation.id, held_at=data.held_at, place=data.place,
                      attendees_json=data.attendees_json(), minutes=data.minutes,
                      decisions=data.decisions, author_id=getattr(actor, "id", None))
    meeting.attachments.extend(attachments)
    db.session.add(meeting)
    db.session.flush()
    audit.record(actor, "meeting.recorded", meeting, {
        "consultation_id": consultation.id, "held_at": data.held_at, "place": data.place,
        "attendees": sorted(data.attendees), "attachments": [a.id for a in attachments]})
    return meeting


def update(actor: Any, meeting: Meeting, data: MeetingData,
           files: Sequence[FileStorage] | None = None,
           remove_ids: Sequence[int] = ()) -> Meeting:
    """Correct a meeting record, add attachments or take some off."""
    check_recordable(meeting.consultation)
    chosen = uploads.chosen(files)
    current = {a.id: a for a in meeting.attachments}
    unknown = set(remove_ids) - set(current)
    if unknown:
        message = _("Choose among this meeting's attachments.")
        raise ValidationFailed(message, {"remove": [message]})
    changes: dict[str, Any] = {}
    for name, new in (("held_at", data.held_at), ("place", data.place),
                      ("attendees_json", data.attendees_json()), ("minutes", data.minutes),
                      ("decisions", data.decisions)):
        old = getattr(meeting, name)
        if old != new:
            changes[name] = ("changed" if name in ("minutes", "decisions", "attendees_json")
                             else {"from": old, "to": new})
            setattr(meeting, name, new)
    added = uploads.store_all(actor, chosen, consultation=meeting.consultation)
    for attachment_id in remove_ids:
        meeting.attachments.remove(current[attachment_id])
    meeting.attachments.extend(added)
    if not changes and not added and not remove_ids:
        return meeting
    db.session.flush()
    audit.record(actor, "meeting.updated", meeting, {
        "changes": changes, "attachments_added": [a.id for a in added],
        "attachments_removed": sorted(set(remove_ids))})
    return meeting


def listing(consultation: Consultation) -> Select[Any]:
    """The consultation's meetings, latest first."""
    return (select(Meeting).where(Meeting.consultation_id == consultation.id)
            .order_by(Meeting.held_at.desc(), Meeting.id.desc()))


def get_meeting_or_404(consultation: Consultation, meeting_id: int) -> Meeting:
    meeting = db.session.get(Meeting, meeting_id)
    if meeting is None or meeting.consultation_id != consultation.id:
        raise NotFound(_("No such meeting."))
    return meeting
