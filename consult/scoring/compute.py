"""How a round's scores become each compound's weighted score, its rank and the outliers.

Pure functions on plain values, exact throughout (``fractions.Fraction``; no floats):

1. A scorer's **sheet total** for a compound, out of 100, is
   ``100 × Σ_c (w_c × p_c / max_c) / Σ_c w_c`` over the criteria c of the sheet (weight w_c,
   most points max_c, points given p_c). Only complete sheets count: a scorer who left a
   criterion of a compound blank is left out for that compound (and counted as missing).
2. The **peer score** of a compound is the plain mean of the totals its peers' complete sheets
   give it; the **inspectors' score** the plain mean of the inspectors' totals.
3. The **weighted score** is ``(1 − α) × peer + α × inspectors`` with α the inspectors' weight
   (percent / 100). Without any inspector's sheet for the compound it is the peer score alone,
   without any peer's sheet the inspectors' score alone; without either, no score (unranked).
4. **Ranking**: by weighted score, highest first; exactly equal scores share a rank and the
   next rank skips (1, 2, 2, 4). 红旗楼院 goes to every compound whose rank is within the
   round's honour count, so a tie at the boundary honours all the tied compounds.
5. **Outliers**: a sheet total further than the round's threshold (points out of 100) from the
   median of all the sheet totals for the same compound (peers and inspectors together) is
   flagged; it needs at least three sheets, so that the median stands for the others. Flagged
   totals still count: the flag asks the office to look, it does not change the result.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from fractions import Fraction

HUNDRED = Fraction(100)
MIN_SHEETS_FOR_OUTLIERS = 3


@dataclass(frozen=True)
class Criterion:
    id: int
    weight: int
    max_points: int


@dataclass(frozen=True)
class Sheet:
    """One scorer's points for one compound: criterion id → points (exact)."""

    scorer: str  # "c:<compound id>" or "i:<inspector name>"
    inspector: bool
    points: Mapping[int, Fraction]


@dataclass
class Outcome:
    compound_id: int
    peer: Fraction | None
    inspectors: Fraction | None
    score: Fraction | None
    peer_sheets: int
    inspector_sheets: int
    totals: dict[str, Fraction] = field(default_factory=dict)
    rank: int | None = None
    honour: bool = False


@dataclass(frozen=True)
class Outlier:
    compound_id: int
    scorer: str
    total: Fraction
    median: Fraction
    deviation: Fraction


def sheet_total(criteria: Sequence[Criterion], points: Mapping[int, Fraction]) -> Fraction | None:
    """A sheet's total out of 100 (rule 1), or None when a criterion is left blank."""
    if any(c.id not in points for c in criteria):
        return None
    weights = sum(c.weight for c in criteria)
    weighted = sum((Fraction(c.weight) * points[c.id] / c.max_points for c in criteria),
                   Fraction(0))
    return HUNDRED * weighted / weights


def _mean(values: Sequence[Fraction]) -> Fraction | None:
    return sum(values, Fraction(0)) / len(values) if values else None


def median(values: Sequence[Fraction]) -> Fraction:
    """The median; of an even count, the mean of the two middle values."""
    ordered = sorted(values)
    middle = len(ordered) // 2
    if len(ordered) % 2:
        return ordered[middle]
    return (ordered[middle - 1] + ordered[middle]) / 2


def combine(peer: Fraction | None, inspectors: Fraction | None,
            inspector_weight: Fraction) -> Fraction | None:
    """The weighted score of rule 3."""
    if peer is None:
        return inspectors
    if inspectors is None:
        return peer
    return (1 - inspector_weight) * peer + inspector_weight * inspectors


def outcomes(criteria: Sequence[Criterion], compound_ids: Sequence[int],
             sheets: Mapping[int, Sequence[Sheet]], inspector_weight: Fraction,
             honour_count: int) -> list[Outcome]:
    """Every compound's scores, ranked (rules 1–4); ``sheets``: compound id → sheets about it."""
    results = []
    for compound_id in compound_ids:
        totals: dict[str, Fraction] = {}
        peers: list[Fraction] = []
        inspectors: list[Fraction] = []
        for sheet in sheets.get(compound_id, ()):
            total = sheet_total(criteria, sheet.points)
            if total is None:
                continue
            totals[sheet.scorer] = total
            (inspectors if sheet.inspector else peers).append(total)
        peer, inspected = _mean(peers), _mean(inspectors)
        results.append(Outcome(compound_id, peer, inspected,
                               combine(peer, inspected, inspector_weight),
                               len(peers), len(inspectors), totals))
    return rank(results, honour_count)


def rank(results: list[Outcome], honour_count: int) -> list[Outcome]:
    """Rule 4: competition ranking (1, 2, 2, 4) by exact score; unscored compounds last."""
    scored = sorted((r for r in results if r.score is not None),
                    key=lambda r: r.score or Fraction(0), reverse=True)
    previous: Fraction | None = None
    current = 0
    for position, result in enumerate(scored, start=1):
        if result.score != previous:
            current, previous = position, result.score
        result.rank = current
        result.honour = current <= honour_count
    return scored + [r for r in results if r.score is None]


def outliers(results: Sequence[Outcome], threshold: Fraction) -> list[Outlier]:
    """Rule 5: sheet totals further than ``threshold`` from the median of the compound's
    sheet totals (three sheets at least)."""
    found = []
    for result in results:
        if len(result.totals) < MIN_SHEETS_FOR_OUTLIERS:
            continue
        middle = median(list(result.totals.values()))
        for scorer, total in result.totals.items():
            if abs(total - middle) > threshold:
                found.append(Outlier(result.compound_id, scorer, total, middle,
                                     abs(total - middle)))
    return found


def shown(value: Fraction | None, places: int = 2) -> str:
    """An exact value as a decimal string, rounded half up (for pages and the notice)."""
    if value is None:
        return ""
    scaled = value * 10 ** places
    # Half up, away from zero, on the exact value (never a binary approximation).
    units = math.floor(abs(scaled) + Fraction(1, 2)) * (1 if scaled >= 0 else -1)
    return str(Decimal(units).scaleb(-places))
