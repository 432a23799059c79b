"""Grids from a spreadsheet: created, compounds assigned and moved, all or nothing."""

from __future__ import annotations

import io
import re

import openpyxl
import pytest
from sqlalchemy import func, select

from consult.core.errors import ImportRejected
from consult.extensions import db
from consult.registry import grids
from consult.registry.models import Community, Compound, Grid, StreetOffice
from tests import factories
from tests.conftest import audit_actions

EN = {"CONSULT_LANG": "en"}


@pytest.fixture
def place() -> dict[str, object]:
    """Two communities: 东街社区 with three compounds (one already in 一网格), 西街社区 with one."""
    east = factories.make_community("东街社区")
    west = factories.make_community("西街社区")
    first = factories.make_grid(east, "一网格")
    a = factories.make_compound("甲院", east)
    b = factories.make_compound("乙院", east)
    c = factories.make_compound("丙院", east)
    d = factories.make_compound("丁院", west)
    a.grid = first
    db.session.flush()
    return {"east": east, "west": west, "first": first, "a": a, "b": b, "c": c, "d": d}


GOOD = ("街道,社区,网格,小区\n"
        "解放街道,东街社区,一网格,甲院\n"
        "解放街道,东街社区,二网格,乙院\n"
        "解放街道,东街社区,一网格,丙院\n"
        "解放街道,西街社区,三网格,丁院\n")


def grid_count() -> int:
    return db.session.scalar(select(func.count(Grid.id)))


def test_a_good_file_creates_grids_and_assigns_every_compound(app, place):
    plan = grids.check_grids(GOOD.encode(), "grids.csv")
    assert plan.errors == []
    # 甲院 stays in 一网格; 乙院, 丙院 and 丁院 had no grid.
    assert (plan.assigned, plan.moved, plan.unchanged) == (3, 0, 1)
    assert plan.grids_created == [(place["east"].id, "二网格"), (place["west"].id, "三网格")]
    assert plan.offices_created == ["解放街道"]
    assert grid_count() == 1  # checking writes nothing
    grids.apply_grids(None, plan)
    assert grid_count() == 3
    office = db.session.scalar(select(StreetOffice).where(StreetOffice.name == "解放街道"))
    assert office is not None
    assert place["east"].street_office_id == office.id == place["west"].street_office_id
    assert place["b"].grid.name == "二网格" and place["b"].grid.community_id == place["east"].id
    assert place["c"].grid_id == place["first"].id
    assert place["d"].grid.name == "三网格" and place["d"].grid.community_id == place["west"].id
    actions = audit_actions()
    assert actions.count("registry.grid.created") == 2
    assert actions.count("registry.compound.grid_set") == 3
    assert actions.count("registry.street_office.created") == 1
    assert actions[-1] == "registry.grids.imported"


def test_moving_a_compound_to_another_grid_is_counted_as_moved(app, place):
    grids.import_grids(None, GOOD.encode(), "grids.csv")
    plan = grids.import_grids(None, "社区,网格,小区\n东街社区,二网格,甲院\n".encode(),
                              "again.csv")
    assert (plan.assigned, plan.moved, plan.unchanged, plan.grids_created) == (0, 1, 0, [])
    assert place["a"].grid.name == "二网格"


def test_xlsx_with_english_headers(app, place):
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(["community", "grid", "compound"])
    sheet.append(["西街社区", "三网格", "丁院"])
    out = io.BytesIO()
    book.save(out)
    plan = grids.import_grids(None, out.getvalue(), "grids.xlsx")
    assert plan.assigned == 1 and place["d"].grid.name == "三网格"


def test_a_bad_file_names_every_problem_and_writes_nothing(app, place):
    bad = ("街道,社区,网格,小区\n"
           "解放街道,东街社区,二网格,甲院\n"          # fine by itself
           "解放街道,北街社区,一网格,甲院\n"          # no such community
           "解放街道,东街社区,一网格,无名院\n"        # no such compound in the community
           "解放街道,东街社区,三网格,甲院\n"          # 甲院 already in 二网格 on line 2
           "解放街道,西街社区,,丁院\n"                # grid missing
           "河东街道,东街社区,二网格,乙院\n"          # another office for the same community
           "解放街道,东街社区,二网格,丁院\n")         # 丁院 is in 西街社区, not 东街社区
    plan = grids.check_grids(bad.encode(), "bad.csv")
    where = [(e.line, e.column) for e in plan.errors]
    assert where == [(3, "B (社区)"), (4, "D (小区)"), (5, "C (网格)"), (6, "C (网格)"),
                     (7, "A (街道)"), (8, "D (小区)")]
    assert "line 2" in plan.errors[2].message.lower() or "第 2 行" in plan.errors[2].message
    with pytest.raises(ImportRejected) as caught:
        grids.import_grids(None, bad.encode(), "bad.csv")
    assert len(caught.value.errors) == 6
    assert grid_count() == 1
    assert place["a"].grid_id == place["first"].id
    assert db.session.scalar(select(func.count(StreetOffice.id))) == 0
    assert "registry.grids.imported" not in audit_actions()


def test_a_community_under_another_office_is_refused(app, place):
    office = StreetOffice(name="河西街道")
    db.session.add(office)
    db.session.flush()
    place["east"].street_office_id = office.id
    plan = grids.check_grids(GOOD.encode(), "grids.csv")
    assert [(e.line, e.column) for e in plan.errors] == [(2, "A (街道)"), (3, "A (街道)"),
                                                         (4, "A (街道)")]


def test_command_check_then_import(runner, tmp_path, place):
    path = tmp_path / "grids.csv"
    path.write_text(GOOD, encoding="utf-8-sig")
    result = runner.invoke(args=["registry", "import-grids", str(path), "--check"], env=EN)
    assert result.exit_code == 0, result.output
    assert "create 2 grids and 1 street offices, put 3 compounds in a grid, move 0" \
        in result.output
    assert grid_count() == 1
    result = runner.invoke(args=["registry", "import-grids", str(path)], env=EN)
    assert result.exit_code == 0, result.output
    assert "2 grids and 1 street offices created; 3 compounds put in a grid" in result.output
    assert grid_count() == 3


def test_command_with_a_bad_file_exits_1_in_chinese(runner, tmp_path, place):
    path = tmp_path / "bad.csv"
    path.write_bytes("社区,网格,小区\n北街社区,一网格,甲院\n".encode("gb18030"))
    result = runner.invoke(args=["registry", "import-grids", str(path)],
                           env={"CONSULT_LANG": "", "LANG": "C.UTF-8", "LC_ALL": ""})
    assert result.exit_code == 1
    assert "第 2 行" in result.output and "北街社区" in result.output
    assert grid_count() == 1


def test_community_grids_lists_compounds_by_grid_within_scope(app, place):
    grids.import_grids(None, GOOD.encode(), "grids.csv")
    listing = grids.community_grids(place["east"], None)
    assert [(g.name if g else None, [c.name for c in cs]) for g, cs in listing] == [
        ("一网格", ["丙院", "甲院"]), ("二网格", ["乙院"])]
    only_b = grids.community_grids(place["east"], frozenset({place["b"].id}))
    assert [(g.name if g else None, [c.name for c in cs]) for g, cs in only_b] == [
        ("二网格", ["乙院"])]
    assert db.session.get(Community, place["east"].id) is not None
    assert db.session.get(Compound, place["a"].id).grid_id == place["first"].id


# --- the pages --------------------------------------------------------------------------------

def upload(client, text: str, name: str = "grids.csv"):
    return client.post("/registry/grids/import", data={
        "file": (io.BytesIO(text.encode("utf-8")), name)},
        content_type="multipart/form-data", headers={"Accept-Language": "en"})


def test_the_page_previews_then_imports_on_confirmation(client, login_as, place):
    login_as("admin")
    db.session.commit()
    r = upload(client, GOOD)
    assert r.status_code == 200
    page = r.text
    # The numbers that will change, before anything is written.
    assert "create 2 grids" in page and "put 3 compounds in a grid" in page
    assert "move 0 compounds" in page and "leave 1 compound where it is" in page
    assert grid_count() == 1
    hidden = dict(re.findall(r'name="(content|filename)"[^>]*value="([^"]*)"', page))
    assert hidden["filename"] == "grids.csv"
    token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page)
    r = client.post("/registry/grids/import/confirm", data={
        "content": hidden["content"], "filename": "grids.csv",
        **({"csrf_token": token.group(1)} if token else {})}, headers={"Accept-Language": "en"})
    assert r.status_code == 302, r.text[:500]
    assert grid_count() == 3
    assert "registry.grids.imported" in audit_actions()
    page = client.get(f"/registry/communities/{place['east'].id}",
                      headers={"Accept-Language": "en"}).text
    assert "一网格" in page and "二网格" in page and "乙院" in page and "解放街道" in page


def test_a_bad_file_comes_back_to_the_form_with_every_problem(client, login_as, place):
    login_as("admin")
    db.session.commit()
    r = upload(client, "社区,网格,小区\n北街社区,一网格,甲院\n东街社区,一网格,无名院\n")
    assert r.status_code == 400
    assert "北街社区" in r.text and "无名院" in r.text
    assert "A (社区)" in r.text and "C (小区)" in r.text
    assert 'type="file"' in r.text  # the form again, to upload the corrected file
    assert grid_count() == 1


def test_a_tampered_confirmation_writes_nothing(client, login_as, place):
    login_as("admin")
    db.session.commit()
    r = client.post("/registry/grids/import/confirm", data={
        "content": "not base64!", "filename": "x.csv"})
    assert r.status_code == 302 and r.headers["Location"].endswith("/registry/grids/import")
    assert grid_count() == 1


def test_the_community_page_shows_a_grid_worker_its_own_grid_only(client, login_as, place):
    grids.import_grids(None, GOOD.encode(), "grids.csv")
    second = db.session.scalar(select(Grid).where(Grid.name == "二网格"))
    login_as("grid_worker", grid=second)
    db.session.commit()
    page = client.get(f"/registry/communities/{place['east'].id}").text
    assert "二网格" in page and "乙院" in page
    assert "甲院" not in page and "一网格" not in page
    assert client.get(f"/registry/communities/{place['west'].id}").status_code == 403
