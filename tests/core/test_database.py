"""SQLite's writers queue for the write lock on a file lock (no polling), hand it on when their
transaction ends however it ends, and a review screen does not queue at all."""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import OperationalError

from consult.core.database import _starts_read_only, _write_from_here, configure_engine

WAIT = 10  # seconds a step may take before the test calls it stuck


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    """An engine of its own on a scratch file, with the app's SQLite settings (1 s busy wait)."""
    app = Flask(__name__)
    app.config.update(SQLITE_SYNCHRONOUS="NORMAL", SQLITE_BUSY_TIMEOUT_MS=1000)
    engine = create_engine(f"sqlite:///{tmp_path}/queue.sqlite")
    configure_engine(app, engine)
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE t (n INTEGER)"))
    yield engine
    engine.dispose()


def lock_file(engine: Engine) -> str:
    return f"{engine.url.database}-writers.lock"


def queue_is_free(engine: Engine) -> bool:
    """Whether another process could take the writers' turn now."""
    fd = os.open(lock_file(engine), os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)
        return True
    finally:
        os.close(fd)


def test_a_write_transaction_holds_the_turn_until_it_commits(engine):
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO t VALUES (1)"))
        assert not queue_is_free(engine)
    assert queue_is_free(engine)


def test_the_turn_is_handed_on_after_a_rollback_an_error_and_a_closed_connection(engine):
    with pytest.raises(RuntimeError), engine.begin() as conn:
        conn.execute(text("INSERT INTO t VALUES (1)"))
        raise RuntimeError("the view failed")
    assert queue_is_free(engine)

    conn = engine.connect()
    transaction = conn.begin()
    conn.execute(text("INSERT INTO t VALUES (2)"))
    transaction.rollback()
    assert queue_is_free(engine)

    conn.begin()
    conn.execute(text("INSERT INTO t VALUES (3)"))
    conn.invalidate()  # the connection is thrown away mid-transaction
    assert queue_is_free(engine)
    conn.close()
    with engine.connect() as check:
        assert check.execute(text("SELECT count(*) FROM t")).scalar() == 0


def test_a_second_writer_waits_for_the_first_and_then_goes_on(engine):
    order: list[str] = []
    first_in, release = threading.Event(), threading.Event()

    def first() -> None:
        with engine.begin() as conn:
            conn.execute(text("INSERT INTO t VALUES (1)"))
            first_in.set()
            release.wait(WAIT)
            order.append("first commits")

    def second() -> None:
        first_in.wait(WAIT)
        with engine.begin() as conn:
            order.append("second begins")
            conn.execute(text("INSERT INTO t VALUES (2)"))

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for thread in threads:
        thread.start()
    first_in.wait(WAIT)
    time.sleep(0.3)
    assert order == []  # the second is queued, not failed and not writing
    release.set()
    for thread in threads:
        thread.join(WAIT)
    assert order == ["first commits", "second begins"]
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM t")).scalar() == 2


def test_a_writer_in_another_process_is_waited_for(engine):
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import fcntl, os, sys\n"
         f"fd = os.open({lock_file(engine)!r}, os.O_RDWR | os.O_CREAT)\n"
         "fcntl.flock(fd, fcntl.LOCK_EX)\n"
         "print('held', flush=True)\n"
         "sys.stdin.read()\n"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        began = threading.Event()

        def write() -> None:
            with engine.begin() as conn:
                began.set()
                conn.execute(text("INSERT INTO t VALUES (1)"))

        writer = threading.Thread(target=write)
        writer.start()
        assert not began.wait(0.3)
        assert holder.stdin is not None
        holder.stdin.close()  # the other process ends, and the kernel frees its lock
        assert began.wait(WAIT)
        writer.join(WAIT)
    finally:
        holder.kill()
        holder.wait()


def test_a_thread_already_holding_the_turn_does_not_wait_for_itself(engine):
    """A second writing connection in the same thread falls back on SQLite's busy wait, which
    gives up after its timeout, instead of queueing behind its own first transaction."""
    outcome: list[str] = []

    def nested() -> None:
        with engine.begin() as outer:
            outer.execute(text("INSERT INTO t VALUES (1)"))
            with engine.connect() as inner:
                try:
                    inner.begin()
                except OperationalError as exc:
                    outcome.append("locked" if "locked" in str(exc) else str(exc))

    thread = threading.Thread(target=nested)
    thread.start()
    thread.join(WAIT)
    assert not thread.is_alive()
    assert outcome == ["locked"]
    assert queue_is_free(engine)


def test_the_vote_review_and_confirmation_start_reading_and_other_posts_do_not(app):
    cases = {
        ("GET", "/consultations/1/vote"): True,
        ("POST", "/consultations/1/vote"): True,  # the review screen
        ("POST", "/consultations/1/vote/confirm"): True,  # reads, then lock_row takes the lock
        ("POST", "/login"): False,
        ("POST", "/consultations/1/ballots/1/enter"): False,
    }
    for (method, path), starts_reading in cases.items():
        with app.test_request_context(path, method=method):
            assert _starts_read_only() is starts_reading, (method, path)


@contextmanager
def read_transaction(engine: Engine) -> Iterator[Connection]:
    """A connection whose transaction began as a plain read, as under a page view."""
    with Flask(__name__).test_request_context("/", method="GET"), engine.connect() as conn:
        conn.begin()
        assert conn.info["consult_immediate"] is False
        yield conn


def test_a_read_transaction_turned_into_a_writing_one_sees_what_was_committed_meanwhile(engine):
    with read_transaction(engine) as conn:
        assert conn.execute(text("SELECT count(*) FROM t")).scalar() == 0  # the snapshot
        with engine.begin() as other:  # another request writes and commits meanwhile
            other.execute(text("INSERT INTO t VALUES (1)"))
        assert conn.execute(text("SELECT count(*) FROM t")).scalar() == 0
        assert queue_is_free(engine)
        _write_from_here(conn)
        assert conn.info["consult_immediate"] is True
        assert not queue_is_free(engine)  # it holds the writers' turn
        assert conn.execute(text("SELECT count(*) FROM t")).scalar() == 1  # read again: current
        conn.execute(text("INSERT INTO t VALUES (2)"))
        conn.commit()
        assert queue_is_free(engine)
    with engine.connect() as check:
        assert check.execute(text("SELECT count(*) FROM t")).scalar() == 2


def test_a_read_transaction_that_wrote_is_not_committed_halfway(engine):
    """A view wrongly marked ``starts_reading`` that writes before ``lock_row`` is refused,
    and what it wrote is rolled back with the rest."""
    with read_transaction(engine) as conn:
        conn.execute(text("INSERT INTO t VALUES (1)"))  # SQLite lets it write: the lock is free
        with pytest.raises(RuntimeError, match="starts_reading"):
            _write_from_here(conn)
        conn.rollback()
    with engine.connect() as check:
        assert check.execute(text("SELECT count(*) FROM t")).scalar() == 0


def test_reading_begins_a_plain_read_in_commands_jobs_and_posts(app):
    from consult.core.database import reading

    # Commands and jobs (no request) and posted forms begin with the write lock, except in
    # ``reading()``, where an import checks its file.
    with app.test_request_context("/consultations/1/ballots/1/enter", method="POST"):
        assert _starts_read_only() is False
        with reading():
            assert _starts_read_only() is True
        assert _starts_read_only() is False
    with reading():
        assert _starts_read_only() is True
    assert _starts_read_only() is False


def test_a_transaction_begun_in_reading_holds_no_turn_and_may_not_write(engine):
    from consult.core.database import _READING

    token = _READING.set(True)
    try:
        with engine.connect() as conn:
            conn.begin()
            assert conn.info["consult_immediate"] is False
            assert conn.execute(text("SELECT count(*) FROM t")).scalar() == 0
            assert queue_is_free(engine)  # a writer elsewhere goes ahead meanwhile
            with engine.begin() as other:
                other.execute(text("INSERT INTO t VALUES (1)"))
    finally:
        _READING.reset(token)
