"""Who returned a ballot: households that took part on at least one item. A door-to-door
"not reached" record is kept and shown per item, but it is no returned ballot — in the count,
on the results page, on the resolution notice and in ``flask ballots tally``."""

from __future__ import annotations

import html
import json
from datetime import timedelta
from typing import Any

import pytest

from consult.ballots import service as ballots
from consult.ballots.models import BallotChannel
from consult.ballots.tally import Totals
from consult.consultations.states import Action
from consult.core.display import area
from consult.core.models import utcnow
from consult.notices import service as notices
from consult.notices.models import NoticeKind
from consult.process import workflow
from tests import factories

EN = {"CONSULT_LANG": "en"}


@pytest.fixture
def door_to_door(compound: Any) -> dict[str, Any]:
    """Eight households, two items: four answered on paper, two were not reached on either
    item, one was not reached about item 1 but answered item 2, one has no ballot."""
    c = factories.make_consultation(compound, items=2, rule="household_majority")
    factories.walk_to(c, "discussing")
    c.vote_deadline = utcnow() + timedelta(days=7)
    workflow.apply(c, Action.OPEN_VOTE, None)
    households = [h for b in compound.buildings for h in b.households]
    answers = [("agree", "agree"), ("agree", "agree"), ("agree", "disagree"),
               ("abstain", "disagree"), ("not_reached", "not_reached"),
               ("not_reached", "not_reached"), ("not_reached", "agree")]
    for household, (first, second) in zip(households, answers, strict=False):
        door = "not_reached" in (first, second)
        ballots.cast(None, c, household, {c.items[0].id: first, c.items[1].id: second},
                     BallotChannel.DOOR_TO_DOOR if door else BallotChannel.PAPER)
    took_part = [households[i] for i in (0, 1, 2, 3, 6)]
    returned = Totals(5, 5, sum(h.area_dm2 for h in took_part))
    return {"c": c, "returned": returned}


def close(c: Any) -> Any:
    deadline = c.vote_deadline
    workflow.apply(c, Action.CLOSE_VOTE, None, now=deadline)
    workflow.apply(c, Action.PUBLISH_RESOLUTION, None, now=deadline + timedelta(hours=1))
    return notices.current_notice(c, NoticeKind.RESOLUTION)


def test_the_count_leaves_out_households_that_were_not_reached(door_to_door):
    c, returned = door_to_door["c"], door_to_door["returned"]
    result = ballots.compute(c)
    assert result.roll.households == 8
    assert result.participation == returned
    first, second = result.items
    assert first.counts["not_reached"] == 3 and first.participation.households == 4
    assert second.counts["not_reached"] == 2 and second.participation.households == 5


def test_tally_json_and_text_say_who_returned_a_ballot(door_to_door, runner):
    c, returned = door_to_door["c"], door_to_door["returned"]
    close(c)
    done = runner.invoke(args=["ballots", "tally", str(c.id), "--json"], env=EN)
    data = json.loads(done.output)
    assert data["participation"] == {"households": 5, "owners": 5,
                                     "area_m2": f"{returned.area_dm2 / 100:.2f}"}
    assert [i["participation"]["households"] for i in data["items"]] == [4, 5]
    text = runner.invoke(args=["ballots", "tally", str(c.id)], env=EN).output
    assert f"Returned a ballot: 5 households, 5 owners, {area(returned.area_dm2)} m²" in text
    assert "On the electoral roll: 8 households" in text
    # Answers by their names, in the reader's language.
    assert "Not reached" in text and "not_reached" not in text
    # Item 1: three of the four taking part agree; item 2: three of five.
    assert "Agreeing households 3/4 = 75.00% > 1/2 ✓" in text
    assert "Agreeing households 3/5 = 60.00% > 1/2 ✓" in text


def test_the_results_page_and_the_notice_show_who_returned_a_ballot(door_to_door, client):
    c, returned = door_to_door["c"], door_to_door["returned"]
    notice = close(c)
    page = html.unescape(client.get(f"/consultations/{c.id}/tally",
                                    headers={"Accept-Language": "en"}).text)
    assert f"5 households, 5 owners, {area(returned.area_dm2)} m²" in page
    assert "7 households" not in page
    sheet = html.unescape(client.get(f"/notices/{notice.id}").text)
    assert f"5 户，5 位业主，{area(returned.area_dm2)} m²" in sheet
    assert "7 户" not in sheet
