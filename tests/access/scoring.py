"""Scoring rounds: staff see the rounds of their compounds, a compound's committee scores the
others, the street office (administrators) runs rounds; a published ranking is public."""

from datetime import date
from typing import Any

from tests import factories
from tests.access import ADMIN, EVERYONE, EXPECTED, READERS, STAFF_ROLE, WORLD_BUILDERS

EXPECTED.update({
    # The list is filtered to the rounds of one's compounds: every staff role opens it.
    "scoring.index": ("GET", STAFF_ROLE),
    "scoring.show": ("GET", READERS),
    "scoring.score": ("GET", frozenset({"committee"})),
    "scoring.new": ("GET", ADMIN),
    "scoring.edit": ("GET", ADMIN),
    "scoring.inspect": ("GET", ADMIN),
    "scoring.close": ("GET", ADMIN),
    "scoring.notice": ("GET", EVERYONE),
    "scoring.notice_pdf": ("GET", EVERYONE),
})


def build(world: dict[str, Any]) -> None:
    """An open round of the test compound and two others, and a closed one with its ranking."""
    from consult.scoring import service as scoring

    others = [factories.make_compound(f"评比小区{n}") for n in (1, 2)]
    compounds = [world["compound"], *others]

    def data(name: str) -> scoring.RoundInput:
        return scoring.RoundInput(
            name=name, period_start=date(2026, 11, 1), period_end=date(2026, 12, 31),
            compound_ids=[c.id for c in compounds],
            criteria=scoring.parse_sheet("环境 | 1 | 10"), inspector_weight_pct=0,
            decimals=0, honour_count=1, outlier_points=15)

    open_round = scoring.open_round(None, data("进行中"))
    closed = scoring.open_round(None, data("已结束"))
    scoring.record_inspector_scores(None, closed, "王", others[0].id,
                                    {closed.criteria[0].id: "8"})
    notice = scoring.close_round(None, closed)
    world.update(round_id=open_round.id, scorer_id=world["compound"].id,
                 target_id=others[0].id, ranking_id=notice.id)


WORLD_BUILDERS.append(build)
