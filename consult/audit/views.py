"""The audit trail, for supervisors, committee members (in scope) and administrators."""

from __future__ import annotations

import json

from flask import Blueprint, render_template, request
from flask_login import current_user

from consult.audit.actions import known_actions, known_objects
from consult.audit.query import EVENT_SORTS, event_page_query, get_event
from consult.core import sorting
from consult.core.forms import page_number, page_size
from consult.core.pagination import window
from consult.core.policy import authorize, compound_scope, require

bp = Blueprint("audit", __name__, url_prefix="/audit")


@bp.get("/")
@require("audit.view")
def index() -> str:
    filters = {
        "object_type": request.args.get("object_type", "").strip()[:40],
        "object_id": request.args.get("object_id", "").strip()[:64],
        "action": request.args.get("action", "").strip()[:64],
        "actor": request.args.get("actor", "").strip()[:100],
    }
    sort = sorting.parse(request.args.get("sort"), list(EVENT_SORTS), "-seq")
    stmt = event_page_query(compound_scope(current_user, "audit.view"), **filters, sort=sort)
    page = window(stmt, page_number(), page_size())
    return render_template("audit/index.html", page=page, filters=filters,
                           actions=known_actions(), objects=known_objects(), sort=sort)


@bp.get("/<int:seq>")
@require("audit.view")
def event(seq: int) -> str:
    event = get_event(seq)
    authorize(current_user, "audit.view", event)
    payload = json.dumps(json.loads(event.payload), ensure_ascii=False, indent=2, sort_keys=True)
    return render_template("audit/event.html", event=event, payload=payload)
