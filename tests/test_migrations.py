"""The schema comes from the migrations alone (the session's database was empty before
``flask db upgrade``); these tests fail when models and migrations drift apart."""

import re
from datetime import datetime
from pathlib import Path

import flask_migrate
import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from flask import Flask, current_app
from sqlalchemy.orm import Session

from config import TestingConfig
from consult import create_app
from consult.extensions import db

VERSIONS = Path(__file__).resolve().parent.parent / "migrations" / "versions"


def test_migrated_schema_matches_the_models():
    context = MigrationContext.configure(db.session.connection(), opts={"compare_type": True})
    assert compare_metadata(context, db.metadata) == []


def test_database_is_at_the_single_head():
    config = current_app.extensions["migrate"].migrate.get_config()
    script = ScriptDirectory.from_config(config)
    assert len(script.get_heads()) == 1
    context = MigrationContext.configure(db.session.connection())
    assert context.get_current_revision() == script.get_current_head()


def test_migration_files_are_date_prefixed():
    names = [p.name for p in VERSIONS.glob("*.py")]
    assert names
    for name in names:
        assert re.fullmatch(r"\d{8}_[0-9a-f]{12}_\w+\.py", name), name


def test_audit_chain_starts_at_genesis():
    from consult.audit.service import chain_head

    assert chain_head() == (0, "0" * 64)


def _row(table, **values):
    """A row of ``table`` with ``values``, every other required column given a plain value."""
    for column in table.columns:
        if column.name in values or column.nullable or column.primary_key:
            continue
        if isinstance(column.type, sa.Boolean):
            values[column.name] = False
        elif isinstance(column.type, sa.Integer):
            values[column.name] = 1
        elif isinstance(column.type, sa.DateTime):
            values[column.name] = datetime(2026, 12, 1)
        else:
            values[column.name] = "x"
    return values


def _app_on(database_url: str, tmp_path: Path) -> Flask:
    """An app on a database of its own, its files under ``tmp_path``, for a migration test to
    upgrade and downgrade step by step."""
    class Config(TestingConfig):
        SQLALCHEMY_DATABASE_URI = database_url
        INSTANCE_DIR = str(tmp_path)
        UPLOAD_PATH = str(tmp_path / "uploads")
        PDF_RENDER_LOCK_DIR = str(tmp_path / "render-locks")

    return create_app(Config)


def test_the_vote_stages_migration_moves_rows_both_ways(tmp_path):
    """A vote closed under the old stages moves to the stage its timestamps say, and back;
    the consultation table is copied on SQLite with rows of other tables referring to it."""
    before, after = "aad6046ec30e", "cfda44e217df"
    opened, closed, counted = (datetime(2026, 12, 1, 8), datetime(2026, 12, 2, 8),
                               datetime(2026, 12, 2, 9))
    rows = {  # title: (stage, vote_closed_at, vote_counted_at)
        "open": ("voting", None, None),
        "waiting": ("voting", closed, None),
        "counted": ("voting", closed, counted),
        "published": ("resolution_public", closed, counted),
        "discussed": ("discussing", None, None),
    }
    app = _app_on(f"sqlite:///{tmp_path / 'migrated.sqlite'}", tmp_path)
    with app.app_context():
        try:
            flask_migrate.upgrade(revision=before)
            tables = sa.MetaData()
            tables.reflect(db.engine)
            consultation, item = tables.tables["consultation"], tables.tables["item"]
            with db.engine.begin() as conn:
                conn.execute(tables.tables["community"].insert().values(
                    _row(tables.tables["community"], id=1)))
                conn.execute(tables.tables["compound"].insert().values(
                    _row(tables.tables["compound"], id=1, community_id=1)))
                for n, (title, (stage, closed_at, counted_at)) in enumerate(rows.items(), 1):
                    conn.execute(consultation.insert().values(_row(
                        consultation, id=n, compound_id=1, title=title, stage=stage,
                        secrecy="open", created_by_id=None, vote_opened_at=opened,
                        vote_closed_at=closed_at, vote_counted_at=counted_at)))
                    conn.execute(item.insert().values(_row(
                        item, consultation_id=n, number=1, completed_by_id=None)))

            def stages():
                with db.engine.connect() as conn:
                    return dict(conn.execute(sa.select(consultation.c.title,
                                                       consultation.c.stage)).all())

            flask_migrate.upgrade(revision=after)
            assert stages() == {"open": "voting", "waiting": "vote_closed",
                                "counted": "vote_counted", "published": "resolution_public",
                                "discussed": "discussing"}
            flask_migrate.downgrade(revision=before)
            assert stages() == {title: stage for title, (stage, _, _) in rows.items()}
            with db.engine.connect() as conn:
                assert conn.execute(sa.select(sa.func.count()).select_from(item)).scalar() == 5
                assert conn.execute(sa.select(consultation.c.vote_counted_at).where(
                    consultation.c.title == "counted")).scalar() == counted
            with pytest.raises(sa.exc.IntegrityError), db.engine.begin() as conn:
                conn.execute(consultation.update().values(stage="vote_closed"))
        finally:
            db.engine.dispose()


@pytest.fixture
def scratch_database(tmp_path):
    """The URL of an empty database of the suite's kind: a file for SQLite, a database made
    for the test (and dropped after it) on the suite's PostgreSQL server."""
    suite = sa.make_url(db.engine.url.render_as_string(hide_password=False))
    if suite.get_backend_name() != "postgresql":
        yield f"sqlite:///{tmp_path / 'scratch.sqlite'}"
        return
    name = f"scratch_{tmp_path.name.lower().replace('-', '_')}"[:60]
    admin = sa.create_engine(suite, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        yield suite.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def test_the_audit_chains_migration_keeps_every_event_and_its_hash(tmp_path, scratch_database):
    """The single chain becomes the global chain: each event at its position with its hash
    (which verifies unchanged), the head row is chain 0's, the database numbers new events
    after the last one (on PostgreSQL from a sequence set past them); and back."""
    from consult.audit import service as audit

    before, after = "b7d2f4a6c813", "c3e9a1f5b742"
    app = _app_on(scratch_database, tmp_path)
    with app.app_context():
        try:
            flask_migrate.upgrade(revision=before)
            tables = sa.MetaData()
            tables.reflect(db.engine)
            event, head = tables.tables["audit_event"], tables.tables["audit_head"]
            prev, rows = "0" * 64, []
            for seq in (1, 2, 3):
                fields = audit.EventFields(
                    chain_seq=seq, created_at=f"2026-12-01T08:00:0{seq}.000000Z", actor_id=None,
                    actor_label="system", action="registry.compound.created",
                    object_type="compound", object_id=str(seq), compound_id=seq,
                    payload=audit.canonical_json({"n": seq, "名": "测试"}), prev_hash=prev)
                prev = audit.event_hash(fields)
                rows.append({"seq": seq, "created_at": datetime(2026, 12, 1, 8, 0, seq),
                             "actor_id": None, "actor_label": "system",
                             "action": fields.action, "object_type": "compound",
                             "object_id": str(seq), "compound_id": seq,
                             "payload": fields.payload, "prev_hash": fields.prev_hash,
                             "hash": prev})
            with db.engine.begin() as conn:
                conn.execute(event.insert(), rows)
                conn.execute(head.update().values(seq=3, hash=prev))
            flask_migrate.upgrade(revision=after)
            with db.engine.connect() as conn:
                migrated = conn.execute(sa.text(
                    "SELECT seq, chain_id, chain_seq, hash FROM audit_event ORDER BY seq")).all()
                heads = conn.execute(sa.text("SELECT chain_id, seq, hash FROM audit_head")).all()
            assert [tuple(r) for r in migrated] == [
                (r["seq"], 0, r["seq"], r["hash"]) for r in rows]
            assert [tuple(h) for h in heads] == [(0, 3, prev)]
            # A session of this database's own (the suite's session is the suite's database).
            with Session(db.engine) as session:
                result = audit.verify(session, checks={})
                assert result.ok and result.checked == 3
                assert (result.head_seq, result.head_hash) == (3, prev)
                appended = audit.record(None, "consultation.updated", ("consultation", 9), {},
                                        chain=9, session=session)
                assert (appended.seq, appended.chain_id, appended.chain_seq) == (4, 9, 1)
                assert audit.verify(session, checks={}).ok
                session.commit()
            flask_migrate.downgrade(revision=before)
            with db.engine.connect() as conn:
                assert conn.execute(sa.text("SELECT seq FROM audit_event ORDER BY seq")
                                    ).scalars().all() == [1, 2, 3]
                assert conn.execute(sa.text("SELECT id, seq, hash FROM audit_head")).one() == (
                    1, 3, prev)
        finally:
            db.engine.dispose()
