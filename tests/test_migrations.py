"""The schema comes from the migrations alone (the session's database was empty before
``flask db upgrade``); these tests fail when models and migrations drift apart."""

import re
from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from flask import current_app

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
