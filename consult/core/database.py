"""Engine settings that make SQLite behave like a server database under concurrent writers."""

from __future__ import annotations

import fcntl
import os
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, TypeVar

from flask import Flask, current_app, g, has_request_context, request
from sqlalchemy import Select, Table, bindparam, event, inspect, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, CursorResult, Engine, Result
from sqlalchemy.orm import DeclarativeBase, Session, make_transient_to_detached
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.pool import ConnectionPoolEntry

V = TypeVar("V")
M = TypeVar("M", bound=DeclarativeBase)
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_SYNCHRONOUS_MODES = frozenset({"OFF", "NORMAL", "FULL", "EXTRA"})
# connection.info keys (SQLite): whether the transaction under way holds the write lock, the
# connection's count of changed rows when it began, and the engine's writer queue
_IMMEDIATE = "consult_immediate"
_CHANGES = "consult_changes_at_begin"
_QUEUE = "consult_writer_queue"
_HELD = "consult_rows_locked"  # session.info: (transaction, {(row key, shared)}) on PostgreSQL
# Set inside ``reading()``: transactions begun there are plain reads, in a request or not.
_READING: ContextVar[bool] = ContextVar("consult_reading", default=False)
# Set inside ``aside()``: the short transaction begun there writes, even during a page view.
_WRITING: ContextVar[bool] = ContextVar("consult_writing", default=False)


def intend_write() -> None:
    """Mark the current request as one that will write, before its first query.

    A GET that has to write (e.g. closing an expired stage on access) calls this first so its
    transaction starts with ``BEGIN IMMEDIATE`` like every POST.
    """
    if has_request_context():
        g.consult_write_intent = True


def starts_reading(view: V) -> V:
    """Mark a posted view whose transaction starts as a plain read on SQLite, like a page view,
    instead of queueing for the write lock before its first query: the vote's review screen,
    which writes nothing, and its confirmation, which reads and checks everything first and
    takes the write lock only for its writes (``lock_row`` turns the transaction into a
    writing one, and reads the locked row again)."""
    view.consult_starts_reading = True  # type: ignore[attr-defined]
    return view


@contextmanager
def reading() -> Iterator[None]:
    """Run the block in a transaction of its own that only reads.

    On SQLite it begins with a plain ``BEGIN``: no turn in the writer queue and no write lock,
    so a long read (loading what a big import is checked against) never holds up a ballot;
    WAL still gives it one consistent snapshot. This holds in commands and jobs too, whose
    transactions otherwise start with the write lock. The transaction under way when the block
    starts is ended first (committed: the caller must have finished its writes), and the
    block's own transaction ends with it. Writing inside the block is an error on SQLite.
    On PostgreSQL a read takes no lock that a writer waits for, so only the transaction
    boundaries apply.
    """
    from consult.extensions import db

    db.session.commit()
    token = _READING.set(True)
    try:
        yield
    finally:
        _READING.reset(token)
        connection = db.session.connection() if db.session().in_transaction() else None
        if (connection is not None and connection.dialect.name == "sqlite"
                and _CHANGES in connection.info and not connection.info.get(_IMMEDIATE)
                and _total_changes(connection) != connection.info[_CHANGES]):
            db.session.rollback()
            raise RuntimeError("a transaction begun in reading() has written")
        db.session.commit()  # it wrote nothing: this only ends the snapshot


def can_work_aside() -> bool:
    """Whether ``aside()`` may be used now without waiting for the request's own transaction:
    not while that transaction holds SQLite's write lock on another connection (the side
    transaction would wait for it until the busy timeout)."""
    from consult.extensions import db

    bind = db.session.get_bind()
    if isinstance(bind, Connection) or bind.dialect.name != "sqlite":
        return True
    return not db.session.connection().info.get(_IMMEDIATE, False)


@contextmanager
def aside(*, writing: bool = True) -> Iterator[Session]:
    """A short transaction of its own beside the session's, committed at the end of the block
    (rolled back on an error): for a page view that keeps something between requests without
    ending its own read snapshot. On SQLite a ``writing`` one begins with the write lock
    (after its turn in the writer queue) and holds it only for the block, so keep the block to
    a few statements; check ``can_work_aside()`` first. Otherwise it is a plain read with a
    snapshot of its own (what others committed since the page's began). On the tests' single
    connection it is a savepoint."""
    from consult.extensions import db

    bind = db.session.get_bind()
    session = (Session(bind=bind, join_transaction_mode="create_savepoint")
               if isinstance(bind, Connection) else Session(bind=bind))
    flag = _WRITING if writing else _READING
    token = flag.set(True)
    try:
        with session.begin():
            yield session
    finally:
        flag.reset(token)
        session.close()


def _total_changes(connection: Connection) -> int:
    """How many rows the SQLite connection under ``connection`` has changed since it opened."""
    dbapi_connection = connection.connection.dbapi_connection
    if not isinstance(dbapi_connection, sqlite3.Connection):
        raise TypeError("an SQLite connection of the standard library was expected")
    return dbapi_connection.total_changes


def _starts_read_only() -> bool:
    if _WRITING.get():
        return False
    if _READING.get():
        return True
    if not has_request_context() or g.get("consult_write_intent", False):
        return False
    if request.method in _SAFE_METHODS:
        return True
    view = current_app.view_functions.get(request.endpoint or "")
    return bool(getattr(view, "consult_starts_reading", False))


class WriterQueue:
    """Writers to one SQLite file take turns here before asking SQLite for its write lock.

    SQLite lets one transaction write at a time, and a writer that finds the lock taken
    sleeps and tries again, longer and longer apart (1, 2, 5 … then 25, 50 and 100 ms). Under
    load the lock often lies free while every waiting writer sleeps, and one that has waited
    a while waits far longer than its turn: at 32 voters that made most of the vote's
    99th-percentile latency. Here a writer first takes an exclusive ``flock`` on a file beside
    the database (every process on the host) after a mutex (every thread of this process):
    both wake the next waiter the moment the holder lets go, without polling. SQLite's lock
    still decides; the queue only orders who asks for it.

    The turn is held from ``BEGIN IMMEDIATE`` to the commit, rollback or close of that
    connection, and the kernel frees it if the process dies. A thread that already holds it
    through another connection does not queue again (it would wait for itself): that second
    transaction waits for SQLite's lock in the old way.
    """

    def __init__(self, path: str) -> None:
        self.path = path
        self._mutex = threading.Lock()
        self._holder: Any = None  # the DBAPI connection whose transaction has the turn
        self._holder_thread: int | None = None
        self._fd: int | None = None
        self._pid = 0

    def _file(self) -> int:
        # One descriptor per process: a descriptor inherited across fork() would share its
        # lock with the parent and every sibling.
        if self._fd is None or self._pid != os.getpid():
            self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
            self._pid = os.getpid()
        return self._fd

    def enter(self, dbapi_connection: Any) -> None:
        """Wait for the turn (the write transaction of ``dbapi_connection`` is about to start)."""
        if self._holder_thread == threading.get_ident():
            return
        self._mutex.acquire()
        try:
            fcntl.flock(self._file(), fcntl.LOCK_EX)
        except BaseException:
            self._mutex.release()
            raise
        self._holder, self._holder_thread = dbapi_connection, threading.get_ident()

    def leave(self, dbapi_connection: Any) -> None:
        """Hand the turn on, if ``dbapi_connection`` holds it (its transaction has ended)."""
        if self._holder is not dbapi_connection:
            return
        self._holder, self._holder_thread = None, None
        try:
            fcntl.flock(self._file(), fcntl.LOCK_UN)
        finally:
            self._mutex.release()


def configure_engine(app: Flask, engine: Engine) -> None:
    """Install connection and transaction hooks on the app's engine (SQLite only)."""
    if engine.dialect.name != "sqlite":
        return
    synchronous = str(app.config["SQLITE_SYNCHRONOUS"]).upper()
    if synchronous not in _SYNCHRONOUS_MODES:
        raise RuntimeError(f"SQLITE_SYNCHRONOUS must be one of {sorted(_SYNCHRONOUS_MODES)}")
    busy_ms = int(app.config["SQLITE_BUSY_TIMEOUT_MS"])
    path = engine.url.database
    queue = WriterQueue(f"{path}-writers.lock") if path and path != ":memory:" else None

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: sqlite3.Connection, record: ConnectionPoolEntry) -> None:
        record.info[_QUEUE] = queue  # what ``connection.info`` holds for this connection
        # Take transaction control away from pysqlite so we can choose the BEGIN kind below
        # (and so SAVEPOINTs behave).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        # WAL lets readers proceed while one writer commits, and a commit is one append to
        # the log: a process killed at any instant leaves every committed transaction whole
        # and none of the one under way (tests/reliability/test_crash.py kills gunicorn).
        cursor.execute("PRAGMA journal_mode=WAL")
        # FULL (the default, config.py) syncs the log to disk at every commit, before the
        # resident is told the ballot is recorded, so an acknowledged ballot also survives a
        # power cut or a kernel crash; NORMAL survives only the death of the process.
        cursor.execute(f"PRAGMA synchronous={synchronous}")
        # Writers queue for the write lock instead of failing: 30 s by default is far more
        # than a ballot's transaction takes even with every gunicorn worker writing at once.
        cursor.execute(f"PRAGMA busy_timeout={busy_ms}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Connection) -> None:
        # A deferred transaction that reads and then writes cannot wait for the write lock
        # (SQLite answers SQLITE_BUSY at once instead of calling the busy handler), so every
        # transaction that may write takes the lock up front. Plain page views stay deferred
        # so readers never queue behind writers.
        if _starts_read_only():
            connection.exec_driver_sql("BEGIN")
            connection.info[_IMMEDIATE] = False
            connection.info[_CHANGES] = _total_changes(connection)
        else:
            _begin_immediate(connection)

    if queue is not None:
        _leave_after(engine.dialect, "do_commit", queue)
        _leave_after(engine.dialect, "do_rollback", queue)
        _leave_after(engine.dialect, "do_close", queue)


def _begin_immediate(connection: Connection) -> None:
    """``BEGIN IMMEDIATE`` on an SQLite connection, after its turn in the writer queue."""
    queue: WriterQueue | None = connection.info.get(_QUEUE)
    dbapi_connection = connection.connection.dbapi_connection
    if queue is not None:
        queue.enter(dbapi_connection)
    try:
        connection.exec_driver_sql("BEGIN IMMEDIATE")
    except BaseException:
        if queue is not None:
            queue.leave(dbapi_connection)
        raise
    connection.info[_IMMEDIATE] = True


def _write_from_here(connection: Connection) -> None:
    """Turn the SQLite read transaction under way into a writing one: end its snapshot (it
    wrote nothing) and begin again with the write lock. What it read may have changed since:
    the caller reads again what its writes depend on."""
    if _total_changes(connection) != connection.info.get(_CHANGES):
        raise RuntimeError("a transaction begun as a read has written; its view must not be "
                           "marked starts_reading")
    connection.exec_driver_sql("COMMIT")
    _begin_immediate(connection)


def _leave_after(dialect: Any, method: str, queue: WriterQueue) -> None:
    """Make the dialect's ``method`` (commit, rollback, close of a DBAPI connection) hand the
    writers' turn on once it is done."""
    original = getattr(dialect, method)

    def wrapped(connection: Any) -> None:
        try:
            original(connection)
        finally:  # called with the pool's proxy or the DBAPI connection itself
            queue.leave(getattr(connection, "dbapi_connection", connection))

    setattr(dialect, method, wrapped)


def table_of(model: type[DeclarativeBase]) -> Table:
    """The table ``model`` is mapped to, for statements that bypass the ORM (bulk inserts)."""
    table = model.__table__
    if not isinstance(table, Table):  # a class mapped onto a join or a select has none
        raise TypeError(f"{model.__name__} is not mapped to one table")
    return table


def affected_rows(result: Result[*tuple[Any, ...]]) -> int:
    """How many rows the UPDATE or DELETE that gave ``result`` matched (0 if the driver does
    not say). ``Session.execute`` is typed as returning a plain ``Result``; for these
    statements without RETURNING it is the cursor's."""
    if not isinstance(result, CursorResult):
        raise TypeError("the result of an UPDATE or DELETE without RETURNING was expected")
    return result.rowcount or 0


def insert_or_lock(model: type[M], key: dict[str, Any], values: dict[str, Any]) -> tuple[M, bool]:
    """The row of ``model`` with ``key`` (its unique columns), created from ``values`` if absent,
    locked for update; returns it and whether this call created it.

    ``INSERT … ON CONFLICT DO NOTHING RETURNING`` lets simultaneous first submissions queue on
    the unique key instead of failing, and tells exactly whether this statement inserted (the
    driver's rowcount does not, on PostgreSQL). A row this statement inserted comes back from
    it, already locked by the transaction; an existing one is read ``FOR UPDATE``, which
    serialises changes.
    """
    from consult.extensions import db

    session = db.session()
    dialect = session.get_bind().dialect.name
    names = tuple(key)
    statement = _INSERTS.get((dialect, model, names))
    if statement is None:
        table = table_of(model)
        statement = _INSERTS[(dialect, model, names)] = (
            (postgresql.insert if dialect == "postgresql" else sqlite.insert)(table)
            .on_conflict_do_nothing(index_elements=list(names)).returning(*table.c))
    # A plain statement built once and the object made from its row: it is on every first
    # ballot's path, inside the serialised section, where the ORM's insert cost 3× as much.
    session.flush()  # a plain statement on the connection: what is pending goes first
    inserted = session.connection().execute(statement, {**key, **values}).first()
    if inserted is not None:
        created = model(**{attribute: inserted[index]
                           for index, attribute in enumerate(_attributes_of(model))})
        make_transient_to_detached(created)  # loaded, as if read back: nothing to flush
        session.add(created)
        return created, True
    existing = db.session.scalars(
        select(model).filter_by(**key).with_for_update()
        .execution_options(populate_existing=True)).one()
    return existing, False


# Statements built once per dialect and model (``insert_or_lock``, ``_reload``).
_INSERTS: dict[tuple[str, type[Any], tuple[str, ...]], Any] = {}
_RELOADS: dict[tuple[type[Any], bool | None], Select[Any]] = {}


_ATTRIBUTES: dict[type[Any], list[str]] = {}


def _attributes_of(model: type[Any]) -> list[str]:
    """The mapped attribute of each of ``model``'s table columns, in the table's order."""
    if model not in _ATTRIBUTES:
        mapper = inspect(model)
        _ATTRIBUTES[model] = [mapper.get_property_by_column(column).key
                              for column in table_of(model).c]
    return _ATTRIBUTES[model]


def _reload(obj: Any, shared: bool | None) -> None:
    """Read ``obj``'s columns again as last committed, locking its row on PostgreSQL
    (``shared``: FOR SHARE, else FOR UPDATE; None: no lock), with a plain statement built once
    per model: the same values as ``Session.refresh`` of the column attributes, without the
    ORM's loading machinery (it is on every ballot's path, inside the serialised section)."""
    from consult.extensions import db

    model = type(obj)
    statement = _RELOADS.get((model, shared))
    if statement is None:
        table = table_of(model)
        (pk,) = table.primary_key.columns  # every model locked here has one id column
        statement = select(*table.c).where(pk == bindparam("pk"))
        if shared is not None:
            statement = statement.with_for_update(read=shared)
        _RELOADS[(model, shared)] = statement
    identity = inspect(obj).identity
    row = db.session.connection().execute(statement, {"pk": identity[0]}).one()
    for index, attribute in enumerate(_attributes_of(model)):
        set_committed_value(obj, attribute, row[index])


def lock_row(obj: Any, *, shared: bool = False) -> None:
    """Lock ``obj``'s row until the transaction ends, and reload it as last committed.

    On PostgreSQL this is ``SELECT … FOR UPDATE`` (``FOR SHARE`` when ``shared``): whoever
    locks the row second waits until the first transaction ends and then sees what it
    committed, so a decision taken on the reloaded values cannot rest on a stale read.
    SQLite has no row locks and needs none: a writing transaction holds the database's write
    lock from its ``BEGIN IMMEDIATE`` on (see ``configure_engine``), so whatever it read is
    current and is not read again. A transaction that began as a plain read (a view marked
    ``starts_reading``) takes the write lock here and reads ``obj``'s columns again.
    """
    from consult.extensions import db

    connection = db.session.connection()
    if connection.dialect.name == "sqlite":
        if not connection.info.get(_IMMEDIATE):
            # A view that starts reading (``starts_reading``) writes from here on; what it read
            # before holding the write lock is read again.
            _write_from_here(connection)
            _reload(obj, None)
        # Everything read while holding the write lock is current: nothing to read again.
        return
    # A row this transaction already holds (as firmly) stays held until it ends, and nobody
    # else can have changed it since: it is not locked and read again.
    transaction = db.session().get_transaction()
    held_by, held = db.session.info.get(_HELD, (None, set()))
    if held_by is not transaction:
        held = set()
        db.session.info[_HELD] = (transaction, held)
    key = (type(obj), inspect(obj).identity)
    if (key, False) in held or (key, shared) in held:
        return
    db.session.flush()  # the reload must not overwrite changes not yet sent
    # Only the row's own columns: collections already loaded (a consultation's items) stay,
    # rather than being thrown away and loaded a second time.
    _reload(obj, shared)
    held.add((key, shared))
