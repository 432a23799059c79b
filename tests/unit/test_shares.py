"""A household's share of a cost split by floor area: rounding to the fen and the cases where
there is no share to show."""

import pytest

from consult.ballots.shares import area_share_fen


def test_the_share_is_the_cost_times_the_area_over_the_total():
    # ¥12,345.67 over 492 m², a household of 60 m²: 150,556.95 fen → 150,557 fen.
    assert area_share_fen(1_234_567, 6000, 49_200) == 150_557


@pytest.mark.parametrize(("cost", "area", "total", "share"), [
    (1, 1, 2, 1),          # exactly half a fen rounds up
    (1, 1, 3, 0),          # a third of a fen rounds down
    (2, 1, 3, 1),          # two thirds round up
    (100, 1, 1, 100),      # the only household pays it all
    (100_000_000_000, 8532, 8_532_000, 100_000_000),  # large amounts stay exact
])
def test_rounding_to_the_fen_half_up(cost, area, total, share):
    assert area_share_fen(cost, area, total) == share


def test_shares_of_all_households_come_to_the_cost_within_a_fen_each():
    areas = [6000, 6100, 6200, 6300, 7777, 12345]
    shares = [area_share_fen(99_999, a, sum(areas)) for a in areas]
    assert all(s is not None for s in shares)
    assert abs(sum(s for s in shares if s is not None) - 99_999) <= len(areas) // 2


@pytest.mark.parametrize(("cost", "area", "total"), [
    (100_000, 0, 49_200),      # a household without area
    (100_000, 6000, 0),        # nobody to share with
    (100_000, 6000, 5000),     # more area than all of them: not among them
    (0, 6000, 49_200),         # no cost
    (-5, 6000, 49_200),
])
def test_no_share_without_something_to_share_or_someone_to_share_it(cost, area, total):
    assert area_share_fen(cost, area, total) is None
