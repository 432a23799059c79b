"""How the audit trail reads the events of scoring rounds."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l

from consult.audit.presenting import Field, describe_fields

describe_fields({
    "scorer": Field(_l("Scorer")),
    "target_compound_id": Field(_l("Compound scored")),
    "points": Field(_l("Points by criterion")),
    "before": Field(_l("Points before")),
    "missing": Field(_l("Missing scores")),
    "ranking": Field(_l("Ranking")),
    "outliers": Field(_l("Flagged sheets")),
}, actions=["scoring.round_opened", "scoring.round_updated", "scoring.scored",
            "scoring.round_closed"])
