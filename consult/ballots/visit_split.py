"""Splitting a visit list among teams (pure: plain values in, plain values out).

Two ways, both deterministic so that the preview shown before saving is what is saved:

- **by count**: the list, in address order, cut into consecutive runs whose sizes differ by
  at most one (the first teams take the extra household);
- **by building**: whole buildings per team, balanced by household count: the largest
  building first, each to the team with the fewest households so far (ties: the earlier
  team). No building is cut in two, so the loads differ by at most the largest building.
"""

from __future__ import annotations

from collections.abc import Sequence


def split_by_count(total: int, teams: int) -> list[int]:
    """The team index of each of ``total`` households in list order."""
    if teams < 1:
        raise ValueError("at least one team")
    base, extra = divmod(total, teams)
    assignment: list[int] = []
    for team in range(teams):
        assignment.extend([team] * (base + (1 if team < extra else 0)))
    return assignment


def split_by_building(buildings: Sequence[tuple[str, int]], teams: int) -> dict[str, int]:
    """The team index of each building, given (building, households) pairs in address order."""
    if teams < 1:
        raise ValueError("at least one team")
    loads = [0] * teams
    order = {name: n for n, (name, _count) in enumerate(buildings)}
    assignment: dict[str, int] = {}
    for name, count in sorted(buildings, key=lambda b: (-b[1], order[b[0]])):
        team = min(range(teams), key=lambda t: (loads[t], t))
        assignment[name] = team
        loads[team] += count
    return assignment


def assign(buildings_of: Sequence[str], teams: int, mode: str) -> list[int]:
    """The team index of each household, given each household's building in list order;
    ``mode`` is "building" or "count"."""
    if mode == "count":
        return split_by_count(len(buildings_of), teams)
    counts: dict[str, int] = {}
    for building in buildings_of:
        counts[building] = counts.get(building, 0) + 1
    by_building = split_by_building(list(counts.items()), teams)
    return [by_building[b] for b in buildings_of]
