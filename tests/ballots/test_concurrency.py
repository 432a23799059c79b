"""50 households each send 4 ballots at the same moment to a real server: exactly 50 ballots,
the last submission of each counted once, no server error, and an unbroken audit chain.

Runs against gunicorn with 4 workers on the suite's kind of database (SQLite or PostgreSQL).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from tests import live

HOUSEHOLDS = 50
SUBMISSIONS = 4
PASSWORD = "concurrency-test-password"

SEED = f"""
from datetime import timedelta
from werkzeug.security import generate_password_hash
from consult.accounts.models import User
from consult.consultations import service, workflow
from consult.consultations.states import Action
from consult.core.models import utcnow
from consult.registry import service as registry
community = registry.create_community(None, "并发社区")
compound = registry.create_compound(None, community, "并发小区")
building = registry.create_building(None, compound, "1号楼")
users = []
for n in range({HOUSEHOLDS}):
    h = registry.create_household(None, building, registry.household_data(
        unit="1", floor=str(n // 4 + 1), room=str(101 + n), area="60.5", owner_name=f"业主{{n}}",
        owner_key=None, phone=None))
    db.session.add(User(username=f"h{{n:03d}}", display_name="x", role="resident", household=h,
                        password_hash=generate_password_hash("{PASSWORD}", "pbkdf2:sha256:1000")))
    users.append(f"h{{n:03d}}")
c = service.create(None, compound, service.settings(
    title="并发测试", summary="", rule_code="household_majority", secrecy="open",
    locale="zh_Hans", solicitation_deadline=None, vote_deadline=None, publicity_days=7,
    proxy_cap=None))
for title in ("管道", "路面"):
    service.add_item(None, c, service.item_data(title=title, description="", cost="100"))
for action in (Action.START_SOLICITING, Action.START_PROPOSING, Action.START_DISCUSSION):
    workflow.apply(c, action, None)
c.vote_deadline = utcnow() + timedelta(days=1)
workflow.apply(c, Action.OPEN_VOTE, None)
db.session.commit()
result = {{"consultation": c.id, "items": [i.id for i in c.items], "users": users}}
"""

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
    seeded = server.python(SEED)
    consultation, items, users = seeded["consultation"], seeded["items"], seeded["users"]
    vote = f"/consultations/{consultation}/vote"

    def prepare(username: str) -> list[tuple[live.Browser, dict[str, Any]]]:
        """Sign in and go through the review screen four times: four ready-to-send forms."""
        browser = live.Browser(server.url)
        browser.login(username, PASSWORD)
        forms = []
        for n in range(SUBMISSIONS):
            csrf = browser.csrf(browser.get(vote).text)
            choices = {f"item_{item}": CHOICES[(n + k) % 4] for k, item in enumerate(items)}
            review = browser.post(vote, {"csrf_token": csrf, **choices})
            assert review.status == 200, review.status
            token = re.search(r'name="submission" type="hidden" value="([^"]+)"', review.text)
            forms.append((browser, {"csrf_token": csrf, "submission": token.group(1),
                                    **choices}))
        return forms

    with ThreadPoolExecutor(max_workers=16) as pool:
        prepared = [form for forms in pool.map(prepare, users) for form in forms]

    def send(form: tuple[live.Browser, dict[str, Any]]) -> int:
        browser, data = form
        return browser.post(f"{vote}/confirm", data).status

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
