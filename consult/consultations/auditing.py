"""How the audit trail reads the events of consultations, opinions, comments and meetings:
consultations by their title, items by number and title, and their fields."""

from __future__ import annotations

from collections.abc import Collection

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from consult.audit.presenting import Field, describe_fields, name_objects
from consult.consultations.meetings import ATTENDEE_LABELS
from consult.consultations.models import (
    CATEGORY_LABELS,
    CHANNEL_LABELS,
    SECRECY_LABELS,
    Consultation,
    Item,
)
from consult.consultations.states import STAGE_LABELS
from consult.extensions import db


def _ids(ids: Collection[str]) -> list[int]:
    return [int(one) for one in ids if one.isdigit()]


def consultation_names(ids: Collection[str]) -> dict[str, str]:
    """Consultation id → its title."""
    rows = db.session.execute(select(Consultation.id, Consultation.title)
                              .where(Consultation.id.in_(_ids(ids))))
    return {str(one): title for one, title in rows}


def item_names(ids: Collection[str]) -> dict[str, str]:
    """Item id → "Item 2: title"."""
    rows = db.session.execute(select(Item.id, Item.number, Item.title)
                              .where(Item.id.in_(_ids(ids))))
    return {str(one): _("Item %(number)s: %(title)s", number=number, title=title)
            for one, number, title in rows}


name_objects("consultation", consultation_names)
name_objects("item", item_names)
describe_fields({
    "consultation_id": Field(_l("Consultation"), refers_to="consultation"),
    "item_id": Field(_l("Item"), refers_to="item"),
    "title": Field(_l("Title")),
    "summary": Field(_l("Summary")),
    "description": Field(_l("Description")),
    "number": Field(_l("Item number")),
    "item": Field(_l("Item number")),
    "estimated_cost_fen": Field(_l("Estimated cost")),
    "round": Field(_l("Round")),
    "reason": Field(_l("Reason")),
    "secrecy": Field(_l("Ballot secrecy"), values=SECRECY_LABELS),
    "rule_code": Field(_l("Decision rule")),
    "rule_json": Field(_l("Decision rule"), hidden=True),
    "locale": Field(_l("Language")),
    "publicity_days": Field(_l("Days of publicity")),
    "proxy_cap": Field(_l("Households one proxy may represent")),
    "double_entry": Field(_l("Paper ballots entered twice")),
    "proxy_document_required": Field(_l("Written authorisation required for proxies")),
    "solicitation_deadline": Field(_l("Deadline for opinions")),
    "vote_deadline": Field(_l("Vote deadline")),
    "by_deadline": Field(_l("Taken by the deadline")),
    "category": Field(_l("Category"), values=CATEGORY_LABELS),
    "text_length": Field(_l("Length (characters)")),
    "photo_id": Field(_l("Photo"), hidden=True),
    "into": Field(_l("Merged into opinion")),
    "supports_moved": Field(_l("Supports moved")),
    "supports_already_counted": Field(_l("Supports already counted")),
    "author_household_counted": Field(_l("Author's household counted as a supporter")),
    "added": Field(_l("Added")),
    "removed": Field(_l("Removed")),
    "count": Field(_l("Count")),
    "as": Field(_l("Posted as")),
    "reply_to": Field(_l("In reply to comment")),
    "held_at": Field(_l("Held at")),
    "place": Field(_l("Place")),
    "attendees": Field(_l("Attendees"), values=ATTENDEE_LABELS),
    "attendees_json": Field(_l("Attendees")),
    "minutes": Field(_l("Minutes")),
    "decisions": Field(_l("Decisions")),
    "attachments": Field(_l("Attachments")),
    "attachments_added": Field(_l("Attachments added")),
    "attachments_removed": Field(_l("Attachments removed")),
})
describe_fields({"channel": Field(_l("Channel"), values=CHANNEL_LABELS)},
                actions=["opinion.submitted", "opinion.recorded"])
describe_fields({"action": Field(_l("Step"), hidden=True),  # from and to say it
                 "from": Field(_l("Stage"), values=STAGE_LABELS),
                 "to": Field(_l("Stage"), values=STAGE_LABELS)},
                actions=["consultation.stage_changed"])
describe_fields({"from": Field(_l("Category"), values=CATEGORY_LABELS),
                 "to": Field(_l("Category"), values=CATEGORY_LABELS)},
                actions=["opinion.categorised"])
