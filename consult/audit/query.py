"""Reading the audit trail for the audit pages."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from flask_babel import gettext as _
from sqlalchemy import ColumnElement, Select, and_, false, or_, select

from consult.audit.actions import actions_of_kind
from consult.audit.models import AuditEvent
from consult.audit.presenting import keys_referring_to
from consult.core import sorting
from consult.core.errors import NotFound
from consult.core.sorting import Sort
from consult.extensions import db

# The trail reads newest first, or from the beginning (``?sort=seq``).
EVENT_SORTS: dict[str, tuple[Any, ...]] = {"seq": (AuditEvent.seq,)}


def event_page_query(scope: frozenset[int] | None, *, object_type: str = "",
                     object_id: str = "", action: str = "", actor: str = "",
                     kind: str = "", households: Sequence[int] | None = None,
                     chain: int | None = None, sort: Sort | None = None) -> Select[AuditEvent]:
    """Events newest first (or ``sort``), limited to ``scope`` compounds (None = all),
    filtered: ``kind`` is a kind of change (``actions.describe``), ``households`` the
    ids of households of which any is concerned (``concerning``; none found: no event),
    ``chain`` the audit chain (0 the global one; within a chain, ``seq`` order is chain
    order)."""
    stmt = sorting.order(select(AuditEvent), sort or Sort("seq", descending=True), EVENT_SORTS)
    if scope is not None:
        stmt = stmt.where(AuditEvent.compound_id.in_(scope))
    if object_type:
        stmt = stmt.where(AuditEvent.object_type == object_type)
    if object_id:
        stmt = stmt.where(AuditEvent.object_id == object_id)
    if action:
        stmt = stmt.where(AuditEvent.action == action)
    if chain is not None:
        stmt = stmt.where(AuditEvent.chain_id == chain)
    if actor:
        stmt = stmt.where(AuditEvent.actor_label == actor)
    if kind:
        stmt = stmt.where(AuditEvent.action.in_(actions_of_kind(kind)))
    if households is not None:
        stmt = stmt.where(or_(false(), *(concerning("household", one) for one in households)))
    return stmt


def concerning(object_type: str, object_id: int) -> ColumnElement[bool]:
    """Events about an object: on it, or naming it in their payload under a key the domains
    registered as referring to its type (``presenting.describe_fields``).

    Payloads are canonical JSON (sorted keys, no spaces), so ``"key":id`` followed by a comma
    or the closing brace is exactly that key with that value. A confidential ballot's events
    carry no household, so they are not found by it, as intended."""
    clauses: list[ColumnElement[bool]] = [
        and_(AuditEvent.object_type == object_type, AuditEvent.object_id == str(object_id))]
    for key in keys_referring_to(object_type):
        for end in (",", "}"):
            clauses.append(AuditEvent.payload.contains(f'"{key}":{object_id}{end}',
                                                      autoescape=True))
    return or_(*clauses)


def get_event(seq: int) -> AuditEvent:
    event = db.session.get(AuditEvent, seq)
    if event is None:
        raise NotFound(_("No such audit event."))
    return event
