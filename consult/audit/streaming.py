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

``verify_stream`` walks one stream of rows ordered by ``(chain_id, chain_seq)``: the chains one
after the other, ascending, each in its order from the genesis hash. ``verify_stored`` can split
that stream into ranges of ``(chain_id, chain_seq)`` verified by separate processes (a range
holds whole chains, or part of a long one); the parent then checks the links between the ranges
and, if any range is not clean, walks on in one process from the start of the first such range,
so the first broken link reported is the one a walk in one process reports.
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

# The columns in ``event_hash``'s order, then the stored hash; before them the event number,
# the chain and the position in it. The time comes as text in SQLite's stored form
# ``YYYY-MM-DD HH:MM:SS.ffffff`` (PostgreSQL formats it so).
_COLUMNS = ("actor_id, actor_label, action, object_type, object_id, compound_id, payload, "
            "prev_hash, hash")
_TIME = {"sqlite": "created_at",
         "postgresql": "to_char(created_at, 'YYYY-MM-DD HH24:MI:SS.US')"}

Key = tuple[int, int]  # (chain_id, chain_seq)


def _query(dialect: str, after: Key | None, upto: Key | None) -> str:
    # Only integers we computed go into the text.
    where = []
    if after is not None:
        where.append(f"(chain_id, chain_seq) > ({int(after[0])}, {int(after[1])})")
    if upto is not None:
        where.append(f"(chain_id, chain_seq) <= ({int(upto[0])}, {int(upto[1])})")
    condition = f" WHERE {' AND '.join(where)}" if where else ""
    return (f"SELECT seq, chain_id, chain_seq, {_TIME[dialect]}, {_COLUMNS} "  # noqa: S608 # nosec B608
            f"FROM audit_event{condition} ORDER BY chain_id, chain_seq")


@dataclass(frozen=True)
class Problem:
    """Where a stream breaks (``service.ChainProblem``'s fields)."""

    seq: int | None
    kind: str
    expected: str
    found: str
    chain: int = 0


@dataclass
class Stretch:
    """What a walk over one ordered stream of events found: ``checked`` events verified up to
    ``last`` (chain, chain_seq) whose hash is ``last_hash``, then the ``problem`` if one was
    found. ``ends`` holds, for each chain the walk saw, the position and hash of its last
    event seen. ``first_prev`` is the previous hash the first row named when it continued the
    chain the walk started in (a range's first link is checked by its caller); ``seen`` the
    events of the watched actions, in order, when they are kept."""

    checked: int
    last: Key
    last_hash: str
    problem: Problem | None = None
    first_prev: str | None = None
    seen: list[Any] = field(default_factory=list)
    ends: dict[int, tuple[int, str]] = field(default_factory=dict)


# What the walk calls with the number (seq) of a row whose quick hash disagreed: that row's
# ``EventFields`` as ``service.fields_of`` sees it.
Reference = Callable[[int], Any]


def verify_stream(batches: Iterable[Sequence[Sequence[Any]]], reference: Reference, *,
                  prev_hash: str | None = GENESIS_HASH, after: Key = (0, 0),
                  actions: frozenset[str] = frozenset(),
                  seen: Callable[[Any], None] | None = None) -> Stretch:
    """Verify one stream of stored rows (``seq``, ``chain_id``, ``chain_seq``, time text, then
    ``_COLUMNS``) ordered by chain and position, in batches. The walk starts after ``after``:
    rows of that chain must continue it at the next position and link to ``prev_hash`` (None:
    the first row's link is left to the caller, see ``Stretch.first_prev``); every other chain
    must start at position 1 from the genesis hash. Stops at the first problem, with the checks
    ``service.verify_chain`` makes in its order: gap, link, hash.

    The events of ``actions`` go to ``seen`` as ``EventFields``, in order; without ``seen``
    they are kept in the result's ``seen``.
    """
    from consult.audit.service import EventFields, event_hash

    sha256, escape = hashlib.sha256, encode_basestring
    chain, expected = after[0], after[1] + 1
    checked, first_prev, first = 0, None, True
    kept: list[Any] = []
    ends: dict[int, tuple[int, str]] = {}
    show = seen if seen is not None else kept.append
    last = prev_hash if prev_hash is not None else ""
    in_chain = False  # whether a row of ``chain`` was seen
    for rows in batches:
        for row in rows:
            (number, chain_id, seq, time, actor_id, label, action, otype, oid, cid, payload,
             prev, stored) = row
            if chain_id != chain:
                if in_chain:
                    ends[chain] = (expected - 1, last)
                chain, expected, prev_hash, last, in_chain = chain_id, 1, GENESIS_HASH, "", False
            if seq != expected:
                return Stretch(checked, (chain, expected - 1), last, Problem(
                    seq, "gap", str(expected), str(seq), chain), first_prev, kept, ends)
            if prev != prev_hash:
                if prev_hash is None and first:
                    first_prev = prev
                else:
                    return Stretch(checked, (chain, expected - 1), last, Problem(
                        seq, "link", str(prev_hash), prev, chain), first_prev, kept, ends)
            first = False
            try:
                text = (f'[{f"{chain_id}," if chain_id else ""}{seq},'
                        f'"{time.replace(" ", "T")}Z",'
                        f'{"null" if actor_id is None else actor_id},{escape(label)},'
                        f'{escape(action)},{escape(otype)},'
                        f'{"null" if oid is None else escape(oid)},'
                        f'{"null" if cid is None else cid},{escape(payload)},{escape(prev)}]')
                quick = sha256(text.encode("utf-8")).hexdigest()
            except (TypeError, AttributeError, UnicodeError):  # a value of an unusual type
                quick = None
            fields = None
            if quick != stored:
                fields = reference(number)
                computed = event_hash(fields)
                if computed != stored:
                    return Stretch(checked, (chain, expected - 1), last, Problem(
                        seq, "hash", computed, stored, chain), first_prev, kept, ends)
            if action in actions:
                show(fields if fields is not None else EventFields(
                    chain_seq=seq, created_at=f"{time.replace(' ', 'T')}Z", actor_id=actor_id,
                    actor_label=label, action=action, object_type=otype, object_id=oid,
                    compound_id=cid, payload=payload, prev_hash=prev, chain_id=chain_id,
                    seq=number))
            prev_hash = last = stored
            in_chain = True
            expected += 1
            checked += 1
    if in_chain:
        ends[chain] = (expected - 1, last)
    return Stretch(checked, (chain, expected - 1), last, None, first_prev, kept, ends)


def _batches(cursor: Any, size: int) -> Iterator[Sequence[Any]]:
    while rows := cursor.fetchmany(size):
        yield rows


def _reference(connection: Connection) -> Reference:
    """Read one event again as the ORM-free path of ``service`` always did: the stored time
    through SQLAlchemy's ``DateTime``, formatted as ``format_time`` does."""
    from consult.audit.service import EventFields

    columns: tuple[Any, ...] = (
        AuditEvent.chain_seq, type_coerce(AuditEvent.created_at, DateTime()),
        AuditEvent.actor_id, AuditEvent.actor_label, AuditEvent.action, AuditEvent.object_type,
        AuditEvent.object_id, AuditEvent.compound_id, AuditEvent.payload, AuditEvent.prev_hash,
        AuditEvent.chain_id, AuditEvent.seq,
    )

    def fields(seq: int) -> Any:
        row = connection.execute(select(*columns).where(AuditEvent.seq == seq)).one()
        return EventFields(
            chain_seq=row[0], created_at=row[1].isoformat(timespec="microseconds") + "Z",
            actor_id=row[2], actor_label=row[3], action=row[4], object_type=row[5],
            object_id=row[6], compound_id=row[7], payload=row[8], prev_hash=row[9],
            chain_id=row[10], seq=row[11])

    return fields


def walk_connection(connection: Connection, *, after: Key | None = None,
                    upto: Key | None = None, prev_hash: str | None = GENESIS_HASH,
                    actions: frozenset[str] = frozenset(),
                    seen: Callable[[Any], None] | None = None) -> Stretch:
    """Verify the events ``after`` < (chain_id, chain_seq) ≤ ``upto`` (either bound may be
    left open) read through ``connection``'s own DB-API connection, in its transaction."""
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
                             prev_hash=prev_hash, after=after or (0, 0),
                             actions=actions, seen=seen)
    finally:
        cursor.close()
        if collecting:
            gc.enable()


# --- several processes ---------------------------------------------------------------------


def _job(url: URL, after: Key | None, upto: Key, first: bool,
         actions: frozenset[str]) -> Stretch:
    """One process's range: its own connection, the rows ``after`` < key ≤ ``upto``."""
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


def split(lengths: Sequence[tuple[int, int]], parts: int) -> list[Key]:
    """The upper bounds of ``parts`` ranges of about equal numbers of events over chains of
    ``lengths`` ((chain_id, last chain_seq), ascending): whole chains, or pieces of a long one.
    The last bound is the end of the last chain; bounds are distinct and increasing."""
    total = sum(length for _chain, length in lengths)
    bounds: list[Key] = []
    passed = 0
    targets = [total * n // parts for n in range(1, parts + 1)]
    for chain, length in lengths:
        while targets and targets[0] <= passed + length:
            at = targets.pop(0) - passed
            if at > 0 and (not bounds or bounds[-1] < (chain, at)):
                bounds.append((chain, at))
        passed += length
    return bounds


def verify_stored(connection: Connection, *, jobs: int = 1,
                  actions: frozenset[str] = frozenset(),
                  seen: Callable[[Any], None] | None = None) -> Stretch:
    """Verify every stored event of every chain (not the head rows), in ``jobs`` processes if
    there are enough events (``MIN_EVENTS_PER_JOB``). The result is the one a walk in one
    process gives.

    Other processes read what is committed: with ``jobs`` > 1, ``connection``'s transaction
    must hold no change of the chains of its own (``flask audit verify`` runs in a fresh one).
    """
    lengths: list[tuple[int, int]] = []
    if jobs > 1:
        lengths = [(int(row[0]), int(row[1])) for row in connection.exec_driver_sql(
            "SELECT chain_id, max(chain_seq) FROM audit_event GROUP BY chain_id "
            "ORDER BY chain_id")]
        jobs = usable_jobs(connection, jobs, sum(length for _chain, length in lengths))
    if jobs < 2:
        return walk_connection(connection, actions=actions, seen=seen)
    bounds = split(lengths, jobs)
    starts: list[Key | None] = [None, *bounds[:-1]]
    ranges = [(connection.engine.url, starts[n], bounds[n], n == 0, actions)
              for n in range(len(bounds))]
    context = multiprocessing.get_context("fork")
    with context.Pool(len(ranges)) as pool:
        parts = pool.map(_job_star, ranges, chunksize=1)
    prev_hash, checked = GENESIS_HASH, 0
    ends: dict[int, tuple[int, str]] = {}
    for n, part in enumerate(parts):
        clean = (part.problem is None and part.last == bounds[n]
                 and (n == 0 or part.first_prev is None or part.first_prev == prev_hash))
        if not clean:
            # The first range that is not clean, walked again here from its start with the
            # state a single walk would have there: the same first problem, the same count.
            rest = walk_connection(connection, after=starts[n], prev_hash=prev_hash,
                                   actions=actions, seen=seen)
            rest.checked += checked
            rest.ends = {**ends, **rest.ends}
            return rest
        if seen is not None:
            for fields in part.seen:
                seen(fields)
        ends.update(part.ends)
        prev_hash, checked = part.last_hash, checked + part.checked
    # Rows after the last bound (written since it was read) are not this walk's.
    return Stretch(checked, bounds[-1], prev_hash, ends=ends)
