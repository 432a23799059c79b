"""The app never runs on uncompiled translations (consult.core.catalogs.ensure_compiled)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from flask_babel import force_locale, gettext

from config import BASE_DIR, TestingConfig
from consult import create_app
from consult.core import catalogs

LOCALES = ("zh_Hans", "zh_Hant", "en")


@pytest.fixture
def sources(tmp_path: Path) -> Path:
    """The project's catalogs, as a fresh checkout has them: .po files, no .mo files."""
    for locale in LOCALES:
        folder = tmp_path / locale / "LC_MESSAGES"
        folder.mkdir(parents=True)
        shutil.copy(BASE_DIR / "translations" / locale / "LC_MESSAGES" / "messages.po", folder)
    return tmp_path


def _mo(root: Path, locale: str) -> Path:
    return root / locale / "LC_MESSAGES" / "messages.mo"


def test_a_fresh_checkout_starts_in_chinese(sources, tmp_path):
    config = type("Config", (TestingConfig,), {
        "BABEL_TRANSLATION_DIRECTORIES": str(sources), "INSTANCE_DIR": str(tmp_path / "i"),
        "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path}/db.sqlite"})
    app = create_app(config)
    assert all(_mo(sources, locale).stat().st_size for locale in LOCALES)
    with app.test_request_context("/"), force_locale("zh_Hans"):
        assert gettext("Not found") == "找不到页面"
    assert not list(sources.rglob(".messages-*"))  # nothing left half-written


def test_only_missing_or_stale_catalogs_are_compiled(sources):
    assert catalogs.ensure_compiled(sources) == list(LOCALES)
    assert catalogs.ensure_compiled(sources) == []
    po = sources / "zh_Hant" / "LC_MESSAGES" / "messages.po"
    earlier = po.stat().st_mtime - 10
    os.utime(_mo(sources, "zh_Hant"), (earlier, earlier))  # the catalog was edited since
    assert catalogs.ensure_compiled(sources) == ["zh_Hant"]
    _mo(sources, "en").write_bytes(b"")  # an interrupted copy
    assert catalogs.ensure_compiled(sources) == ["en"]


def test_the_app_refuses_to_start_when_it_cannot_compile(sources, tmp_path):
    _mo(sources, "zh_Hans").mkdir()  # in the way of the compiled file: cannot be written
    earlier = _mo(sources, "zh_Hans").stat().st_mtime - 10
    os.utime(_mo(sources, "zh_Hans"), (earlier, earlier))
    config = type("Config", (TestingConfig,), {
        "BABEL_TRANSLATION_DIRECTORIES": str(sources), "INSTANCE_DIR": str(tmp_path / "i"),
        "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path}/db.sqlite"})
    with pytest.raises(catalogs.CatalogsUnavailable, match="translate compile"):
        create_app(config)
    assert not list(sources.rglob(".messages-*"))
