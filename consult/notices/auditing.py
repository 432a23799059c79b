"""How the audit trail reads the events of notices and objections."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l

from consult.audit.presenting import Field, describe_fields
from consult.notices.models import NOTICE_KIND_LABELS

describe_fields({
    "kind": Field(_l("Kind of notice"), values=NOTICE_KIND_LABELS),
    "notice_id": Field(_l("Notice")),
    "chain_id": Field(_l("Audit chain")),
    "chain_seq": Field(_l("Audit trail up to event")),
    "period_ends_at": Field(_l("Publicity ends")),
    "verify_code": Field(_l("Verification code")),
    "supersedes": Field(_l("Replaces notice")),
}, actions=["notice.published", "notice.objection_filed", "notice.objection_answered"])
