"""The tally on plain values: presets at and around their thresholds, owner heads, rounding,
and the door-to-door survey of 861 households."""

import json
from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from consult.ballots.tally import (
    NO_ANSWER,
    PRESETS,
    BadFraction,
    Base,
    Choice,
    Comparison,
    Condition,
    Count,
    Measure,
    Question,
    Rule,
    Totals,
    Vote,
    Voter,
    largest_remainder,
    parse_fraction,
    tally,
)

Q1 = [Question(1, "更换供水管")]


def voters(n: int, area: int = 8000) -> list[Voter]:
    return [Voter(h, f"owner{h}", area, "1号楼", "1") for h in range(1, n + 1)]


def votes(choices: list[Choice]) -> list[Vote]:
    return [Vote(h, {1: c}, order=h) for h, c in enumerate(choices, start=1)]


# --- the presets at their thresholds ----------------------------------------------------------


@given(st.integers(1, 300), st.data())
def test_household_majority_is_more_than_half_of_participants(n, data):
    participating = data.draw(st.integers(0, n))
    agree = data.draw(st.integers(0, participating))
    abstain = data.draw(st.integers(0, participating - agree))
    choices = ([Choice.AGREE] * agree + [Choice.ABSTAIN] * abstain
               + [Choice.DISAGREE] * (participating - agree - abstain))
    item = tally(voters(n), votes(choices), Q1, PRESETS["household_majority"]).items[0]
    assert item.passed == (2 * agree > participating)
    assert item.conditions[0].numerator == agree
    assert item.conditions[0].denominator == participating


@pytest.mark.parametrize(("agree", "participating", "passed"), [
    (50, 100, False), (51, 100, True), (1, 1, True), (0, 0, False), (3, 5, True), (2, 4, False),
])
def test_household_majority_edges(agree, participating, passed):
    choices = [Choice.AGREE] * agree + [Choice.DISAGREE] * (participating - agree)
    item = tally(voters(100), votes(choices), Q1, PRESETS["household_majority"]).items[0]
    assert item.passed is passed


@pytest.mark.parametrize(("agree", "roll", "passed"), [
    (200, 300, True), (199, 300, False), (2, 3, True), (1, 3, False), (134, 200, True),
    (133, 200, False),
])
def test_two_thirds_of_the_roll_is_at_least(agree, roll, passed):
    item = tally(voters(roll), votes([Choice.AGREE] * agree), Q1,
                 PRESETS["household_two_thirds"]).items[0]
    assert item.passed is passed


def oracle(rule: Rule, roll: list[Voter], ballots: list[Vote]) -> bool | None:
    """An independent, deliberately naive check of every condition with Fractions."""
    if rule.is_survey:
        return None
    by_household = {b.household_id: b.choices.get(1) for b in ballots}
    latest_by_owner: dict[str, tuple[int, Choice]] = {}
    for b in ballots:
        choice = b.choices.get(1)
        owner = next(v.owner for v in roll if v.household_id == b.household_id)
        newer = owner not in latest_by_owner or latest_by_owner[owner][0] < b.order
        if choice in (Choice.AGREE, Choice.DISAGREE, Choice.ABSTAIN, Choice.UNDECIDED) and newer:
            latest_by_owner[owner] = (b.order, choice)
    owners_all = {v.owner for v in roll}

    def amount(measure, wanted):
        if measure == Measure.OWNERS:
            return sum(1 for _o, (_n, c) in latest_by_owner.items() if c in wanted)
        return sum((v.area_dm2 if measure == Measure.AREA else 1)
                   for v in roll if by_household.get(v.household_id) in wanted)

    participating = {Choice.AGREE, Choice.DISAGREE, Choice.ABSTAIN, Choice.UNDECIDED}
    roll_amount = {Measure.HOUSEHOLDS: len(roll), Measure.OWNERS: len(owners_all),
                   Measure.AREA: sum(v.area_dm2 for v in roll)}
    for c in rule.conditions:
        wanted = {Count.PARTICIPATING: participating, Count.AGREEING: {Choice.AGREE},
                  Count.OBJECTING: {Choice.DISAGREE}}[c.count]
        num = amount(c.measure, wanted)
        den = roll_amount[c.measure] if c.base == Base.ROLL else amount(c.measure, participating)
        value = Fraction(num, den) if den else Fraction(0)
        ok = {Comparison.MORE_THAN: value > c.fraction, Comparison.AT_LEAST: value >= c.fraction,
              Comparison.AT_MOST: value <= c.fraction,
              Comparison.LESS_THAN: value < c.fraction}[c.comparison]
        if not ok:
            return False
    return True


@st.composite
def elections(draw):
    n = draw(st.integers(1, 40))
    owners = draw(st.integers(1, n))
    roll = [Voter(h, f"o{draw(st.integers(1, owners))}", draw(st.integers(1, 20000)), "b", "b")
            for h in range(1, n + 1)]
    chosen = draw(st.lists(st.sampled_from([*Choice, None]), min_size=n, max_size=n))
    orders = draw(st.permutations(range(n)))
    ballots = [Vote(v.household_id, {1: c}, order=orders[i])
               for i, (v, c) in enumerate(zip(roll, chosen, strict=True)) if c is not None]
    return roll, ballots


@settings(max_examples=300)
@given(elections(), st.sampled_from(sorted(PRESETS)))
def test_every_preset_agrees_with_a_naive_oracle(election, code):
    roll, ballots = election
    rule = PRESETS[code]
    assert tally(roll, ballots, Q1, rule).items[0].passed == oracle(rule, roll, ballots)


@settings(max_examples=200)
@given(elections())
def test_counts_add_up_to_the_roll(election):
    roll, ballots = election
    item = tally(roll, ballots, Q1, PRESETS["civil_code_278_general"]).items[0]
    assert sum(item.counts.values()) == len(roll)
    assert sum(item.area_dm2.values()) == sum(v.area_dm2 for v in roll)
    assert sum(item.owners.values()) == len({v.owner for v in roll})
    assert sum(item.percentages.values()) == Decimal("100.0")


def test_civil_code_major_needs_three_quarters_of_participating_area_and_owners():
    roll = [Voter(1, "a", 3000), Voter(2, "b", 3000), Voter(3, "c", 3000), Voter(4, "d", 3000)]
    three_of_four = votes([Choice.AGREE, Choice.AGREE, Choice.AGREE, Choice.DISAGREE])
    rule = PRESETS["civil_code_278_major"]
    assert tally(roll, three_of_four, Q1, rule).items[0].passed is True  # exactly 3/4
    two_of_three = votes([Choice.AGREE, Choice.AGREE, Choice.DISAGREE])
    assert tally(roll, two_of_three, Q1, rule).items[0].passed is False
    # Turnout: 2 of 4 households (1/2 of area and owners) is below 2/3.
    two_agree = votes([Choice.AGREE, Choice.AGREE])
    result = tally(roll, two_agree, Q1, rule).items[0]
    assert result.passed is False
    assert [c.met for c in result.conditions] == [False, False, True, True]


def test_objection_vote_passes_while_objections_stay_at_most_a_third():
    roll = voters(3)
    rule = PRESETS["objection_vote"]
    assert tally(roll, votes([Choice.DISAGREE]), Q1, rule).items[0].passed is True
    assert tally(roll, votes([Choice.DISAGREE, Choice.DISAGREE]), Q1, rule).items[0].passed is False
    assert tally(roll, [], Q1, rule).items[0].passed is True  # silence is no objection here


def test_abstentions_take_part_but_never_agree():
    item = tally(voters(4), votes([Choice.AGREE, Choice.ABSTAIN, Choice.ABSTAIN]), Q1,
                 PRESETS["household_majority"]).items[0]
    assert item.participation.households == 3 and item.passed is False


def test_not_reached_is_no_participation():
    item = tally(voters(4), votes([Choice.AGREE, Choice.NOT_REACHED, Choice.NOT_REACHED]), Q1,
                 PRESETS["household_majority"]).items[0]
    assert item.participation.households == 1 and item.passed is True


def test_an_owner_of_several_households_is_one_head_and_the_latest_ballot_decides():
    roll = [Voter(1, "zhang", 5000), Voter(2, "zhang", 7000), Voter(3, "li", 6000)]
    ballots = [Vote(1, {1: Choice.AGREE}, order=1), Vote(2, {1: Choice.DISAGREE}, order=3),
               Vote(3, {1: Choice.AGREE}, order=2)]
    result = tally(roll, ballots, Q1, PRESETS["civil_code_278_general"])
    item = result.items[0]
    assert result.roll.owners == 2 and result.participation.owners == 2
    assert item.owners["agree"] == 1 and item.owners["disagree"] == 1
    assert item.owner_conflicts == 1
    assert item.area_dm2["agree"] == 11000 and item.area_dm2["disagree"] == 7000


def test_a_not_reached_record_is_no_returned_ballot():
    """Door to door, "not reached" on every item is recorded but is no returned ballot; a
    household that took part on any item returned one."""
    questions = [Question(1, "管道"), Question(2, "路面")]
    ballots = [Vote(1, {1: Choice.AGREE, 2: Choice.AGREE}, order=1),
               Vote(2, {1: Choice.NOT_REACHED, 2: Choice.NOT_REACHED}, order=2),
               Vote(3, {1: Choice.NOT_REACHED, 2: Choice.ABSTAIN}, order=3),
               Vote(4, {7: Choice.AGREE}, order=4)]  # no answer on these items
    roll = [Voter(h, f"owner{h}", 1000 * h) for h in range(1, 6)]
    result = tally(roll, ballots, questions, PRESETS["civil_code_278_general"])
    assert result.participation == Totals(2, 2, 4000)
    assert result.items[0].participation == Totals(1, 1, 1000)
    assert result.items[1].participation == Totals(2, 2, 4000)


def test_ballots_of_households_off_the_roll_are_ignored():
    result = tally(voters(2), [Vote(99, {1: Choice.AGREE})], Q1, PRESETS["household_majority"])
    assert result.participation.households == 0


def test_each_item_is_decided_separately():
    questions = [Question(1, "管道"), Question(2, "路面")]
    ballots = [Vote(h, {1: Choice.AGREE, 2: Choice.DISAGREE}) for h in (1, 2)]
    result = tally(voters(3), ballots, questions, PRESETS["household_majority"])
    assert [i.passed for i in result.items] == [True, False]
    assert result.passed is False and result.any_passed


def test_per_building_breakdown():
    roll = [Voter(1, "a", 1, "2号楼", "2"), Voter(2, "b", 1, "10号楼", "10"),
            Voter(3, "c", 1, "2号楼", "2")]
    item = tally(roll, votes([Choice.AGREE, Choice.DISAGREE]), Q1, PRESETS["survey"]).items[0]
    assert [b for b, _ in item.by_building] == ["10号楼", "2号楼"]  # by the sort key given
    assert dict(item.by_building)["2号楼"] == {"agree": 1, "disagree": 0, "undecided": 0,
                                              "not_reached": 0, NO_ANSWER: 1}


# --- how far a condition is from being met --------------------------------------------------


conditions = st.builds(
    lambda comparison, q, p, measure: Condition(measure, Count.AGREEING, Base.PARTICIPATING,
                                                comparison, Fraction(min(p, q), q)),
    st.sampled_from(Comparison), st.integers(1, 12), st.integers(0, 12),
    st.sampled_from(Measure))


@settings(max_examples=500)
@given(conditions, st.integers(0, 200), st.data())
def test_the_change_needed_is_the_smallest_that_meets_the_condition(condition, d, data):
    """Against every count the base allows: the smallest distance to a count that meets it,
    0 if it is met, None if none does."""
    n = data.draw(st.integers(0, d))
    meeting = [m for m in range(d + 1) if condition.holds(m, d)]
    expected = min((abs(m - n) for m in meeting), default=None)
    assert condition.change_needed(n, d) == expected
    assert (condition.change_needed(n, d) == 0) == condition.holds(n, d)


@settings(max_examples=500)
@given(conditions, st.integers(1, 10**9), st.integers(-5, 5))
def test_the_change_needed_flips_the_verdict_and_one_less_does_not(condition, d, offset):
    """Near the threshold of a large base (areas in 0.01 m²): the change meets the condition,
    one unit less does not, in the direction the comparison asks."""
    boundary = condition.fraction * d
    n = min(max(int(boundary) + offset, 0), d)
    change = condition.change_needed(n, d)
    if change is None:
        assert not any(condition.holds(m, d) for m in (0, d, int(boundary), int(boundary) + 1)
                       if 0 <= m <= d)
        return
    if change == 0:
        assert condition.holds(n, d)
        return
    step = 1 if condition.comparison in (Comparison.MORE_THAN, Comparison.AT_LEAST) else -1
    assert not condition.holds(n, d)
    assert condition.holds(n + step * change, d)
    assert not condition.holds(n + step * (change - 1), d)
    assert 0 <= n + step * change <= d


@pytest.mark.parametrize(("comparison", "fraction", "n", "d", "change"), [
    (Comparison.AT_LEAST, Fraction(3, 4), 59999, 80000, 1),     # 599.99 of 800.00 m²
    (Comparison.AT_LEAST, Fraction(3, 4), 60000, 80000, 0),
    (Comparison.MORE_THAN, Fraction(1, 2), 50, 100, 1),         # exactly half is not more
    (Comparison.MORE_THAN, Fraction(1, 2), 48, 100, 3),
    (Comparison.AT_LEAST, Fraction(2, 3), 133, 200, 1),
    (Comparison.AT_MOST, Fraction(1, 3), 35, 100, 2),           # 33 of 100 is the most
    (Comparison.AT_MOST, Fraction(1, 3), 30001, 90000, 1),
    (Comparison.LESS_THAN, Fraction(1, 2), 50, 100, 1),
    (Comparison.MORE_THAN, Fraction(1, 1), 5, 10, None),        # no share is more than all
    (Comparison.LESS_THAN, Fraction(0, 1), 0, 10, None),
    (Comparison.MORE_THAN, Fraction(1, 2), 0, 0, None),         # nobody took part
    (Comparison.AT_MOST, Fraction(1, 3), 0, 0, 0),
])
def test_change_needed_examples(comparison, fraction, n, d, change):
    condition = Condition(Measure.AREA, Count.AGREEING, Base.PARTICIPATING, comparison, fraction)
    assert condition.change_needed(n, d) == change


# --- percentages ------------------------------------------------------------------------------


@given(st.lists(st.integers(0, 10_000), min_size=1, max_size=8))
def test_largest_remainder_sums_to_exactly_100_and_stays_close(counts):
    total = sum(counts)
    assume(total > 0)
    keys = [f"k{i}" for i in range(len(counts))]
    shares = largest_remainder(dict(zip(keys, counts, strict=True)), total)
    assert sum(shares.values()) == Decimal("100.0")
    for key, count in zip(keys, counts, strict=True):
        assert abs(Fraction(str(shares[key])) - Fraction(100 * count, total)) < Fraction(1, 10)


def test_survey_of_861_households_door_to_door():
    """491 in favour, 297 against, 34 undecided, 39 owners not reached."""
    answers = ([Choice.AGREE] * 491 + [Choice.DISAGREE] * 297 + [Choice.UNDECIDED] * 34
               + [Choice.NOT_REACHED] * 39)
    questions = [Question(1, "引入物业服务企业")]
    result = tally(voters(861), votes(answers), questions, PRESETS["survey"])
    item = result.items[0]
    assert item.counts == {"agree": 491, "disagree": 297, "undecided": 34, "not_reached": 39,
                           NO_ANSWER: 0}
    assert item.percentages == {"agree": Decimal("57.0"), "disagree": Decimal("34.5"),
                                "undecided": Decimal("4.0"), "not_reached": Decimal("4.5"),
                                NO_ANSWER: Decimal("0.0")}
    assert sum(item.percentages.values()) == Decimal("100.0")
    assert item.passed is None and result.passed is None
    assert item.participation.households == 822


# --- rules as data ----------------------------------------------------------------------------


def test_rules_round_trip_through_json():
    for rule in PRESETS.values():
        assert Rule.from_json(rule.to_json()) == rule


def test_a_local_rule_is_just_a_list_of_conditions():
    lift = Rule("lift_stairwell", (
        Condition(Measure.HOUSEHOLDS, Count.AGREEING, Base.ROLL, Comparison.AT_LEAST,
                  Fraction(2, 3)),
        Condition(Measure.AREA, Count.AGREEING, Base.ROLL, Comparison.AT_LEAST, Fraction(2, 3))))
    roll = [Voter(1, "a", 9000), Voter(2, "b", 9000), Voter(3, "c", 3000)]
    assert tally(roll, votes([Choice.AGREE, Choice.AGREE]), Q1, lift).items[0].passed is True
    assert tally(roll, votes([Choice.AGREE, Choice.DISAGREE, Choice.AGREE]), Q1,
                 lift).items[0].passed is False  # area 12000/21000 < 2/3


@pytest.mark.parametrize("bad", [
    '{"code": "x", "conditions": [{"measure": "cats"}]}',
    '{"code": "x", "conditions": [{"measure": "area", "count": "agreeing", "base": "roll", '
    '"comparison": "ge", "fraction": "3/2"}]}',
    '{"code": "x", "conditions": [{"measure": "area", "count": "participating", '
    '"base": "participating", "comparison": "ge", "fraction": "1/2"}]}',
    '{"code": "x", "conditions": [{"measure": "area", "count": "agreeing", "base": "roll", '
    '"comparison": "ge", "fraction": "1/0"}]}',
])
def test_malformed_rules_are_refused(bad):
    with pytest.raises(ValueError):
        Rule.from_json(bad)


@pytest.mark.parametrize("bad", ["3/0", "0/0", "5/4", "abc", "-1/2", "1.5", "", "1/2/3",
                                 "1e999999999", "nan"])
def test_a_bad_fraction_is_refused_as_such(bad):
    with pytest.raises(BadFraction) as exc:
        Rule.from_json(json.dumps({"code": "x", "conditions": [{
            "measure": "area", "count": "agreeing", "base": "roll", "comparison": "ge",
            "fraction": bad}]}))
    assert exc.value.text == bad


@pytest.mark.parametrize(("text", "value"), [("2/3", Fraction(2, 3)), (" 3 / 5 ", Fraction(3, 5)),
                                             ("0.5", Fraction(1, 2)), ("0", 0), ("1", 1)])
def test_thresholds_read_as_fractions(text, value):
    assert parse_fraction(text) == value
