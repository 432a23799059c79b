"""A condition in words never contradicts its own verdict, in any of the three languages: the
percentage is rounded towards the verdict where plain rounding would land it on the threshold,
and a missed condition says how far it is in its own unit, the smallest change that meets it."""

from __future__ import annotations

import re
from collections.abc import Iterator
from decimal import Decimal
from fractions import Fraction
from typing import Any

import pytest
from flask import Flask
from flask_babel import force_locale
from hypothesis import given, settings
from hypothesis import strategies as st

from consult.ballots import explain
from consult.ballots.tally import (
    PRESETS,
    Base,
    Choice,
    Comparison,
    Condition,
    ConditionResult,
    Count,
    Measure,
    Question,
    Vote,
    Voter,
    tally,
)
from tests.unit.test_tally import elections

LOCALES = ("zh_Hans", "zh_Hant", "en")
SYMBOL_HOLDS = {">": Fraction.__gt__, "≥": Fraction.__ge__, "≤": Fraction.__le__,
                "<": Fraction.__lt__}
SENTENCE = re.compile(r"= (?P<pct>\d+\.\d\d)% (?P<symbol>[>≥≤<]) (?P<p>\d+)/(?P<q>\d+) "
                      r"(?P<mark>[✓✗])")
CHANGE = {
    "en": re.compile(r", (?P<way>short|over) by (?P<amount>[\d,]+(?:\.\d\d)?) "
                     r"(?P<unit>m²|owners?|households?)$"),
    "zh_Hans": re.compile(r"，(?P<way>还差|超出) (?P<amount>[\d,]+(?:\.\d\d)?) "
                          r"(?P<unit>m²|位业主|户)$"),
    "zh_Hant": re.compile(r"，(?P<way>還差|超出) (?P<amount>[\d,]+(?:\.\d\d)?) "
                          r"(?P<unit>m²|位業主|戶)$"),
}
UNITS = {"en": {Measure.AREA: "m²", Measure.OWNERS: "owner", Measure.HOUSEHOLDS: "household"},
         "zh_Hans": {Measure.AREA: "m²", Measure.OWNERS: "位业主", Measure.HOUSEHOLDS: "户"},
         "zh_Hant": {Measure.AREA: "m²", Measure.OWNERS: "位業主", Measure.HOUSEHOLDS: "戶"}}
SHORT = {"en": ("short", "over"), "zh_Hans": ("还差", "超出"), "zh_Hant": ("還差", "超出")}


@pytest.fixture
def context(app: Flask) -> Iterator[None]:
    with app.test_request_context():
        yield


def check_words(result: ConditionResult, locale: str) -> str:
    """The sentence of one condition in ``locale``, checked against the result: the printed
    comparison says what ``met`` says, and a missed condition names the change needed."""
    with force_locale(locale):
        text = explain.condition_text(result)
    c = result.condition
    if result.denominator == 0:
        assert "= — " in text, text
    else:
        m = SENTENCE.search(text)
        assert m, text
        shown = Fraction(Decimal(m["pct"])) / 100
        threshold = Fraction(int(m["p"]), int(m["q"]))
        assert threshold == c.fraction
        assert SYMBOL_HOLDS[m["symbol"]](shown, threshold) is result.met, text
        assert (m["mark"] == "✓") is result.met, text
        # The percentage stays within a hundredth of a percent of the exact share.
        exact = Fraction(result.numerator * 100, result.denominator)
        assert abs(shown * 100 - exact) < Fraction(1, 100), text
    change = CHANGE[locale].search(text)
    needed = c.change_needed(result.numerator, result.denominator)
    if result.met or not needed:
        assert change is None, text
        return text
    assert change, text
    short = c.comparison in (Comparison.MORE_THAN, Comparison.AT_LEAST)
    assert change["way"] == SHORT[locale][0 if short else 1], text
    amount = Decimal(change["amount"].replace(",", ""))
    assert amount == (Decimal(needed) / 100 if c.measure is Measure.AREA else needed), text
    unit = UNITS[locale][c.measure]
    if locale == "en" and c.measure is not Measure.AREA:
        unit += "" if needed == 1 else "s"
    assert change["unit"] == unit, text
    return text


# --- near misses of every preset ---------------------------------------------------------------

# Bases divisible by 2, 3 and 4, so that every preset's threshold is a whole count.
BASE = {Measure.AREA: 120_000, Measure.OWNERS: 120, Measure.HOUSEHOLDS: 120}


def scenario(condition: Condition, numerator: int, denominator: int
             ) -> tuple[list[Voter], list[Vote]]:
    """A roll and ballots on which ``condition`` counts exactly numerator/denominator."""
    counted = {Count.AGREEING: Choice.AGREE, Count.OBJECTING: Choice.DISAGREE,
               Count.PARTICIPATING: Choice.ABSTAIN}[condition.count]
    # The rest of the base: taking part otherwise when the base is those taking part, else
    # no answer at all.
    rest = Choice.DISAGREE if condition.base is Base.PARTICIPATING else None
    if rest is counted:
        rest = Choice.AGREE
    if condition.measure is Measure.AREA:
        sizes = [(numerator, counted), (denominator - numerator, rest)]
    else:
        sizes = [(1, counted)] * numerator + [(1, rest)] * (denominator - numerator)
    roll, ballots = [], []
    for h, (area, choice) in enumerate((s for s in sizes if s[0]), start=1):
        roll.append(Voter(h, f"owner{h}", area if condition.measure is Measure.AREA else 100))
        if choice is not None:
            ballots.append(Vote(h, {1: choice}, order=h))
    return roll, ballots


def near_misses() -> Iterator[Any]:
    for code, rule in sorted(PRESETS.items()):
        for index, c in enumerate(rule.conditions):
            d = BASE[c.measure]
            at = int(c.fraction * d)  # exactly the threshold
            rising = c.comparison in (Comparison.MORE_THAN, Comparison.AT_LEAST)
            first = next(m for m in (range(d + 1) if rising else range(d, -1, -1))
                         if c.holds(m, d))  # the count that just meets it
            missed = first - 1 if rising else first + 1  # one unit short (or over)
            for label, n in (("at", at), ("just met", first), ("one unit short", missed)):
                yield pytest.param(code, index, n, d, id=f"{code}-{index}-{label}")


@pytest.mark.parametrize(("code", "index", "numerator", "denominator"), list(near_misses()))
def test_near_misses_of_every_preset_read_as_their_verdict(context, code, index, numerator,
                                                           denominator):
    rule = PRESETS[code]
    condition = rule.conditions[index]
    roll, ballots = scenario(condition, numerator, denominator)
    result = tally(roll, ballots, [Question(1, "加装电梯")], rule).items[0].conditions[index]
    assert (result.numerator, result.denominator) == (numerator, denominator)
    for locale in LOCALES:
        check_words(result, locale)


def test_the_reviewed_example_misses_three_quarters_by_a_hundredth(context):
    condition = PRESETS["civil_code_278_major"].conditions[2]
    result = ConditionResult(condition, 59_999, 80_000, condition.holds(59_999, 80_000))
    assert result.met is False
    words = {locale: check_words(result, locale) for locale in LOCALES}
    assert words["zh_Hans"] == "同意的专有部分面积：599.99/800.00 m² = 74.99% ≥ 3/4 ✗，还差 0.01 m²"
    assert words["zh_Hant"] == "同意的專有部分面積：599.99/800.00 m² = 74.99% ≥ 3/4 ✗，還差 0.01 m²"
    assert words["en"] == "Agreeing area 599.99/800.00 m² = 74.99% ≥ 3/4 ✗, short by 0.01 m²"


@pytest.mark.parametrize(("code", "index", "numerator", "denominator", "en", "zh"), [
    ("household_majority", 0, 50, 100,
     "Agreeing households 50/100 = 50.00% > 1/2 ✗, short by 1 household",
     "同意户数：50/100 = 50.00% > 1/2 ✗，还差 1 户"),
    ("household_majority", 0, 50_001, 100_000,  # 50.001 %: more than half, so not "50.00 %"
     "Agreeing households 50,001/100,000 = 50.01% > 1/2 ✓",
     "同意户数：50,001/100,000 = 50.01% > 1/2 ✓"),
    ("household_two_thirds", 0, 198, 300,
     "Agreeing households 198/300 = 66.00% ≥ 2/3 ✗, short by 2 households",
     "同意户数：198/300 = 66.00% ≥ 2/3 ✗，还差 2 户"),
    ("civil_code_278_general", 3, 200, 400,  # exactly half of the owners is not more
     "Agreeing owners 200/400 = 50.00% > 1/2 ✗, short by 1 owner",
     "同意业主人数：200/400 = 50.00% > 1/2 ✗，还差 1 位业主"),
    ("civil_code_278_general", 1, 133, 200,  # 66.5 % of owners took part
     "Participating owners 133/200 = 66.50% ≥ 2/3 ✗, short by 1 owner",
     "参与表决业主人数：133/200 = 66.50% ≥ 2/3 ✗，还差 1 位业主"),
    ("civil_code_278_major", 3, 2_999, 4_000,  # 74.975 % would round to 74.98 %, fine
     "Agreeing owners 2,999/4,000 = 74.98% ≥ 3/4 ✗, short by 1 owner",
     "同意业主人数：2,999/4,000 = 74.98% ≥ 3/4 ✗，还差 1 位业主"),
    ("civil_code_278_major", 3, 299_999, 400_000,  # 74.99975 % would read 75.00 %
     "Agreeing owners 299,999/400,000 = 74.99% ≥ 3/4 ✗, short by 1 owner",
     "同意业主人数：299,999/400,000 = 74.99% ≥ 3/4 ✗，还差 1 位业主"),
    ("objection_vote", 0, 30_001, 90_000,  # 33.3344 % would read 33.33 %, as if within 1/3
     "Objecting area 300.01/900.00 m² = 33.34% ≤ 1/3 ✗, over by 0.01 m²",
     "反对的专有部分面积：300.01/900.00 m² = 33.34% ≤ 1/3 ✗，超出 0.01 m²"),
    ("objection_vote", 1, 35, 100,
     "Objecting owners 35/100 = 35.00% ≤ 1/3 ✗, over by 2 owners",
     "反对业主人数：35/100 = 35.00% ≤ 1/3 ✗，超出 2 位业主"),
    ("objection_vote", 1, 1, 3,  # exactly a third is allowed
     "Objecting owners 1/3 = 33.33% ≤ 1/3 ✓", "反对业主人数：1/3 = 33.33% ≤ 1/3 ✓"),
    ("household_majority", 0, 0, 0,
     "Agreeing households 0/0 = — > 1/2 ✗, nobody took part",
     "同意户数：0/0 = — > 1/2 ✗，无人参与"),
])
def test_sentences(context, code, index, numerator, denominator, en, zh):
    condition = PRESETS[code].conditions[index]
    result = ConditionResult(condition, numerator, denominator,
                             condition.holds(numerator, denominator))
    assert check_words(result, "en") == en
    assert check_words(result, "zh_Hans") == zh
    check_words(result, "zh_Hant")


def test_exactly_two_thirds_is_printed_on_the_side_of_the_verdict(context):
    """200/300 is exactly 2/3 = 66.666…%: at least 2/3 (met) reads 66.67 %, more than 2/3
    (missed) reads 66.66 %, at most 2/3 (met) 66.66 %: never a figure that says the
    opposite."""
    for comparison, shown, met in ((Comparison.AT_LEAST, "66.67%", True),
                                   (Comparison.MORE_THAN, "66.66%", False),
                                   (Comparison.AT_MOST, "66.66%", True),
                                   (Comparison.LESS_THAN, "66.67%", False)):
        condition = Condition(Measure.HOUSEHOLDS, Count.AGREEING, Base.ROLL, comparison,
                              Fraction(2, 3))
        result = ConditionResult(condition, 200, 300, condition.holds(200, 300))
        assert result.met is met
        for locale in LOCALES:
            assert f"= {shown} " in check_words(result, locale)


# --- properties -------------------------------------------------------------------------------


def test_on_random_rolls_no_sentence_contradicts_its_verdict(app):
    """Every condition of every preset on random rolls (owners of several households,
    abstentions, not reached), in the three languages."""

    @settings(max_examples=150, deadline=None, database=None)
    @given(elections(), st.sampled_from(sorted(c for c, r in PRESETS.items() if r.conditions)))
    def check(election: Any, code: str) -> None:
        roll, ballots = election
        for result in tally(roll, ballots, [Question(1, "屋面防水")], PRESETS[code]).items[0] \
                .conditions:
            for locale in LOCALES:
                check_words(result, locale)

    with app.test_request_context():
        check()


def test_near_any_threshold_no_sentence_contradicts_its_verdict(app):
    """Large bases (areas in 0.01 m²) a few units either side of any threshold, for every
    comparison and measure: where plain rounding would give the threshold itself."""
    conditions = st.builds(
        lambda comparison, q, p, measure, count, base: Condition(
            measure, count, base, comparison, Fraction(min(p, q), q)),
        st.sampled_from(Comparison), st.integers(1, 12), st.integers(0, 12),
        st.sampled_from(Measure), st.sampled_from([Count.AGREEING, Count.OBJECTING]),
        st.sampled_from(Base))

    @settings(max_examples=400, deadline=None, database=None)
    @given(conditions, st.integers(0, 10**9), st.integers(-3, 3))
    def check(condition: Condition, d: int, offset: int) -> None:
        n = min(max(int(condition.fraction * d) + offset, 0), d)
        result = ConditionResult(condition, n, d, condition.holds(n, d))
        for locale in LOCALES:
            check_words(result, locale)

    with app.test_request_context():
        check()


# --- a frozen tally is reworded from its numbers ------------------------------------------------


def test_a_frozen_tally_with_the_old_words_reads_right_again(context):
    """A tally frozen with words that contradicted its mark is put in words again from its
    numbers wherever it is shown in the reader's language."""
    rule = PRESETS["civil_code_278_major"]
    frozen = {"rule": {"code": rule.code, "conditions": [c.to_dict() for c in rule.conditions]},
              "items": [{"number": 1, "conditions": [
                  {"text": "Participating area 800.00/800.00 m² = 100.00% ≥ 2/3 ✓",
                   "numerator": "800.00", "denominator": "800.00", "met": True},
                  {"text": "…", "numerator": 4, "denominator": 4, "met": True},
                  {"text": "Agreeing area 599.99/800.00 m² = 75.00% ≥ 3/4 ✗",
                   "numerator": "599.99", "denominator": "800.00", "met": False},
                  {"text": "…", "numerator": 3, "denominator": 4, "met": True}]}]}
    with force_locale("en"):
        words = [c["text"] for c in explain.reword(frozen)["items"][0]["conditions"]]
    assert words[2] == "Agreeing area 599.99/800.00 m² = 74.99% ≥ 3/4 ✗, short by 0.01 m²"
    assert words[3] == "Agreeing owners 3/4 = 75.00% ≥ 3/4 ✓"


def test_a_tally_for_the_terminal_lines_up_its_answers_in_every_language(context):
    rule = PRESETS["household_majority"]
    tally = {
        "provisional": True,
        "rule": {"code": rule.code, "conditions": [c.to_dict() for c in rule.conditions]},
        "roll": {"households": 10, "owners": 9, "area_m2": "1234.50"},
        "participation": {"households": 4, "owners": 4, "area_m2": "480.00"},
        "items": [{"number": 1, "title": "加装电梯", "passed": True,
                   "counts": {"none": 0, "disagree": 1, "agree": 3},
                   "percentages": {"none": "0.00", "disagree": "25.00", "agree": "75.00"},
                   "conditions": [{"numerator": 3, "denominator": 4, "met": True}]}],
    }
    with force_locale("en"):
        lines = explain.tally_lines(tally)
    assert lines[:4] == ["Provisional: voting is still open.",
                         "Majority of participating households",
                         "On the electoral roll: 10 households, 9 owners, 1,234.50 m²",
                         "Returned a ballot: 4 households, 4 owners, 480.00 m²"]
    assert lines[4] == "1. 加装电梯: passed"
    assert lines[5:8] == ["   Agree            3  75.00%", "   Disagree         1  25.00%",
                          "   No answer        0   0.00%"]
    assert lines[8] == "   Agreeing households 3/4 = 75.00% > 1/2 ✓"
    for locale in LOCALES:
        with force_locale(locale):
            answers = explain.tally_lines({**tally, "provisional": False})[4:7]
        # Counts end in the same terminal column whatever the answers' words (a Chinese
        # character takes two columns).
        assert len({explain._columns(line) for line in answers}) == 1, answers
