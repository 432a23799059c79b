"""Backups of the database and their restoration (``flask operations backup`` and
``flask operations restore``).

SQLite: the online backup API copies the database page by page in one read transaction, so the
copy is consistent even while the app keeps writing (WAL lets the writers go on). The copy is
written next to its destination, checked (integrity, audit chain) and only then renamed into
place, in rollback-journal mode so that it is one self-contained file.

PostgreSQL: ``pg_dump`` in its custom format, which takes one consistent snapshot too. Restoring
PostgreSQL is left to ``pg_restore`` by the operator, who stops the app first: the command only
explains how, because replacing a server database under running app servers is not something to
do from one app host.

A restore checks that the file is a consult database at this code's migration head whose audit
chain holds, refuses to replace a database that has data unless told to, and records the
restoration in the restored audit chain (with the chain head that was replaced), so the trail
itself shows that later events were discarded.

(bandit: subprocess only runs pg_dump, found on PATH, with an argument list and no shell.)
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import sqlite3
import subprocess  # nosec B404
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import sqlalchemy as sa
from alembic.script import ScriptDirectory
from flask import Flask
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy.orm import Session

from consult.audit import service as audit
from consult.audit.actions import describe, describe_kinds
from consult.core.errors import DomainError
from consult.extensions import db

describe({"system.database.restored": _l("Database restored from a backup")}, kind="system")
describe_kinds({"system": _l("System")})

# Tables every consult database has; a file without them is something else.
REQUIRED_TABLES = frozenset({"alembic_version", "audit_event", "audit_head", "user_account",
                             "household", "consultation"})
PG_DUMP_TIMEOUT_SECONDS = 3600


class BackupError(DomainError):
    """A backup or restore that cannot be done; ``message`` says why, for the operator."""


@dataclass(frozen=True)
class BackupInfo:
    """What a backup file holds."""

    path: Path
    size: int
    sha256: str
    kind: str  # "sqlite" or "pg_dump"
    revision: str | None = None
    events: int | None = None  # audit events
    head_seq: int | None = None
    head_hash: str | None = None
    chain_ok: bool | None = None  # None: not checked (pg_dump)


def database_url(app: Flask) -> sa.URL:
    return sa.make_url(app.config["SQLALCHEMY_DATABASE_URI"])


def sqlite_file(url: sa.URL) -> Path:
    """The file of an SQLite URL (an in-memory database has none)."""
    if not url.database or url.database == ":memory:" or url.database.startswith("file:"):
        raise BackupError(_("This SQLite database is not a plain file: it cannot be backed up "
                            "or restored with these commands."))
    return Path(url.database)


def head_revision(app: Flask) -> str:
    """The migration head this code expects."""
    config = app.extensions["migrate"].migrate.get_config()
    heads = ScriptDirectory.from_config(config).get_heads()
    if len(heads) != 1:
        raise BackupError(_("The migrations have %(n)s heads; merge them first.", n=len(heads)))
    return heads[0]


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for block in iter(lambda: stream.read(1024 * 1024), b""):
            digest.update(block)
    return digest.hexdigest()


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _partial(target: Path) -> Path:
    return target.with_name(f".{target.name}.{os.getpid()}.partial")


@contextlib.contextmanager
def _read_only(path: Path) -> Iterator[sqlite3.Connection]:
    """A read-only connection to an SQLite file that must already exist."""
    if not path.is_file():
        raise BackupError(_("%(path)s does not exist.", path=str(path)))
    connection = sqlite3.connect(f"file:{quote(str(path.resolve()))}?mode=ro", uri=True)
    try:
        yield connection
    finally:
        connection.close()


def _session_on(path: Path) -> tuple[Session, sa.Engine]:
    uri = f"file:{quote(str(path.resolve()))}?mode=ro"
    engine = sa.create_engine("sqlite://", creator=lambda: sqlite3.connect(uri, uri=True))
    return Session(engine), engine


def read_sqlite(path: Path) -> BackupInfo:
    """What the SQLite file ``path`` holds: it must be an intact consult database; its
    migration revision and audit chain are read (and its chain verified), not judged."""
    with _read_only(path) as connection:
        try:
            integrity = connection.execute("PRAGMA integrity_check").fetchone()[0]
            tables = {row[0] for row in connection.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table'")}
        except sqlite3.DatabaseError:
            raise BackupError(_("%(path)s cannot be read as an SQLite database.",
                                path=str(path))) from None
        if integrity != "ok":
            raise BackupError(_("%(path)s is damaged (SQLite integrity check: %(result)s).",
                                path=str(path), result=integrity))
        missing = REQUIRED_TABLES - tables
        if missing:
            raise BackupError(_("%(path)s is not a consult database (tables missing: "
                                "%(tables)s).", path=str(path), tables=", ".join(sorted(missing))))
        revisions = [row[0] for row in connection.execute(
            "SELECT version_num FROM alembic_version")]
    session, engine = _session_on(path)
    try:
        result = audit.verify(session)
    finally:
        session.close()
        engine.dispose()
    return BackupInfo(path=path, size=path.stat().st_size, sha256=file_sha256(path),
                      kind="sqlite", revision=", ".join(revisions) or None,
                      events=result.checked, head_seq=result.head_seq,
                      head_hash=result.head_hash, chain_ok=result.ok)


def check_restorable(info: BackupInfo, expected_revision: str) -> None:
    """Raise BackupError unless the backup is at ``expected_revision`` and its audit chain
    holds."""
    if info.revision != expected_revision:
        raise BackupError(_(
            "%(path)s is at migration %(found)s, but this version of consult expects "
            "%(expected)s. Restore it with the version of consult that made it, or upgrade a "
            "copy first (DATABASE_URL=sqlite:///COPY flask db upgrade).", path=str(info.path),
            found=info.revision or "-", expected=expected_revision))
    if not info.chain_ok:
        raise BackupError(_("The audit chain in %(path)s does not verify (run flask audit "
                            "verify on a copy to see where it breaks); it is not restored.",
                            path=str(info.path)))


def backup(app: Flask, target: Path, *, overwrite: bool = False) -> BackupInfo:
    """Write a consistent backup of the app's database to ``target``."""
    if target.exists() and not overwrite:
        raise BackupError(_("%(path)s exists already; add --yes to replace it.",
                            path=str(target)))
    if target.is_dir():
        raise BackupError(_("%(path)s is a folder; name the backup file.", path=str(target)))
    url = database_url(app)
    if url.get_backend_name() == "sqlite":
        return _backup_sqlite(app, sqlite_file(url), target)
    if url.get_backend_name() == "postgresql":
        return _backup_postgresql(url, target)
    raise BackupError(_("Backups of %(backend)s databases are not supported.",
                        backend=url.get_backend_name()))


def _backup_sqlite(app: Flask, source: Path, target: Path) -> BackupInfo:
    if not source.is_file():
        raise BackupError(_("%(path)s does not exist.", path=str(source)))
    if target.resolve() == source.resolve():
        raise BackupError(_("%(path)s is the database itself.", path=str(target)))
    partial = _partial(target)
    partial.unlink(missing_ok=True)
    try:
        # Read-write like the app's own connections: a WAL database cannot always be opened
        # read-only. Nothing is written to it.
        live = sqlite3.connect(source, timeout=float(app.config["SQLITE_BUSY_TIMEOUT_MS"]) / 1000)
        try:
            copy = sqlite3.connect(partial)
            try:
                # All pages in one step: one read transaction, so one consistent snapshot;
                # writers carry on meanwhile (WAL).
                live.backup(copy)
                # One self-contained file: no -wal/-shm beside it.
                copy.execute("PRAGMA journal_mode=DELETE")
            finally:
                copy.close()
        finally:
            live.close()
        _fsync(partial)
        info = read_sqlite(partial)
        os.replace(partial, target)
        _fsync(target.parent)
    finally:
        partial.unlink(missing_ok=True)
    return BackupInfo(**{**info.__dict__, "path": target})


def _backup_postgresql(url: sa.URL, target: Path) -> BackupInfo:
    pg_dump = shutil.which("pg_dump")
    if pg_dump is None:
        raise BackupError(postgresql_backup_guidance(url))
    partial = _partial(target)
    env = {**os.environ}
    if url.password:
        env["PGPASSWORD"] = str(url.password)  # not on the command line, where ps shows it
    args = [pg_dump, "--format=custom", "--no-owner", "--file", str(partial),
            "--dbname", str(url.database or "")]
    for option, value in (("--host", url.host), ("--port", url.port),
                          ("--username", url.username)):
        if value:
            args += [option, str(value)]
    try:
        # A fixed program with an argument list, no shell: nothing here is interpreted.
        done = subprocess.run(args, env=env, capture_output=True,  # noqa: S603 # nosec B603
                              text=True,
                              check=False, timeout=PG_DUMP_TIMEOUT_SECONDS)
        if done.returncode != 0:
            raise BackupError(_("pg_dump failed: %(error)s", error=done.stderr.strip()))
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)
    return BackupInfo(path=target, size=target.stat().st_size, sha256=file_sha256(target),
                      kind="pg_dump")


def postgresql_backup_guidance(url: sa.URL) -> str:
    return _("pg_dump was not found. Install the PostgreSQL client (Debian: apt-get install "
             "postgresql-client) and run flask backup again, or back up with: pg_dump "
             "--format=custom --no-owner --dbname %(db)s --file FILE", db=url.database or "")


def postgresql_restore_guidance(url: sa.URL) -> str:
    return _(
        "This database is PostgreSQL: restore a backup made by flask backup (a pg_dump file) "
        "with pg_restore, not with this command. Stop the app on every host, then run: "
        "pg_restore --clean --if-exists --no-owner --dbname %(db)s FILE. Then check that flask "
        "db current names the head revision and that flask audit verify passes before "
        "starting the app again.", db=url.database or "")


def _has_tables(path: Path) -> bool:
    if not path.exists() or path.stat().st_size == 0:
        return False
    with _read_only(path) as connection:
        try:
            return bool(connection.execute(
                "SELECT count(*) FROM sqlite_master WHERE type = 'table'").fetchone()[0])
        except sqlite3.DatabaseError:
            return True  # something is there; replacing it needs the same confirmation


def _current_head(path: Path) -> dict[str, Any] | None:
    """The global audit chain's head of the database about to be replaced, if it has one."""
    try:
        with _read_only(path) as connection:
            try:
                row = connection.execute(
                    "SELECT seq, hash FROM audit_head WHERE chain_id = 0").fetchone()
            except sqlite3.OperationalError:  # a database from before the chains: one head
                row = connection.execute("SELECT seq, hash FROM audit_head").fetchone()
    except (sqlite3.DatabaseError, BackupError):
        return None
    return {"seq": row[0], "hash": row[1]} if row else None


def restore(app: Flask, source: Path, *, confirmed: bool = False) -> BackupInfo:
    """Replace the app's SQLite database with the backup ``source`` and record it in the
    audit trail; the caller commits and then verifies the chain."""
    url = database_url(app)
    if url.get_backend_name() == "postgresql":
        raise BackupError(postgresql_restore_guidance(url))
    if url.get_backend_name() != "sqlite":
        raise BackupError(_("Restoring %(backend)s databases is not supported.",
                            backend=url.get_backend_name()))
    target = sqlite_file(url)
    if source.resolve() == target.resolve():
        raise BackupError(_("%(path)s is the database itself.", path=str(source)))
    info = read_sqlite(source)
    check_restorable(info, head_revision(app))
    if _has_tables(target) and not confirmed:
        raise BackupError(_(
            "%(target)s already holds a database; restoring replaces everything in it with the "
            "backup. Stop the app, make a backup of it first if it may be needed, then run the "
            "command again with --yes.", target=str(target)))
    replaced = _current_head(target)
    db.session.remove()
    db.engine.dispose()  # no pooled connection may keep reading the old pages
    target.parent.mkdir(parents=True, exist_ok=True)
    with _read_only(source) as backup_file:
        live = sqlite3.connect(target, timeout=float(app.config["SQLITE_BUSY_TIMEOUT_MS"]) / 1000)
        try:
            # The backup API writes under SQLite's own locks, so other connections (even those
            # of an app that was not stopped) see either the old or the new database, never a
            # mixture, and the -wal/-shm files stay consistent, unlike copying the file over.
            backup_file.backup(live)
            live.execute("PRAGMA journal_mode=WAL")
        finally:
            live.close()
    audit.record(None, "system.database.restored", ("system", None), {
        "backup_sha256": info.sha256,
        "backup_head": {"seq": info.head_seq, "hash": info.head_hash},
        "replaced_head": replaced,
    })
    return info
