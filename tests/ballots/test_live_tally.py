"""The live count of the results page is kept between views (``ballots.live``): it equals a
full recount whenever ballots were cast, changed or entered on paper; it is counted anew at
most every LIVE_TALLY_MAX_AGE_S seconds, by one request at a time; it is kept per
consultation and round; and the published result never comes from it."""

from __future__ import annotations

import re
import threading
import time
from datetime import timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from consult.ballots import entries, live
from consult.ballots import service as ballots
from consult.ballots.explain import tally_json
from consult.ballots.models import BallotChannel, LiveTally
from consult.consultations.states import Action
from consult.core.errors import Conflict, PermissionDenied, ValidationFailed
from consult.core.models import utcnow
from consult.extensions import db
from consult.process import workflow
from tests import factories

EN = {"Accept-Language": "en"}
CHOICES = ["agree", "disagree", "abstain"]


def answers(c: Any, values: list[str]) -> dict[int, str]:
    return {item.id: value for item, value in zip(c.items, values, strict=True)}


def kept(c: Any) -> dict[str, Any]:
    """The live count as the page shows it, without its time."""
    data = ballots.current_tally(c, live=True)
    assert data is not None
    return {k: v for k, v in data.items() if k not in ("counted_at", "up_to_date")}


def recount(c: Any) -> dict[str, Any] | None:
    return ballots.current_tally(c)  # every ballot counted again


def open_vote(compound: Any, items: int = 2, double_entry: bool = False) -> Any:
    c = factories.make_consultation(compound, items=items)
    factories.walk_to(c, "discussing")
    c.vote_deadline = utcnow() + timedelta(days=7)
    c.double_entry = double_entry
    workflow.apply(c, Action.OPEN_VOTE, None)
    return c


@pytest.fixture
def counting(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """How many times the ballots were counted for a live count (one entry per count)."""
    calls: list[int] = []
    original = live._count

    def counted(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(live, "_count", counted)
    return calls


@pytest.fixture
def clock(app: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    """A live count kept 5 seconds, and the time it sees."""

    class Clock:
        offset = timedelta(0)

        def now(self) -> Any:
            return utcnow() + self.offset

        def advance(self, seconds: float) -> None:
            self.offset += timedelta(seconds=seconds)

    c = Clock()
    monkeypatch.setitem(app.config, "LIVE_TALLY_MAX_AGE_S", 5)
    monkeypatch.setattr(live, "utcnow", c.now)
    return c


# --- the same as a full recount -------------------------------------------------------------

OPERATIONS = st.lists(st.tuples(
    st.sampled_from(["online", "paper", "second", "look"]),
    st.integers(0, 7),
    st.lists(st.sampled_from(CHOICES), min_size=2, max_size=2)), max_size=14)


def test_the_live_count_equals_a_full_recount_after_random_ballots(compound):
    households = [h for b in compound.buildings for h in b.households]
    members = [factories.make_user("committee", compound=compound) for _ in range(2)]

    @settings(max_examples=25, deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow])
    @given(st.booleans(), OPERATIONS)
    def check(double_entry: bool, operations: list[tuple[str, int, list[str]]]) -> None:
        c = open_vote(compound, double_entry=double_entry)
        assert kept(c) == recount(c)
        for kind, index, values in operations:
            household = households[index]
            chosen = answers(c, values)
            try:
                with db.session.begin_nested():  # a refused entry leaves nothing behind
                    if kind == "online":  # a household's own ballot, new or changed
                        ballots.cast(None, c, household, chosen, BallotChannel.ONLINE)
                    elif kind in ("paper", "second"):  # a first or a second entry of a paper
                        entries.enter(members[kind == "second"], c, household,
                                      entries.Paper(BallotChannel.PAPER, chosen))
            except (Conflict, PermissionDenied, ValidationFailed):
                continue
            if kind == "look" or index % 2:
                assert kept(c) == recount(c)
        assert kept(c) == recount(c)
        assert ballots.current_tally(c, live=True)["up_to_date"] is True

    check()


def test_the_kept_count_is_shown_while_no_ballot_changed(voting, compound, counting):
    h = compound.buildings[0].households[0]
    ballots.cast(None, voting, h, answers(voting, ["agree", "agree"]), BallotChannel.ONLINE)
    first = ballots.current_tally(voting, live=True)
    second = ballots.current_tally(voting, live=True)
    assert len(counting) == 1
    assert first == second and second["up_to_date"] is True
    assert second["participation"]["households"] == 1
    # A changed ballot moves the version: counted again (no delay in the tests' settings).
    ballots.cast(None, voting, h, answers(voting, ["disagree", "agree"]),
                 BallotChannel.ONLINE)
    assert kept(voting) == recount(voting) and len(counting) == 2
    assert kept(voting)["items"][0]["counts"]["disagree"] == 1


def test_a_new_ballot_shows_once_the_kept_count_is_older_than_the_max_age(
        voting, compound, counting, clock):
    households = compound.buildings[0].households
    ballots.cast(None, voting, households[0], answers(voting, ["agree", "agree"]),
                 BallotChannel.ONLINE)
    assert ballots.current_tally(voting, live=True)["participation"]["households"] == 1
    ballots.cast(None, voting, households[1], answers(voting, ["agree", "agree"]),
                 BallotChannel.ONLINE)
    clock.advance(4)
    stale = ballots.current_tally(voting, live=True)
    assert stale["participation"]["households"] == 1 and stale["up_to_date"] is False
    assert len(counting) == 1  # not counted again within the max age
    clock.advance(1.5)
    fresh = ballots.current_tally(voting, live=True)
    assert fresh["participation"]["households"] == 2 and fresh["up_to_date"] is True
    assert len(counting) == 2 and kept(voting) == recount(voting)
    assert fresh["counted_at"] > stale["counted_at"]
    # Nothing changed since: kept however old, and exact.
    clock.advance(60)
    assert ballots.current_tally(voting, live=True)["up_to_date"] is True and len(counting) == 2


def test_nothing_is_kept_across_consultations(compound, counting):
    one, other = open_vote(compound), open_vote(compound)
    h = compound.buildings[0].households[0]
    ballots.cast(None, one, h, answers(one, ["agree", "agree"]), BallotChannel.ONLINE)
    assert kept(one) == recount(one) and kept(other) == recount(other)
    assert kept(other)["participation"]["households"] == 0
    ballots.cast(None, other, h, answers(other, ["disagree", "disagree"]),
                 BallotChannel.ONLINE)
    assert kept(other) == recount(other) and kept(one) == recount(one)
    assert kept(one)["items"][0]["counts"]["disagree"] == 0
    rows = db.session.execute(select(LiveTally.consultation_id, LiveTally.round)).all()
    assert sorted(rows) == sorted([(one.id, 1), (other.id, 1)])


def test_a_new_round_starts_from_its_own_count(compound):
    c = factories.make_consultation(compound, items=1)
    now = factories.walk_to(c, "voting", choices="disagree")
    voted = kept(c)
    assert voted == recount(c) and voted["participation"]["households"] == 8
    workflow.apply(c, Action.CLOSE_VOTE, None, now=now)
    assert not ballots.vote_result(c).passed
    workflow.apply(c, Action.NEW_ROUND, None, reason="再议", now=now)
    c.vote_deadline = utcnow() + timedelta(days=7)
    workflow.apply(c, Action.OPEN_VOTE, None)
    assert c.round == 2
    second = kept(c)
    assert second == recount(c) and second["round"] == 2
    assert second["participation"]["households"] == 0
    h = compound.buildings[1].households[2]
    ballots.cast(None, c, h, answers(c, ["agree"]), BallotChannel.ONLINE)
    assert kept(c) == recount(c) and kept(c)["participation"]["households"] == 1
    assert db.session.scalar(select(func.count()).select_from(LiveTally)) == 2


def test_the_published_result_is_the_full_count_not_the_kept_one(compound, clock):
    c = factories.make_consultation(compound, items=2)
    factories.walk_to(c, "discussing")
    c.vote_deadline = utcnow() + timedelta(days=7)
    workflow.apply(c, Action.OPEN_VOTE, None)
    households = [h for b in compound.buildings for h in b.households]
    ballots.cast(None, c, households[0], answers(c, ["agree", "agree"]), BallotChannel.ONLINE)
    ballots.current_tally(c, live=True)  # kept with one ballot, for 5 seconds
    for h in households[1:]:
        ballots.cast(None, c, h, answers(c, ["disagree", "agree"]), BallotChannel.ONLINE)
    assert ballots.current_tally(c, live=True)["participation"]["households"] == 1
    workflow.apply(c, Action.CLOSE_VOTE, None)  # everyone voted: counted at once
    published = ballots.current_tally(c, live=True)
    assert published["provisional"] is False and "counted_at" not in published
    assert published == recount(c)
    full = tally_json(c, ballots.compute(c), provisional=False)
    numbers = ("counts", "owners", "area_m2", "participation", "passed", "by_building")
    assert [{k: i[k] for k in numbers} for i in published["items"]] == [
        {k: i[k] for k in numbers} for i in full["items"]]
    assert published["participation"]["households"] == 8 and published["passed"] is False


def test_a_failed_count_leaves_the_next_request_free_to_count(voting, monkeypatch):
    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("counting failed")

    original = live._count
    monkeypatch.setattr(live, "_count", broken)
    with pytest.raises(RuntimeError):
        ballots.current_tally(voting, live=True)
    monkeypatch.setattr(live, "_count", original)
    assert kept(voting) == recount(voting)


# --- the page and the API -------------------------------------------------------------------


def test_the_page_says_when_the_live_count_was_counted(client, login_as, voting, compound,
                                                       clock):
    login_as("committee", compound=compound)
    page = client.get(f"/consultations/{voting.id}/tally", headers=EN).text
    assert "Counted at" in page and "with every ballot recorded so far" in page
    # What a request keeps is rolled back with its own transaction in these tests (it is
    # nested in the request's): the count is kept here, outside any request.
    ballots.current_tally(voting, live=True)
    h = compound.buildings[0].households[0]
    ballots.cast(None, voting, h, answers(voting, ["agree", "agree"]), BallotChannel.ONLINE)
    page = client.get(f"/consultations/{voting.id}/tally", headers=EN).text
    assert "are counted within 5 seconds: reload the page" in page
    zh = client.get(f"/consultations/{voting.id}/tally",
                    headers={"Accept-Language": "zh-CN"}).text
    assert "Counted at" not in zh and "live-count-time" in zh


def test_the_live_count_stays_internal_when_it_is_kept(client, login_as, voting, compound):
    login_as("committee", compound=compound)
    assert client.get(f"/consultations/{voting.id}/tally").status_code == 200  # now kept
    client.post("/logout")
    assert client.get(f"/consultations/{voting.id}/tally").status_code == 302
    login_as("resident", household=compound.buildings[0].households[0])
    assert client.get(f"/consultations/{voting.id}/tally").status_code == 403
    other = factories.make_compound_with_households()
    client.post("/logout")
    login_as("committee", compound=other)
    assert client.get(f"/consultations/{voting.id}/tally").status_code == 403


def test_the_api_gives_the_kept_count_with_its_time(client, voting, compound):
    from tests.api.conftest import bearer

    member = factories.make_user("committee", compound=compound)
    h = compound.buildings[0].households[0]
    ballots.cast(None, voting, h, answers(voting, ["agree", "agree"]), BallotChannel.ONLINE)
    r = client.get(f"/api/v1/consultations/{voting.id}/tally", headers=bearer(member))
    assert r.status_code == 200
    data = r.get_json()
    assert data["up_to_date"] is True and data["counted_at"]
    assert {k: v for k, v in data.items() if k not in ("counted_at", "up_to_date")} == (
        recount(voting))


# --- one count for many requests --------------------------------------------------------------


@pytest.mark.committing
def test_requests_at_once_count_once(app, client, monkeypatch):
    compound = factories.make_compound_with_households()
    member = factories.make_user("committee", compound=compound)
    c = open_vote(compound)
    households = [h for b in compound.buildings for h in b.households]
    ballots.cast(None, c, households[0], answers(c, ["agree", "agree"]), BallotChannel.ONLINE)
    path = f"/consultations/{c.id}/tally"
    factories.sign_in(client, member)
    db.session.commit()  # and no transaction of the test's open meanwhile: it would write

    calls: list[int] = []
    original = live._count

    def slow(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        time.sleep(0.4)  # long enough for the other request to arrive meanwhile
        return original(*args, **kwargs)

    monkeypatch.setattr(live, "_count", slow)
    barrier = threading.Barrier(2)

    def view() -> tuple[int, str]:
        with app.app_context():
            barrier.wait()
            r = client.get(path, headers=EN)  # in a context of its own, as under a server
            return r.status_code, r.text

    def both() -> list[tuple[int, str]]:
        results: list[Any] = [None, None]

        def run(n: int) -> None:
            results[n] = view()

        threads = [threading.Thread(target=run, args=(n,)) for n in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
        return results

    # The first views: nothing kept yet; one counts, the other waits for its count.
    first = both()
    assert [status for status, _ in first] == [200, 200] and len(calls) == 1
    # A ballot later, a count older than the max age: one counts again, once.
    ballots.cast(None, c, households[1], answers(c, ["agree", "agree"]), BallotChannel.ONLINE)
    db.session.commit()
    second = both()
    assert not [text for _, text in second if "Counted at" not in text]
    assert [status for status, _ in second] == [200, 200] and len(calls) == 2
    assert kept(c) == recount(c)
    db.session.rollback()


def test_the_rendered_items_follow_the_count_and_the_language(client, login_as, voting,
                                                              compound):
    login_as("committee", compound=compound)
    path = f"/consultations/{voting.id}/tally"
    def page() -> str:  # without the time of the count
        return re.sub(r'id="live-count-time">[^<]*<', "", client.get(path, headers=EN).text)

    before = page()
    assert page() == before  # rendered once, shown again
    h = compound.buildings[1].households[0]
    ballots.cast(None, voting, h, answers(voting, ["disagree", "abstain"]), BallotChannel.ONLINE)
    after = page()
    assert after != before
    assert '<td role="cell" data-label="Disagree">1</td>' in after
    assert '<td role="cell" data-label="Disagree">1</td>' not in before
    zh = client.get(path, headers={"Accept-Language": "zh-CN"}).text
    assert 'data-label="反对">1</td>' in zh and "Disagree" not in zh
