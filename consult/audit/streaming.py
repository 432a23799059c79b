"""Verifying the stored audit chain at the speed of hashing (``flask audit verify``).

The rows are read with a plain DB-API cursor, a batch at a time (a server-side cursor on
PostgreSQL), and each event's hash is computed from the stored column values directly: the
text ``event_hash`` hashes (a JSON array of the fields) is written with the same C string
escaper the JSON encoder uses, without building an ``EventFields`` or an ORM object per event.
The stored payload is hashed as the text it is, as ``event_hash`` does; nothing is parsed.

Whenever that quick hash disagrees with the stored one, the event is read again the way
``service.fields_of`` sees it and hashed with ``event_hash`` itself, and only that hash decides.
So the verdict is always ``event_hash``'s: the quick text is only a faster way to the same
bytes for rows stored in the usual form.

``verify_stream`` walks one ordered stream of rows from a given previous hash; the whole chain
is one such stream (a chain per consultation would be another). ``verify_stored`` can split the
chain into ranges of seq verified by separate processes; the parent then checks the links
between the ranges and, if any range is not clean, walks the chain again in one process from
the start of the first such range, so the first broken link reported is the one a walk in one
process reports.
"""

from __future__ import annotations

import gc
import hashlib
import multiprocessing
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from json.encoder import encode_basestring  # the C escaper the JSON encoder uses
from typing import Any

from sqlalchemy import URL, Connection, DateTime, create_engine, select, type_coerce
from sqlalchemy.pool import NullPool

from consult.audit.models import GENESIS_HASH, AuditEvent

# Rows fetched at a time: on SQLite (no round trip) a batch small enough to stay in the
# processor's cache is about a third faster than 5,000 rows; on PostgreSQL each batch is a
# round trip to the server.
BATCH = {"sqlite": 500, "postgresql": 2000}
# Fewer events than this per process are verified in one process: starting a process costs
# more than it saves. (Tests lower it to split tiny chains.)
MIN_EVENTS_PER_JOB = 50_000

# The columns in ``event_hash``'s order, then the stored hash. The time comes as text in
# SQLite's stored form ``YYYY-MM-DD HH:MM:SS.ffffff`` (PostgreSQL formats it so).
_COLUMNS = ("actor_id, actor_label, action, object_type, object_id, compound_id, payload, "
            "prev_hash, hash")
_TIME = {"sqlite": "created_at",
         "postgresql": "to_char(created_at, 'YYYY-MM-DD HH24:MI:SS.US')"}


def _query(dialect: str, after: int | None, upto: int | None) -> str:
    # Only integers we computed go into the text.
    where = []
    if after is not None:
        where.append(f"seq > {int(after)}")
    if upto is not None:
        where.append(f"seq <= {int(upto)}")
    condition = f" WHERE {' AND '.join(where)}" if where else ""
    return f"SELECT seq, {_TIME[dialect]}, {_COLUMNS} FROM audit_event{condition} ORDER BY seq"  # noqa: S608 # nosec B608


@dataclass(frozen=True)
class Problem:
    """Where a stream breaks (``service.ChainProblem``'s fields)."""

    seq: int | None
    kind: str
    expected: str
    found: str


@dataclass
class Stretch:
    """What a walk over one ordered stream of events found: ``checked`` events verified up to
    ``last_seq`` whose hash is ``last_hash``, then the ``problem`` if one was found. ``first_prev``
    is the previous hash the first row named (a range's first link is checked by its caller);
    ``seen`` the events of the watched actions, in order, when they are kept."""

    checked: int
    last_seq: int
    last_hash: str
    problem: Problem | None = None
    first_prev: str | None = None
    seen: list[Any] = field(default_factory=list)


# What the walk calls with the seq of a row whose quick hash disagreed: that row's
# ``EventFields`` as ``service.fields_of`` sees it.
Reference = Callable[[int], Any]


def verify_stream(batches: Iterable[Sequence[Sequence[Any]]], reference: Reference, *,
                  prev_hash: str | None = GENESIS_HASH, first_seq: int = 1,
                  actions: frozenset[str] = frozenset(),
                  seen: Callable[[Any], None] | None = None) -> Stretch:
    """Verify one ordered stream of stored rows (``seq``, time text, then ``_COLUMNS``), in
    batches, that must start at ``first_seq`` and link to ``prev_hash`` (None: the first row's
    link is left to the caller, see ``Stretch.first_prev``). Stops at the first problem, with
    the checks ``service.verify_chain`` makes in its order: gap, link, hash.

    The events of ``actions`` go to ``seen`` as ``EventFields``, in order; without ``seen``
    they are kept in the result's ``seen``.
    """
    from consult.audit.service import EventFields, event_hash

    sha256, escape = hashlib.sha256, encode_basestring
    expected, checked, first_prev = first_seq, 0, None
    kept: list[Any] = []
    show = seen if seen is not None else kept.append
    last = prev_hash if prev_hash is not None else ""
    for rows in batches:
        for row in rows:
            seq, time, actor_id, label, action, otype, oid, cid, payload, prev, stored = row
            if seq != expected:
                return Stretch(checked, expected - 1, last, Problem(
                    seq, "gap", str(expected), str(seq)), first_prev, kept)
            if prev != prev_hash:
                if prev_hash is None:
                    first_prev = prev
                else:
                    return Stretch(checked, expected - 1, last, Problem(
                        seq, "link", prev_hash, prev), first_prev, kept)
            try:
                text = (f'[{seq},"{time.replace(" ", "T")}Z",'
                        f'{"null" if actor_id is None else actor_id},{escape(label)},'
                        f'{escape(action)},{escape(otype)},'
                        f'{"null" if oid is None else escape(oid)},'
                        f'{"null" if cid is None else cid},{escape(payload)},{escape(prev)}]')
                quick = sha256(text.encode("utf-8")).hexdigest()
            except (TypeError, AttributeError, UnicodeError):  # a value of an unusual type
                quick = None
            fields = None
            if quick != stored:
                fields = reference(seq)
                computed = event_hash(fields)
                if computed != stored:
                    return Stretch(checked, expected - 1, last, Problem(
                        seq, "hash", computed, stored), first_prev, kept)
            if action in actions:
                show(fields if fields is not None else EventFields(
                    seq=seq, created_at=f"{time.replace(' ', 'T')}Z", actor_id=actor_id,
                    actor_label=label, action=action, object_type=otype, object_id=oid,
                    compound_id=cid, payload=payload, prev_hash=prev))
            prev_hash = last = stored
            expected += 1
            checked += 1
    return Stretch(checked, expected - 1, last, None, first_prev, kept)


def _batches(cursor: Any, size: int) -> Iterator[Sequence[Any]]:
    while rows := cursor.fetchmany(size):
        yield rows


def _reference(connection: Connection) -> Reference:
    """Read one event again as the ORM-free path of ``service`` always did: the stored time
    through SQLAlchemy's ``DateTime``, formatted as ``format_time`` does."""
    from consult.audit.service import EventFields

    columns = (
        AuditEvent.seq, type_coerce(AuditEvent.created_at, DateTime()), AuditEvent.actor_id,
        AuditEvent.actor_label, AuditEvent.action, AuditEvent.object_type,
        AuditEvent.object_id, AuditEvent.compound_id, AuditEvent.payload, AuditEvent.prev_hash,
    )

    def fields(seq: int) -> Any:
        row = connection.execute(select(*columns).where(AuditEvent.seq == seq)).one()
        return EventFields(
            seq=row[0], created_at=row[1].isoformat(timespec="microseconds") + "Z",
            actor_id=row[2], actor_label=row[3], action=row[4], object_type=row[5],
            object_id=row[6], compound_id=row[7], payload=row[8], prev_hash=row[9])

    return fields


def walk_connection(connection: Connection, *, after: int | None = None,
                    upto: int | None = None, prev_hash: str | None = GENESIS_HASH,
                    actions: frozenset[str] = frozenset(),
                    seen: Callable[[Any], None] | None = None) -> Stretch:
    """Verify the events ``after`` < seq ≤ ``upto`` (either bound may be left open) read
    through ``connection``'s own DB-API connection, in its transaction."""
    dialect = connection.dialect.name
    raw: Any = connection.connection.driver_connection
    # A server-side cursor on PostgreSQL: rows come a batch at a time, not all at once.
    cursor = raw.cursor(name="audit_verify") if dialect == "postgresql" else raw.cursor()
    # Millions of short-lived rows make no reference cycles; the collector would only walk
    # the app's objects again and again.
    collecting = gc.isenabled()
    gc.disable()
    try:
        cursor.execute(_query(dialect, after, upto))
        return verify_stream(_batches(cursor, BATCH[dialect]), _reference(connection),
                             prev_hash=prev_hash, first_seq=1 if after is None else after + 1,
                             actions=actions, seen=seen)
    finally:
        cursor.close()
        if collecting:
            gc.enable()


# --- several processes ---------------------------------------------------------------------


def _job(url: URL, after: int | None, upto: int, first: bool,
         actions: frozenset[str]) -> Stretch:
    """One process's range: its own connection, the rows ``after`` < seq ≤ ``upto``."""
    engine = create_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as connection:
            return walk_connection(connection, after=after, upto=upto,
                                   prev_hash=GENESIS_HASH if first else None, actions=actions)
    finally:
        engine.dispose()


def _job_star(args: tuple[Any, ...]) -> Stretch:
    return _job(*args)


def usable_jobs(connection: Connection, jobs: int, last: int) -> int:
    """How many processes to use for ``last`` events: 1 unless the database can be opened
    again by its URL (not an in-memory SQLite) and processes can be forked."""
    url = connection.engine.url
    if jobs < 2 or "fork" not in multiprocessing.get_all_start_methods():
        return 1
    if connection.dialect.name == "sqlite" and (url.database or ":memory:") == ":memory:":
        return 1
    if connection.dialect.name not in _TIME:
        return 1
    return max(1, min(jobs, last // max(1, MIN_EVENTS_PER_JOB)))


def default_jobs() -> int:
    """The processors this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def verify_stored(connection: Connection, *, jobs: int = 1,
                  actions: frozenset[str] = frozenset(),
                  seen: Callable[[Any], None] | None = None) -> Stretch:
    """Verify every stored event (not the head row), in ``jobs`` processes if the chain is
    long enough (``MIN_EVENTS_PER_JOB``). The result is the one a walk in one process gives.

    Other processes read what is committed: with ``jobs`` > 1, ``connection``'s transaction
    must hold no change of the chain of its own (``flask audit verify`` runs in a fresh one).
    """
    last = 0
    if jobs > 1:
        last = connection.exec_driver_sql("SELECT max(seq) FROM audit_event").scalar() or 0
        jobs = usable_jobs(connection, jobs, last)
    if jobs < 2:
        return walk_connection(connection, actions=actions, seen=seen)
    bounds = [last * n // jobs for n in range(jobs + 1)]
    ranges = [(connection.engine.url, None if n == 0 else bounds[n], bounds[n + 1], n == 0,
               actions) for n in range(jobs)]
    context = multiprocessing.get_context("fork")
    with context.Pool(jobs) as pool:
        parts = pool.map(_job_star, ranges, chunksize=1)
    prev_hash, checked = GENESIS_HASH, 0
    for n, part in enumerate(parts):
        clean = (part.problem is None and part.last_seq == bounds[n + 1]
                 and (n == 0 or part.first_prev == prev_hash))
        if not clean:
            # The first range that is not clean, walked again here from its start with the
            # state a single walk would have there: the same first problem, the same count.
            rest = walk_connection(connection, after=None if n == 0 else bounds[n],
                                   prev_hash=prev_hash, actions=actions, seen=seen)
            rest.checked += checked
            return rest
        if seen is not None:
            for fields in part.seen:
                seen(fields)
        prev_hash, checked = part.last_hash, checked + part.checked
    # Rows after the last bound (written since it was read) are not this walk's.
    return Stretch(checked, last, prev_hash)
