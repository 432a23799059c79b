"""Browser tests: one live server (gunicorn, 2 workers) on a fresh database of the suite's kind,
seeded with the demo data and the small world of ``world.py``; one headless Debian chromium
driven by Playwright; residents on a phone, staff on a desktop.

Screenshots of every step go to test-artifacts/e2e/<test>/, and a failing test also leaves
a picture of each page it had open.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, Playwright, sync_playwright

from tests import live
from tests.e2e.support import Device, NewPage, Shots, artefact_folder, open_context
from tests.e2e.world import World, build

CHROMIUM = Path(os.environ.get("E2E_CHROMIUM", "/usr/bin/chromium"))
# Headless in a container, and nothing that phones home or waits for the network.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run",
                 "--disable-quic"]


@pytest.fixture(autouse=True)
def _isolation() -> Iterator[None]:
    """Replaces the suite's per-test transaction: browser tests never touch the suite's own
    database (the live server has a fresh one), so there is nothing to roll back or wipe."""
    yield


@pytest.fixture(scope="session")
def server(database_url: str, tmp_path_factory: pytest.TempPathFactory
           ) -> Iterator[live.LiveServer]:
    """gunicorn on a fresh database (SQLite, or PostgreSQL when the suite runs on it), seeded
    with the demo data, in Simplified Chinese as the flows' users read it."""
    server, stop = live.start(database_url, Path(tmp_path_factory.mktemp("e2e")), workers=2)
    try:
        seeded = server.flask("demo", "seed", lang="zh_Hans")
        assert seeded.returncode == 0, seeded.stdout + seeded.stderr
        yield server
    finally:
        stop()


@pytest.fixture(scope="session")
def world(server: live.LiveServer) -> World:
    """The ids of the demo's and the flows' objects (see world.py)."""
    return build(server)


@pytest.fixture(scope="session")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as p:
        yield p


@pytest.fixture(scope="session")
def browser(playwright: Playwright) -> Iterator[Browser]:
    """One chromium for the whole session; each test gets fresh contexts (cookies) in it."""
    assert CHROMIUM.exists(), f"{CHROMIUM} is missing: run scripts/setup.sh --test"
    browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
    yield browser
    browser.close()


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]
                              ) -> Iterator[Any]:
    """Keep each phase's report on the test, so fixtures can tell whether it failed."""
    report = yield
    setattr(item, f"report_{report.when}", report)
    return report


@pytest.fixture
def shots(request: pytest.FixtureRequest) -> Shots:
    """``shots(page, "step")`` saves a full-page screenshot as a test artefact."""
    return Shots(artefact_folder(request.node.name))


@pytest.fixture
def new_page(request: pytest.FixtureRequest, browser: Browser, server: live.LiveServer,
             shots: Shots) -> Iterator[NewPage]:
    """``new_page("phone")`` opens a page in a fresh context (see ``open_context``);
    ``new_page(context=...)`` opens one in a context the test already has. When the test
    fails, each page still open is pictured; everything opened here is closed afterwards."""
    contexts: list[BrowserContext] = []
    pages: list[Page] = []

    def open_page(device: Device = "desktop", *, context: BrowserContext | None = None,
                  **options: Any) -> Page:
        if context is None:
            context = open_context(browser, server, device, **options)
            contexts.append(context)
        page = context.new_page()
        pages.append(page)
        return page

    yield open_page
    report = getattr(request.node, "report_call", None)
    for page in pages:
        if not page.is_closed():
            if report is not None and report.failed:
                shots(page, "failed", full_page=False)  # what was on screen, quickly
            page.close()
    for context in contexts:
        context.close()
