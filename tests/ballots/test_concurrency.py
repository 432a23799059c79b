"""50 households each send 4 ballots at the same moment to a real server: exactly 50 ballots,
the last submission of each counted once, no server error, and an unbroken audit chain.

Runs against gunicorn with 4 workers on the suite's kind of database (SQLite or PostgreSQL).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from tests import live

HOUSEHOLDS = 50
SUBMISSIONS = 4
CHOICES = ("agree", "disagree", "abstain", "agree")


@pytest.fixture(scope="module")
def server(database_url: str, tmp_path_factory: pytest.TempPathFactory
           ) -> Iterator[live.LiveServer]:
    server, stop = live.start(database_url, Path(tmp_path_factory.mktemp("live")))
    try:
        yield server
    finally:
        stop()


def test_fifty_households_four_simultaneous_ballots_each(server: live.LiveServer) -> None:
    seeded = live.seed_votes(server, HOUSEHOLDS)
    consultation, items = seeded["votes"][0]["consultation"], seeded["votes"][0]["items"]

    def prepare(username: str) -> list[tuple[live.Browser, dict[str, Any]]]:
        """Sign in and go through the review screen four times: four ready-to-send forms."""
        browser = live.Browser(server.url)
        browser.login(username)
        return [(browser, browser.review_vote(consultation, {
            item: CHOICES[(n + k) % 4] for k, item in enumerate(items)}))
            for n in range(SUBMISSIONS)]

    with ThreadPoolExecutor(max_workers=16) as pool:
        prepared = [form for forms in pool.map(prepare, seeded["users"]) for form in forms]

    def send(form: tuple[live.Browser, dict[str, Any]]) -> int:
        browser, data = form
        return browser.post(live.confirm_path(consultation), data).status

    with ThreadPoolExecutor(max_workers=64) as pool:  # all 200 at once, as far as 64 threads go
        statuses = Counter(pool.map(send, prepared))

    assert statuses == Counter({302: HOUSEHOLDS * SUBMISSIONS}), statuses
    counts = server.python(f"""
from sqlalchemy import func, select
from consult.ballots.models import Ballot, BallotChoice
from consult.audit.models import AuditEvent
result = {{
    "ballots": db.session.scalar(select(func.count(Ballot.id)).where(
        Ballot.consultation_id == {consultation})),
    "versions": sorted(set(db.session.scalars(select(Ballot.version)))),
    "choices": db.session.scalar(select(func.count()).select_from(BallotChoice)),
    "events": db.session.scalar(select(func.count(AuditEvent.seq)).where(
        AuditEvent.action.in_(["ballot.cast", "ballot.changed"]))),
}}
""")
    assert counts == {"ballots": HOUSEHOLDS, "versions": [SUBMISSIONS],
                      "choices": HOUSEHOLDS * len(items),
                      "events": HOUSEHOLDS * SUBMISSIONS}
    verify = server.flask("audit", "verify")
    assert verify.returncode == 0, verify.stdout + verify.stderr
