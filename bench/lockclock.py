"""How long each writing transaction holds SQLite's write lock, in the bench's server only.

``bench/wsgi_bench.py`` installs this when ``BENCH_LOCK_LOG`` names a directory: the writers'
turn (``WriterQueue``, taken just before ``BEGIN IMMEDIATE`` and handed on after the commit or
rollback) is timed from the moment it is granted to the moment it is handed on, which is the
time SQLite's write lock is held, and each worker appends ``<request path>\\t<ms>`` lines to a
file of its own. Production never imports it.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from flask import has_request_context, request

from consult.core.database import WriterQueue


class _Log:
    """This worker's log file (opened in the worker: the app may be imported before a fork)."""

    def __init__(self, directory: str, kind: str = "locks") -> None:
        self.directory = directory
        self.kind = kind
        self.files: dict[int, Any] = {}

    def write(self, path: str, started: float) -> None:
        pid = os.getpid()
        out = self.files.get(pid)
        if out is None:
            out = self.files[pid] = (Path(self.directory) / f"{self.kind}-{pid}.log").open(
                "a", buffering=1)
        out.write(f"{path}\t{(time.perf_counter() - started) * 1000:.3f}\n")


def _path() -> str:
    return request.path if has_request_context() else "-"


def install(directory: str, database_url: str) -> None:
    """Time every hold of this process's SQLite writers' turn, or PostgreSQL audit head row,
    into ``directory``."""
    if database_url.startswith("postgresql"):
        _install_head_clock(_Log(directory), _Log(directory, "waits"))
    else:
        _install_queue_clock(_Log(directory))


def _install_head_clock(log: _Log, waits: _Log) -> None:
    """Holds: from a transaction's first audit head row locked to its end. Waits: how long
    each ``SELECT … FOR UPDATE`` of a head row took, which is the time it queued behind
    another transaction holding that row (plus one round trip)."""
    from sqlalchemy import event
    from sqlalchemy.engine import Engine
    from sqlalchemy.engine.default import DefaultDialect

    locked: dict[int, tuple[float, str]] = {}
    asked: dict[int, float] = {}

    def _head_lock(statement: str) -> bool:
        return "audit_head" in statement and "FOR UPDATE" in statement

    @event.listens_for(Engine, "before_cursor_execute")
    def _before(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any,
                executemany: bool) -> None:
        if _head_lock(statement):
            asked[id(conn.connection.dbapi_connection)] = time.perf_counter()

    @event.listens_for(Engine, "after_cursor_execute")
    def _after(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any,
               executemany: bool) -> None:
        if _head_lock(statement):
            key = id(conn.connection.dbapi_connection)
            started = asked.pop(key, None)
            if started is not None:
                waits.write(_path(), started)
            locked.setdefault(key, (time.perf_counter(), _path()))

    for method in ("do_commit", "do_rollback"):
        original = getattr(DefaultDialect, method)

        def timed(self: Any, dbapi_connection: Any, _original: Any = original) -> None:
            try:
                _original(self, dbapi_connection)
            finally:
                key = id(getattr(dbapi_connection, "dbapi_connection", dbapi_connection))
                started = locked.pop(key, None)
                if started is not None:
                    log.write(started[1], started[0])

        setattr(DefaultDialect, method, timed)


def _install_queue_clock(log: _Log) -> None:
    enter, leave = WriterQueue.enter, WriterQueue.leave
    granted: dict[int, tuple[float, str]] = {}

    def timed_enter(self: WriterQueue, dbapi_connection: Any) -> None:
        enter(self, dbapi_connection)
        if self._holder is dbapi_connection and id(dbapi_connection) not in granted:
            granted[id(dbapi_connection)] = (time.perf_counter(), _path())

    def timed_leave(self: WriterQueue, dbapi_connection: Any) -> None:
        held = self._holder is dbapi_connection
        leave(self, dbapi_connection)
        started = granted.pop(id(dbapi_connection), None) if held else None
        if started is not None:
            log.write(started[1], started[0])

    WriterQueue.enter = timed_enter  # type: ignore[method-assign]
    WriterQueue.leave = timed_leave  # type: ignore[method-assign]


def read(directory: Path, kind: str = "locks") -> dict[str, list[float]]:
    """The holds (or, with ``kind`` "waits", the waits for a PostgreSQL head row) logged so
    far, by request path (milliseconds), and empty the logs."""
    holds: dict[str, list[float]] = {}
    for log in directory.glob(f"{kind}-*.log"):
        text = log.read_text(encoding="utf-8")
        log.write_text("", encoding="utf-8")
        for line in text.splitlines():
            path, _tab, ms = line.rpartition("\t")
            if path:
                holds.setdefault(path, []).append(float(ms))
    return holds
