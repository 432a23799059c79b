"""Splitting a visit list among teams: by count (sizes differ by at most one) and by building
(whole buildings, balanced by households)."""

from collections import Counter

from hypothesis import given
from hypothesis import strategies as st

from consult.ballots.visit_split import assign, split_by_building, split_by_count


def test_by_count_hand_computed():
    # 11 households, 3 teams: 4, 4, 3 in address order.
    assert split_by_count(11, 3) == [0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2]
    assert split_by_count(2, 3) == [0, 1]


@given(st.integers(0, 500), st.integers(1, 12))
def test_by_count_sizes_differ_by_at_most_one(total, teams):
    sizes = Counter(split_by_count(total, teams))
    counts = [sizes.get(t, 0) for t in range(teams)]
    assert sum(counts) == total and max(counts) - min(counts) <= 1


def test_by_building_hand_computed():
    # 5, 3, 2, 2 households: 5 → A; 3 → B; 2 → B (3 < 5); 2 → A (5 = 5, the earlier team).
    assert split_by_building([("1号楼", 5), ("2号楼", 3), ("3号楼", 2), ("4号楼", 2)], 2) == {
        "1号楼": 0, "2号楼": 1, "3号楼": 1, "4号楼": 0}


@given(st.lists(st.integers(1, 40), min_size=1, max_size=20), st.integers(1, 6))
def test_by_building_keeps_buildings_whole_and_balanced(sizes, teams):
    buildings = [(f"{n}号楼", size) for n, size in enumerate(sizes)]
    owner = split_by_building(buildings, teams)
    loads = [0] * teams
    for name, size in buildings:
        loads[owner[name]] += size
    # Greedy largest-first: no team is more than the largest building above the lightest.
    assert max(loads) - min(loads) <= max(sizes)
    assert sum(loads) == sum(sizes)


def test_assign_by_building_gives_every_household_its_buildings_team():
    buildings_of = ["1号楼"] * 3 + ["2号楼"] * 2 + ["3号楼"]
    teams = assign(buildings_of, 2, "building")
    assert teams == [0, 0, 0, 1, 1, 1]
    assert assign(buildings_of, 2, "count") == [0, 0, 0, 1, 1, 1]
    assert assign(["1号楼"] * 4, 3, "count") == [0, 0, 1, 2]
