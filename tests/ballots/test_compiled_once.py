"""Templates and message catalogs are compiled once per process, not per request: a page
rendered again neither reads a template file nor parses a catalog (docs/benchmarks.md)."""

from __future__ import annotations

import babel.support
import jinja2

from config import DevelopmentConfig, ProductionConfig

EN = {"Accept-Language": "en"}
ZH = {"Accept-Language": "zh-CN"}


def test_templates_are_not_checked_for_changes_outside_debugging():
    # Flask checks template files' times on every render only with auto_reload (debug).
    for config in (DevelopmentConfig, ProductionConfig):
        assert getattr(config, "TEMPLATES_AUTO_RELOAD", None) in (None, False)
        assert not getattr(config, "DEBUG", False)


def test_a_page_rendered_again_loads_no_template_and_no_catalog(app, client, login_as, voting,
                                                               compound, monkeypatch):
    login_as("resident", household=compound.buildings[0].households[0])
    path = f"/consultations/{voting.id}/vote"
    app.jinja_env.auto_reload = False  # as outside debugging (the test above)
    for headers in (EN, ZH):  # both languages' catalogs and the page's templates, once
        assert client.get(path, headers=headers).status_code == 200
    loads: list[str] = []
    real_source = jinja2.FileSystemLoader.get_source
    real_load = babel.support.Translations.load.__func__  # type: ignore[attr-defined]

    def get_source(self, environment, template):
        loads.append(template)
        return real_source(self, environment, template)

    def load(cls, *args, **kwargs):
        loads.append("catalog")
        return real_load(cls, *args, **kwargs)

    monkeypatch.setattr(jinja2.FileSystemLoader, "get_source", get_source)
    monkeypatch.setattr(babel.support.Translations, "load", classmethod(load))
    for headers in (EN, ZH, EN):
        page = client.get(path, headers=headers)
        assert page.status_code == 200 and 'type="radio"' in page.text
    assert loads == []
