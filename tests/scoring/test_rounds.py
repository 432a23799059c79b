"""Scoring rounds end to end: opening, scoring (never one's own compound), closing, the
published ranking, its verification and its PDF."""

from __future__ import annotations

import io
import json
import re
from datetime import date
from fractions import Fraction as F

import pytest
from pypdf import PdfReader
from sqlalchemy import func, select

from consult.core.errors import Conflict, PermissionDenied, ValidationFailed
from consult.extensions import db
from consult.notices.models import Notice
from consult.scoring import service as scoring
from consult.scoring.models import Score
from tests import factories
from tests.conftest import audit_actions

EN = {"Accept-Language": "en"}


def open_round(compounds, admin, **overrides):
    data = dict(name="2026年第六期观摩评比", period_start=date(2026, 11, 1),
                period_end=date(2026, 12, 31), compound_ids=[c.id for c in compounds],
                criteria=scoring.parse_sheet("环境卫生 | 3 | 10\n设施维护 | 1 | 5"),
                inspector_weight_pct=20, decimals=1, honour_count=1, outlier_points=15)
    data.update(overrides)
    return scoring.open_round(admin, scoring.RoundInput(**data))


@pytest.fixture
def three():
    return [factories.make_compound(name) for name in ("幸福小区", "和平小区", "光明小区")]


@pytest.fixture
def admin():
    return factories.make_user("admin")


def sheet(round_, a, b):
    first, second = round_.criteria
    return {first.id: a, second.id: b}


def committees(compounds):
    return [factories.make_user("committee", compound=c) for c in compounds]


def score_all(round_, compounds, admin):
    """The scores of the hand computation below."""
    x, y, z = compounds
    cx, cy, cz = committees(compounds)
    scoring.record_scores(cy, round_, y.id, x.id, sheet(round_, "8", "4"))      # 80
    scoring.record_scores(cz, round_, z.id, x.id, sheet(round_, "6.5", "3"))    # 63.75
    scoring.record_scores(cx, round_, x.id, y.id, sheet(round_, "7", "2"))      # 62.5
    scoring.record_scores(cz, round_, z.id, y.id, sheet(round_, "9", "4.5"))    # 90
    scoring.record_scores(cx, round_, x.id, z.id, sheet(round_, "10", "5"))     # 100
    scoring.record_scores(cy, round_, y.id, z.id, sheet(round_, "5", "2"))      # 47.5
    scoring.record_inspector_scores(admin, round_, "王检查", x.id, sheet(round_, "9", "5"))  # 92.5
    scoring.record_inspector_scores(admin, round_, "王检查", z.id, sheet(round_, "7", "3"))  # 67.5


def test_weighted_scores_are_exact_against_a_hand_computation(three, admin):
    round_ = open_round(three, admin)
    score_all(round_, three, admin)
    x, y, z = three
    results, _outliers = scoring.compute_results(round_)
    by_id = {r.compound_id: r for r in results}
    # Sheet total = 100 × Σ weight × points / most / Σ weights, with weights 3 and 1.
    # X: peers (80 + 63.75) / 2 = 71.875; inspector 92.5; 0.8 × 71.875 + 0.2 × 92.5 = 76
    assert by_id[x.id].peer == F("71.875") and by_id[x.id].inspectors == F("92.5")
    assert by_id[x.id].score == F(76)
    # Y: peers (62.5 + 90) / 2 = 76.25, no inspector: the peers alone
    assert by_id[y.id].score == F("76.25") and by_id[y.id].inspectors is None
    # Z: peers (100 + 47.5) / 2 = 73.75; inspector 67.5; 0.8 × 73.75 + 0.2 × 67.5 = 72.5
    assert by_id[z.id].score == F("72.5")
    assert [(r.compound_id, r.rank, r.honour) for r in results] == [
        (y.id, 1, True), (x.id, 2, False), (z.id, 3, False)]

    notice = scoring.close_round(admin, round_)
    ranking = scoring.notices.content_of(notice)["ranking"]
    assert [(r["compound"], r["rank"], r["score"], r["honour"]) for r in ranking] == [
        ("和平小区", 1, "76.25", True), ("幸福小区", 2, "76.00", False),
        ("光明小区", 3, "72.50", False)]
    assert ranking[1]["exact"] == "76/1"
    assert notice.kind == "ranking" and notice.consultation_id is None
    assert notice.scoring_round_id == round_.id
    assert audit_actions()[-2:] == ["scoring.round_closed", "notice.published"]


def test_a_compound_never_scores_itself(three, admin):
    round_ = open_round(three, admin)
    x = three[0]
    (member,) = committees([x])
    with pytest.raises(Conflict):
        scoring.record_scores(member, round_, x.id, x.id, sheet(round_, "8", "4"))
    assert db.session.scalar(select(func.count(Score.id))) == 0


def test_the_refusal_holds_on_the_page_too(client, login_as, three, admin):
    round_ = open_round(three, admin)
    x = three[0]
    login_as("committee", compound=x)
    first, second = round_.criteria
    response = client.post(f"/scoring/{round_.id}/compounds/{x.id}/score/{x.id}",
                           data={f"c{first.id}": "8", f"c{second.id}": "4"},
                           headers=EN)
    assert response.status_code == 409
    assert "A compound does not score itself." in response.get_data(as_text=True)
    assert db.session.scalar(select(func.count(Score.id))) == 0


def test_only_a_compounds_own_committee_scores_for_it(three, admin):
    round_ = open_round(three, admin)
    x, y, _z = three
    (outsider,) = committees([y])
    with pytest.raises(PermissionDenied):
        scoring.record_scores(outsider, round_, x.id, y.id, sheet(round_, "8", "4"))


def test_scores_are_validated_all_or_nothing(three, admin):
    round_ = open_round(three, admin)
    x, y, _z = three
    (member,) = committees([x])
    first, second = round_.criteria
    with pytest.raises(ValidationFailed) as refused:
        scoring.record_scores(member, round_, x.id, y.id, sheet(round_, "8.25", "6"))
    assert refused.value.errors == {f"c{first.id}": ["At most 1 decimal places."],
                                    f"c{second.id}": ["From 0 to 5 points."]}
    assert db.session.scalar(select(func.count(Score.id))) == 0


def test_a_scorer_changes_its_scores_while_open_but_never_after_close(client, login_as, three,
                                                                       admin):
    round_ = open_round(three, admin)
    x, y, _z = three
    member = login_as("committee", compound=x)
    scoring.record_scores(member, round_, x.id, y.id, sheet(round_, "7", "2"))
    scoring.record_scores(member, round_, x.id, y.id, sheet(round_, "7.5", "2"))
    assert scoring.scores_of(round_, f"c:{x.id}", y.id)[round_.criteria[0].id] == F("7.5")
    assert audit_actions().count("scoring.scored") == 2
    from consult.audit.models import AuditEvent

    last = db.session.scalars(select(AuditEvent).where(AuditEvent.action == "scoring.scored")
                              .order_by(AuditEvent.seq.desc())).first()
    first_id = str(round_.criteria[0].id)
    assert last.actor_id == member.id and last.compound_id == x.id
    payload = json.loads(last.payload)
    assert payload["before"][first_id] == "7.00" and payload["points"][first_id] == "7.50"
    scoring.close_round(admin, round_)
    with pytest.raises(Conflict):
        scoring.record_scores(member, round_, x.id, y.id, sheet(round_, "1", "1"))
    db.session.flush()
    first, second = round_.criteria
    response = client.post(f"/scoring/{round_.id}/compounds/{x.id}/score/{y.id}",
                           data={f"c{first.id}": "1", f"c{second.id}": "1"})
    assert response.status_code == 409
    assert scoring.scores_of(round_, f"c:{x.id}", y.id) == {first.id: F("7.5"),
                                                            second.id: F(2)}


def test_an_outlying_scorer_is_flagged_on_the_ranking(admin):
    four = [factories.make_compound(n) for n in ("甲院", "乙院", "丙院", "丁院")]
    round_ = open_round(four, admin, inspector_weight_pct=0)
    a, b, c, d = four
    members = dict(zip([x.id for x in four], committees(four), strict=True))
    scoring.record_scores(members[b.id], round_, b.id, a.id, sheet(round_, "8", "4"))  # 80
    scoring.record_scores(members[c.id], round_, c.id, a.id, sheet(round_, "8", "5"))  # 85
    scoring.record_scores(members[d.id], round_, d.id, a.id, sheet(round_, "2", "1"))  # 20
    notice = scoring.close_round(admin, round_)
    outliers = scoring.notices.content_of(notice)["outliers"]
    assert outliers == [{"compound": "甲院", "scorer": "丁院", "inspector": False,
                         "total": "20.00", "median": "80.00", "deviation": "60.00"}]


def test_the_sheet_changes_until_scoring_starts(three, admin):
    round_ = open_round(three, admin)
    x, y, _z = three
    data = scoring.RoundInput(
        name="改名", period_start=date(2026, 11, 1), period_end=date(2026, 12, 31),
        compound_ids=[c.id for c in three], criteria=scoring.parse_sheet("整洁 | 1 | 10"),
        inspector_weight_pct=0, decimals=0, honour_count=1, outlier_points=15)
    scoring.update_round(admin, round_, data)
    assert [(c.name, c.weight) for c in round_.criteria] == [("整洁", 1)]
    (member,) = committees([x])
    scoring.record_scores(member, round_, x.id, y.id, {round_.criteria[0].id: "9"})
    with pytest.raises(Conflict):
        scoring.update_round(admin, round_, data)
    assert scoring.starting_sheet() == "整洁 | 1 | 10"  # the next round starts from it


def test_a_bad_sheet_is_refused_line_by_line():
    with pytest.raises(ValidationFailed) as refused:
        scoring.parse_sheet("环境 | 3 | 10\n设施 | x | 5\n\n公开 | 1")
    assert refused.value.errors["criteria"] == [
        "Line 2: the weight must be a whole number from 1 to 100.",
        "Line 4: write “name | weight | most points”."]


def test_fewer_than_three_compounds_are_refused(three, admin):
    with pytest.raises(ValidationFailed) as refused:
        open_round(three[:2], admin)
    assert "compound_ids" in refused.value.errors


def text_of(data: bytes) -> str:
    text = "\n".join(p.extract_text() for p in PdfReader(io.BytesIO(data)).pages)
    return re.sub(r"(?<=[\u4e00-\u9fff]) (?=[\u4e00-\u9fff])", "", text)


def test_the_office_closes_after_a_confirmation_with_the_numbers(client, login_as, three,
                                                                  admin):
    round_ = open_round(three, admin)
    score_all(round_, three, admin)
    login_as("admin")
    page = client.get(f"/scoring/{round_.id}/close", headers=EN).get_data(as_text=True)
    # 3 compounds owe 3 × 2 × 2 = 12 scores, all in; 3 compounds + 1 inspector scored.
    assert "3 compounds are ranked; 4 scorers (1 of them inspectors)" in page
    assert "0 of the 12 scores the compounds owe are missing" in page
    assert round_.is_open
    response = client.post(f"/scoring/{round_.id}/close", data={"confirmed": "1"})
    assert response.status_code == 302
    assert not round_.is_open


def test_the_published_ranking_verifies_and_prints(app, client, three, admin):
    round_ = open_round(three, admin)
    score_all(round_, three, admin)
    notice = scoring.close_round(admin, round_)
    db.session.flush()
    verify = client.get(f"/verify/{notice.verify_code}")
    body = verify.get_data(as_text=True)
    assert verify.status_code == 200
    assert "2026年第六期观摩评比" in body and notice.content_sha256 in body
    # The notice's ordinary address leads to the ranking page.
    assert client.get(f"/notices/{notice.id}").headers["Location"].endswith(
        f"/scoring/notices/{notice.id}")
    page = client.get(f"/scoring/notices/{notice.id}").get_data(as_text=True)
    assert "76.25" in page and "和平小区" in page
    if not app.config.get("CJK_FONT_AVAILABLE"):
        pytest.skip("no CJK font")
    response = client.get(f"/scoring/notices/{notice.id}.pdf")
    assert response.status_code == 200
    text = text_of(response.get_data())
    assert "观摩评比排名公示" in text
    assert re.search(r"1\s*和平小区.*红旗楼院", text)
    assert "76.00" in text and "72.50" in text
    assert notice.verify_code in text and notice.content_sha256 in text
    assert db.session.scalar(select(func.count(Notice.id))) == 1
