"""A questionnaire's results, counted from plain values: per question the households per
choice (or per rating), percentages that add up to exactly 100.0 (largest remainder, the
tally's own ``largest_remainder``), the same per building, a rating's average and the free
texts. No Flask, no session: the service reads the answers and hands them over."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction

from consult.ballots.tally import largest_remainder

SINGLE, MULTIPLE, RATING, TEXT = "single", "multiple", "rating", "text"
RATINGS = ("1", "2", "3", "4", "5")


@dataclass(frozen=True)
class QuestionSpec:
    """A question as counted: its id, kind and options (choices' texts; ratings "1"…"5")."""

    id: int
    kind: str
    options: tuple[str, ...] = ()


@dataclass(frozen=True)
class Reply:
    """One household's answer to one question: a choice's position (single), positions
    (multiple), a rating 1–5, or a text."""

    question_id: int
    building: str
    value: int | tuple[int, ...] | str
    answer_id: int | None = None
    room: str = ""


@dataclass
class Breakdown:
    """Counts per option among some households (all of them, or one building's)."""

    counts: list[int]
    respondents: int  # households that answered the question
    percentages: list[Decimal]


@dataclass
class QuestionResult:
    question_id: int
    kind: str
    options: tuple[str, ...]
    total: Breakdown
    by_building: list[tuple[str, Breakdown]] = field(default_factory=list)
    average: Decimal | None = None  # ratings: to two decimals
    texts: list[Reply] = field(default_factory=list)


def percentages(counts: Sequence[int]) -> list[Decimal]:
    """Each count's share of their sum, one decimal, adding up to exactly 100.0 (all 0.0 when
    nothing was counted)."""
    keyed = {str(n): count for n, count in enumerate(counts)}
    shares = largest_remainder(keyed, sum(counts))
    return [shares[str(n)] for n in range(len(counts))]


def _breakdown(spec: QuestionSpec, replies: Iterable[Reply]) -> Breakdown:
    counts = [0] * len(spec.options)
    respondents = 0
    for reply in replies:
        respondents += 1
        if spec.kind == MULTIPLE:
            assert isinstance(reply.value, tuple)
            for position in reply.value:
                counts[position] += 1
        elif spec.kind == RATING:
            assert isinstance(reply.value, int)
            counts[reply.value - 1] += 1
        else:
            assert isinstance(reply.value, int)
            counts[reply.value] += 1
    # For a multiple choice the shares are of all ticks, so they too add up to 100.0.
    return Breakdown(counts, respondents, percentages(counts))


def average(counts: Sequence[int]) -> Decimal | None:
    """The average rating of counts per rating 1…5, to two decimals (half up); None when
    nobody rated."""
    total = sum(counts)
    if total == 0:
        return None
    exact = Fraction(sum((n + 1) * c for n, c in enumerate(counts)), total)
    return (Decimal(exact.numerator) / Decimal(exact.denominator)).quantize(
        Decimal("0.01"), rounding=ROUND_HALF_UP)


def tabulate(questions: Sequence[QuestionSpec], replies: Iterable[Reply],
             buildings: Sequence[str] = ()) -> list[QuestionResult]:
    """Every question's result, in the questions' order; buildings in the order given (then
    any other building met, by name)."""
    by_question: dict[int, list[Reply]] = {q.id: [] for q in questions}
    for reply in replies:
        if reply.question_id in by_question:
            by_question[reply.question_id].append(reply)
    results = []
    for spec in questions:
        mine = by_question[spec.id]
        if spec.kind == TEXT:
            results.append(QuestionResult(spec.id, spec.kind, (),
                                          Breakdown([], len(mine), []), texts=mine))
            continue
        names = list(buildings) + sorted({r.building for r in mine} - set(buildings))
        rows = [(name, _breakdown(spec, [r for r in mine if r.building == name]))
                for name in names]
        total = _breakdown(spec, mine)
        results.append(QuestionResult(
            spec.id, spec.kind, spec.options, total,
            by_building=[(name, row) for name, row in rows if row.respondents],
            average=average(total.counts) if spec.kind == RATING else None))
    return results
