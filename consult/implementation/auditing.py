"""How the audit trail reads the events of the works' implementation."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l

from consult.audit.presenting import Field, describe_fields
from consult.implementation.models import RATING_LABELS

describe_fields({
    "percent": Field(_l("Progress (per cent)")),
    "spend_fen": Field(_l("Spent")),
    "final_cost_fen": Field(_l("Final cost")),
    "is_final": Field(_l("Final report")),
    "note_length": Field(_l("Length (characters)")),
    "length": Field(_l("Length (characters)")),
    "photos": Field(_l("Photos"), hidden=True),
    "photo": Field(_l("Photo"), hidden=True),
    "rating": Field(_l("Rating"), values=RATING_LABELS),
    "comment": Field(_l("With a comment")),
})
