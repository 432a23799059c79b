"""The overview dashboard through the API against the hand-made compounds of the web page's
tests: every column, the same numbers as the page, filters, sort, pages, totals per level,
and the caller's scope."""

from __future__ import annotations

from typing import Any

import pytest

from consult.core.sorting import Sort
from consult.process import dashboard
from tests import factories
from tests.api.conftest import bearer
from tests.process import test_dashboard as web

world = web.world  # 甲院 with a running vote, 乙院 with works, 丙院 with nothing

URL = "/api/v1/dashboard"


def rows_of(client: Any, user: Any, **params: Any) -> list[dict[str, Any]]:
    r = client.get(URL, query_string=params, headers=bearer(user))
    assert r.status_code == 200, r.json
    return list(r.json["items"])


def by_name(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {row["name"]: row for row in rows}


def test_every_column_as_the_hand_count(client, world):
    admin = factories.make_user("admin")
    r = client.get(URL, headers=bearer(admin))
    assert r.status_code == 200, r.json
    assert r.json["count"] == 3 and r.json["next_cursor"] is None
    assert r.json["sort"] == "name" and r.json["community"] is None
    rows = by_name(r.json["items"])
    a, b, c = rows["甲院"], rows["乙院"], rows["丙院"]
    assert (a["office"], a["community"], a["grid"]) == ("东街道", "甲社区", "一网格")
    assert (c["office"], c["community"], c["grid"]) == ("西街道", "乙社区", None)
    assert a["consultations"] == 1 and [s["stage"] for s in a["stages"]] == ["voting"]
    assert {s["stage"]: s["count"] for s in b["stages"]} == {"soliciting": 1,
                                                             "implementing": 1}
    assert c["consultations"] == 0 and c["vote"] is None and c["turnout"] is None
    vote = a["vote"]
    assert vote["consultation_id"] == world["vote"].id and vote["title"] == "加装电梯"
    assert (vote["voted_households"], vote["roll_households"]) == (2, 4)
    assert (vote["voted_area_dm2"], vote["roll_area_dm2"]) == (12_100, 24_600)
    assert a["turnout"] == 0.5 and a["turnout_area"] == 0.4919
    assert vote["still_needed"] == ["short by 1 household"] and vote["turnout_threshold"]
    assert a["days_left"] == 5 and a["deadline"]
    assert (b["items_done"], b["items_all"], b["works"]) == (1, 2, 0.5)
    assert (b["spent_fen"], b["budget_fen"]) == (50_000, 300_000)
    assert (b["satisfied"], b["evaluations"], b["satisfaction"]) == (3, 4, 0.75)
    assert (b["objections"], b["feedback"]) == (1, 2)
    assert (a["objections"], a["feedback"]) == (0, 0)
    assert (b["defects_open"], b["defects_overdue"], b["defects_fixed"]) == (0, 0, 0)
    assert a["last_activity"] is not None and c["last_activity"] is None
    assert {x["name"] for x in r.json["communities"]} == {"甲社区", "乙社区"}
    assert {x["name"] for x in r.json["grids"]} == {"一网格", "二网格"}


def test_the_same_numbers_and_order_as_the_web_page(app, client, world):
    """For the same user and query, the rows are the page's rows in the page's order."""
    admin = factories.make_user("admin")
    factories.sign_in(client, admin)
    for query in ({"sort": "-satisfaction"}, {"sort": "turnout"},
                  {"community": world["jia"].id, "sort": "-name"}):
        page = client.get("/dashboard/", query_string=query, headers=web.EN).text
        rows = rows_of(client, admin, **query)
        positions = [page.index(f">{row['name']}</a>") for row in rows]
        assert positions == sorted(positions) and len(rows) == page.count("registry/compounds/")
        with app.test_request_context(headers=web.EN):
            dash = dashboard.build(None, dashboard.filters_from(
                {k: str(v) for k, v in query.items() if k != "sort"}),
                Sort(query["sort"].lstrip("-"), query["sort"].startswith("-")))
        assert [row["compound_id"] for row in rows] == [r.compound_id for r in dash.rows]
        for row, built in zip(rows, dash.rows, strict=True):
            assert dashboard.percent(built.turnout) in page
            assert (row["satisfied"], row["evaluations"]) == (built.satisfied,
                                                              built.evaluations)
    page = client.get("/dashboard/", headers=web.EN).text
    assert "50.0%" in page and "75.0%" in page and "short by 1 household" in page


def test_filters_sort_and_totals(client, world):
    admin = factories.make_user("admin")
    assert [r["name"] for r in rows_of(client, admin, grid=world["g1"].id)] == ["甲院"]
    assert [r["name"] for r in rows_of(client, admin, community=world["yi"].id)] == ["丙院"]
    # Rows without a value go last either way; equal ones keep the names' order.
    assert [r["name"] for r in rows_of(client, admin, sort="-satisfaction")] == [
        "乙院", "丙院", "甲院"]
    assert rows_of(client, admin, sort="turnout")[0]["name"] == "甲院"
    r = client.get(URL, query_string={"level": "office"}, headers=bearer(admin)).json
    assert [(t["level"], t["name"], t["compounds"]) for t in r["totals"]] == [
        ("office", "东街道", 2), ("office", "西街道", 1)]
    east = r["totals"][0]
    assert (east["voted_households"], east["roll_households"], east["turnout"]) == (2, 4, 0.5)
    assert (east["spent_fen"], east["budget_fen"], east["satisfaction"]) == (
        50_000, 300_000, 0.75)
    grand = r["grand"]
    assert grand["level"] == "all" and grand["compounds"] == 3 and grand["votes"] == 1
    every = client.get(URL, headers=bearer(admin)).json["totals"]
    assert {t["level"] for t in every} == {"grid", "community", "office"}


def test_pages_with_a_cursor(client, world):
    admin = factories.make_user("admin")
    seen: list[str] = []
    params: dict[str, Any] = {"limit": 1, "sort": "-name"}
    while True:
        r = client.get(URL, query_string=params, headers=bearer(admin))
        assert r.status_code == 200 and r.json["count"] == 3
        seen += [row["name"] for row in r.json["items"]]
        assert r.json["grand"]["compounds"] == 3  # the totals cover every page
        if r.json["next_cursor"] is None:
            break
        params["cursor"] = r.json["next_cursor"]
    assert seen == ["甲院", "乙院", "丙院"]  # by code point, descending
    first = client.get(URL, query_string={"limit": 1, "sort": "-name"},
                       headers=bearer(admin)).json["next_cursor"]
    # A cursor goes with its order and filters; a forged one is refused.
    for cursor, extra in ((first, {"sort": "name"}), (first, {"grid": world["g1"].id}),
                          ("abc", {}), (first + "x", {})):
        r = client.get(URL, query_string={"cursor": cursor, "sort": "-name", **extra},
                       headers=bearer(admin))
        assert r.status_code == 400 and "cursor" in r.json["error"]["errors"]


@pytest.mark.parametrize("query", [{"sort": "nonsense"}, {"grid": "0"}, {"community": "x"},
                                   {"level": "city"}, {"limit": "0"},
                                   {"grid": str(10 ** 30)}])
def test_bad_parameters_are_named(client, world, query):
    r = client.get(URL, query_string=query, headers=bearer(factories.make_user("admin")))
    assert r.status_code == 400 and set(query) <= set(r.json["error"]["errors"])


def test_each_sees_the_web_page_s_scope(client, world):
    member = factories.make_user("committee", compound=world["a"])
    r = client.get(URL, headers=bearer(member)).json
    assert [row["name"] for row in r["items"]] == ["甲院"]
    assert [c["name"] for c in r["communities"]] == ["甲社区"]
    assert r["grand"]["compounds"] == 1
    # Filtering for another compound's grid shows nothing of it.
    assert rows_of(client, member, grid=world["g2"].id) == []
    worker = factories.make_user("grid_worker", grid=world["g2"])
    assert [row["name"] for row in rows_of(client, worker)] == ["乙院"]
    office = factories.make_user("supervisor", community=world["jia"])
    assert sorted(row["name"] for row in rows_of(client, office)) == ["乙院", "甲院"]
    elsewhere = factories.make_user("committee", compound=factories.make_compound("别处"))
    assert [row["name"] for row in rows_of(client, elsewhere)] == ["别处"]
    resident = factories.make_user("resident", household=world["a"].buildings[0].households[0])
    r = client.get(URL, headers=bearer(resident))
    assert r.status_code == 403 and r.json["error"]["code"] == "forbidden"
    assert client.get(URL).status_code == 401
