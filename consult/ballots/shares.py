"""A household's share of an item's cost when the households pay in proportion to their floor
area (按面积分摊): its area over the area of all households the consultation concerns — those on
the roll once the vote has opened, the households in scope before."""

from __future__ import annotations

from collections.abc import Iterable

from consult.ballots import service as ballots
from consult.consultations.models import Consultation, Item
from consult.consultations.service import household_in_scope
from consult.registry.models import Household


def area_share_fen(cost_fen: int, area_dm2: int, total_area_dm2: int) -> int | None:
    """``cost_fen`` × ``area_dm2`` / ``total_area_dm2``, rounded to the fen (half up).

    None when there is nothing to share or nothing to share it by: no cost, a household without
    area, no total area, or a household area beyond the total (it cannot be among them).
    """
    if cost_fen <= 0 or area_dm2 <= 0 or total_area_dm2 <= 0 or area_dm2 > total_area_dm2:
        return None
    # Integers throughout: 2·c·a / 2·t plus one half, floored, rounds half up without floats.
    return (2 * cost_fen * area_dm2 + total_area_dm2) // (2 * total_area_dm2)


def household_shares(consultation: Consultation, household: Household | None,
                     items: Iterable[Item] | None = None) -> dict[int, int]:
    """item id → the household's share in fen, for the items (all by default) whose cost is
    split by area. Empty for no household, one outside the consultation (another compound, out
    of scope, or not on the roll once the vote opened) or no such item."""
    chosen = [i for i in (consultation.items if items is None else items)
              if i.cost_split_by_area and i.estimated_cost_fen > 0]
    if household is None or not chosen:
        return {}
    if consultation.vote_opened_at is not None:
        entry = ballots.roll_entry_for(consultation, household.id)
        if entry is None:
            return {}
        area, total = entry.area_dm2, ballots.roll_totals(consultation).area_dm2
    else:
        if not household_in_scope(consultation, household):
            return {}
        area, total = household.area_dm2, ballots.scope_totals(consultation).area_dm2
    shares = {item.id: area_share_fen(item.estimated_cost_fen, area, total) for item in chosen}
    return {item_id: fen for item_id, fen in shares.items() if fen is not None}
