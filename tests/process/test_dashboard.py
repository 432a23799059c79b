"""The overview dashboard against hand-made data: every column, scope, filters, sorting, the
totals per level, the workbook and the monthly report read back."""

from __future__ import annotations

import io
from datetime import timedelta
from typing import Any

import pytest
from openpyxl import load_workbook
from pypdf import PdfReader

from consult.ballots import service as ballots
from consult.ballots.models import BallotChannel
from consult.consultations.models import Opinion
from consult.consultations.states import Action
from consult.core.models import utcnow
from consult.core.sorting import Sort
from consult.extensions import db
from consult.implementation import service as works
from consult.implementation.models import Evaluation
from consult.notices.models import Notice, Objection
from consult.process import dashboard, workflow
from consult.registry.models import Grid, StreetOffice
from tests import factories

EN = {"Accept-Language": "en"}


def _compound(name: str, community: Any, grid: Any = None, areas: tuple[int, ...] = (
        6000, 6100, 6200, 6300)) -> Any:
    compound = factories.make_compound(name, community)
    compound.grid = grid
    building = factories.make_building(compound, "1号楼")
    for n, area in enumerate(areas):
        factories.make_household(building, room=f"{n + 1}01", owner_name=f"{name}业主{n}",
                                 owner_key=f"{name}-{n}", area_dm2=area)
    db.session.flush()
    return compound


@pytest.fixture
def world() -> dict[str, Any]:
    """Three compounds, by hand:

    - 甲院 (东街道 · 甲社区 · 一网格): a vote under "2/3 of all households agree" with 2 of
      its 4 households voted (6,000 + 6,100 of 24,600 dm²), closing in 5 days;
    - 乙院 (东街道 · 甲社区 · 二网格): works under way, item 1 of 2 ticked off, 500.00 yuan
      spent of 3,000.00; evaluations 2 satisfied, 1 basically, 1 dissatisfied; objections
      1 open and 1 answered; a soliciting consultation with 3 opinions, 1 withdrawn;
    - 丙院 (西街道 · 乙社区, no grid): nothing going on.
    """
    east, west = StreetOffice(name="东街道"), StreetOffice(name="西街道")
    db.session.add_all([east, west])
    jia = factories.make_community("甲社区")
    yi = factories.make_community("乙社区")
    jia.street_office, yi.street_office = east, west
    g1, g2 = Grid(community=jia, name="一网格"), Grid(community=jia, name="二网格")
    db.session.add_all([g1, g2])
    db.session.flush()
    a = _compound("甲院", jia, g1)
    b = _compound("乙院", jia, g2)
    c = _compound("丙院", yi)

    now = utcnow()
    vote = factories.make_consultation(a, rule="household_two_thirds", title="加装电梯")
    factories.walk_to(vote, "discussing")
    vote.vote_deadline = now + timedelta(days=5)
    workflow.apply(vote, Action.OPEN_VOTE, None)
    households = a.buildings[0].households
    for household in sorted(households, key=lambda h: h.room)[:2]:
        ballots.cast(None, vote, household, {i.id: "agree" for i in vote.items},
                     BallotChannel.PAPER)

    works_c = factories.make_consultation(b, title="路面改造")  # items of 1,000 and 2,000 yuan
    factories.walk_to(works_c, "implementing")
    works.add_progress(None, works_c, works.progress_data(
        item_id=None, percent=40, spend="500", note="", is_final=False))
    works.complete_item(None, works_c.items[0], 90_000)
    b_households = sorted(b.buildings[0].households, key=lambda h: h.room)
    for household, rating in zip(b_households, ("satisfied", "satisfied",
                                                "basically_satisfied", "dissatisfied"),
                                 strict=True):
        db.session.add(Evaluation(consultation_id=works_c.id, household_id=household.id,
                                  rating=rating))
    notice = db.session.scalar(db.select(Notice).where(Notice.consultation_id == works_c.id))
    db.session.add_all([
        Objection(notice=notice, household_id=b_households[0].id, text="异议一"),
        Objection(notice=notice, household_id=b_households[1].id, text="异议二",
                  answer="已答复", answered_at=now)])
    asking = factories.make_consultation(b, title="征集意见")
    factories.walk_to(asking, "soliciting")
    for n in range(3):
        db.session.add(Opinion(consultation_id=asking.id, household_id=b_households[n].id,
                               text=f"意见{n}", withdrawn_at=now if n == 2 else None))
    db.session.flush()
    return {"a": a, "b": b, "c": c, "g1": g1, "g2": g2, "jia": jia, "yi": yi, "vote": vote,
            "now": now}


def _build(**kwargs: Any) -> dashboard.Dashboard:
    scope = kwargs.pop("scope", None)
    sort = kwargs.pop("sort", Sort("name"))
    return dashboard.build(scope, dashboard.Filters(**kwargs), sort)


def _row(dash: dashboard.Dashboard, compound: Any) -> dashboard.Row:
    return next(r for r in dash.rows if r.compound_id == compound.id)


def test_every_column_against_the_hand_count(app, world):
    with app.test_request_context(headers=EN):
        dash = _build()
        a, b, c = (_row(dash, world[k]) for k in "abc")
        assert (a.office, a.community, a.grid) == ("东街道", "甲社区", "一网格")
        assert (c.office, c.community, c.grid) == ("西街道", "乙社区", "")
        assert a.consultations == 1 and a.stages == {"voting": 1}
        assert b.consultations == 2 and b.stages == {"soliciting": 1, "implementing": 1}
        assert c.consultations == 0 and c.vote is None
        vote = a.vote
        assert vote is not None and vote.consultation_id == world["vote"].id
        assert (vote.voted_households, vote.roll_households) == (2, 4)
        assert (vote.voted_area_dm2, vote.roll_area_dm2) == (12_100, 24_600)
        assert dashboard.percent(a.turnout) == "50.0%"
        assert dashboard.percent(a.turnout_area) == "49.2%"
        # ≥ 2/3 of 4 households agreeing needs 3 taking part: one more household.
        assert vote.missing == ["short by 1 household"]
        assert a.days_left == 5
        assert (b.items_done, b.items_all) == (1, 2)
        assert (b.spent_fen, b.budget_fen) == (50_000, 300_000)
        assert (b.satisfied, b.evaluations) == (3, 4)
        assert dashboard.percent(b.satisfaction) == "75.0%"
        assert b.objections == 1 and b.feedback == 2
        assert a.objections == 0 and a.feedback == 0
        assert a.last_activity is not None and c.last_activity is None


def test_missing_turns_to_none_once_turnout_is_reached(app, world):
    vote = world["vote"]
    household = sorted(world["a"].buildings[0].households, key=lambda h: h.room)[2]
    ballots.cast(None, vote, household, {i.id: "disagree" for i in vote.items},
                 BallotChannel.PAPER)
    with app.test_request_context(headers=EN):
        row = _row(_build(), world["a"])
        assert row.vote is not None and row.vote.voted_households == 3
        assert row.vote.missing == []


def test_turnout_conditions_come_from_the_rule():
    from consult.ballots.tally import PRESETS, Measure

    general = dashboard.turnout_conditions(PRESETS["civil_code_278_general"])
    assert [c.measure for c in general] == [Measure.AREA, Measure.OWNERS]
    assert dashboard.turnout_conditions(PRESETS["household_majority"]) == []
    assert dashboard.turnout_conditions(PRESETS["objection_vote"]) == []
    assert dashboard.turnout_conditions(PRESETS["survey"]) == []


def test_scope_hides_other_compounds(app, world):
    member = factories.make_user("committee", compound=world["a"])
    with app.test_request_context(headers=EN):
        dash = _build(scope=member.scoped_compound_ids())
        assert [r.name for r in dash.rows] == ["甲院"]
        assert dash.communities == [(world["jia"].id, "甲社区")]


def test_page_shows_only_the_members_compounds(client, login_as, world):
    login_as("committee", compound=world["a"])
    page = client.get("/dashboard/", headers=EN).get_data(as_text=True)
    assert "甲院" in page and "乙院" not in page and "丙院" not in page
    assert "short by 1 household" in page


def test_filters_by_community_and_grid(app, world):
    with app.test_request_context(headers=EN):
        assert [r.name for r in _build(grid_id=world["g1"].id).rows] == ["甲院"]
        assert [r.name for r in _build(community_id=world["yi"].id).rows] == ["丙院"]
        assert {r.name for r in _build(community_id=world["jia"].id).rows} == {"甲院", "乙院"}


def test_filters_and_sort_from_the_query_string(client, login_as, world):
    login_as("admin")
    page = client.get(f"/dashboard/?grid={world['g2'].id}", headers=EN).get_data(as_text=True)
    assert "乙院" in page and "甲院</a>" not in page
    page = client.get("/dashboard/?sort=-satisfaction", headers=EN).get_data(as_text=True)
    # Those with evaluations first, then the others in name order (丙 sorts before 甲).
    assert page.index("乙院</a>") < page.index("丙院</a>") < page.index("甲院</a>")
    assert 'aria-sort="descending"' in page
    assert client.get("/dashboard/?sort=nonsense&grid=x", headers=EN).status_code == 200


def test_sorting_puts_rows_without_a_value_last(app, world):
    with app.test_request_context(headers=EN):
        for descending in (False, True):
            names = [r.name for r in _build(sort=Sort("turnout", descending)).rows]
            assert names[0] == "甲院"
        names = [r.name for r in _build(sort=Sort("objections", True)).rows]
        assert names[0] == "乙院"
        assert [r.name for r in _build(sort=Sort("name", True)).rows] == sorted(
            ["甲院", "乙院", "丙院"], reverse=True)


def test_totals_per_level(app, world):
    with app.test_request_context(headers=EN):
        dash = _build()
        by = {(t.level, t.name): t for t in dash.totals}
        assert by[("grid", "一网格")].compounds == 1
        assert by[("grid", "乙社区")].compounds == 1  # 丙院 has no grid: named by its community
        jia = by[("community", "甲社区")]
        assert (jia.compounds, jia.consultations) == (2, 3)
        assert (jia.voted_households, jia.roll_households) == (2, 4)
        assert (jia.items_done, jia.items_all, jia.spent_fen) == (1, 2, 50_000)
        assert (jia.objections, jia.feedback) == (1, 2)
        east = by[("office", "东街道")]
        assert east.compounds == 2 and dashboard.percent(east.satisfaction) == "75.0%"
        assert by[("office", "西街道")].compounds == 1
        assert dash.grand.compounds == 3 and dash.grand.votes == 1


def test_charts_are_svg_with_title_and_text_values(client, login_as, world):
    login_as("admin")
    page = client.get("/dashboard/", headers=EN).get_data(as_text=True)
    assert page.count("<svg") == 2 and "<script" not in page
    assert '<title id="chart-turnout-title">' in page and "<desc" in page
    assert ">50.0%</text>" in page and ">75.0%</text>" in page


def test_workbook_reads_back(client, login_as, world):
    login_as("admin")
    response = client.get("/dashboard/export.xlsx", headers=EN)
    assert response.status_code == 200
    book = load_workbook(io.BytesIO(response.data))
    sheet = book.worksheets[0]
    rows = list(sheet.iter_rows(values_only=True))
    header = rows[0]
    data = {row[header.index("Compound")]: dict(zip(header, row, strict=True))
            for row in rows[1:]}
    assert set(data) == {"甲院", "乙院", "丙院"}
    assert data["甲院"]["Households voted"] == 2 and data["甲院"]["Turnout (households)"] == 0.5
    assert data["甲院"]["Still needed to pass"] == "short by 1 household"
    assert data["乙院"]["Spent (yuan)"] == 500 and data["乙院"]["Budget (yuan)"] == 3000
    assert data["乙院"]["Satisfaction"] == 0.75
    totals = list(book.worksheets[1].iter_rows(values_only=True))
    assert totals[[r[1] for r in totals].index("甲社区")][:3] == ("Community", "甲社区", 2)


def test_monthly_report_reads_back(client, login_as, world):
    login_as("admin")
    response = client.get("/dashboard/report.pdf")
    assert response.status_code == 200 and response.mimetype == "application/pdf"
    pages = PdfReader(io.BytesIO(response.data)).pages
    text = "".join(page.extract_text() for page in pages).replace("\n", "")
    for expected in ("甲院", "乙院", "丙院", "50.0%", "75.0%", "甲社区", "东街道"):
        assert expected in text


def test_a_name_like_a_formula_stays_text_in_the_workbook(client, login_as, world):
    world["c"].name = "=1+1"
    db.session.flush()
    login_as("admin")
    book = load_workbook(io.BytesIO(client.get("/dashboard/export.xlsx", headers=EN).data))
    cells = [row[3] for row in book.worksheets[0].iter_rows(min_row=2)]
    formula = next(cell for cell in cells if cell.value == "=1+1")
    assert formula.data_type == "s"


def test_pure_helpers():
    from datetime import UTC, datetime
    from fractions import Fraction

    now = datetime(2026, 12, 4, 15, 30, tzinfo=UTC)  # 23:30 in Beijing
    assert dashboard.days_until(datetime(2026, 12, 4, 16, 30, tzinfo=UTC), now) == 1
    assert dashboard.days_until(datetime(2026, 12, 4, 15, 0, tzinfo=UTC), now) == 0
    assert dashboard.percent(Fraction(2, 3)) == "66.7%"
    assert dashboard.percent(Fraction(1, 2000)) == "0.1%"  # 0.05 % rounds half up
    assert dashboard.percent(None) == "—"
    start, end = dashboard.month_bounds("2026-02", now)
    assert (start, end) == (datetime(2026, 1, 31, 16, tzinfo=UTC),
                            datetime(2026, 2, 28, 16, tzinfo=UTC))
    assert dashboard.month_bounds("nonsense", now)[0] == datetime(2026, 11, 30, 16, tzinfo=UTC)
    assert dashboard.month_bounds("2026-12", now)[1] == datetime(2026, 12, 31, 16, tzinfo=UTC)


def test_a_grid_worker_sees_the_compounds_of_its_grid_only(client, world):
    worker = factories.make_user("grid_worker", grid=world["g2"])
    assert worker.scoped_compound_ids() == {world["b"].id}
    factories.sign_in(client, worker)
    page = client.get("/dashboard/", headers=EN).get_data(as_text=True)
    assert "乙院" in page and "甲院" not in page and "丙院" not in page
