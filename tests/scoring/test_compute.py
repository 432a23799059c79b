"""The arithmetic of a scoring round, exact, against hand computations (no database)."""

from fractions import Fraction as F

from consult.scoring import compute
from consult.scoring.compute import Criterion, Sheet

SHEET = [Criterion(1, 3, 10), Criterion(2, 1, 5)]


def test_sheet_total_weights_each_criterion_by_its_share_of_its_maximum():
    # 100 × (3 × 6.5/10 + 1 × 3/5) / 4 = 100 × 2.55 / 4 = 63.75
    assert compute.sheet_total(SHEET, {1: F("6.5"), 2: F(3)}) == F("63.75")
    assert compute.sheet_total(SHEET, {1: F(10), 2: F(5)}) == 100
    assert compute.sheet_total(SHEET, {1: F(10)}) is None  # a blank criterion: not counted


def test_peer_mean_is_exact_and_inspectors_take_their_weight():
    sheets = {7: [Sheet("c:1", False, {1: F(8), 2: F(4)}),     # 80
                  Sheet("c:2", False, {1: F(7), 2: F(4)}),     # 72.5
                  Sheet("c:3", False, {1: F(7), 2: F(3)}),     # 67.5
                  Sheet("i:王", True, {1: F(9), 2: F(5)})]}     # 92.5
    (outcome,) = compute.outcomes(SHEET, [7], sheets, F(1, 4), 1)
    assert outcome.peer == F(440, 6)  # (80 + 72.5 + 67.5) / 3 = 73⅓
    assert outcome.inspectors == F("92.5")
    # ¾ × 220/3 + ¼ × 92.5 = 55 + 23.125
    assert outcome.score == F("78.125")
    assert compute.shown(outcome.peer) == "73.33"
    assert compute.shown(outcome.score) == "78.13"  # half up


def test_ties_share_a_rank_and_the_next_is_skipped_and_honour_covers_the_tie():
    results = [compute.Outcome(i, None, None, F(s), 0, 0) for i, s in
               enumerate([70, 90, 80, 90, 60], start=1)]
    ranked = compute.rank(results, honour_count=1)
    assert [(r.compound_id, r.rank, r.honour) for r in ranked] == [
        (2, 1, True), (4, 1, True), (3, 3, False), (1, 4, False), (5, 5, False)]


def test_an_outlier_is_a_total_far_from_the_median_of_the_compounds_totals():
    sheets = {1: [Sheet("c:2", False, {1: F(8), 2: F(4)}),   # 80
                  Sheet("c:3", False, {1: F(8), 2: F(5)}),   # 85
                  Sheet("c:4", False, {1: F(2), 2: F(1)})]}  # 20
    results = compute.outcomes(SHEET, [1], sheets, F(0), 1)
    (flag,) = compute.outliers(results, F(15))
    assert (flag.scorer, flag.total, flag.median, flag.deviation) == ("c:4", 20, 80, 60)
    # Two sheets are too few to say which one is off.
    two = compute.outcomes(SHEET, [1], {1: sheets[1][1:]}, F(0), 1)
    assert compute.outliers(two, F(15)) == []


def test_shown_rounds_half_up_exactly():
    assert compute.shown(F(1, 200)) == "0.01"
    assert compute.shown(F(1, 201)) == "0.00"
    assert compute.shown(F(76)) == "76.00"
    assert compute.shown(None) == ""
