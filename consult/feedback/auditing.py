"""How the audit trail reads the events of defect reports."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l

from consult.audit.presenting import Field, describe_fields
from consult.feedback.models import STATE_LABELS

_STATES = {state.value: label for state, label in STATE_LABELS.items()}

describe_fields({
    "from": Field(_l("State before"), values=_STATES),
    "to": Field(_l("State after"), values=_STATES),
    "reason": Field(_l("Reason")),
    "assignee": Field(_l("Who fixes it")),
    "due_on": Field(_l("Due day")),
    "note": Field(_l("Note")),
    "photo": Field(_l("Photo"), hidden=True),
    "photos": Field(_l("Photos"), hidden=True),
    "item": Field(_l("Item")),
    "building": Field(_l("Building")),
    "by": Field(_l("Reported by")),
    "household_id": Field(_l("Household"), hidden=True),
    "consultation_id": Field(_l("Consultation"), hidden=True),
    "length": Field(_l("Length (characters)")),
}, actions=["feedback.reported", "feedback.accepted", "feedback.rejected", "feedback.assigned",
            "feedback.fixed", "feedback.confirmed", "feedback.reopened"])
describe_fields({"months": Field(_l("Warranty (months)"))}, actions=["feedback.warranty_set"])
