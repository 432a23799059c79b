"""One app and one migrated database per test session; every test runs in a rolled-back
transaction unless it is marked ``committing``.

The database is SQLite in a temporary directory, or whatever TEST_DATABASE_URL / DATABASE_URL
names (the CI runs the suite a second time on PostgreSQL).
"""

from __future__ import annotations

import contextvars
import hashlib
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import flask_migrate
import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner
from flask_sqlalchemy.session import Session as FlaskSQLAlchemySession
from itsdangerous import URLSafeTimedSerializer

from config import TestingConfig
from consult import create_app
from consult.audit.models import GENESIS_HASH, AuditHead
from consult.extensions import db, limiter
from tests import factories


def _database_url(tmp: Path) -> str:
    url = os.environ.get("TEST_DATABASE_URL") or os.environ.get("DATABASE_URL")
    if not url:
        return f"sqlite:///{tmp / 'test.sqlite'}"
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if worker and url.startswith("postgresql"):
        return _worker_database(url, worker)
    return url


def _worker_database(url: str, worker: str) -> str:
    """Each parallel worker (pytest-xdist) gets a database of its own on the same server, named
    after the suite's: ``test`` → ``test_gw0``, ``test_gw1``…; created the first time."""
    base = sa.make_url(url)
    name = f"{base.database}_{worker}"
    admin = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            exists = conn.execute(sa.text("SELECT 1 FROM pg_database WHERE datname = :name"),
                                  {"name": name}).first()
            if not exists:
                conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    finally:
        admin.dispose()
    return base.set(database=name).render_as_string(hide_password=False)


# Tests that share something outside their own database run on one worker, one after another:
# the browser tests share a live server and a chromium, the Redis tests share Redis's queues.
_SERIAL_GROUPS = {"e2e": "browser", "multi": "redis"}


@pytest.hookimpl(tryfirst=True)  # before xdist reads the groups
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    root = Path(__file__).parent
    for item in items:
        parts = item.path.relative_to(root).parts
        group = _SERIAL_GROUPS.get(parts[0]) if len(parts) > 1 else None
        if group:
            item.add_marker(pytest.mark.xdist_group(group))


# Summaries that tests leave for the end of the session's output (the API fuzzer's): CI shows
# them whether the test passed or failed. Emptied when a session starts (by the controller,
# not by each xdist worker).
SUMMARIES = Path(__file__).resolve().parent.parent / "test-artifacts" / "summaries"


def pytest_configure(config: pytest.Config) -> None:
    if not hasattr(config, "workerinput"):
        for old in SUMMARIES.glob("*.txt"):
            old.unlink()


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int,
                            config: pytest.Config) -> None:
    for path in sorted(SUMMARIES.glob("*.txt")):
        terminalreporter.section(path.stem, sep="=")
        terminalreporter.write(path.read_text(encoding="utf-8"))


def _empty_database(url: str) -> None:
    """Start from nothing, so the migrations alone build the schema."""
    engine = sa.create_engine(url)
    try:
        with engine.begin() as conn:
            if engine.dialect.name == "postgresql":
                conn.exec_driver_sql("DROP SCHEMA public CASCADE")
                conn.exec_driver_sql("CREATE SCHEMA public")
            else:
                meta = sa.MetaData()
                meta.reflect(conn)
                meta.drop_all(conn)
                conn.exec_driver_sql("DROP TABLE IF EXISTS alembic_version")
    finally:
        engine.dispose()


class ConnectionBoundSession(FlaskSQLAlchemySession):
    """Flask-SQLAlchemy picks an engine per model and ignores ``bind=``; tests need the bind."""

    def get_bind(self, mapper: Any = None, clause: Any = None, bind: Any = None,
                 **kwargs: Any) -> Any:
        if bind is None and self.bind is not None:
            return self.bind
        return super().get_bind(mapper=mapper, clause=clause, bind=bind, **kwargs)


_IN_REQUEST: contextvars.ContextVar[bool] = contextvars.ContextVar("in_request", default=False)


class CSRFClient(FlaskClient):
    """A test client that behaves like a browser against a real server.

    Form posts carry a valid CSRF token unless ``csrf=False``. Each request runs in a fresh
    context, so it pushes its own app context and gets its own session (on the test's
    connection), exactly as in production: a rollback inside a request cannot undo the test's
    own setup. Afterwards the test's objects are expired so they show what the request wrote.
    """

    def csrf_token(self) -> str:
        with self.session_transaction() as sess:
            if "csrf_token" not in sess:
                sess["csrf_token"] = hashlib.sha1(os.urandom(64)).hexdigest()  # noqa: S324
            raw = sess["csrf_token"]
        serializer = URLSafeTimedSerializer(self.application.secret_key, salt="wtf-csrf-token")
        return serializer.dumps(raw)

    def open(self, *args: Any, csrf: bool = True, **kwargs: Any) -> Any:
        method = str(kwargs.get("method", "GET")).upper()
        data = kwargs.get("data")
        if (csrf and method == "POST" and "json" not in kwargs
                and (data is None or isinstance(data, dict))):
            data = dict(data or {})
            data.setdefault("csrf_token", self.csrf_token())
            kwargs["data"] = data
        if _IN_REQUEST.get():  # a redirect being followed: already isolated
            return super().open(*args, **kwargs)
        response = contextvars.Context().run(self._isolated_open, *args, **kwargs)
        db.session.expire_all()
        return response

    def _isolated_open(self, *args: Any, **kwargs: Any) -> Any:
        _IN_REQUEST.set(True)
        return super().open(*args, **kwargs)


class IsolatedCliRunner(FlaskCliRunner):
    """Runs each command in its own app context and session, as a shell would."""

    def invoke(self, *args: Any, **kwargs: Any) -> Any:
        result = contextvars.Context().run(super().invoke, *args, **kwargs)
        db.session.expire_all()
        return result


@pytest.fixture(scope="session", autouse=True)
def _english_outside_requests() -> Iterator[None]:
    """Service and command messages follow CONSULT_LANG; tests read them in English unless a
    test asks for another language."""
    previous = os.environ.get("CONSULT_LANG")
    os.environ["CONSULT_LANG"] = "en"
    yield
    if previous is None:
        os.environ.pop("CONSULT_LANG", None)
    else:
        os.environ["CONSULT_LANG"] = previous


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    return _database_url(tmp_path_factory.mktemp("db"))


@pytest.fixture(scope="session")
def app(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Flask]:
    _empty_database(database_url)

    instance = tmp_path_factory.mktemp("instance")

    class Config(TestingConfig):
        SQLALCHEMY_DATABASE_URI = database_url
        INSTANCE_DIR = str(instance)
        UPLOAD_PATH = str(instance / "uploads")
        PDF_RENDER_LOCK_DIR = str(instance / "render-locks")

    app = create_app(Config)
    app.test_client_class = CSRFClient
    app.test_cli_runner_class = IsolatedCliRunner
    with app.app_context():
        flask_migrate.upgrade()
    yield app
    with app.app_context():
        db.engine.dispose()


def wipe(app: Flask) -> None:
    """Empty every table and reset the audit heads (after a committing test)."""
    with app.app_context():
        db.session.remove()
        with db.engine.begin() as conn:
            for table in reversed(db.metadata.sorted_tables):
                if table.name != "audit_head":
                    conn.execute(table.delete())
            # The global chain's head stays (the migrations wrote it); the others go.
            conn.execute(sa.delete(AuditHead).where(AuditHead.chain_id != 0))
            conn.execute(sa.update(AuditHead).values(seq=0, hash=GENESIS_HASH))


@pytest.fixture(autouse=True)
def _isolation(request: pytest.FixtureRequest, app: Flask) -> Iterator[None]:
    limiter.reset()
    if request.node.get_closest_marker("committing"):
        try:
            with app.app_context():
                yield
        finally:
            wipe(app)
        return
    with rolled_back(app):
        yield


@contextmanager
def rolled_back(app: Flask) -> Iterator[None]:
    """Everything written through ``db.session`` inside is rolled back afterwards: services
    commit to a savepoint of one outer transaction that is never committed."""
    with app.app_context():
        connection = db.engine.connect()
        outer = connection.begin()
        original = db.session
        db.session = db._make_scoped_session(
            {"bind": connection, "join_transaction_mode": "create_savepoint",
             "class_": ConnectionBoundSession})
        try:
            yield
        finally:
            db.session.remove()
            db.session = original
            outer.rollback()
            connection.close()


@pytest.fixture
def client(app: Flask) -> CSRFClient:
    return app.test_client()  # type: ignore[return-value]


@pytest.fixture
def runner(app: Flask) -> Any:
    return app.test_cli_runner()


@pytest.fixture
def compound() -> Any:
    """A compound with two buildings of a few households each."""
    return factories.make_compound_with_households()


@pytest.fixture
def login_as(client: CSRFClient) -> Callable[..., Any]:
    """Sign the test client in as a new user of ``role`` (scoped to ``compound`` if given)."""

    def _login(role: str, compound: Any = None, household: Any = None, **kwargs: Any) -> Any:
        user = factories.make_user(role, compound=compound, household=household, **kwargs)
        factories.sign_in(client, user)
        return user

    return _login


def audit_actions() -> list[str]:
    """Action codes recorded so far in this test, oldest first."""
    from consult.audit.models import AuditEvent

    return list(db.session.scalars(sa.select(AuditEvent.action).order_by(AuditEvent.seq)))


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Any:
    """Move the time seen by sign-in, lockout and sessions."""
    from datetime import timedelta

    from consult.accounts import lockout, sessions, tokens
    from consult.accounts import service as accounts
    from consult.core.models import utcnow

    class Clock:
        offset = timedelta(0)

        def now(self) -> Any:
            return utcnow() + self.offset

        def advance(self, **kwargs: float) -> None:
            self.offset += timedelta(**kwargs)

    c = Clock()
    for module in (accounts, lockout, sessions, tokens):
        monkeypatch.setattr(module, "utcnow", c.now)
    return c


@pytest.fixture(scope="module")
def production_app(app: Flask) -> Flask:
    """The app as production configures it (secure cookies, one trusted proxy), on the
    suite's database; the access-code flood guard is out of the way of the limits tested."""
    from config import ProductionConfig

    class Production(ProductionConfig):
        SQLALCHEMY_DATABASE_URI = app.config["SQLALCHEMY_DATABASE_URI"]
        INSTANCE_DIR = app.config["INSTANCE_DIR"]
        UPLOAD_PATH = app.config["UPLOAD_PATH"]
        SECRET_KEY = "production-test-secret-0123456789abcdef"
        RATELIMIT_STORAGE_URI = "memory://"
        ACCESS_CODE_RATE_LIMIT = "100000 per minute"
        LOG_FORMAT = "plain"

    production = create_app(Production)
    production.test_client_class = CSRFClient
    return production
