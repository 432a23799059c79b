"""Recording and verifying the hash-chained audit trail: one chain per consultation, anchored
in the global chain.

``record`` appends an event in the caller's session, so the event commits or rolls back with the
change it describes. Each event belongs to one chain: chain 0 is the global chain (accounts,
registry, sign-ins, …), every other chain is one consultation's (``chain_id`` = its id). An
append locks only its chain's ``audit_head`` row (``SELECT … FOR UPDATE`` on PostgreSQL; on
SQLite every writing transaction already holds the database's write lock), so concurrent
writers to one chain queue up instead of forking it, and ballots of different consultations
never wait for each other.

The global chain anchors the others: an ``audit.anchor`` event records a consultation chain's
head (at every stage change, and by ``flask audit anchor`` for every chain that moved), so a
consultation chain rewritten afterwards, head row included, no longer matches its anchors.

Lock order (PostgreSQL): a transaction that appends to several chains locks their heads in
ascending ``chain_id`` order, chain 0 first; ``hold_heads`` takes them so before the first
append (``anchor`` appends to chain 0 and only reads the anchored chain's head, without lock).
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

from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from consult.audit import checks as chain_checks
from consult.audit.models import GENESIS_HASH, GLOBAL_CHAIN, AuditEvent, AuditHead
from consult.core.database import table_of
from consult.core.models import utcnow
from consult.extensions import db

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
    """The hashed content of one event, as plain values, and its event number ``seq``
    (global, given by the database, not hashed; None before the event is stored)."""

    chain_seq: int
    created_at: str
    actor_id: int | None
    actor_label: str
    action: str
    object_type: str
    object_id: str | None
    compound_id: int | None
    payload: str
    prev_hash: str
    chain_id: int = GLOBAL_CHAIN
    seq: int | None = None


# ``json.dumps`` with these options builds a new encoder on every call; verifying millions of
# events reuses one (the output is the same).
_HASH_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))


def event_hash(fields: EventFields) -> str:
    """SHA-256 over the canonical encoding of an event (a JSON array of its fields).

    Chain 0 hashes ``[chain_seq, created_at, …, prev_hash]`` (the encoding of the single chain
    before there were several, so its events keep their hashes); every other chain puts its
    ``chain_id`` in front, so that an event moved to another chain no longer matches.
    """
    values: list[Any] = [
        fields.chain_seq, fields.created_at, fields.actor_id, fields.actor_label, fields.action,
        fields.object_type, fields.object_id, fields.compound_id, fields.payload,
        fields.prev_hash,
    ]
    if fields.chain_id != GLOBAL_CHAIN:
        values.insert(0, fields.chain_id)
    return hashlib.sha256(_HASH_ENCODER.encode(values).encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Appended:
    """What ``record`` appended: the event's number, its place and hash, what it concerns."""

    seq: int
    chain_id: int
    chain_seq: int
    hash: str
    action: str
    object_type: str
    object_id: str | None
    compound_id: int | None
    payload: str


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


def chain_of(target: Any) -> int:
    """The chain an event on ``target`` goes to when the caller names none: a consultation's
    own chain for the consultation or anything carrying its ``consultation_id``, else the
    global chain (tuples, accounts, registry, …)."""
    if target is None or isinstance(target, tuple):
        return GLOBAL_CHAIN
    if getattr(target, "__tablename__", None) == "consultation":
        if getattr(target, "id", None) is None:
            db.session.flush()
        return int(target.id)
    consultation_id = getattr(target, "consultation_id", None)
    return int(consultation_id) if consultation_id is not None else GLOBAL_CHAIN


# The append's statements, built once and run on the session's connection: they are what a
# ballot does while it holds its chain's head (and, on SQLite, the database's write lock), and
# building a statement and passing it through the ORM's execution layers cost several times
# what running it does (bench/results/profile-vote.md). Plain rows, no objects: nothing in the
# session holds a head or an event that these statements would leave stale (``chain_head``
# reads the row).
_HEADS, _EVENTS = table_of(AuditHead), table_of(AuditEvent)
_LOCK_HEAD = (select(_HEADS.c.seq, _HEADS.c.hash).where(_HEADS.c.chain_id == bindparam("chain"))
              .with_for_update())
_NEW_HEAD = {dialect: insert_of(_HEADS).values(
    chain_id=bindparam("chain"), seq=0, hash=GENESIS_HASH).on_conflict_do_nothing()
    for dialect, insert_of in (("postgresql", pg_insert), ("sqlite", sqlite_insert))}
_INSERT_EVENT = insert(_EVENTS).returning(_EVENTS.c.seq)
_STORE_HEAD = (update(_HEADS).where(_HEADS.c.chain_id == bindparam("b_chain"))
               .values(seq=bindparam("b_seq"), hash=bindparam("b_hash")))


def _lock_head(session: Session, chain: int) -> tuple[int, str]:
    """Lock ``chain``'s head row and return its (chain_seq, hash), creating the row of a new
    chain first. Concurrent creators do not race: the insert does nothing if another
    transaction got there first (it waits for that one to commit), then both lock the row."""
    connection = session.connection()
    row = connection.execute(_LOCK_HEAD, {"chain": chain}).first()
    if row is None:
        connection.execute(_NEW_HEAD[connection.dialect.name], {"chain": chain})
        row = connection.execute(_LOCK_HEAD, {"chain": chain}).one()
    return int(row[0]), str(row[1])


def hold_heads(*chains: int, session: Session | None = None) -> None:
    """Lock the heads of ``chains`` in ascending order (the lock-order rule), before a
    transaction appends to several chains (e.g. a stage change and its anchor)."""
    session = _current(session)
    for chain in sorted(set(chains)):
        _lock_head(session, chain)


def _store_head(session: Session, chain: int, chain_seq: int, digest: str) -> None:
    session.connection().execute(_STORE_HEAD, {"b_chain": chain, "b_seq": chain_seq,
                                               "b_hash": digest})


def _stored_time(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)


def record(
    actor: Any,
    action: str,
    target: Any = None,
    data: Mapping[str, Any] | None = None,
    *,
    compound_id: int | None = None,
    session: Session | None = None,
    actor_label: str | None = None,
    chain: int | None = None,
) -> Appended:
    """Append an audit event for ``action`` on ``target`` to the current transaction.

    ``actor`` is a user or None (the system, e.g. a command-line run); ``target`` a model
    instance, a ``(type, id[, compound_id])`` tuple, or None. ``compound_id`` overrides the
    compound taken from the target; ``actor_label`` names an actor that is no user (e.g.
    ``HOUSEHOLD_ACTOR``); ``chain`` the chain (a consultation's id, 0 the global chain),
    otherwise taken from the target (``chain_of``). The event is flushed; it commits with the
    caller's change.
    """
    session = _current(session)
    object_type, object_id, target_compound = _target_ref(target)
    chain_id = chain_of(target) if chain is None else chain
    # Everything but the link is built before the head is locked: the lock is held only for
    # the read of the head, one insert and one update.
    created_at = format_time(utcnow())
    label = actor_label or getattr(actor, "username", None) or SYSTEM_ACTOR
    actor_id = getattr(actor, "id", None)
    compound = compound_id if compound_id is not None else target_compound
    payload = canonical_json(data)
    stored_at = _stored_time(created_at)
    session.flush()  # what the caller left pending is written before the head is held
    head_seq, head_hash = _lock_head(session, chain_id)
    fields = EventFields(
        chain_seq=head_seq + 1, created_at=created_at, actor_id=actor_id, actor_label=label,
        action=action, object_type=object_type, object_id=object_id, compound_id=compound,
        payload=payload, prev_hash=head_hash, chain_id=chain_id)
    digest = event_hash(fields)
    # The event number comes from the database while the head is held, so within a chain
    # ``seq`` grows with ``chain_seq``.
    seq: int = session.connection().execute(_INSERT_EVENT, {
        "chain_id": chain_id, "chain_seq": fields.chain_seq, "created_at": stored_at,
        "actor_id": actor_id, "actor_label": label, "action": action,
        "object_type": object_type, "object_id": object_id, "compound_id": compound,
        "payload": payload, "prev_hash": head_hash, "hash": digest}).scalar_one()
    _store_head(session, chain_id, fields.chain_seq, digest)
    return Appended(seq=int(seq), chain_id=chain_id, chain_seq=fields.chain_seq, hash=digest,
                    action=action, object_type=object_type, object_id=object_id,
                    compound_id=compound, payload=payload)


def record_many(
    actor: Any,
    events: Iterable[tuple[str, Any, Mapping[str, Any] | None, int | None]],
    *,
    session: Session | None = None,
    chain: int = GLOBAL_CHAIN,
) -> int:
    """Append several events by ``actor`` at once, in order, to ``chain``: ``(action, target,
    data, compound_id)`` each, as ``record`` takes them. The events are the ones ``record``
    would append one by one, written with one multi-row statement, so a bulk write (an import
    of thousands of ballots into the consultation's chain) holds the chain head for
    milliseconds, not for thousands of round trips. Returns how many were appended.
    """
    session = _current(session)
    actor_id = getattr(actor, "id", None)
    actor_label = getattr(actor, "username", None) or SYSTEM_ACTOR
    prepared = []
    for action, target, data, compound_id in events:
        object_type, object_id, target_compound = _target_ref(target)
        prepared.append((action, object_type, object_id,
                         compound_id if compound_id is not None else target_compound,
                         canonical_json(data), utcnow()))
    if not prepared:
        return 0
    head_seq, head_hash = _lock_head(session, chain)
    rows: list[dict[str, Any]] = []
    for action, object_type, object_id, compound, payload, created_at in prepared:
        fields = EventFields(
            chain_seq=head_seq + 1, created_at=format_time(created_at), actor_id=actor_id,
            actor_label=actor_label, action=action, object_type=object_type,
            object_id=object_id, compound_id=compound, payload=payload, prev_hash=head_hash,
            chain_id=chain)
        head_seq, head_hash = fields.chain_seq, event_hash(fields)
        rows.append({"chain_id": chain, "chain_seq": fields.chain_seq,
                     "created_at": created_at, "actor_id": actor_id,
                     "actor_label": actor_label, "action": action, "object_type": object_type,
                     "object_id": object_id, "compound_id": compound, "payload": payload,
                     "prev_hash": fields.prev_hash, "hash": head_hash})
    # One statement per row on SQLite keeps the rowid order; executemany is fine for both.
    session.execute(insert(table_of(AuditEvent)), rows)
    _store_head(session, chain, head_seq, head_hash)
    return len(rows)


ANCHOR_ACTION = "audit.anchor"


def anchor(chain: int, actor: Any = None, *, session: Session | None = None) -> Appended:
    """Record ``chain``'s current head in the global chain (an ``audit.anchor`` event), so that
    the consultation chain can no longer be rewritten up to there unnoticed.

    The head is read as this transaction sees it (its own appends included) and is not
    locked: an anchor names an event that exists, whatever is appended after it.
    """
    if chain == GLOBAL_CHAIN:
        raise ValueError("the global chain is not anchored in itself")
    session = _current(session)
    _lock_head(session, GLOBAL_CHAIN)  # chain 0 first, before the read of the other head
    head = session.execute(select(AuditHead.seq, AuditHead.hash).where(
        AuditHead.chain_id == chain)).first()
    chain_seq, digest = (int(head[0]), str(head[1])) if head is not None else (0, GENESIS_HASH)
    return record(actor, ANCHOR_ACTION, ("audit_chain", chain),
                  {"chain": chain, "seq": chain_seq, "hash": digest}, session=session,
                  chain=GLOBAL_CHAIN)


def anchor_moved(actor: Any = None, *, session: Session | None = None) -> list[int]:
    """Anchor every consultation chain whose head moved since its last anchor (or that was
    never anchored); returns the chains anchored, in order.

    Which chains moved is read before the global head is locked (only the anchors themselves
    are written under it), so sign-ins do not wait for the reading; a chain that two runs at
    once both find moved is anchored twice, which is harmless."""
    session = _current(session)
    anchored: dict[int, int] = {}
    for payload in session.scalars(select(AuditEvent.payload).where(
            AuditEvent.chain_id == GLOBAL_CHAIN, AuditEvent.action == ANCHOR_ACTION)):
        data = json.loads(payload)
        anchored[int(data["chain"])] = max(anchored.get(int(data["chain"]), 0), int(data["seq"]))
    moved = [int(chain) for chain, seq in session.execute(
        select(AuditHead.chain_id, AuditHead.seq).where(AuditHead.chain_id != GLOBAL_CHAIN)
        .order_by(AuditHead.chain_id)) if seq > anchored.get(int(chain), 0)]
    for chain in moved:
        anchor(chain, actor, session=session)
    return moved


def fields_of(event: AuditEvent) -> EventFields:
    """The hashed fields of a stored event (and its number)."""
    return EventFields(
        chain_seq=event.chain_seq,
        created_at=format_time(event.created_at),
        actor_id=event.actor_id,
        actor_label=event.actor_label,
        action=event.action,
        object_type=event.object_type,
        object_id=event.object_id,
        compound_id=event.compound_id,
        payload=event.payload,
        prev_hash=event.prev_hash,
        chain_id=event.chain_id,
        seq=event.seq,
    )


@dataclass(frozen=True)
class ChainProblem:
    """The first place where a chain does not hold."""

    seq: int | None  # the position in the chain (``chain_seq``); None for a head or anchor
    kind: str  # "hash", "link", "gap", "head", "anchor"
    expected: str
    found: str
    chain: int = GLOBAL_CHAIN


@dataclass(frozen=True)
class VerifyResult:
    checked: int
    head_seq: int  # the global chain's head
    head_hash: str
    problem: ChainProblem | None
    # What each check the domains registered (``checks``) found, by its name; empty when
    # the chain itself is broken.
    checks: Mapping[str, chain_checks.CheckOutcome] = field(default_factory=dict)
    chains: int = 1  # the chains verified
    anchors: int = 0  # the anchors checked against their chains

    @property
    def ok(self) -> bool:
        return self.problem is None and not any(
            outcome.problems for outcome in self.checks.values())


def verify_chain(
    events: Iterable[tuple[EventFields, str]], head: tuple[int, str] | None,
    chain: int = GLOBAL_CHAIN,
) -> VerifyResult:
    """Walk ``(fields, stored hash)`` pairs of one chain in chain_seq order and find the first
    broken link.

    Pure: the same function checks the database and a public export. ``head`` is the stored
    chain head ``(chain_seq, hash)``, compared with the last event (None to skip, e.g. for an
    export). An event that names another chain than ``chain`` is a broken link.
    """
    expected_seq, prev_hash, checked = 1, GENESIS_HASH, 0
    for fields, stored_hash in events:
        if fields.chain_seq != expected_seq:
            return VerifyResult(checked, expected_seq - 1, prev_hash, ChainProblem(
                fields.chain_seq, "gap", str(expected_seq), str(fields.chain_seq), chain))
        if fields.prev_hash != prev_hash or fields.chain_id != chain:
            return VerifyResult(checked, expected_seq - 1, prev_hash, ChainProblem(
                fields.chain_seq, "link", prev_hash, fields.prev_hash, chain))
        computed = event_hash(fields)
        if computed != stored_hash:
            return VerifyResult(checked, expected_seq - 1, prev_hash, ChainProblem(
                fields.chain_seq, "hash", computed, stored_hash, chain))
        prev_hash, expected_seq, checked = stored_hash, expected_seq + 1, checked + 1
    last_seq = expected_seq - 1
    if head is not None and (head[0], head[1]) != (last_seq, prev_hash):
        return VerifyResult(checked, last_seq, prev_hash, ChainProblem(
            None, "head", f"{last_seq}:{prev_hash}", f"{head[0]}:{head[1]}", chain))
    return VerifyResult(checked, last_seq, prev_hash, None)


def verify(session: Session | None = None,
           checks: Mapping[str, chain_checks.CheckFactory] | None = None, *,
           jobs: int = 1) -> VerifyResult:
    """Verify every stored chain against its head row and every anchor against the chain it
    names, then the stored rows of the domains against the chains: ``checks`` by name, those
    registered with the current app by default (``consult.audit.checks``).

    One pass over the events (chain by chain, ascending ``chain_id``, each in ``chain_seq``
    order) shows each check the events it asks for; if the chains hold, each check then
    compares its rows with what it was shown. Within a chain that order is also ``seq`` order;
    across chains it is not, so a check must not depend on the order of events of different
    chains. A broken chain is reported alone: its events cannot be trusted. The pass reads
    plain rows and hashes them as ``event_hash`` does (``consult.audit.streaming``), in up to
    ``jobs`` processes for many events; the result is the same for any ``jobs``. Other
    processes read only what is committed: with ``jobs`` > 1 the session must not have
    changed the chains itself.
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

    heads = {int(chain): (int(seq), str(digest)) for chain, seq, digest in session.execute(
        select(AuditHead.chain_id, AuditHead.seq, AuditHead.hash))}
    walked = streaming.verify_stored(session.connection(), jobs=jobs,
                                     actions=frozenset(watching), seen=seen)
    result = chain_result(walked, heads)
    if result.problem is None:
        problem, anchors = check_anchors(session)
        result = replace(result, problem=problem, anchors=anchors)
    if not result.ok:
        return result
    return replace(result, checks={name: check.finish(session)
                                   for name, check in running.items()})


def chain_result(walked: Any, heads: Mapping[int, tuple[int, str]] | None) -> VerifyResult:
    """The ``VerifyResult`` of a walk over the chains (a ``streaming.Stretch``), with each
    chain's end compared with its head row (``heads``: chain → (chain_seq, hash); None to
    skip). A chain with events and no head row, or a head row past its chain's events, is
    a problem."""
    ends: Mapping[int, tuple[int, str]] = walked.ends
    global_end = ends.get(GLOBAL_CHAIN, (0, GENESIS_HASH))
    chains = len(set(ends) | set(heads or {}))
    if walked.problem is not None:
        # Where the walk stood in the broken chain, as ``verify_chain`` reports it.
        problem = walked.problem
        return VerifyResult(walked.checked, walked.last[1], walked.last_hash, ChainProblem(
            problem.seq, problem.kind, problem.expected, problem.found, problem.chain),
            chains=chains)
    if heads is not None:
        for chain in sorted(set(ends) | set(heads)):
            last = ends.get(chain, (0, GENESIS_HASH))
            head = heads.get(chain)
            if head is None:
                if chain == GLOBAL_CHAIN and last == (0, GENESIS_HASH):
                    continue  # an empty trail whose global head is not written yet
                found = "none"
            elif head == last:
                continue
            else:
                found = f"{head[0]}:{head[1]}"
            return VerifyResult(walked.checked, *global_end, ChainProblem(
                None, "head", f"{last[0]}:{last[1]}", found, chain), chains=chains)
    return VerifyResult(walked.checked, *global_end, None, chains=chains)


def anchor_problem(anchored: Mapping[str, Any], found: str | None) -> ChainProblem | None:
    """The problem of one anchor (its payload ``anchored``) given the stored hash ``found`` at
    the position it names (None: no such event); None if it matches. Pure, for exports too."""
    chain, chain_seq, digest = anchored["chain"], anchored["seq"], anchored["hash"]
    if chain_seq == 0 and digest == GENESIS_HASH:
        return None  # an empty chain was anchored
    if found == digest:
        return None
    return ChainProblem(int(chain_seq), "anchor", digest, found or "none", int(chain))


def check_anchors(session: Session | None = None) -> tuple[ChainProblem | None, int]:
    """Compare every ``audit.anchor`` of the global chain with the event it names; the first
    anchor (in chain order) that does not match, and how many were checked."""
    session = _current(session)
    wanted: dict[int, list[dict[str, Any]]] = {}
    anchors: list[dict[str, Any]] = []
    for payload in session.scalars(select(AuditEvent.payload).where(
            AuditEvent.chain_id == GLOBAL_CHAIN, AuditEvent.action == ANCHOR_ACTION)
            .order_by(AuditEvent.chain_seq)):
        data = json.loads(payload)
        anchors.append(data)
        wanted.setdefault(int(data["chain"]), []).append(data)
    stored: dict[tuple[int, int], str] = {}
    for chain, items in wanted.items():
        positions = sorted({int(item["seq"]) for item in items})
        for start in range(0, len(positions), 500):
            for chain_seq, digest in session.execute(
                    select(AuditEvent.chain_seq, AuditEvent.hash).where(
                        AuditEvent.chain_id == chain,
                        AuditEvent.chain_seq.in_(positions[start:start + 500]))):
                stored[chain, int(chain_seq)] = str(digest)
    for data in anchors:
        problem = anchor_problem(data, stored.get((int(data["chain"]), int(data["seq"]))))
        if problem is not None:
            return problem, len(anchors)
    return None, len(anchors)


def chain_head(session: Session | None = None, chain: int = GLOBAL_CHAIN) -> tuple[int, str]:
    """The current (chain_seq, hash) of ``chain`` (the global chain by default), e.g. to print
    on a notice."""
    head = _current(session).connection().execute(
        select(_HEADS.c.seq, _HEADS.c.hash).where(_HEADS.c.chain_id == chain)).first()
    return (int(head[0]), str(head[1])) if head is not None else (0, GENESIS_HASH)
