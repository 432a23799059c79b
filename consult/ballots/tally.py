"""The tally: roll + ballots + rule → counts, percentages and a verdict per item.

Pure: no Flask, no database, no floats. Anyone can re-run it from the public audit export.

A rule is a list of conditions that must all hold. Each condition compares a *count* of some
*measure* (households, owners or area) with a *fraction* of a *base* (everyone on the roll, or
those who took part), as "more than" (过半数), "at least" (以上), "at most" or "less than".
Comparisons are exact (``fractions.Fraction`` arithmetic on integers).

Counting (Civil Code art. 278 and the Supreme People's Court interpretation, arts. 8–9):
- area is each household's exclusive area, counted with that household's choice;
- owners are counted once per owner identity: an owner of several households is one head. If
  their households answered an item differently, the most recent ballot decides the head (the
  result reports how many owners that concerned);
- participation means a returned answer on the item, abstentions included; "not reached" is
  not participation; abstentions never count as agreement; "objecting" means disagreeing;
- a household returned a ballot when it took part on at least one item: a door-to-door record
  that says "not reached" on every item is no returned ballot.

Two ways in, one rule. ``tally`` counts plain roll entries and ballots: it is the statement of
the counting rule above. ``tally_aggregates`` starts from counts already made: the application
counts with GROUP BY queries (``ballots.service.aggregates``) so that a district's roll never has
to be loaded into memory; those queries are an implementation of ``tally``'s counting for speed,
held to it by ``ballots.service.compute_reference``, the random-round tests and
``flask ballots tally --check``. Both end in the same rule checks.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum
from fractions import Fraction
from typing import Any


class Choice(StrEnum):
    AGREE = "agree"
    DISAGREE = "disagree"
    ABSTAIN = "abstain"
    UNDECIDED = "undecided"      # 观望 (surveys)
    NOT_REACHED = "not_reached"  # 未见到 (door-to-door surveys)


NO_ANSWER = "none"  # households on the roll with no answer on the item
VOTE_CHOICES = (Choice.AGREE, Choice.DISAGREE, Choice.ABSTAIN)
SURVEY_CHOICES = (Choice.AGREE, Choice.DISAGREE, Choice.UNDECIDED, Choice.NOT_REACHED)
PARTICIPATING = frozenset({Choice.AGREE, Choice.DISAGREE, Choice.ABSTAIN, Choice.UNDECIDED})


class Measure(StrEnum):
    HOUSEHOLDS = "households"
    OWNERS = "owners"
    AREA = "area"


class Count(StrEnum):
    PARTICIPATING = "participating"
    AGREEING = "agreeing"
    OBJECTING = "objecting"


class Base(StrEnum):
    ROLL = "roll"
    PARTICIPATING = "participating"


class Comparison(StrEnum):
    MORE_THAN = "gt"   # 过半数, 超过
    AT_LEAST = "ge"    # 以上, 不少于
    AT_MOST = "le"     # 不超过
    LESS_THAN = "lt"


_FRACTION = re.compile(r" *(\d{1,12} */ *\d{1,12}|\d{0,12}\.?\d{1,12}) *")


class BadFraction(ValueError):
    """A threshold that is not a fraction from 0 to 1 (unreadable, a zero denominator, …)."""

    def __init__(self, text: str) -> None:
        super().__init__(f"a threshold is a fraction between 0 and 1, not {text!r}")
        self.text = text


def parse_fraction(text: str) -> Fraction:
    """A threshold such as "2/3" or "0.5"; raises BadFraction unless it lies in [0, 1]."""
    # Digits only: Fraction() alone would also take "1e999999999" and work that number out.
    if not _FRACTION.fullmatch(text):
        raise BadFraction(text)
    try:
        fraction = Fraction(text.replace(" ", ""))
    except (ValueError, ZeroDivisionError) as exc:
        raise BadFraction(text) from exc
    if not 0 <= fraction <= 1:
        raise BadFraction(text)
    return fraction


@dataclass(frozen=True)
class Condition:
    measure: Measure
    count: Count
    base: Base
    comparison: Comparison
    fraction: Fraction

    def holds(self, numerator: int, denominator: int) -> bool:
        """Compare numerator/denominator with the fraction, exactly. 0/0 counts as 0."""
        left = numerator * self.fraction.denominator
        right = self.fraction.numerator * denominator
        if denominator == 0:
            left, right = 0, self.fraction.numerator
        return {
            Comparison.MORE_THAN: left > right,
            Comparison.AT_LEAST: left >= right,
            Comparison.AT_MOST: left <= right,
            Comparison.LESS_THAN: left < right,
        }[self.comparison]

    def change_needed(self, numerator: int, denominator: int) -> int | None:
        """How far a count is from meeting the condition, in the count's own unit (households,
        owners or 0.01 m²): the smallest change of the numerator, with the base as it stands,
        after which the condition holds — more for "more than" and "at least", fewer for "at
        most" and "less than". 0 when it holds already; None when no count can meet it (an
        empty base, or a threshold no share reaches, such as "more than 1/1").

        Exact: the boundary count is worked out with integer (Fraction) arithmetic.
        """
        if self.holds(numerator, denominator):
            return 0
        if denominator <= 0:
            return None  # 0/0 counts as 0 whatever the count: no change of it helps
        boundary = self.fraction * denominator  # the count at exactly the threshold
        floor = boundary.numerator // boundary.denominator
        ceil = -(-boundary.numerator // boundary.denominator)
        target = {
            Comparison.AT_LEAST: ceil,        # the least count ≥ the boundary
            Comparison.MORE_THAN: floor + 1,  # the least count > the boundary
            Comparison.AT_MOST: floor,        # the greatest count ≤ the boundary
            Comparison.LESS_THAN: ceil - 1,   # the greatest count < the boundary
        }[self.comparison]
        if not 0 <= target <= denominator:
            return None
        return abs(target - numerator)

    def to_dict(self) -> dict[str, str]:
        return {"measure": self.measure.value, "count": self.count.value,
                "base": self.base.value, "comparison": self.comparison.value,
                "fraction": f"{self.fraction.numerator}/{self.fraction.denominator}"}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Condition:
        """Build a condition from plain data; raises ValueError on anything unknown, and
        BadFraction (a ValueError) when the threshold is not a fraction from 0 to 1."""
        try:
            text = str(data["fraction"])
            condition = cls(Measure(data["measure"]), Count(data["count"]), Base(data["base"]),
                            Comparison(data["comparison"]), parse_fraction(text))
        except (KeyError, TypeError) as exc:
            raise ValueError(f"not a condition: {data!r}") from exc
        if condition.base is Base.PARTICIPATING and condition.count is Count.PARTICIPATING:
            raise ValueError("participation is measured against the roll")
        return condition


@dataclass(frozen=True)
class Rule:
    code: str
    conditions: tuple[Condition, ...] = ()

    @property
    def is_survey(self) -> bool:
        """A survey has no conditions: counts and percentages only, no verdict."""
        return not self.conditions

    def to_json(self) -> str:
        return json.dumps({"code": self.code, "conditions": [c.to_dict() for c in self.conditions]},
                          sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> Rule:
        data = json.loads(text)
        return cls(str(data["code"]), tuple(Condition.from_dict(c) for c in data["conditions"]))


def _c(measure: Measure, count: Count, base: Base, comparison: Comparison, n: int, d: int
       ) -> Condition:
    return Condition(measure, count, base, comparison, Fraction(n, d))


_H, _O, _A = Measure.HOUSEHOLDS, Measure.OWNERS, Measure.AREA
_TURNOUT = (
    _c(_A, Count.PARTICIPATING, Base.ROLL, Comparison.AT_LEAST, 2, 3),
    _c(_O, Count.PARTICIPATING, Base.ROLL, Comparison.AT_LEAST, 2, 3),
)
PRESETS: dict[str, Rule] = {rule.code: rule for rule in (
    Rule("household_majority", (
        _c(_H, Count.AGREEING, Base.PARTICIPATING, Comparison.MORE_THAN, 1, 2),)),
    Rule("household_two_thirds", (
        _c(_H, Count.AGREEING, Base.ROLL, Comparison.AT_LEAST, 2, 3),)),
    Rule("civil_code_278_general", (
        *_TURNOUT,
        _c(_A, Count.AGREEING, Base.PARTICIPATING, Comparison.MORE_THAN, 1, 2),
        _c(_O, Count.AGREEING, Base.PARTICIPATING, Comparison.MORE_THAN, 1, 2))),
    Rule("civil_code_278_major", (
        *_TURNOUT,
        _c(_A, Count.AGREEING, Base.PARTICIPATING, Comparison.AT_LEAST, 3, 4),
        _c(_O, Count.AGREEING, Base.PARTICIPATING, Comparison.AT_LEAST, 3, 4))),
    Rule("objection_vote", (
        _c(_A, Count.OBJECTING, Base.ROLL, Comparison.AT_MOST, 1, 3),
        _c(_O, Count.OBJECTING, Base.ROLL, Comparison.AT_MOST, 1, 3))),
    Rule("survey", ()),
)}


# --- inputs and results -----------------------------------------------------------------------


@dataclass(frozen=True)
class Voter:
    """A household on the frozen roll."""

    household_id: int
    owner: str
    area_dm2: int
    building: str = ""
    building_sort: str = ""


@dataclass(frozen=True)
class Vote:
    """A household's current ballot: item number → choice. ``order`` grows with time, so the
    most recent ballot of an owner can be found."""

    household_id: int
    choices: Mapping[int, Choice]
    order: int = 0


@dataclass(frozen=True)
class Question:
    number: int
    title: str


@dataclass(frozen=True)
class Totals:
    households: int = 0
    owners: int = 0
    area_dm2: int = 0

    def of(self, measure: Measure) -> int:
        return {Measure.HOUSEHOLDS: self.households, Measure.OWNERS: self.owners,
                Measure.AREA: self.area_dm2}[measure]


@dataclass(frozen=True)
class ConditionResult:
    condition: Condition
    numerator: int
    denominator: int
    met: bool


@dataclass(frozen=True)
class ItemResult:
    number: int
    title: str
    counts: dict[str, int]           # households per choice, NO_ANSWER included
    owners: dict[str, int]           # owner heads per choice
    area_dm2: dict[str, int]         # area per choice
    percentages: dict[str, Decimal]  # households per choice over the roll; sums to 100.0
    participation: Totals
    conditions: tuple[ConditionResult, ...]
    passed: bool | None              # None for a survey
    owner_conflicts: int             # owners whose households answered differently
    by_building: tuple[tuple[str, dict[str, int]], ...] = field(default=())


@dataclass(frozen=True)
class TallyResult:
    rule: Rule
    roll: Totals
    # Households (owners, area) that returned a ballot: a participating answer on at least
    # one item. A door-to-door "not reached" record is no returned ballot.
    participation: Totals
    items: tuple[ItemResult, ...]

    @property
    def passed(self) -> bool | None:
        """True if every item passed, False if any failed, None for a survey."""
        if self.rule.is_survey:
            return None
        return all(item.passed for item in self.items)

    @property
    def any_passed(self) -> bool:
        return any(item.passed for item in self.items)


# --- the tally --------------------------------------------------------------------------------


def categories(rule: Rule, seen: Iterable[str] = ()) -> list[str]:
    """The answer categories to show, in a stable order, ending with NO_ANSWER."""
    standard = SURVEY_CHOICES if rule.is_survey else VOTE_CHOICES
    present = {str(c) for c in standard} | set(seen)
    return [c.value for c in Choice if c.value in present] + [NO_ANSWER]


def largest_remainder(counts: Mapping[str, int], total: int, decimals: int = 1
                      ) -> dict[str, Decimal]:
    """Percentages of ``total`` that add up to exactly 100 at the given precision.

    Each share is floored to the precision; the units left over go to the largest remainders
    (ties to the earlier key).
    """
    scale = 100 * 10 ** decimals
    if total <= 0:
        return {key: Decimal(0).scaleb(-decimals) for key in counts}
    quotas = {key: Fraction(count * scale, total) for key, count in counts.items()}
    units = {key: int(q) for key, q in quotas.items()}  # floor: quotas are never negative
    left = scale - sum(units.values())
    order = sorted(counts, key=lambda k: (-(quotas[k] - units[k]), list(counts).index(k)))
    for key in order[:left]:
        units[key] += 1
    return {key: Decimal(units[key]).scaleb(-decimals) for key in counts}


@dataclass(frozen=True)
class ItemCounts:
    """What is counted of one item before any rule applies; only answers are counted here
    (households with no answer are the rest of the roll).

    ``households`` maps (building sort key, building name) to households per choice,
    ``area_dm2`` is area per choice, ``owners`` owner heads per choice (each owner by the
    choice that decides their head), ``owner_conflicts`` the owners whose households answered
    differently.
    """

    number: int
    title: str
    households: Mapping[tuple[str, str], Mapping[str, int]]
    area_dm2: Mapping[str, int]
    owners: Mapping[str, int]
    owner_conflicts: int = 0


@dataclass(frozen=True)
class Aggregates:
    """A round counted down to sums: the roll (with households per building), who took part,
    and the counts of each item. A database can produce these with GROUP BY queries."""

    roll: Totals
    participation: Totals
    buildings: Mapping[tuple[str, str], int]  # (sort key, name) → households on the roll
    items: Sequence[ItemCounts]


def tally(roll: Sequence[Voter], votes: Iterable[Vote], questions: Sequence[Question],
          rule: Rule) -> TallyResult:
    """Count every item of a vote or survey and check the rule's conditions on each."""
    on_roll = {v.household_id: v for v in roll}
    ballots = [v for v in votes if v.household_id in on_roll]  # anything else is ignored
    owners_on_roll = {v.owner for v in roll}
    roll_totals = Totals(len(roll), len(owners_on_roll), sum(v.area_dm2 for v in roll))
    answered = {q.number for q in questions}
    returned = [on_roll[b.household_id] for b in ballots
                if any(n in answered and c in PARTICIPATING for n, c in b.choices.items())]
    participation = Totals(len(returned), len({v.owner for v in returned}),
                           sum(v.area_dm2 for v in returned))
    latest_first = sorted(ballots, key=lambda b: b.order, reverse=True)
    buildings: dict[tuple[str, str], int] = defaultdict(int)
    for voter in roll:
        buildings[(voter.building_sort, voter.building)] += 1
    items = [_count_item(q, roll, latest_first, on_roll) for q in questions]
    return tally_aggregates(Aggregates(roll_totals, participation, buildings, items), rule)


def _count_item(question: Question, roll: Sequence[Voter], latest_first: Sequence[Vote],
                on_roll: Mapping[int, Voter]) -> ItemCounts:
    answers: dict[int, str] = {}
    owner_choice: dict[str, str] = {}
    owner_seen: dict[str, set[str]] = defaultdict(set)
    for vote in latest_first:
        choice = vote.choices.get(question.number)
        if choice is None:
            continue
        voter = on_roll[vote.household_id]
        answers[voter.household_id] = choice.value
        if choice in PARTICIPATING:
            owner_seen[voter.owner].add(choice.value)
            owner_choice.setdefault(voter.owner, choice.value)  # the most recent ballot
    # Owners with no participating answer count by whatever they answered, or not at all.
    for vote in latest_first:
        choice = vote.choices.get(question.number)
        if choice is not None:
            owner_choice.setdefault(on_roll[vote.household_id].owner, choice.value)

    households: dict[tuple[str, str], dict[str, int]] = {}
    area: dict[str, int] = defaultdict(int)
    for voter in roll:
        answer = answers.get(voter.household_id)
        if answer is not None:
            per = households.setdefault((voter.building_sort, voter.building), defaultdict(int))
            per[answer] += 1
            area[answer] += voter.area_dm2
    owners: dict[str, int] = defaultdict(int)
    for answer in owner_choice.values():
        owners[answer] += 1
    return ItemCounts(question.number, question.title, households, area, owners,
                      sum(1 for seen in owner_seen.values() if len(seen) > 1))


def tally_aggregates(aggregates: Aggregates, rule: Rule) -> TallyResult:
    """The tally from counts already made (by :func:`tally` or by the database): fills in
    "no answer", percentages, the per-building breakdown and the rule's verdict on each item."""
    items = tuple(_item(counts, aggregates, rule) for counts in aggregates.items)
    return TallyResult(rule, aggregates.roll, aggregates.participation, items)


def _item(item: ItemCounts, aggregates: Aggregates, rule: Rule) -> ItemResult:
    roll_totals = aggregates.roll
    seen = {choice for per in item.households.values() for choice, n in per.items() if n}
    keys = categories(rule, seen)
    counts = dict.fromkeys(keys, 0)
    area = dict.fromkeys(keys, 0)
    owners = dict.fromkeys(keys, 0)
    buildings: dict[tuple[str, str], dict[str, int]] = {}
    for building, on_roll in aggregates.buildings.items():
        per = dict.fromkeys(keys, 0)
        for choice, n in item.households.get(building, {}).items():
            if n:
                per[choice] += n
        per[NO_ANSWER] += on_roll - sum(per.values())
        buildings[building] = per
        for choice, n in per.items():
            counts[choice] += n
    for choice, n in item.area_dm2.items():
        if choice in area:
            area[choice] += n
    area[NO_ANSWER] += roll_totals.area_dm2 - sum(area.values())
    for choice, n in item.owners.items():
        if choice in owners:
            owners[choice] += n
    owners[NO_ANSWER] += roll_totals.owners - sum(owners.values())

    def total(measure: Measure, choices: Iterable[str]) -> int:
        table = {Measure.HOUSEHOLDS: counts, Measure.OWNERS: owners, Measure.AREA: area}[measure]
        return sum(table.get(c, 0) for c in choices)

    participating = [c.value for c in PARTICIPATING]
    item_participation = Totals(total(_H, participating), total(_O, participating),
                                total(_A, participating))
    results = []
    for condition in rule.conditions:
        chosen = {Count.PARTICIPATING: participating, Count.AGREEING: [Choice.AGREE.value],
                  Count.OBJECTING: [Choice.DISAGREE.value]}[condition.count]
        numerator = total(condition.measure, chosen)
        denominator = (roll_totals.of(condition.measure) if condition.base is Base.ROLL
                       else item_participation.of(condition.measure))
        results.append(ConditionResult(condition, numerator, denominator,
                                       condition.holds(numerator, denominator)))
    return ItemResult(
        number=item.number, title=item.title, counts=counts, owners=owners,
        area_dm2=area, percentages=largest_remainder(counts, roll_totals.households),
        participation=item_participation, conditions=tuple(results),
        passed=None if rule.is_survey else all(r.met for r in results),
        owner_conflicts=item.owner_conflicts,
        by_building=tuple((name, per) for (_sort, name), per in sorted(buildings.items())),
    )
