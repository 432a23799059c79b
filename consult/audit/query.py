"""Reading the audit trail for the audit pages."""

from __future__ import annotations

from typing import Any

from flask_babel import gettext as _
from sqlalchemy import Select, select

from consult.audit.models import AuditEvent
from consult.core import sorting
from consult.core.errors import NotFound
from consult.core.sorting import Sort
from consult.extensions import db

# The trail reads newest first, or from the beginning (``?sort=seq``).
EVENT_SORTS: dict[str, tuple[Any, ...]] = {"seq": (AuditEvent.seq,)}


def event_page_query(scope: frozenset[int] | None, *, object_type: str = "",
                     object_id: str = "", action: str = "", actor: str = "",
                     sort: Sort | None = None) -> Select[tuple[AuditEvent]]:
    """Events newest first (or ``sort``), limited to ``scope`` compounds (None = all),
    filtered."""
    stmt = sorting.order(select(AuditEvent), sort or Sort("seq", descending=True), EVENT_SORTS)
    if scope is not None:
        stmt = stmt.where(AuditEvent.compound_id.in_(scope))
    if object_type:
        stmt = stmt.where(AuditEvent.object_type == object_type)
    if object_id:
        stmt = stmt.where(AuditEvent.object_id == object_id)
    if action:
        stmt = stmt.where(AuditEvent.action == action)
    if actor:
        stmt = stmt.where(AuditEvent.actor_label == actor)
    return stmt


def get_event(seq: int) -> AuditEvent:
    event = db.session.get(AuditEvent, seq)
    if event is None:
        raise NotFound(_("No such audit event."))
    return event
