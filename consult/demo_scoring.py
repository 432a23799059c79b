"""Demo data: a finished scoring round (观摩评比) among the compounds the demo has, with its
ranking published. Deterministic: the same compounds give the same scores."""

from __future__ import annotations

import random
from datetime import date
from typing import Any

from sqlalchemy import select

from consult.extensions import db
from consult.registry import service as registry
from consult.registry.models import Community, Compound
from consult.scoring import service as scoring
from consult.scoring.models import ScoringRound

ROUND_NAME = "2026年第5期观摩评比（9—10月）"
SHEET = "环境卫生 | 30 | 10\n设施维护 | 25 | 10\n居民参与 | 25 | 10\n公开透明 | 20 | 10"
MAX_COMPOUNDS = 16  # enough for a street office's review; keeps the demo quick
# Compounds added only when the demo has fewer than three (a round needs three).
EXTRA = (("建设路小区", "建设路12号"), ("红星小区", "红星街3号"))
INSPECTORS = ("街道检查组 刘敏", "街道检查组 陈刚")


def _compounds() -> list[Compound]:
    compounds = list(db.session.scalars(select(Compound).order_by(Compound.id)
                                        .limit(MAX_COMPOUNDS)))
    if len(compounds) >= scoring.MIN_COMPOUNDS:
        return compounds
    community = compounds[0].community if compounds else db.session.scalar(
        select(Community).order_by(Community.id).limit(1))
    if community is None:
        community = registry.create_community(None, "示范社区")
    for name, address in EXTRA[:scoring.MIN_COMPOUNDS - len(compounds)]:
        compounds.append(registry.create_compound(None, community, name, address))
    return compounds


def seed_scoring(admin: Any) -> ScoringRound:
    """The round, found again on a second run; otherwise opened, scored and closed."""
    existing = db.session.scalar(select(ScoringRound).where(ScoringRound.name == ROUND_NAME))
    if existing is not None:
        return existing
    compounds = _compounds()
    round_ = scoring.open_round(admin, scoring.RoundInput(
        name=ROUND_NAME, period_start=date(2026, 9, 1), period_end=date(2026, 10, 31),
        compound_ids=[c.id for c in compounds], criteria=scoring.parse_sheet(SHEET),
        inspector_weight_pct=20, decimals=1, honour_count=max(1, len(compounds) // 4),
        outlier_points=15))
    rng = random.Random(" ".join(c.name for c in compounds))
    # How well kept each compound is, in tenths of a point: the scorers roughly agree on it.
    level = {c.id: rng.randint(55, 92) for c in compounds}
    for scorer in compounds:
        for target in compounds:
            if scorer.id == target.id:
                continue
            scoring.record_scores(None, round_, scorer.id, target.id, {
                criterion.id: str(max(0, min(100, level[target.id] + rng.randint(-8, 8))) / 10)
                for criterion in round_.criteria})
    # One compound marks down its neighbour far below everyone else: flagged on the ranking.
    first, second = compounds[0], compounds[1]
    scoring.record_scores(None, round_, second.id, first.id,
                          {criterion.id: "2" for criterion in round_.criteria})
    for inspector in INSPECTORS:
        for target in compounds:
            scoring.record_inspector_scores(admin, round_, inspector, target.id, {
                criterion.id: str(max(0, min(100, level[target.id] + rng.randint(-5, 5))) / 10)
                for criterion in round_.criteria})
    scoring.close_round(admin, round_)
    return round_
