"""The tally counted by the database (GROUP BY per item × choice, one head per owner by their
latest ballot) gives exactly the result of the rule as ``tally.tally`` states it over every roll
entry and ballot (``compute_reference``), on random rounds: owners of several households with
conflicting answers, ballots at the same instant (the id decides), households off the roll,
unanswered items, abstentions, surveys. ``flask ballots tally --check`` makes the same
comparison on a real round."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from consult.ballots import service as ballots
from consult.ballots import tally as t
from consult.ballots.models import Ballot, BallotChoice, RollEntry
from consult.consultations.models import Consultation
from consult.extensions import db
from tests import factories

START = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
BUILDINGS = [("1号楼", "00001"), ("2号楼", "00002"), ("10号楼", "00010"), ("甲栋", "00001")]


@st.composite
def rounds(draw: Any, households: int) -> dict[str, Any]:
    """A roll drawn from the households (owners shared, buildings with equal sort keys) and
    ballots for some of them, a few off the roll, cast at colliding instants."""
    on_roll = draw(st.lists(st.integers(0, households - 1), unique=True, max_size=households))
    roll = [{"index": h, "owner": draw(st.sampled_from(["li", "wang", "zhao", f"h{h}"])),
             "area": draw(st.integers(0, 20_000)), "building": draw(st.sampled_from(BUILDINGS))}
            for h in on_roll]
    voting = draw(st.lists(st.integers(0, households - 1), unique=True, max_size=households))
    items = draw(st.integers(1, 3))
    cast = [{"index": h, "minute": draw(st.integers(0, 3)),
             "choices": draw(st.lists(st.sampled_from([*t.Choice, None]), min_size=items,
                                      max_size=items))}
            for h in voting]
    rule = draw(st.sampled_from(sorted(t.PRESETS)))
    return {"roll": roll, "cast": cast, "items": items, "rule": rule}


def store(compound: Any, pool: list[Any], data: dict[str, Any]) -> Consultation:
    consultation = factories.make_consultation(compound, stage="voting", items=data["items"],
                                               rule=data["rule"])
    db.session.add_all(RollEntry(
        consultation_id=consultation.id, round=1, household_id=pool[r["index"]].id,
        building_name=r["building"][0], building_sort=r["building"][1], unit="1", room="101",
        household_sort=f"{r['index']:05d}", area_dm2=r["area"], owner_identity=r["owner"],
        owner_name="业主") for r in data["roll"])
    items = list(consultation.items)
    for n, c in enumerate(data["cast"]):
        ballot = Ballot(consultation_id=consultation.id, round=1,
                        household_id=pool[c["index"]].id, channel="online",
                        receipt=f"R{n:07d}", cast_at=START + timedelta(minutes=c["minute"]))
        ballot.choices = [BallotChoice(item_id=item.id, choice=choice.value)
                          for item, choice in zip(items, c["choices"], strict=True) if choice]
        db.session.add(ballot)
    db.session.flush()
    return consultation


def test_the_sql_tally_equals_the_pure_tally_on_random_rounds() -> None:
    compound = factories.make_compound()
    building = factories.make_building(compound)
    pool = [factories.make_household(building, room=f"{n + 1}01") for n in range(8)]

    @settings(max_examples=40, deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow])
    @given(rounds(len(pool)))
    def check(data: dict[str, Any]) -> None:
        consultation = store(compound, pool, data)
        assert ballots.compute(consultation) == ballots.compute_reference(consultation, 1)

    check()


def test_the_sql_tally_counts_an_owner_once_by_the_latest_ballot() -> None:
    """A hand-made case of the random test: 李 owns three flats; the latest participating
    ballot decides, a later "not reached" does not, and a tie on time goes to the higher id."""
    compound = factories.make_compound()
    building = factories.make_building(compound)
    pool = [factories.make_household(building, room=f"{n + 1}01") for n in range(4)]
    b1 = BUILDINGS[0]
    data = {"items": 1, "rule": "survey",
            "roll": [{"index": n, "owner": "li" if n < 3 else "wang", "area": 100, "building": b1}
                     for n in range(4)],
            "cast": [{"index": 0, "minute": 1, "choices": [t.Choice.AGREE]},
                     {"index": 1, "minute": 1, "choices": [t.Choice.DISAGREE]},
                     {"index": 2, "minute": 3, "choices": [t.Choice.NOT_REACHED]}]}
    item = ballots.compute(store(compound, pool, data)).items[0]
    assert item.owners == {"agree": 0, "disagree": 1, "undecided": 0, "not_reached": 0,
                           "none": 1}
    assert item.owner_conflicts == 1
    assert item.counts["not_reached"] == 1
    assert item.area_dm2 == {"agree": 100, "disagree": 100, "undecided": 0, "not_reached": 100,
                             "none": 100}


def test_the_check_command_compares_both_counts(runner: Any, monkeypatch: Any) -> None:
    compound = factories.make_compound()
    building = factories.make_building(compound)
    pool = [factories.make_household(building, room=f"{n + 1}01") for n in range(3)]
    data = {"items": 1, "rule": "civil_code_278_major",
            "roll": [{"index": n, "owner": f"o{n}", "area": 100, "building": BUILDINGS[0]}
                     for n in range(3)],
            "cast": [{"index": n, "minute": n, "choices": [t.Choice.AGREE]} for n in range(2)]}
    consultation = store(compound, pool, data)
    consultation.vote_opened_at = START
    db.session.flush()
    args = ["ballots", "tally", str(consultation.id), "--check"]
    agreed = runner.invoke(args=args, env={"CONSULT_LANG": "en"})
    assert agreed.exit_code == 0, agreed.output
    assert "Round 1: the database's count equals the count by the rule" in agreed.output

    # A database count that drifts from the rule (one agreeing household lost) is caught.
    real = ballots.aggregates

    def drifted(*args: Any) -> t.Aggregates:
        found = real(*args)
        item = found.items[0]
        area = {**item.area_dm2, "agree": item.area_dm2["agree"] - 1}
        return replace(found, items=[replace(item, area_dm2=area)])

    monkeypatch.setattr(ballots, "aggregates", drifted)
    differs = runner.invoke(args=args, env={"CONSULT_LANG": "en"})
    assert differs.exit_code == 1
    assert "differs from the count by the rule over every ballot" in differs.output
