"""Engine settings that make SQLite behave like a server database under concurrent writers."""

from __future__ import annotations

from typing import Any

from flask import Flask, g, has_request_context, request
from sqlalchemy import event, inspect, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine

_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_SYNCHRONOUS_MODES = frozenset({"OFF", "NORMAL", "FULL", "EXTRA"})


def intend_write() -> None:
    """Mark the current request as one that will write, before its first query.

    A GET that has to write (e.g. closing an expired stage on access) calls this first so its
    transaction starts with ``BEGIN IMMEDIATE`` like every POST.
    """
    if has_request_context():
        g.consult_write_intent = True


def _starts_read_only() -> bool:
    return (
        has_request_context()
        and request.method in _SAFE_METHODS
        and not g.get("consult_write_intent", False)
    )


def configure_engine(app: Flask, engine: Engine) -> None:
    """Install connection and transaction hooks on the app's engine (SQLite only)."""
    if engine.dialect.name != "sqlite":
        return
    synchronous = str(app.config["SQLITE_SYNCHRONOUS"]).upper()
    if synchronous not in _SYNCHRONOUS_MODES:
        raise RuntimeError(f"SQLITE_SYNCHRONOUS must be one of {sorted(_SYNCHRONOUS_MODES)}")
    busy_ms = int(app.config["SQLITE_BUSY_TIMEOUT_MS"])

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
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
    def _on_begin(connection) -> None:  # type: ignore[no-untyped-def]
        # A deferred transaction that reads and then writes cannot wait for the write lock
        # (SQLite answers SQLITE_BUSY at once instead of calling the busy handler), so every
        # transaction that may write takes the lock up front. Plain page views stay deferred
        # so readers never queue behind writers.
        connection.exec_driver_sql("BEGIN" if _starts_read_only() else "BEGIN IMMEDIATE")


def insert_or_lock(model: Any, key: dict[str, Any], values: dict[str, Any]) -> tuple[Any, bool]:
    """The row of ``model`` with ``key`` (its unique columns), created from ``values`` if absent,
    locked for update; returns it and whether this call created it.

    ``INSERT … ON CONFLICT DO NOTHING RETURNING`` lets simultaneous first submissions queue on
    the unique key instead of failing, and tells exactly whether this statement inserted (the
    driver's rowcount does not, on PostgreSQL). The ``FOR UPDATE`` read then serialises changes.
    """
    from consult.extensions import db

    table = model.__table__
    dialect = db.session.get_bind().dialect.name
    insert = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(table)
    primary = next(iter(table.primary_key.columns))
    inserted = db.session.execute(
        insert.values(**key, **values).on_conflict_do_nothing(index_elements=list(key))
        .returning(primary)).scalar()
    row = db.session.scalars(
        select(model).filter_by(**key).with_for_update()
        .execution_options(populate_existing=True)).one()
    return row, inserted is not None


def lock_row(obj: Any, *, shared: bool = False) -> None:
    """Lock ``obj``'s row until the transaction ends, and reload it as last committed.

    On PostgreSQL this is ``SELECT … FOR UPDATE`` (``FOR SHARE`` when ``shared``): whoever
    locks the row second waits until the first transaction ends and then sees what it
    committed, so a decision taken on the reloaded values cannot rest on a stale read.
    SQLite has no row locks and needs none: a writing transaction holds the database's write
    lock from its ``BEGIN IMMEDIATE`` on (see ``configure_engine``).
    """
    from consult.extensions import db

    db.session.flush()  # the reload must not overwrite changes not yet sent
    db.session.get(type(obj), inspect(obj).identity, with_for_update={"read": shared},
                   populate_existing=True)
