"""Recording and verifying the hash-chained audit trail.

``record`` appends an event in the caller's session, so the event commits or rolls back with the
change it describes. Appends lock the single ``audit_head`` row (``SELECT … FOR UPDATE`` on
PostgreSQL; on SQLite every writing transaction already holds the database's write lock), so
concurrent writers queue up instead of forking the chain.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from decimal import Decimal
from enum import Enum
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.orm import Session

from consult.audit import checks as chain_checks
from consult.audit.models import GENESIS_HASH, AuditEvent, AuditHead
from consult.core.database import table_of
from consult.core.models import utcnow
from consult.extensions import db

HEAD_ID = 1
SYSTEM_ACTOR = "system"
# A household acting for itself where its account must not be named (an online ballot).
HOUSEHOLD_ACTOR = "(household)"  # no username can look like this


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return format_time(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, (set, frozenset)):
        return sorted(value)
    raise TypeError(f"cannot put {type(value).__name__} into an audit payload")


def canonical_json(data: Mapping[str, Any] | None) -> str:
    """Deterministic JSON: sorted keys, no spaces, UTF-8 characters kept as they are."""
    return json.dumps(
        data or {}, sort_keys=True, ensure_ascii=False, separators=(",", ":"),
        default=_json_default,
    )


def format_time(value: datetime) -> str:
    """UTC with microseconds, the form that goes into the hash."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass(frozen=True)
class EventFields:
    """The hashed content of one event, as plain values."""

    seq: int
    created_at: str
    actor_id: int | None
    actor_label: str
    action: str
    object_type: str
    object_id: str | None
    compound_id: int | None
    payload: str
    prev_hash: str


# ``json.dumps`` with these options builds a new encoder on every call; verifying millions of
# events reuses one (the output is the same).
_HASH_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))


def event_hash(fields: EventFields) -> str:
    """SHA-256 over the canonical encoding of an event (a JSON array of its fields)."""
    encoded = _HASH_ENCODER.encode(
        [
            fields.seq, fields.created_at, fields.actor_id, fields.actor_label, fields.action,
            fields.object_type, fields.object_id, fields.compound_id, fields.payload,
            fields.prev_hash,
        ],
    )
    return hashlib.sha256(encoded.encode("utf-8")).hexdigest()


def _current(session: Session | None) -> Session:
    """``session``, else the app's current session (the caller's transaction)."""
    return session if session is not None else db.session()


def _target_ref(target: Any) -> tuple[str, str | None, int | None]:
    """(object type, object id, compound id) for a model instance or an explicit tuple."""
    if target is None:
        return ("system", None, None)
    if isinstance(target, tuple):
        object_type, object_id = target[0], target[1]
        compound_id = target[2] if len(target) > 2 else None
        return (object_type, None if object_id is None else str(object_id), compound_id)
    if getattr(target, "id", None) is None:
        db.session.flush()
    return (target.__tablename__, str(target.id), getattr(target, "scope_compound_id", None))


def record(
    actor: Any,
    action: str,
    target: Any = None,
    data: Mapping[str, Any] | None = None,
    *,
    compound_id: int | None = None,
    session: Session | None = None,
    actor_label: str | None = None,
) -> AuditEvent:
    """Append an audit event for ``action`` on ``target`` to the current transaction.

    ``actor`` is a user or None (the system, e.g. a command-line run); ``target`` a model
    instance, a ``(type, id[, compound_id])`` tuple, or None. ``compound_id`` overrides the
    compound taken from the target; ``actor_label`` names an actor that is no user (e.g.
    ``HOUSEHOLD_ACTOR``). The event is flushed; it commits with the caller's change.
    """
    session = _current(session)
    object_type, object_id, target_compound = _target_ref(target)
    # Plain statements rather than the unit of work: an append is on every ballot's path.
    head_seq, head_hash = session.execute(
        select(AuditHead.seq, AuditHead.hash).where(AuditHead.id == HEAD_ID).with_for_update()
    ).one()
    fields = EventFields(
        seq=head_seq + 1,
        created_at=format_time(utcnow()),
        actor_id=getattr(actor, "id", None),
        actor_label=actor_label or getattr(actor, "username", None) or SYSTEM_ACTOR,
        action=action,
        object_type=object_type,
        object_id=object_id,
        compound_id=compound_id if compound_id is not None else target_compound,
        payload=canonical_json(data),
        prev_hash=head_hash,
    )
    digest = event_hash(fields)
    event = session.scalars(insert(AuditEvent).values(
        seq=fields.seq,
        created_at=datetime.strptime(fields.created_at, "%Y-%m-%dT%H:%M:%S.%fZ").replace(
            tzinfo=UTC
        ),
        actor_id=fields.actor_id,
        actor_label=fields.actor_label,
        action=action,
        object_type=object_type,
        object_id=object_id,
        compound_id=fields.compound_id,
        payload=fields.payload,
        prev_hash=fields.prev_hash,
        hash=digest,
    ).returning(AuditEvent)).one()
    # An ORM update: a head already loaded in the session (chain_head) gets the new values.
    session.execute(update(AuditHead).where(AuditHead.id == HEAD_ID)
                    .values(seq=fields.seq, hash=digest))
    return event


def record_many(
    actor: Any,
    events: Iterable[tuple[str, Any, Mapping[str, Any] | None, int | None]],
    *,
    session: Session | None = None,
) -> int:
    """Append several events by ``actor`` at once, in order: ``(action, target, data,
    compound_id)`` each, as ``record`` takes them. The events are the ones ``record`` would
    append one by one, written with one multi-row statement, so a bulk write (an import of
    thousands of ballots) holds the chain head for milliseconds, not for thousands of round
    trips. Returns how many were appended.
    """
    session = _current(session)
    head_seq, head_hash = session.execute(
        select(AuditHead.seq, AuditHead.hash).where(AuditHead.id == HEAD_ID).with_for_update()
    ).one()
    actor_id = getattr(actor, "id", None)
    actor_label = getattr(actor, "username", None) or SYSTEM_ACTOR
    rows: list[dict[str, Any]] = []
    for action, target, data, compound_id in events:
        object_type, object_id, target_compound = _target_ref(target)
        created_at = utcnow()
        fields = EventFields(
            seq=head_seq + 1, created_at=format_time(created_at), actor_id=actor_id,
            actor_label=actor_label, action=action, object_type=object_type,
            object_id=object_id,
            compound_id=compound_id if compound_id is not None else target_compound,
            payload=canonical_json(data), prev_hash=head_hash)
        head_seq, head_hash = fields.seq, event_hash(fields)
        rows.append({"seq": fields.seq, "created_at": created_at, "actor_id": actor_id,
                     "actor_label": actor_label, "action": action, "object_type": object_type,
                     "object_id": object_id, "compound_id": fields.compound_id,
                     "payload": fields.payload, "prev_hash": fields.prev_hash,
                     "hash": head_hash})
    if rows:
        session.execute(insert(table_of(AuditEvent)), rows)
        session.execute(update(AuditHead).where(AuditHead.id == HEAD_ID)
                        .values(seq=head_seq, hash=head_hash))
    return len(rows)


def fields_of(event: AuditEvent) -> EventFields:
    """The hashed fields of a stored event."""
    return EventFields(
        seq=event.seq,
        created_at=format_time(event.created_at),
        actor_id=event.actor_id,
        actor_label=event.actor_label,
        action=event.action,
        object_type=event.object_type,
        object_id=event.object_id,
        compound_id=event.compound_id,
        payload=event.payload,
        prev_hash=event.prev_hash,
    )


@dataclass(frozen=True)
class ChainProblem:
    """The first place where the chain does not hold."""

    seq: int | None
    kind: str  # "hash", "link", "gap", "head"
    expected: str
    found: str


@dataclass(frozen=True)
class VerifyResult:
    checked: int
    head_seq: int
    head_hash: str
    problem: ChainProblem | None
    # What each check the domains registered (``checks``) found, by its name; empty when
    # the chain itself is broken.
    checks: Mapping[str, chain_checks.CheckOutcome] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.problem is None and not any(
            outcome.problems for outcome in self.checks.values())


def verify_chain(
    events: Iterable[tuple[EventFields, str]], head: tuple[int, str] | None
) -> VerifyResult:
    """Walk ``(fields, stored hash)`` pairs in seq order and find the first broken link.

    Pure: the same function checks the database and a public export. ``head`` is the stored
    chain head ``(seq, hash)``, compared with the last event (None to skip, e.g. for an export).
    """
    expected_seq, prev_hash, checked = 1, GENESIS_HASH, 0
    for fields, stored_hash in events:
        if fields.seq != expected_seq:
            return VerifyResult(checked, expected_seq - 1, prev_hash, ChainProblem(
                fields.seq, "gap", str(expected_seq), str(fields.seq)))
        if fields.prev_hash != prev_hash:
            return VerifyResult(checked, expected_seq - 1, prev_hash, ChainProblem(
                fields.seq, "link", prev_hash, fields.prev_hash))
        computed = event_hash(fields)
        if computed != stored_hash:
            return VerifyResult(checked, expected_seq - 1, prev_hash, ChainProblem(
                fields.seq, "hash", computed, stored_hash))
        prev_hash, expected_seq, checked = stored_hash, expected_seq + 1, checked + 1
    last_seq = expected_seq - 1
    if head is not None and (head[0], head[1]) != (last_seq, prev_hash):
        return VerifyResult(checked, last_seq, prev_hash, ChainProblem(
            None, "head", f"{last_seq}:{prev_hash}", f"{head[0]}:{head[1]}"))
    return VerifyResult(checked, last_seq, prev_hash, None)


def verify(session: Session | None = None,
           checks: Mapping[str, chain_checks.CheckFactory] | None = None, *,
           jobs: int = 1) -> VerifyResult:
    """Verify the whole stored chain against its head row, then the stored rows of the
    domains against the chain: ``checks`` by name, those registered with the current app
    by default (``consult.audit.checks``).

    One pass over the events shows each check the events it asks for; if the chain holds,
    each check then compares its rows with what it was shown. A broken chain is reported
    alone: its events cannot be trusted. The pass reads plain rows and hashes them as
    ``event_hash`` does (``consult.audit.streaming``), in up to ``jobs`` processes for a long
    chain; the result is the same for any ``jobs``. Other processes read only what is
    committed: with ``jobs`` > 1 the session must not have changed the chain itself.
    """
    from consult.audit import streaming

    session = _current(session)
    running = {name: factory() for name, factory in (
        chain_checks.registered() if checks is None else checks).items()}
    watching: dict[str, list[chain_checks.ChainCheck]] = {}
    for check in running.values():
        for action in check.actions:
            watching.setdefault(action, []).append(check)

    def seen(fields: EventFields) -> None:
        for check in watching[fields.action]:
            check.event(fields)

    head = session.get(AuditHead, HEAD_ID)
    head_pair = (head.seq, head.hash) if head is not None else (0, GENESIS_HASH)
    walked = streaming.verify_stored(session.connection(), jobs=jobs,
                                     actions=frozenset(watching), seen=seen)
    result = chain_result(walked, head_pair)
    if not result.ok:
        return result
    return replace(result, checks={name: check.finish(session)
                                   for name, check in running.items()})


def chain_result(walked: Any, head: tuple[int, str] | None) -> VerifyResult:
    """The ``VerifyResult`` of a walk over the chain (a ``streaming.Stretch``), with the head
    compared as ``verify_chain`` compares it."""
    if walked.problem is not None:
        problem = walked.problem
        return VerifyResult(walked.checked, walked.last_seq, walked.last_hash, ChainProblem(
            problem.seq, problem.kind, problem.expected, problem.found))
    last_seq, last_hash = walked.last_seq, walked.last_hash
    if head is not None and (head[0], head[1]) != (last_seq, last_hash):
        return VerifyResult(walked.checked, last_seq, last_hash, ChainProblem(
            None, "head", f"{last_seq}:{last_hash}", f"{head[0]}:{head[1]}"))
    return VerifyResult(walked.checked, last_seq, last_hash, None)


def chain_head(session: Session | None = None) -> tuple[int, str]:
    """The current (seq, hash) of the chain, e.g. to print on a notice."""
    head = _current(session).get(AuditHead, HEAD_ID)
    return (head.seq, head.hash) if head is not None else (0, GENESIS_HASH)
