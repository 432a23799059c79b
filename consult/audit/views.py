"""The audit trail, for supervisors, committee members (in scope) and administrators; and the
audit export of a counted consultation, public for everyone."""

from __future__ import annotations

import json

from flask import Blueprint, Response, render_template, request
from flask_login import current_user

from consult.audit import export as audit_export
from consult.audit.actions import known_actions, known_objects
from consult.audit.query import EVENT_SORTS, event_page_query, get_event
from consult.consultations import loading
from consult.core import sorting
from consult.core.forms import page_number, page_size, text_arg
from consult.core.pagination import window
from consult.core.policy import authorize, compound_scope, require

bp = Blueprint("audit", __name__, url_prefix="/audit")


@bp.get("/")
@require("audit.view")
def index() -> str:
    filters = {
        "object_type": text_arg("object_type", 40),
        "object_id": text_arg("object_id", 64),
        "action": text_arg("action", 64),
        "actor": text_arg("actor", 100),
    }
    sort = sorting.parse(request.args.get("sort"), list(EVENT_SORTS), "-seq")
    stmt = event_page_query(compound_scope(current_user, "audit.view"), **filters, sort=sort)
    page = window(stmt, page_number(), page_size())
    return render_template("audit/index.html", page=page, filters=filters,
                           actions=known_actions(), objects=known_objects(), sort=sort)


@bp.get("/<int(max=9223372036854775807):seq>")  # a BIGINT column, unlike the ids
@require("audit.view")
def event(seq: int) -> str:
    event = get_event(seq)
    authorize(current_user, "audit.view", event)
    payload = json.dumps(json.loads(event.payload), ensure_ascii=False, indent=2, sort_keys=True)
    return render_template("audit/event.html", event=event, payload=payload)


@bp.get("/consultations/<int:consultation_id>/export.json")
@require("consultation.view")
def export(consultation_id: int) -> Response:
    """The consultation's audit export (docs/audit-export.md), once its vote is counted."""
    consultation = loading.load(consultation_id)
    audit_export.check_downloadable(consultation)
    filename = f"consultation-{consultation.id}-audit-export.json"
    return Response(audit_export.consultation_export(consultation),
                    mimetype="application/json",
                    headers={"Content-Disposition": f'attachment; filename="{filename}"'})
