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


def install(directory: str) -> None:
    """Time every turn of every ``WriterQueue`` of this process into ``directory``."""
    enter, leave = WriterQueue.enter, WriterQueue.leave
    granted: dict[int, tuple[float, str]] = {}
    files: dict[int, Any] = {}

    def timed_enter(self: WriterQueue, dbapi_connection: Any) -> None:
        enter(self, dbapi_connection)
        if self._holder is dbapi_connection and id(dbapi_connection) not in granted:
            path = request.path if has_request_context() else "-"
            granted[id(dbapi_connection)] = (time.perf_counter(), path)

    def timed_leave(self: WriterQueue, dbapi_connection: Any) -> None:
        held = self._holder is dbapi_connection
        leave(self, dbapi_connection)
        started = granted.pop(id(dbapi_connection), None) if held else None
        if started is None:
            return
        pid = os.getpid()  # the file of this worker (the app may be imported before a fork)
        out = files.get(pid)
        if out is None:
            out = files[pid] = (Path(directory) / f"locks-{pid}.log").open("a", buffering=1)
        out.write(f"{started[1]}\t{(time.perf_counter() - started[0]) * 1000:.3f}\n")

    WriterQueue.enter = timed_enter  # type: ignore[method-assign]
    WriterQueue.leave = timed_leave  # type: ignore[method-assign]


def read(directory: Path) -> dict[str, list[float]]:
    """The holds logged so far, by request path (milliseconds), and empty the logs."""
    holds: dict[str, list[float]] = {}
    for log in directory.glob("locks-*.log"):
        text = log.read_text(encoding="utf-8")
        log.write_text("", encoding="utf-8")
        for line in text.splitlines():
            path, _tab, ms = line.rpartition("\t")
            if path:
                holds.setdefault(path, []).append(float(ms))
    return holds
