"""Reading the audit trail for the audit pages."""

from __future__ import annotations

from flask_babel import gettext as _
from sqlalchemy import Select, select

from consult.audit.models import AuditEvent
from consult.core.errors import NotFound
from consult.extensions import db


def event_page_query(scope: frozenset[int] | None, *, object_type: str = "",
                     object_id: str = "", action: str = "", actor: str = ""
                     ) -> Select[tuple[AuditEvent]]:
    """Events newest first, limited to ``scope`` compounds (None = all), filtered."""
    stmt = select(AuditEvent).order_by(AuditEvent.seq.desc())
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
