"""Schemathesis against a live server: every operation of /api/v1/openapi.json with valid
and invalid data (and the links between operations, where the document has them). No answer
may be a server error or disagree with the document.

The server holds the demo data (consultations at every stage, notices, opinions, comments,
defect reports, a questionnaire, paper entries), and most generated path ids are ids that
exist there (``dictionaries`` of the run's configuration; the rest are random), so the
operations are reached past their 404s. It runs twice: signed in as the demo household's
resident, then as the demo committee member, whose staff operations a resident only sees
refused. Each run's summary goes to ``test-artifacts/summaries/`` and is printed at the end of
the test session (``tests/conftest.py``), so CI's output shows it whether the run passed or
not.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from consult.demo import DEMO_PASSWORDS
from tests import live
from tests.api.live_support import token_for

# A live server: with the other live tests, one after another (tests/conftest.py).
pytestmark = pytest.mark.xdist_group("redis")

SUMMARIES = Path(__file__).resolve().parents[2] / "test-artifacts" / "summaries"

# Path parameter → the ids that exist (a query in the server's environment). Parameters the
# document names but this table does not are generated at random only.
KNOWN_IDS = {
    "consultation_id": "SELECT id FROM consultation",
    "item_id": "SELECT id FROM item",
    "notice_id": "SELECT id FROM notice",
    "opinion_id": "SELECT id FROM opinion",
    "report_id": "SELECT id FROM defect_report",
    "household_id": "SELECT household_id FROM roll_entry",
    "compound_id": "SELECT id FROM compound",
    "notification_id": "SELECT id FROM notification",
    "objection_id": "SELECT id FROM objection",
    "comment_id": "SELECT id FROM comment",
    "entry_id": "SELECT id FROM ballot_entry WHERE first_id IS NULL",
    "code": "SELECT verify_code FROM notice",
}

READ_IDS = """
from sqlalchemy import text
result = {}
for name, query in QUERIES.items():
    try:
        values = sorted({row[0] for row in db.session.execute(text(query))})
    except Exception:  # a table this version does not have
        db.session.rollback()
        values = []
    result[name] = values[:60]
"""


@pytest.fixture(scope="module")
def server(database_url: str, tmp_path_factory: pytest.TempPathFactory
           ) -> Iterator[tuple[live.LiveServer, dict[str, list]]]:
    workdir = tmp_path_factory.mktemp("api-fuzz")
    # The fuzzing sends many wrong receipts and sign-ins from one address: the limits are
    # tested elsewhere; tokens outlive the run.
    server, stop = live.start(database_url, workdir, workers=2, extra_env={
        "RECEIPT_RATE_LIMIT": "100000 per minute", "API_ACCESS_TOKEN_MINUTES": "60"})
    try:
        seeded = server.flask("demo", "seed")
        assert seeded.returncode == 0, seeded.stderr
        ids = server.python(f"QUERIES = {KNOWN_IDS!r}\n" + READ_IDS)
        yield server, ids
    finally:
        stop()


def _config(ids: dict[str, list], path: Path) -> Path:
    """A schemathesis configuration whose path ids are, most of the time, ids that exist."""
    lines = []
    for name, values in ids.items():
        if values:
            lines += [f"[dictionaries.{name}]", f"values = {values!r}".replace("'", '"'), ""]
    lines.append("[parameters]")
    lines += [f'"path.{name}" = {{ dictionary = "{name}", probability = 0.8 }}'
              for name, values in ids.items() if values]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _summary(output: str) -> str:
    """The run's closing part (warnings and summary), without the progress lines."""
    start = output.find("=== WARNINGS ===")
    if start < 0:
        start = output.find("=== SUMMARY ===")
    start = output.rfind("\n", 0, start) + 1 if start >= 0 else max(0, len(output) - 6000)
    return re.sub(r"\n{3,}", "\n\n", output[start:]).strip() + "\n"


@pytest.mark.parametrize(("username", "seconds"), [("resident", 150), ("committee", 90)])
def test_schemathesis_finds_no_server_error_and_no_answer_outside_the_document(
        server: tuple[live.LiveServer, dict[str, list]], tmp_path: Path, database_url: str,
        username: str, seconds: int) -> None:
    live_server, ids = server
    token = token_for(live_server, username, DEMO_PASSWORDS[username])
    config = _config(ids, tmp_path / "schemathesis.toml")
    command = [
        str(live.VENV_BIN / "schemathesis"), "--config-file", str(config), "run",
        f"{live_server.url}/api/v1/openapi.json",
        "--header", f"Authorization: Bearer {token}",
        "--checks", "not_a_server_error,response_schema_conformance,"
                    "status_code_conformance,content_type_conformance",
        "--mode", "all", "--phases", "examples,coverage,fuzzing,stateful",
        "--max-examples", "15", "--workers", "1", "--seed", "20261204",
        "--exclude-path", "/api/v1/auth/logout",  # it would end the run's own token
        "--request-timeout", "30", "--no-color", "--max-time", str(seconds),
        "--report-dir", str(tmp_path),
    ]
    # In the test's own directory: schemathesis keeps its example cache where it runs.
    run = subprocess.run(command, capture_output=True, text=True, timeout=600, cwd=tmp_path)
    backend = "postgresql" if database_url.startswith("postgresql") else "sqlite"
    SUMMARIES.mkdir(parents=True, exist_ok=True)
    (SUMMARIES / f"schemathesis-{backend}-{username}.txt").write_text(
        f"schemathesis as the demo {username} ({backend}), exit code {run.returncode}\n\n"
        + _summary(run.stdout), encoding="utf-8")
    print(run.stdout[-20000:])  # everything, in the test's own output when it fails
    print(run.stderr[-5000:])
    assert run.returncode == 0, "schemathesis found problems (see its summary above)"
