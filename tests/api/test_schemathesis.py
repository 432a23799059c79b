"""Schemathesis against a live server: every operation of /api/v1/openapi.json with valid
and invalid data (and the links between operations, where the document has them), signed in
as a seeded household. No answer may be a server error or disagree with the document."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests import live
from tests.api.live_support import token_for

# A live server: with the other live tests, one after another (tests/conftest.py).
pytestmark = pytest.mark.xdist_group("redis")


@pytest.fixture(scope="module")
def server(database_url: str, tmp_path_factory: pytest.TempPathFactory
           ) -> Iterator[tuple[live.LiveServer, dict]]:
    workdir = tmp_path_factory.mktemp("api-fuzz")
    # The fuzzing sends many wrong receipts and sign-ins from one address: the limits are
    # tested elsewhere; tokens outlive the run.
    server, stop = live.start(database_url, workdir, workers=2, extra_env={
        "RECEIPT_RATE_LIMIT": "100000 per minute", "API_ACCESS_TOKEN_MINUTES": "60"})
    try:
        yield server, live.seed_votes(server, 4, votes=2, voted=0)
    finally:
        stop()


def test_schemathesis_finds_no_server_error_and_no_answer_outside_the_document(
        server: tuple[live.LiveServer, dict], tmp_path: Path) -> None:
    live_server, seeded = server
    token = token_for(live_server, seeded["users"][0])
    command = [
        str(live.VENV_BIN / "schemathesis"), "run", f"{live_server.url}/api/v1/openapi.json",
        "--header", f"Authorization: Bearer {token}",
        "--checks", "not_a_server_error,response_schema_conformance,"
                    "status_code_conformance,content_type_conformance",
        "--mode", "all", "--phases", "examples,coverage,fuzzing,stateful",
        "--max-examples", "15", "--workers", "1", "--seed", "20261204",
        "--exclude-path", "/api/v1/auth/logout",  # it would end the run's own token
        "--request-timeout", "30", "--no-color", "--max-time", "240",
        "--report-dir", str(tmp_path),
    ]
    # In the test's own directory: schemathesis keeps its example cache where it runs.
    run = subprocess.run(command, capture_output=True, text=True, timeout=600, cwd=tmp_path)
    print(run.stdout[-20000:])  # the summary, in the test's output
    print(run.stderr[-5000:])
    assert run.returncode == 0, "schemathesis found problems (see its summary above)"
