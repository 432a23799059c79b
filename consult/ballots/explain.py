"""Putting a tally into words and into the stable JSON shape of ``flask ballots tally --json``."""

from __future__ import annotations

import math
import unicodedata
from decimal import Decimal
from fractions import Fraction
from typing import Any

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_babel import ngettext

from consult.ballots.tally import (
    NO_ANSWER,
    Base,
    Choice,
    Comparison,
    Condition,
    ConditionResult,
    Count,
    Measure,
    Rule,
    TallyResult,
)
from consult.consultations.models import Consultation
from consult.core.display import area_m2, choice_order

CHOICE_LABELS = {
    Choice.AGREE.value: _l("Agree"),
    Choice.DISAGREE.value: _l("Disagree"),
    Choice.ABSTAIN.value: _l("Abstain"),
    Choice.UNDECIDED.value: _l("Undecided"),
    Choice.NOT_REACHED.value: _l("Not reached"),
    NO_ANSWER: _l("No answer"),
}
RULE_LABELS = {
    "household_majority": _l("Majority of participating households"),
    "household_two_thirds": _l("Two thirds of all households"),
    "civil_code_278_general": _l("Civil Code art. 278, ordinary matters"),
    "civil_code_278_major": _l("Civil Code art. 278, major matters"),
    "objection_vote": _l("Objection vote"),
    "survey": _l("Survey (counts only, no decision)"),
    "custom": _l("Local rule"),
}
_WHAT = {
    (Measure.HOUSEHOLDS, Count.PARTICIPATING): _l("Participating households"),
    (Measure.HOUSEHOLDS, Count.AGREEING): _l("Agreeing households"),
    (Measure.HOUSEHOLDS, Count.OBJECTING): _l("Objecting households"),
    (Measure.OWNERS, Count.PARTICIPATING): _l("Participating owners"),
    (Measure.OWNERS, Count.AGREEING): _l("Agreeing owners"),
    (Measure.OWNERS, Count.OBJECTING): _l("Objecting owners"),
    (Measure.AREA, Count.PARTICIPATING): _l("Participating area"),
    (Measure.AREA, Count.AGREEING): _l("Agreeing area"),
    (Measure.AREA, Count.OBJECTING): _l("Objecting area"),
}
_OF = {
    (Measure.HOUSEHOLDS, Base.ROLL): _l("all households on the roll"),
    (Measure.HOUSEHOLDS, Base.PARTICIPATING): _l("participating households"),
    (Measure.OWNERS, Base.ROLL): _l("all owners"),
    (Measure.OWNERS, Base.PARTICIPATING): _l("participating owners"),
    (Measure.AREA, Base.ROLL): _l("the total exclusive area"),
    (Measure.AREA, Base.PARTICIPATING): _l("the participating area"),
}
_COMPARISON_WORDS = {
    Comparison.MORE_THAN: _l("more than"),
    Comparison.AT_LEAST: _l("at least"),
    Comparison.AT_MOST: _l("at most"),
    Comparison.LESS_THAN: _l("less than"),
}
SYMBOLS = {Comparison.MORE_THAN: ">", Comparison.AT_LEAST: "≥", Comparison.AT_MOST: "≤",
           Comparison.LESS_THAN: "<"}


def fraction_text(value: Fraction) -> str:
    return f"{value.numerator}/{value.denominator}"


def amount_text(measure: Measure, value: int) -> str:
    """Households and owners as whole numbers; area (0.01 m²) as m² with two decimals."""
    if measure is Measure.AREA:
        return f"{Decimal(value) / 100:,.2f}"
    return f"{value:,}"


def condition_sentence(condition: Condition) -> str:
    """'Agreeing households: more than 1/2 of participating households'."""
    return _("%(what)s: %(comparison)s %(fraction)s of %(of)s",
             what=_WHAT[(condition.measure, condition.count)],
             comparison=_COMPARISON_WORDS[condition.comparison],
             fraction=fraction_text(condition.fraction),
             of=_OF[(condition.measure, condition.base)])


def rule_sentences(rule: Rule) -> list[str]:
    """The rule in words, one sentence per condition (none for a survey)."""
    return [condition_sentence(c) for c in rule.conditions]


def rule_label(rule: Rule) -> str:
    return str(RULE_LABELS.get(rule.code, RULE_LABELS["custom"]))


def condition_percent(c: Condition, numerator: int, denominator: int, met: bool) -> str:
    """The share numerator/denominator as a percentage with two decimals, for a sentence that
    compares it with the condition's threshold.

    Rounded half up, unless that would put it on the other side of the threshold than the
    verdict (599.99/800.00 is 74.99875 %, which would read "75.00 % ≥ 3/4" while it misses
    3/4): then it is rounded towards the verdict — down to 74.99 % there. Either way it is
    within 0.01 of the exact share, and the printed comparison always says what ``met`` says.
    """
    if denominator <= 0:
        return "—"
    exact = Fraction(numerator * 10_000, denominator)  # in hundredths of a percent
    hundredths = math.floor(exact + Fraction(1, 2))
    if c.holds(hundredths, 10_000) != met:
        # Up when the verdict is "the share is large enough" (met "more than"/"at least",
        # missed "at most"/"less than"), down otherwise.
        upward = (c.comparison in (Comparison.MORE_THAN, Comparison.AT_LEAST)) == met
        hundredths = math.ceil(exact) if upward else math.floor(exact)
    return f"{hundredths // 100}.{hundredths % 100:02d}%"


def change_text(c: Condition, numerator: int, denominator: int) -> str | None:
    """How far a missed condition is from being met, in its own unit: "short by 0.01 m²",
    "short by 3 owners", "over by 2 households" (an "at most" rule). None if it is met."""
    change = c.change_needed(numerator, denominator)
    if change == 0:
        return None
    if change is None:
        if denominator > 0:
            return _("this condition cannot be met")
        return _("nobody took part") if c.base is Base.PARTICIPATING else _("the roll is empty")
    amount = amount_text(c.measure, change)
    short = c.comparison in (Comparison.MORE_THAN, Comparison.AT_LEAST)
    if c.measure is Measure.AREA:
        return (_("short by %(amount)s m²", amount=amount) if short
                else _("over by %(amount)s m²", amount=amount))
    if c.measure is Measure.OWNERS:
        if short:
            return ngettext("short by %(amount)s owner", "short by %(amount)s owners", change,
                            amount=amount)
        return ngettext("over by %(amount)s owner", "over by %(amount)s owners", change,
                        amount=amount)
    if short:
        return ngettext("short by %(amount)s household", "short by %(amount)s households",
                        change, amount=amount)
    return ngettext("over by %(amount)s household", "over by %(amount)s households", change,
                    amount=amount)


def condition_text(result: ConditionResult) -> str:
    """'Participating area 2,310.50/3,120.00 m² = 74.05% ≥ 2/3 ✓', or for one that is missed
    'Agreeing area 599.99/800.00 m² = 74.99% ≥ 3/4 ✗, short by 0.01 m²'."""
    return _condition_words(result.condition, result.numerator, result.denominator, result.met)


def _condition_words(c: Condition, numerator: int, denominator: int, met: bool) -> str:
    unit = " m²" if c.measure is Measure.AREA else ""
    text = _("%(what)s %(num)s/%(den)s%(unit)s = %(pct)s %(symbol)s %(fraction)s %(mark)s",
             what=_WHAT[(c.measure, c.count)], num=amount_text(c.measure, numerator),
             den=amount_text(c.measure, denominator), unit=unit,
             pct=condition_percent(c, numerator, denominator, met),
             symbol=SYMBOLS[c.comparison], fraction=fraction_text(c.fraction),
             mark="✓" if met else "✗")
    change = None if met else change_text(c, numerator, denominator)
    return _("%(condition)s, %(change)s", condition=text, change=change) if change else text


def reword(tally: dict[str, Any]) -> dict[str, Any]:
    """A tally in the JSON shape, its words put again in the current language from its
    numbers: a frozen tally keeps the words of the consultation's language, and a reader who
    chose another one should still read the result in theirs. Numbers are never recomputed."""
    conditions = [Condition.from_dict(c) for c in tally["rule"]["conditions"]]

    def amount(condition: Condition, value: Any) -> int:
        # Areas are frozen as "1234.56" m², the rest as whole numbers.
        return int(Decimal(str(value)) * 100) if condition.measure is Measure.AREA else int(value)

    return {
        **tally,
        "rule": {**tally["rule"], "label": str(RULE_LABELS.get(tally["rule"]["code"],
                                                               RULE_LABELS["custom"])),
                 "conditions": [{**data, "text": condition_sentence(condition)}
                                for data, condition in zip(tally["rule"]["conditions"],
                                                           conditions, strict=True)]},
        "items": [{
            **item,
            "conditions": [{**data, "text": _condition_words(
                condition, amount(condition, data["numerator"]),
                amount(condition, data["denominator"]), bool(data["met"]))}
                for data, condition in zip(item["conditions"], conditions, strict=True)],
        } for item in tally["items"]],
    }


def _area(value: int) -> str:
    return f"{value // 100}.{value % 100:02d}"


def tally_json(consultation: Consultation, result: TallyResult, *, provisional: bool
               ) -> dict[str, Any]:
    """The tally in the stable shape other tools read (``flask ballots tally ID --json``)."""
    return {
        "consultation_id": consultation.id,
        "round": consultation.round,
        "stage": consultation.stage,
        "provisional": provisional,
        "rule": {"code": result.rule.code, "label": rule_label(result.rule),
                 "conditions": [{**c.to_dict(), "text": condition_sentence(c)}
                                for c in result.rule.conditions]},
        "roll": {"households": result.roll.households, "owners": result.roll.owners,
                 "area_m2": _area(result.roll.area_dm2)},
        "participation": {"households": result.participation.households,
                          "owners": result.participation.owners,
                          "area_m2": _area(result.participation.area_dm2)},
        "passed": result.passed,
        "items": [{
            "number": item.number,
            "title": item.title,
            "counts": item.counts,
            "owners": item.owners,
            "area_m2": {k: _area(v) for k, v in item.area_dm2.items()},
            "percentages": {k: str(v) for k, v in item.percentages.items()},
            "participation": {"households": item.participation.households,
                              "owners": item.participation.owners,
                              "area_m2": _area(item.participation.area_dm2)},
            "conditions": [{
                "text": condition_text(r),
                "numerator": (_area(r.numerator) if r.condition.measure is Measure.AREA
                              else r.numerator),
                "denominator": (_area(r.denominator) if r.condition.measure is Measure.AREA
                                else r.denominator),
                "threshold": fraction_text(r.condition.fraction),
                "comparison": r.condition.comparison.value,
                "met": r.met,
            } for r in item.conditions],
            "passed": item.passed,
            "owner_conflicts": item.owner_conflicts,
            "by_building": [{"building": name, "counts": counts}
                            for name, counts in item.by_building],
        } for item in result.items],
    }


def _columns(text: str) -> int:
    """How many terminal columns ``text`` takes: a Chinese character takes two."""
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def tally_lines(tally: dict[str, Any]) -> list[str]:
    """A tally in the JSON shape as lines of plain text for a terminal (``flask ballots
    tally``), in the reader's language (``reword``): whether it is provisional, the rule, the
    roll and the participation, then per item its verdict, every answer with its count and
    percentage in aligned columns, and its conditions."""
    data = reword(tally)
    lines = [_("Provisional: voting is still open.")] if data["provisional"] else []
    lines.append(data["rule"]["label"])
    for label, totals in ((_("On the electoral roll"), data["roll"]),
                          (_("Returned a ballot"), data["participation"])):
        lines.append(_("%(label)s: %(h)s households, %(o)s owners, %(a)s m²", label=label,
                       h=totals["households"], o=totals["owners"],
                       a=area_m2(totals["area_m2"])))
    verdicts = {True: _("passed"), False: _("not passed"), None: _("survey")}
    for item in data["items"]:
        lines.append(_("%(number)s. %(title)s: %(verdict)s", number=item["number"],
                       title=item["title"], verdict=verdicts[item["passed"]]))
        for key in choice_order(list(item["counts"])):
            label = str(CHOICE_LABELS.get(key, key))
            pad = " " * max(12 - _columns(label), 1)
            lines.append(f"   {label}{pad}{item['counts'][key]:>6}  "
                         f"{item['percentages'][key]:>5}%")
        lines.extend(f"   {condition['text']}" for condition in item["conditions"])
    return lines
