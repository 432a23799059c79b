"""The audit trail, for supervisors, committee members (in scope) and administrators; and the
audit export of a counted consultation, public for everyone."""

from __future__ import annotations

import json

from flask import Blueprint, Response, render_template, request
from flask_login import current_user

from consult.audit.actions import known_actions, known_kinds, known_objects
from consult.audit.presenting import present
from consult.audit.query import EVENT_SORTS, event_page_query, get_event
from consult.core import sorting
from consult.core.forms import id_arg, page_number, page_size, text_arg
from consult.core.models import MAX_ID
from consult.core.pagination import window
from consult.core.policy import compound_scope, load, require
from consult.process import audit_export, loading
from consult.registry.auditing import household_in_scope, households_by_room

bp = Blueprint("audit", __name__, url_prefix="/audit")


@bp.get("/")
@require("audit.view")
def index() -> str:
    scope = compound_scope(current_user, "audit.view")
    filters = {
        "object_type": text_arg("object_type", 40),
        "object_id": text_arg("object_id", 64),
        "action": text_arg("action", 64),
        "actor": text_arg("actor", 100),
        "kind": text_arg("kind", 40),
    }
    if filters["kind"] not in known_kinds():
        filters["kind"] = ""
    # A household by its id (a link on an event), or by its room (the search field): the
    # events of every household found, several offered to choose one from.
    room = text_arg("room", 60)
    household = None if room else id_arg("household")
    matches = households_by_room(scope, room) if room else []
    if len(matches) == 1:
        household, matches = matches[0][0], []
    household_name = household_in_scope(scope, household) if household is not None else None
    sort = sorting.parse(request.args.get("sort"), list(EVENT_SORTS), "-seq")
    found = ([household] if household is not None
             else [one for one, _name in matches] if room else None)
    # A chain by its id: 0 is the global chain, any other a consultation's.
    chain = request.args.get("chain", type=int)
    if chain is not None and not 0 <= chain <= MAX_ID:
        chain = None
    stmt = event_page_query(scope, **filters, households=found, chain=chain, sort=sort)
    page = window(stmt, page_number(), page_size())
    return render_template("audit/index.html", page=page, events=present(page.items),
                           filters=filters, room=room, household=household,
                           household_name=household_name, matches=matches,
                           actions=known_actions(), kinds=known_kinds(),
                           objects=known_objects(), sort=sort, chain=chain)


@bp.get("/<int(max=9223372036854775807):seq>")  # a BIGINT column, unlike the ids
@require("audit.view")
def event(seq: int) -> str:
    event = load(get_event, seq)
    payload = json.dumps(json.loads(event.payload), ensure_ascii=False, indent=2, sort_keys=True)
    return render_template("audit/event.html", event=event, view=present([event])[0],
                           payload=payload)


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
