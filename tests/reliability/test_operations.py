"""Operations: backups taken while the app writes and restored with a verifying audit chain,
request logs an operator can follow, and a health check that tells the truth.

The backup tests drive a live server (tests/live.py) on a database of the suite's kind: SQLite
runs take and restore SQLite backups; PostgreSQL runs take pg_dump backups, restore them with
pg_restore as docs/deployment.md says, and check that ``flask operations restore`` explains this.
"""

from __future__ import annotations

import io
import json
import logging
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask

from config import TestingConfig
from consult import create_app
from consult.core import logs
from consult.extensions import db
from consult.operations import backup
from tests import factories, live
from tests.reliability.conftest import Voters
from tests.reliability.transactional import rolled_back

EN = {"Accept-Language": "en"}
HOUSEHOLDS = 8
# The suite's database, as tests/conftest.py chooses it: the live server's is of the same kind.
ON_POSTGRESQL = (os.environ.get("TEST_DATABASE_URL") or os.environ.get("DATABASE_URL")
                 or "").startswith("postgresql")


@pytest.fixture(autouse=True)
def _isolation(request: pytest.FixtureRequest, app: Flask) -> Iterator[None]:
    if "live_server" in request.fixturenames or "unreachable_app" in request.fixturenames:
        yield  # a database of its own, or none at all
        return
    with rolled_back(app):
        yield


@pytest.fixture
def live_server(database_url: str, tmp_path: Path) -> Iterator[live.LiveServer]:
    server, stop = live.start(database_url, tmp_path, workers=2)
    try:
        yield server
    finally:
        stop()


def _voters(server: live.LiveServer) -> Voters:
    """Residents changing their votes over and over through the app, until stopped."""
    seeded = live.seed_votes(server, HOUSEHOLDS, voted=1)
    vote = seeded["votes"][0]
    return Voters(server, vote["consultation"], vote["items"], seeded["users"])


def _flask(server: live.LiveServer, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(live.VENV_BIN / "flask"), "--app", "wsgi", *args],
                          env={**server.env, **env}, cwd=live.ROOT, capture_output=True,
                          text=True, timeout=300)


def _sqlite_path(server: live.LiveServer) -> Path:
    return Path(sa.make_url(server.env["DATABASE_URL"]).database or "")


def _events(path: Path) -> list[tuple[int, str, int, int]]:
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as connection:
        return connection.execute("SELECT seq, action, chain_id, chain_seq FROM audit_event "
                                  "ORDER BY seq").fetchall()


@pytest.mark.skipif(ON_POSTGRESQL, reason="SQLite backups; PostgreSQL runs test pg_dump")
def test_sqlite_backups_taken_while_voting_restore_with_a_verifying_chain(
        app, live_server, tmp_path):
    server = live_server
    taken: list[Path] = []
    with _voters(server) as voters:
        while len(voters.confirmed) < HOUSEHOLDS:  # the writers are well under way
            time.sleep(0.05)
        for n in range(2):
            path = tmp_path / f"backup-{n}.sqlite"
            done = _flask(server, "operations", "backup", str(path))
            assert done.returncode == 0, done.stderr
            assert "Backup written to" in done.stdout and "audit events" in done.stdout
            taken.append(path)
        written_meanwhile = len(voters.confirmed)
    assert not voters.errors and written_meanwhile > HOUSEHOLDS
    with app.app_context():
        infos = [backup.read_sqlite(path) for path in taken]
        head = backup.head_revision(app)
    for info in infos:
        # Each copy is one consistent moment: intact, its chain whole, and every stored ballot
        # matching the chain's last word on it (audit verify's cross-check).
        assert info.chain_ok and info.revision == head, info
        assert not list(info.path.parent.glob(f"{info.path.name}-wal"))
    assert infos[0].events < infos[-1].events  # taken at different moments of the writing

    # Refusals: an existing backup file, a database with data, files that are not backups.
    with pytest.raises(backup.BackupError, match="exists already"):
        backup.backup(app, taken[0])
    live_db = _sqlite_path(server)
    before = _events(live_db)
    refused = _flask(server, "operations", "restore", str(taken[0]))
    assert refused.returncode == 1 and "--yes" in refused.stderr
    assert _events(live_db) == before

    chosen = infos[1]
    done = _flask(server, "operations", "restore", str(chosen.path), "--yes")
    assert done.returncode == 0, done.stderr
    assert "The audit chain holds" in done.stdout
    events = _events(live_db)
    assert len(events) == chosen.events + 1 and events[-1][1] == "system.database.restored"
    with sqlite3.connect(live_db) as connection:
        payload = json.loads(connection.execute(
            "SELECT payload FROM audit_event ORDER BY seq DESC LIMIT 1").fetchone()[0])
    assert payload["backup_head"]["seq"] == chosen.head_seq
    # What was thrown away is on record: the global chain's head (it anchors the others).
    assert payload["replaced_head"]["seq"] == max(e[3] for e in before if e[2] == 0)
    # The running app carries on with the restored data, and the chain keeps holding.
    voter = live.Browser(server.url)
    voter.login("h000")
    form = voter.review_vote(voters.consultation, {i: "agree" for i in voters.items})
    assert voter.post(live.confirm_path(voters.consultation), form).status == 302
    with app.app_context():
        after = backup.read_sqlite(live_db)
    assert after.chain_ok
    assert [event[1] for event in _events(live_db)[chosen.events:]][:2] == [
        "system.database.restored", "accounts.login.succeeded"]
    assert len(_events(live_db)) > chosen.events + 2  # and the vote after it


def _copy_with(source: Path, target: Path, sql: str) -> Path:
    shutil.copy(source, target)
    with sqlite3.connect(target) as connection:
        connection.execute(sql)
    return target


def test_restore_refuses_files_that_are_not_good_backups(app, tmp_path):
    """Checked in the order a restore checks them, on files made from a real backup."""
    good = tmp_path / "good.sqlite"
    # The suite's app made this backup of an empty-but-migrated database of its own.
    fresh = tmp_path / "fresh.sqlite"
    subprocess.run([str(live.VENV_BIN / "flask"), "--app", "wsgi", "db", "upgrade"],
                   env={**os.environ, "DATABASE_URL": f"sqlite:///{fresh}",
                        "CONSULT_CONFIG": "development"},
                   cwd=live.ROOT, check=True, capture_output=True, timeout=300)
    with sqlite3.connect(fresh) as source, sqlite3.connect(good) as target:
        source.backup(target)
    head = backup.head_revision(app)
    info = backup.read_sqlite(good)
    backup.check_restorable(info, head)  # the good one passes

    text = tmp_path / "notes.txt"
    text.write_text("not a database at all " * 100)
    with pytest.raises(backup.BackupError, match="cannot be read as an SQLite database"):
        backup.read_sqlite(text)
    other = tmp_path / "other.sqlite"
    with sqlite3.connect(other) as connection:
        connection.execute("CREATE TABLE recipes (name TEXT)")
    with pytest.raises(backup.BackupError, match="not a consult database"):
        backup.read_sqlite(other)
    old = _copy_with(good, tmp_path / "old.sqlite",
                     "UPDATE alembic_version SET version_num = '19b4cb4b2f75'")
    with pytest.raises(backup.BackupError, match="is at migration 19b4cb4b2f75"):
        backup.check_restorable(backup.read_sqlite(old), head)
    tampered = _copy_with(good, tmp_path / "tampered.sqlite",
                          "UPDATE audit_head SET seq = seq + 1")
    with pytest.raises(backup.BackupError, match="does not verify"):
        backup.check_restorable(backup.read_sqlite(tampered), head)
    with pytest.raises(backup.BackupError, match="does not exist"):
        backup.read_sqlite(tmp_path / "missing.sqlite")


@pytest.mark.skipif(not ON_POSTGRESQL, reason="PostgreSQL runs only")
def test_postgresql_backups_use_pg_dump_and_restore_is_explained(database_url, live_server,
                                                                tmp_path):
    server = live_server
    dump = tmp_path / "consult.dump"
    with _voters(server) as voters:
        while len(voters.confirmed) < HOUSEHOLDS:
            time.sleep(0.05)
        done = _flask(server, "operations", "backup", str(dump))
    assert done.returncode == 0, done.stderr
    assert not voters.errors
    listed = subprocess.run(["pg_restore", "--list", str(dump)], capture_output=True, text=True,
                            check=True)
    assert "TABLE DATA public audit_event" in listed.stdout

    refused = _flask(server, "operations", "restore", str(dump), "--yes")
    assert refused.returncode == 1 and "pg_restore --clean --if-exists" in refused.stderr

    # The documented way back: pg_restore into a database, then db current and audit verify.
    url, drop = live.fresh_database(database_url, tmp_path)
    try:
        target = sa.make_url(url)
        restored = subprocess.run(
            ["pg_restore", "--no-owner", "--host", str(target.host), "--port", str(target.port),
             "--username", str(target.username), "--dbname", str(target.database), str(dump)],
            capture_output=True, text=True, check=False)
        assert restored.returncode == 0, restored.stderr
        current = _flask(server, "db", "current", DATABASE_URL=url)
        assert "(head)" in current.stdout, current.stdout + current.stderr
        verified = _flask(server, "audit", "verify", DATABASE_URL=url)
        assert verified.returncode == 0 and "The audit chain holds" in verified.stdout
    finally:
        drop()


def test_postgresql_without_pg_dump_explains_what_to_do(monkeypatch, tmp_path):
    flask_app = Flask("guidance")
    flask_app.config["SQLALCHEMY_DATABASE_URI"] = "postgresql+psycopg://u@db.internal/consult"
    monkeypatch.setattr(backup.shutil, "which", lambda name: None)
    with pytest.raises(backup.BackupError, match="pg_dump was not found") as refused:
        backup.backup(flask_app, tmp_path / "x.dump")
    assert "--dbname consult" in refused.value.message
    assert not (tmp_path / "x.dump").exists()


# --- structured logs -----------------------------------------------------------------------------


class LogCapture:
    """What the app logs while a test runs, as the JSON formatter writes it."""

    def __init__(self) -> None:
        self.stream = io.StringIO()
        self.handler = logging.StreamHandler(self.stream)
        self.handler.addFilter(logs.RequestIdFilter())
        self.handler.setFormatter(logs.JsonFormatter())

    def lines(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.stream.getvalue().splitlines()]

    def requests(self) -> list[dict[str, Any]]:
        return [line for line in self.lines() if line["logger"] == logs.REQUEST_LOGGER]


@pytest.fixture
def captured() -> Iterator[LogCapture]:
    capture = LogCapture()
    logger = logging.getLogger("consult")
    logger.addHandler(capture.handler)
    try:
        yield capture
    finally:
        logger.removeHandler(capture.handler)


def test_every_request_is_one_json_line_with_its_id(client, login_as, captured):
    r = client.get("/consultations/?sort=title", headers={"X-Request-ID": "proxy-42.a_b:c"})
    assert r.headers["X-Request-ID"] == "proxy-42.a_b:c"
    user = login_as("committee", compound=factories.make_compound())
    client.get("/code?code=123456789012")
    r = client.get("/registry/", headers={"X-Request-ID": "bad id\tforged=1"})
    made_up = r.headers["X-Request-ID"]
    assert re.fullmatch(r"[0-9a-f]{32}", made_up)
    first, code, third = captured.requests()
    assert first["request_id"] == "proxy-42.a_b:c" and first["method"] == "GET"
    assert first["path"] == "/consultations/" and first["status"] == 200
    assert isinstance(first["duration_ms"], float) and first["user_id"] is None
    assert "123456789012" not in json.dumps(code)  # a letter's code never reaches the logs
    assert third["request_id"] == made_up and third["user_id"] == user.id
    assert "forged" not in json.dumps(third)
    assert {"time", "level", "message"} <= set(third)


def test_an_error_is_logged_with_the_id_of_its_request(client, login_as, captured,
                                                        monkeypatch):
    from consult.registry import service as registry

    def explode(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("boom")

    monkeypatch.setattr(registry, "compounds_in_scope", explode)
    login_as("admin")
    r = client.get("/registry/", headers={"X-Request-ID": "incident-7"})
    assert r.status_code == 500 and r.headers["X-Request-ID"] == "incident-7"
    lines = captured.lines()
    error = next(line for line in lines if line["level"] == "ERROR")
    assert error["request_id"] == "incident-7" and "RuntimeError: boom" in error["exception"]
    assert captured.requests()[-1]["status"] == 500


def test_log_format_is_chosen_by_the_environment():
    assert isinstance(logs.make_formatter("json"), logs.JsonFormatter)
    assert isinstance(logs.make_formatter("PLAIN"), logs.PlainFormatter)
    with pytest.raises(RuntimeError, match="LOG_FORMAT"):
        logs.make_formatter("xml")
    show = ("import config; print(config.Config.LOG_FORMAT, config.ProductionConfig.LOG_FORMAT)")
    env = {k: v for k, v in os.environ.items() if k != "LOG_FORMAT"}
    for extra, expected in (({}, "plain json"), ({"LOG_FORMAT": "json"}, "json json"),
                            ({"LOG_FORMAT": "plain"}, "plain plain")):
        out = subprocess.run([sys.executable, "-c", show], env={**env, **extra}, cwd=live.ROOT,
                             capture_output=True, text=True, check=True).stdout.strip()
        assert out == expected, extra
    record = logging.LogRecord("consult.request", logging.INFO, __file__, 1, "GET / 200", (),
                               None)
    record.fields = {"method": "GET", "path": "/", "status": 200, "duration_ms": 3.5,
                     "user_id": 7, "request_id": "r1"}
    record.request_id = "r1"
    plain = logs.PlainFormatter().format(record)
    assert "[r1] consult.request: GET / 200 duration_ms=3.5 user_id=7" in plain


# --- health check ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def unreachable_app(tmp_path_factory: pytest.TempPathFactory) -> Flask:
    """The app with its database gone (the SQLite file's folder does not exist)."""
    gone = tmp_path_factory.mktemp("gone") / "no-such-folder" / "consult.sqlite"

    class Unreachable(TestingConfig):
        SQLALCHEMY_DATABASE_URI = f"sqlite:///{gone}"
        INSTANCE_DIR = str(tmp_path_factory.mktemp("instance-unreachable"))

    return create_app(Unreachable)


def test_healthz_answers_503_when_the_database_is_unreachable(unreachable_app, captured):
    with unreachable_app.app_context():
        db.session.remove()
    r = unreachable_app.test_client().get("/healthz", headers={"X-Request-ID": "health-1"})
    assert r.status_code == 503
    assert r.get_json() == {"status": "error", "database": "unreachable"}
    error = next(line for line in captured.lines() if line["level"] == "ERROR")
    assert error["request_id"] == "health-1" and "unreachable" in error["message"]
