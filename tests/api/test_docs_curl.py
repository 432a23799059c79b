"""The API's documentation against a live server: the curl commands of docs/api.md, run in
order as written (a household signs in with its code, votes, checks its receipt), and the
Swagger UI page rendering every operation in chromium under the app's CSP."""

from __future__ import annotations

import json
import os
import re
import secrets
import subprocess
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests import live
from tests.api.live_support import issue_code

pytestmark = pytest.mark.xdist_group("redis")  # a live server: with the other live tests

DOC = live.ROOT / "docs" / "api.md"
CHROMIUM = Path("/usr/bin/chromium")


@pytest.fixture(scope="module")
def server(database_url: str, tmp_path_factory: pytest.TempPathFactory
           ) -> Iterator[live.LiveServer]:
    server, stop = live.start(database_url, tmp_path_factory.mktemp("api-docs"), workers=2)
    try:
        live.seed_votes(server, 3, votes=1)
        yield server
    finally:
        stop()


def curl_steps(text: str) -> list[tuple[str, str]]:
    """Each ``# step: NAME`` of the document's sh blocks with the command under it."""
    steps = []
    for block in re.findall(r"```sh\n(.*?)```", text, flags=re.S):
        found = re.match(r"# step: ([\w-]+)\n(curl .+)\n$", block)
        assert found, f"a sh block of {DOC.name} is not one '# step:' and one curl: {block!r}"
        steps.append((found.group(1), found.group(2)))
    return steps


def run(command: str, env: dict[str, str]) -> str:
    done = subprocess.run(["bash", "-c", command], env={**os.environ, **env},
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_the_curl_commands_of_the_documentation_work(server: live.LiveServer) -> None:
    steps = curl_steps(DOC.read_text(encoding="utf-8"))
    assert [name for name, _cmd in steps] == [
        "sign-in", "me", "list", "detail", "vote", "vote-again", "receipt", "proof", "refresh",
        "logout"]
    issued = issue_code(server)
    env = {"HOST": server.url, "CODE": issued["code"], "DEVICE": secrets.token_urlsafe(18),
           "KEY": str(uuid.uuid4())}
    answers: dict[str, Any] = {}
    for name, command in steps:
        out = run(command, env)
        answer = json.loads(out) if name != "logout" else out
        answers[name] = answer
        if name == "sign-in":
            assert answer["token_type"] == "Bearer" and answer["role"] == "resident", answer
            env.update(TOKEN=answer["access_token"], REFRESH=answer["refresh_token"])
        elif name == "me":
            assert answer["household"]["id"] == issued["household"]
        elif name == "list":
            assert answer["items"] and {c["stage"] for c in answer["items"]} == {"voting"}
            env["CONSULTATION"] = str(answer["items"][0]["id"])
        elif name == "detail":
            env.update(ITEM1=str(answer["items"][0]["id"]), ITEM2=str(answer["items"][1]["id"]))
        elif name == "vote":
            assert [c["choice"] for c in answer["ballot"]["choices"]] == ["agree", "abstain"]
            env["RECEIPT"] = answer["ballot"]["receipt"]
        elif name == "vote-again":
            assert answer == answers["vote"]  # the same key and body: the first answer
        elif name == "receipt":
            assert answer["receipt"] == env["RECEIPT"] and answer["version"] == 1
        elif name == "proof":
            assert answer["error"]["status"] == 409  # not counted yet
        elif name == "refresh":
            assert answer["access_token"] != env["TOKEN"]
            env["TOKEN"] = answer["access_token"]
        elif name == "logout":
            assert answer == "204"
    gone = run('curl -s -H "Authorization: Bearer $TOKEN" "$HOST/api/v1/me"', env)
    assert json.loads(gone)["error"]["code"] == "unauthenticated"


@pytest.mark.skipif(not CHROMIUM.exists(), reason="chromium is not installed")
def test_the_documentation_page_renders_every_operation_under_the_csp(
        server: live.LiveServer) -> None:
    from playwright.sync_api import sync_playwright

    from tests.e2e.conftest import CHROMIUM_ARGS

    problems: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1200, "height": 900})
            page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
            page.on("requestfailed", lambda r: problems.append(f"failed: {r.url}"))
            response = page.goto(f"{server.url}/api/v1/docs")
            assert response is not None and response.status == 200
            csp = response.headers["content-security-policy"]
            assert "script-src 'self'" in csp and "unsafe" not in csp
            page.wait_for_selector(".opblock", timeout=30000)
            summaries = page.locator(".opblock-summary-path").all_inner_texts()
        finally:
            browser.close()
    assert "/api/v1/consultations/{consultation_id}/ballot" in " ".join(summaries)
    with urllib.request.urlopen(f"{server.url}/api/v1/openapi.json", timeout=30) as answer:
        document = json.load(answer)
    operations = sum(1 for item in document["paths"].values() for key in item
                     if key in {"get", "put", "post", "delete", "patch"})
    assert len(summaries) == operations  # every operation of the document
    assert not [p for p in problems if "Content Security Policy" in p or "Refused" in p], problems
