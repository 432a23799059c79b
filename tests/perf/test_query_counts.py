"""The main pages and the resident's vote path run a fixed number of SQL statements, whatever
the number of households, ballots, items, opinions, objections and audit events: each page is
measured on a small and on a larger compound, and the counts must be equal (no N+1) and within
a budget."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import event

from consult.ballots import service as ballots
from consult.ballots.models import BallotChannel
from consult.consultations import opinions
from consult.consultations.states import Action
from consult.core.models import utcnow
from consult.extensions import db
from consult.notices import service as notices
from consult.notices.models import NoticeKind
from consult.process import workflow
from tests import factories

EN = {"Accept-Language": "en"}

# Statements per request, including the session's user and the savepoints of the test
# transaction, as measured (the confirmation takes one more on PostgreSQL: its shared lock on
# the consultation). A page over budget, or one whose count grows with the data, fails.
# Items come with their attachments (one statement wherever items are loaded) and a
# consultation's page lists its own; the audit list names rooms, titles and items, one
# statement per kind of name. Every page a signed-in person sees counts their unread
# notifications for the header: one COUNT. A consultation's page and a household's home look
# up the consultation's questionnaire (one statement; at home, one per consultation collecting
# opinions).
BUDGET = {
    "home (anonymous)": 3,
    # The to-do list: the member's scopes, one statement per kind of work (6, defect reports
    # included) and one for the consultations they concern.
    "home (committee)": 13,
    "home (resident)": 15,
    "consultation draft": 18,
    # Its committee's reminder for the WeChat group counts the households that gave an
    # opinion and those asked, in one statement.
    "consultation soliciting": 19,
    "consultation proposing": 18,
    "consultation discussing": 19,
    "consultation voting": 25,
    "consultation resolution_public": 28,
    "consultation implementing": 22,
    "consultation voting (resident)": 18,
    "ballots list": 13,
    # The live count as kept between views (the steady state): the version of the ballots
    # and the kept count in one statement, no counting.
    "tally (live)": 12,
    # The first view after ballots changed counts them: the version, the count, and two
    # short transactions beside the page's (claiming the count, keeping it), three statements
    # each here (savepoints; on a server BEGIN and the statement).
    "tally (live, counted anew)": 22,
    "tally (frozen)": 7,
    "notice": 9,
    "households list": 12,
    "compounds list": 7,
    "audit list": 9,
    "opinions list": 11,
    "vote form": 9,
    "vote review": 7,
    "vote confirm": 13,  # 12 on SQLite; PostgreSQL share-locks the consultation
    "receipt": 10,
    # Through the API: the token's session and user in one statement; the vote reads the
    # items and the roll entry before its write lock, and answers without reading back.
    "API ballot": 8,
    "API vote": 23,  # 22 on SQLite, as the confirmation
}


@dataclass(frozen=True)
class Size:
    buildings: int
    per_building: int
    items: int
    opinions: int
    objections: int


SMALL = Size(buildings=2, per_building=2, items=1, opinions=1, objections=1)
LARGE = Size(buildings=3, per_building=6, items=4, opinions=7, objections=4)


@contextmanager
def counting() -> Iterator[list[str]]:
    """Every statement sent to the database meanwhile."""
    statements: list[str] = []

    def before(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(statement)

    event.listen(db.engine, "before_cursor_execute", before)
    try:
        yield statements
    finally:
        event.remove(db.engine, "before_cursor_execute", before)


def build(size: Size) -> dict[str, Any]:
    """A compound of ``size`` with a consultation in each stage, opinions, ballots (half the
    roll in the open vote), a resolution notice and the audit events all of this wrote."""
    compound = factories.make_compound()
    households = []
    for b in range(size.buildings):
        building = factories.make_building(compound, f"{b + 1}号楼")
        households += [factories.make_household(building, room=f"{n // 2 + 1}0{n % 2 + 1}",
                                                owner_name=f"业主{b}{n}",
                                                area_dm2=6000 + 10 * n)
                       for n in range(size.per_building)]
    resident_home = households[-1]
    stages = {}
    for stage in ("draft", "soliciting", "proposing", "discussing", "resolution_public",
                  "implementing"):
        c = factories.make_consultation(compound, items=size.items, title=f"方案{stage}")
        factories.walk_to(c, stage)
        stages[stage] = c
    for n in range(size.opinions):
        opinions.submit(None, stages["soliciting"], households[n % len(households)],
                        opinions.opinion_data(category="roads", text=f"意见{n}"))
    voting = factories.make_consultation(compound, items=size.items, title="方案voting")
    factories.walk_to(voting, "discussing")
    voting.vote_deadline = utcnow() + timedelta(days=7)
    workflow.apply(voting, Action.OPEN_VOTE, None)
    for household in households[: len(households) // 2]:
        ballots.cast(None, voting, household, {i.id: "agree" for i in voting.items},
                     BallotChannel.PAPER)
    stages["voting"] = voting
    notice = notices.current_notice(stages["resolution_public"], NoticeKind.RESOLUTION)
    assert notice is not None
    for n in range(size.objections):
        notices.file_objection(None, notice, households[n], f"异议{n}")
    return {"compound": compound, "stages": stages, "resident_home": resident_home,
            "api_home": households[len(households) // 2], "notice": notice}


def measure(client: Any, login_as: Callable[..., Any], world: dict[str, Any]
            ) -> dict[str, list[str]]:
    """The statements of each page and step, by name."""
    stages, compound = world["stages"], world["compound"]
    voting = stages["voting"]
    found: dict[str, list[str]] = {}

    def get(name: str, url: str, status: int = 200, headers: dict[str, str] = EN,
            **kwargs: Any) -> Any:
        with counting() as statements:
            r = client.get(url, headers=headers, **kwargs)
        assert r.status_code == status, (name, r.status_code)
        found[name] = statements
        return r

    def post(name: str, url: str, data: dict[str, str], status: int) -> Any:
        token = client.csrf_token()
        with counting() as statements:
            r = client.post(url, data={**data, "csrf_token": token}, headers=EN)
        assert r.status_code == status, (name, r.status_code, r.text[:500])
        found[name] = statements
        return r

    get("home (anonymous)", "/")
    login_as("committee", compound=compound)
    get("home (committee)", "/")
    for stage, c in stages.items():
        get(f"consultation {stage}", f"/consultations/{c.id}")
    get("ballots list", f"/consultations/{voting.id}/ballots")
    get("tally (live, counted anew)", f"/consultations/{voting.id}/tally")
    # What a request keeps is rolled back with its nested transaction in these tests: the
    # count is kept outside the request, as an earlier view would have kept it.
    ballots.current_tally(voting, live=True)
    get("tally (live)", f"/consultations/{voting.id}/tally")
    get("tally (frozen)", f"/consultations/{stages['resolution_public'].id}/tally")
    get("notice", f"/notices/{world['notice'].id}")
    get("households list", f"/registry/compounds/{compound.id}")
    get("compounds list", "/registry/")
    get("audit list", "/audit/")
    get("opinions list", f"/consultations/{stages['soliciting'].id}/opinions")
    client.post("/logout")

    login_as("resident", household=world["resident_home"])
    get("home (resident)", "/")
    get("consultation voting (resident)", f"/consultations/{voting.id}")
    answers = {f"item_{item.id}": "disagree" for item in voting.items}
    get("vote form", f"/consultations/{voting.id}/vote")
    review = post("vote review", f"/consultations/{voting.id}/vote", answers, 200)
    submission = re.search(r'name="submission" type="hidden" value="([^"]+)"', review.text)
    assert submission is not None
    post("vote confirm", f"/consultations/{voting.id}/vote/confirm",
         {**answers, "submission": submission.group(1)}, 302)
    get("receipt", f"/consultations/{voting.id}/ballot")
    client.post("/logout")

    # A household that has not voted yet, through the API (bearer token, no cookie).
    from consult.accounts import tokens

    household = world["api_home"]
    user = factories.make_user("resident", household=household)
    bearer = {"Authorization": f"Bearer {tokens.issue(user, tokens.API_CODE).access_token}",
              **EN}
    path = f"/api/v1/consultations/{voting.id}/ballot"
    get("API ballot", path, headers=bearer)
    with counting() as statements:
        r = client.put(path, headers={**bearer, "Idempotency-Key": f"perf-{household.id}-0001"},
                       json={"choices": [{"item_id": item.id, "choice": "agree"}
                                         for item in voting.items]})
    assert r.status_code == 200, r.text[:500]
    found["API vote"] = statements
    return found


@pytest.fixture
def measured(client: Any, login_as: Callable[..., Any]) -> tuple[dict[str, list[str]], ...]:
    return tuple(measure(client, login_as, build(size)) for size in (SMALL, LARGE))


def test_pages_run_as_many_statements_for_a_large_compound_as_for_a_small_one(measured):
    small, large = measured
    assert set(small) == set(large) == set(BUDGET)
    grown = {name: (len(small[name]), len(large[name])) for name in BUDGET
             if len(small[name]) != len(large[name])}
    assert not grown, "\n".join(
        f"{name}: {a} → {b} statements; last ones:\n  " + "\n  ".join(
            s[:160] for s in large[name][-5:]) for name, (a, b) in grown.items())


def test_pages_stay_within_their_statement_budget(measured):
    _small, large = measured
    over = {name: len(large[name]) for name in BUDGET if len(large[name]) > BUDGET[name]}
    assert not over, over


def test_the_notice_shows_the_households_appendix_a_page_at_a_time(app, client, compound):
    """The resolution notice of an open ballot lists every household; the web page shows one
    page of that list at a time, and the pages together hold every household once."""
    c = factories.make_consultation(compound, items=1)
    factories.walk_to(c, "resolution_public")
    notice = notices.current_notice(c, NoticeKind.RESOLUTION)
    households = notices.content_of(notice)["households"]
    assert len(households) == 8
    rows = re.compile(r"<tr[^>]*><td[^>]*>([^<]+)</td><td[^>]*>[^<]*</td><td[^>]*>([^<]+)</td>")
    app.config["PAGE_SIZE"] = 3
    try:
        pages = [client.get(f"/notices/{notice.id}?page={n}", headers=EN).text
                 for n in (1, 2, 3)]
    finally:
        app.config["PAGE_SIZE"] = 50
    shown = [row for page in pages for row in rows.findall(page)]
    assert [len(rows.findall(page)) for page in pages] == [3, 3, 2]
    assert shown == [(h["building"], h["room"]) for h in households]
    assert 'rel="next"' in pages[0] and 'rel="next"' not in pages[2]


def test_the_compounds_list_is_paginated(app, client, login_as):
    """A city has thousands of compounds: the registry's list shows a page at a time, in
    order, and the pages together hold each compound once."""
    for n in range(7):
        factories.make_compound(f"小区{n:02d}", community=factories.make_community(f"社区{n}"))
    login_as("admin")
    names = re.compile(r'/registry/compounds/\d+">(小区\d\d)</a>')
    app.config["PAGE_SIZE"] = 3
    try:
        pages = [client.get(f"/registry/?page={n}", headers=EN).text for n in (1, 2, 3)]
    finally:
        app.config["PAGE_SIZE"] = 50
    assert [names.findall(page) for page in pages] == [
        ["小区00", "小区01", "小区02"], ["小区03", "小区04", "小区05"], ["小区06"]]
    assert 'rel="next"' in pages[1] and 'rel="next"' not in pages[2]
