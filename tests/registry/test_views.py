import io

from openpyxl import load_workbook
from sqlalchemy import func, select

from consult.accounts.models import AccessCode
from consult.extensions import db
from consult.registry.models import Building, Community, Compound, Household, Resident
from tests import factories
from tests.conftest import audit_actions

EN = {"Accept-Language": "en"}


def test_registry_index_lists_only_compounds_in_scope(client, login_as, compound):
    factories.make_compound("别人的小区")
    login_as("committee", compound=compound)
    text = client.get("/registry/").text
    assert "劳动局家属院" in text and "别人的小区" not in text
    assert "60.00" not in text  # totals are sums, not single households


def test_compound_page_paginates_searches_and_masks_phones(client, login_as, app, compound):
    login_as("supervisor", compound=compound)
    app.config["PAGE_SIZE"] = 3
    try:
        first = client.get(f"/registry/compounds/{compound.id}").text
        assert "138****5678" in first and "13812345678" not in first
        assert first.count("/registry/households/") == 3 and 'rel="next"' in first
        last = client.get(f"/registry/compounds/{compound.id}?page=3").text
        assert last.count("/registry/households/") == 2
    finally:
        app.config["PAGE_SIZE"] = 50
    found = client.get(f"/registry/compounds/{compound.id}?q=业主2号楼1").text
    assert found.count("/registry/households/") == 1
    building = compound.buildings[1]
    only = client.get(f"/registry/compounds/{compound.id}?building={building.id}").text
    assert only.count("/registry/households/") == 4


def test_supervisor_sees_no_edit_buttons(client, login_as, compound):
    login_as("supervisor", compound=compound)
    text = client.get(f"/registry/compounds/{compound.id}").text
    assert "/households/new" not in text and "/import" not in text
    assert "/export" in text


def test_committee_edits_a_household_keeping_the_phone(client, login_as, compound):
    login_as("committee", compound=compound)
    household = compound.buildings[0].households[0]
    form = client.get(f"/registry/households/{household.id}/edit").text
    assert "13812345678" not in form and "138****5678" in form
    r = client.post(f"/registry/households/{household.id}/edit", data={
        "building_id": household.building_id, "unit": "1", "floor": "1", "room": "101",
        "area": "61.25", "owner_name": "新名字", "owner_key": "", "phone": ""})
    assert r.status_code == 302
    assert (household.area_dm2, household.owner_name, household.phone) == (
        6125, "新名字", "13812345678")
    assert audit_actions() == ["registry.household.updated"]


def test_a_post_leaving_out_optional_fields_reads_them_as_empty(client, login_as, compound):
    """A hand-made POST without "floor" (or "unit", "owner_key", "phone") is read as if the
    fields were left empty, never as the stored values the edit form was prefilled with."""
    login_as("committee", compound=compound)
    household = compound.buildings[0].households[0]
    household.owner_key = "key-1"
    assert household.floor == 1
    r = client.post(f"/registry/households/{household.id}/edit", data={
        "building_id": household.building_id, "room": "101", "area": "61.25",
        "owner_name": "王建国"}, headers=EN)
    assert r.status_code == 302
    assert (household.floor, household.unit, household.owner_key) == (None, "", None)
    assert household.phone == "13812345678"  # an empty phone keeps the number
    assert audit_actions() == ["registry.household.updated"]


def test_a_post_leaving_out_required_fields_says_so_at_the_fields(client, login_as, compound):
    login_as("committee", compound=compound)
    household = compound.buildings[0].households[0]
    resident = Resident(household=household, name="张三", relation="owner", phone="13900000000")
    db.session.add(resident)
    db.session.flush()
    r = client.post(f"/registry/households/{household.id}/edit", data={"floor": "2"},
                    headers=EN)
    assert r.status_code == 200
    for name in ("room", "area", "owner_name"):
        assert f'id="{name}-error"' in r.text
    assert 'value="2"' in r.text and household.floor == 1
    r = client.post(f"/registry/buildings/{household.building_id}/edit", data={}, headers=EN)
    assert r.status_code == 200 and 'id="name-error"' in r.text
    r = client.post(f"/registry/residents/{resident.id}/edit", data={"phone": ""}, headers=EN)
    assert r.status_code == 200 and 'id="name-error"' in r.text
    r = client.post(f"/registry/residents/{resident.id}/edit", data={"name": "张三丰"},
                    headers=EN)  # no relation: not one of the choices
    assert r.status_code == 200 and 'id="relation-error"' in r.text
    assert resident.name == "张三" and audit_actions() == []


def test_household_form_shows_every_error_and_saves_nothing(client, login_as, compound):
    login_as("committee", compound=compound)
    household = compound.buildings[0].households[0]
    r = client.post(f"/registry/households/{household.id}/edit", data={
        "building_id": household.building_id, "unit": "1", "floor": "十", "room": "101",
        "area": "-3", "owner_name": "x", "phone": "<b>bad</b>"}, headers=EN)
    assert r.status_code == 200
    assert "whole number" in r.text and "greater than zero" in r.text
    assert "<b>bad</b>" not in r.text  # echoed back escaped, never as markup
    assert audit_actions() == []


def test_add_building_household_and_resident(client, login_as, compound):
    login_as("committee", compound=compound)
    assert client.post(f"/registry/compounds/{compound.id}/buildings/new",
                       data={"name": "3号楼"}).status_code == 302
    building = db.session.scalars(select(Building).where(Building.name == "3号楼")).one()
    r = client.post(f"/registry/compounds/{compound.id}/households/new", data={
        "building_id": building.id, "unit": "1", "floor": "2", "room": "201", "area": "70",
        "owner_name": "钱八", "owner_key": "", "phone": "13600000000"})
    assert r.status_code == 302
    household = db.session.scalars(select(Household).where(Household.building_id == building.id)
                                   ).one()
    r = client.post(f"/registry/households/{household.id}/residents/new", data={
        "name": "钱小八", "phone": "", "relation": "family", "is_representative": "y"})
    assert r.status_code == 302
    page = client.get(f"/registry/households/{household.id}").text
    assert "钱小八" in page
    assert audit_actions() == ["registry.building.created", "registry.household.created",
                               "registry.resident.added"]


def test_committee_cannot_add_a_household_to_a_building_of_another_compound(
        client, login_as, compound):
    login_as("committee", compound=compound)
    foreign = factories.make_building(factories.make_compound("别处"))
    r = client.post(f"/registry/compounds/{compound.id}/households/new", data={
        "building_id": foreign.id, "room": "1", "area": "50", "owner_name": "x"})
    assert r.status_code in (200, 403)  # not a valid choice, or refused
    assert db.session.scalar(select(func.count(Household.id)).where(
        Household.building_id == foreign.id)) == 0


def test_out_of_scope_and_unknown_ids(client, login_as, compound):
    login_as("committee", compound=factories.make_compound("别处"))
    household = compound.buildings[0].households[0]
    r = client.get(f"/registry/households/{household.id}", headers=EN)
    assert r.status_code == 403 and "outside the compounds assigned to you" in r.text
    assert client.get("/registry/households/999999").status_code == 404
    assert client.get("/registry/compounds/999999").status_code == 404
    assert client.get("/registry/compounds/abc").status_code == 404


def test_issue_and_revoke_an_access_code(client, login_as, compound):
    login_as("committee", compound=compound)
    household = compound.buildings[0].households[0]
    r = client.post(f"/registry/households/{household.id}/access-code")
    assert r.status_code == 200 and r.headers["Cache-Control"] == "no-store"
    assert db.session.scalar(select(func.count(AccessCode.id))) == 1
    page = client.get(f"/registry/households/{household.id}").text
    assert "access-code/revoke" in page
    client.post(f"/registry/households/{household.id}/access-code/revoke")
    assert db.session.scalars(select(AccessCode)).one().revoked_at is not None
    assert audit_actions() == ["accounts.access_code.issued", "accounts.access_code.revoked"]


def test_upload_import_reports_errors_in_a_table_and_writes_nothing(client, login_as, compound):
    login_as("committee", compound=compound)
    bad = "楼栋,单元,房号,面积,业主\n1号楼,1,901,abc,甲\n9号楼,1,902,50,乙\n".encode()
    r = client.post(f"/registry/compounds/{compound.id}/import",
                    data={"file": (io.BytesIO(bad), "bad.csv")},
                    content_type="multipart/form-data", headers=EN)
    # The import runs as a job (inline in tests); its page sends a refused file back to the
    # form, which lists every problem by line and column.
    assert r.status_code == 302 and "/registry/imports/" in r.headers["Location"]
    r = client.get(r.headers["Location"], headers=EN)
    assert r.status_code == 302
    assert r.headers["Location"].startswith(f"/registry/compounds/{compound.id}/import?job=")
    r = client.get(r.headers["Location"], headers=EN)
    assert r.status_code == 200 and 'enctype="multipart/form-data"' in r.text
    assert "<td>2</td>" in r.text and "<td>3</td>" in r.text and "not a number" in r.text
    assert "2 problems found; nothing was imported." in r.text
    assert audit_actions() == []
    good = "楼栋,单元,房号,面积,业主\n1号楼,1,901,50,甲\n".encode("gbk")
    r = client.post(f"/registry/compounds/{compound.id}/import",
                    data={"file": (io.BytesIO(good), "good.csv")},
                    content_type="multipart/form-data")
    assert r.status_code == 302
    assert audit_actions() == ["registry.households.imported"]
    r = client.get(r.headers["Location"], headers=EN)
    assert r.status_code == 200 and "Import finished: 1 new, 0 changed, 0 unchanged." in r.text
    assert 'http-equiv="refresh"' not in r.text


def test_upload_import_refuses_other_file_types(client, login_as, compound):
    login_as("committee", compound=compound)
    for name, data in (("evil.exe", b"MZ\x90\x00"), ("fake.xlsx", b"just text"),
                       ("x.csv", b"a\x00b")):
        r = client.post(f"/registry/compounds/{compound.id}/import",
                        data={"file": (io.BytesIO(data), name)},
                        content_type="multipart/form-data", headers=EN)
        assert r.status_code == 200 and "Upload a CSV or XLSX file" in r.text, name


def test_upload_larger_than_the_limit_is_refused(client, login_as, compound, app):
    login_as("committee", compound=compound)
    app.config["IMPORT_MAX_BYTES"] = 100
    try:
        data = ("楼栋,房号,面积,业主\n" + "1号楼,1,50,甲\n" * 50).encode()
        r = client.post(f"/registry/compounds/{compound.id}/import",
                        data={"file": (io.BytesIO(data), "big.csv")},
                        content_type="multipart/form-data", headers=EN)
        assert "larger than" in r.text
    finally:
        app.config["IMPORT_MAX_BYTES"] = 10 * 1024 * 1024


def test_download_in_both_formats(client, login_as, compound):
    login_as("supervisor", compound=compound)
    r = client.post(f"/registry/compounds/{compound.id}/export", data={"fmt": "csv",
                                                                       "headers": "zh"})
    assert r.status_code == 200 and r.mimetype == "text/csv"
    assert "attachment" in r.headers["Content-Disposition"]
    assert r.data.decode("utf-8-sig").splitlines()[0].startswith("小区,楼栋,单元")
    r = client.post(f"/registry/compounds/{compound.id}/export", data={"fmt": "xlsx",
                                                                       "headers": "en"})
    sheet = load_workbook(io.BytesIO(r.data)).active
    assert sheet["A1"].value == "compound" and sheet.max_row == 9
    assert audit_actions() == ["registry.households.exported"] * 2


def test_admin_creates_community_and_compound(client, login_as):
    login_as("admin")
    assert client.post("/registry/communities/new",
                       data={"name": "幸福社区", "street": "解放街道"}).status_code == 302
    community = db.session.scalars(select(Community).where(Community.name == "幸福社区")).one()
    r = client.post("/registry/compounds/new", data={"community_id": community.id,
                                                     "name": "幸福小区", "address": "幸福路 1 号"})
    compound = db.session.scalars(select(Compound).where(Compound.name == "幸福小区")).one()
    assert r.headers["Location"].endswith(f"/registry/compounds/{compound.id}")
    r = client.post("/registry/communities/new", data={"name": "幸福社区"}, headers=EN)
    assert r.status_code == 409 and "already exists" in r.text


def make_job(compound, user, **values):
    from consult.registry.models import ImportJob

    job = ImportJob(compound_id=compound.id, filename="住户.csv", requested_by_id=user.id,
                    **values)
    db.session.add(job)
    db.session.flush()
    return job


def test_the_upload_is_read_before_the_write_lock_is_taken(app):
    # The upload page starts as a read on SQLite: a slow upload or a big file holds no lock
    # while it arrives; storing it takes the lock (registry.request_import).
    assert app.view_functions["registry.import_households"].consult_starts_reading


def test_an_import_under_way_shows_how_far_it_has_got(client, login_as, compound):
    user = login_as("committee", compound=compound)
    cases = [
        ({"status": "queued"}, "Reading the file…"),
        ({"status": "checking", "done": 15000}, "Reading the file: 15,000 rows so far…"),
        ({"status": "checking", "done": 500, "total": 4000}, "Checking row 500 of 2,000…"),
        ({"status": "writing", "done": 3000, "total": 4000},
         "Checked. Writing row 1,000 of 2,000…"),
    ]
    for values, expected in cases:
        job = make_job(compound, user, **values)
        r = client.get(f"/registry/imports/{job.id}", headers=EN)
        assert r.status_code == 200 and expected in r.text, (values, r.text)
        assert 'http-equiv="refresh"' in r.text and "住户.csv" in r.text


def test_an_interrupted_import_sends_the_user_back_to_the_form_saying_so(client, login_as,
                                                                          compound):
    from datetime import timedelta

    from consult.core.models import utcnow

    user = login_as("committee", compound=compound)
    job = make_job(compound, user, status="writing", done=10, total=20)
    job.updated_at = utcnow() - timedelta(hours=1)
    db.session.flush()
    r = client.get(f"/registry/imports/{job.id}", headers=EN)
    assert r.status_code == 302
    r = client.get(r.headers["Location"], headers=EN)
    assert "stopped before anything was written (the server was restarted)" in r.text
    assert 'enctype="multipart/form-data"' in r.text


def test_an_import_is_shown_only_in_its_own_compound(client, login_as, compound):
    other = factories.make_compound("别处")
    user = login_as("committee", compound=compound)
    job = make_job(other, user, status="failed", message="x")
    assert client.get(f"/registry/imports/{job.id}").status_code == 403
    mine = make_job(compound, user, status="failed", message="x")
    assert client.get(f"/registry/compounds/{compound.id}/import?job={job.id}"
                      ).status_code in (403, 404)
    other_form = client.get(f"/registry/compounds/{compound.id}/import?job={mine.id}")
    assert other_form.status_code == 200
    assert client.get(f"/registry/compounds/{compound.id}/import?job=abc").status_code == 404


def test_an_upload_is_checked_in_the_language_it_was_sent_in(client, login_as, compound):
    login_as("committee", compound=compound)
    bad = "楼栋,单元,房号,面积,业主\n1号楼,1,901,abc,甲\n".encode()
    r = client.post(f"/registry/compounds/{compound.id}/import",
                    data={"file": (io.BytesIO(bad), "bad.csv")},
                    content_type="multipart/form-data", headers={"Accept-Language": "zh-CN"})
    r = client.get(client.get(r.headers["Location"]).headers["Location"], headers=EN)
    # The page around it follows the reader; the problems are in the language they were
    # found in.
    assert "发现 1 个问题，未导入任何数据。" in r.text and "<td>2</td>" in r.text
