import io

import pytest
from openpyxl import Workbook
from sqlalchemy import func, select

from consult.audit.models import AuditEvent
from consult.core.errors import Conflict, ImportRejected, NotFound, ValidationFailed
from consult.extensions import db
from consult.registry import service as registry
from consult.registry.models import Building, Household
from tests import factories
from tests.conftest import audit_actions

HEADER_ZH = "小区,楼栋,单元,楼层,房号,专有部分面积,业主姓名,业主标识,联系电话\n"


def households_in(compound) -> int:
    return db.session.scalar(select(func.count(Household.id)).join(Household.building)
                             .where(Building.compound_id == compound.id))


def audit_count() -> int:
    return db.session.scalar(select(func.count(AuditEvent.seq)))


def test_household_data_collects_every_field_error():
    with pytest.raises(ValidationFailed) as e:
        registry.household_data(unit="x" * 30, floor="五", room="", area="-1", owner_name="",
                                owner_key=None, phone="abc")
    assert set(e.value.errors) == {"unit", "floor", "room", "area_dm2", "owner_name", "phone"}


def test_create_and_update_household_record_audit_without_personal_values(compound):
    building = compound.buildings[0]
    data = registry.household_data(unit="3单元", floor="6", room="601室", area="88.5",
                                   owner_name="赵六", owner_key="K1", phone="13900001111")
    household = registry.create_household(None, building, data)
    assert (household.unit, household.room, household.area_dm2) == ("3", "601", 8850)
    changed = registry.household_data(unit="3", floor="6", room="601", area="90",
                                      owner_name="钱七", owner_key="K1", phone="13900001111")
    registry.update_household(None, household, changed)
    events = list(db.session.scalars(select(AuditEvent).order_by(AuditEvent.seq)))
    assert [e.action for e in events] == ["registry.household.created",
                                          "registry.household.updated"]
    assert "赵六" not in events[0].payload and "13900001111" not in events[0].payload
    assert '"owner_name":"changed"' in events[1].payload
    assert '"area_dm2":{"from":8850,"to":9000}' in events[1].payload
    assert all(e.compound_id == compound.id for e in events)


def test_unchanged_update_records_nothing(compound):
    household = compound.buildings[0].households[0]
    same = registry.household_data(unit=household.unit, floor=household.floor,
                                   room=household.room, area=household.area_dm2,
                                   owner_name=household.owner_name,
                                   owner_key=household.owner_key, phone=household.phone)
    registry.update_household(None, household, same)
    assert audit_actions() == []


def test_room_clash_is_a_conflict(compound):
    existing = compound.buildings[0].households[0]
    data = registry.household_data(unit=existing.unit, floor=None, room=existing.room,
                                   area="50", owner_name="x", owner_key=None, phone=None)
    with pytest.raises(Conflict):
        registry.create_household(None, compound.buildings[0], data)


def test_structure_names_are_unique_where_they_must_be(compound):
    with pytest.raises(Conflict):
        registry.create_building(None, compound, "1号楼")
    with pytest.raises(Conflict):
        registry.create_compound(None, compound.community, compound.name)
    with pytest.raises(ValidationFailed):
        registry.create_building(None, compound, "  ")
    b = registry.create_building(None, compound, "10号楼")
    registry.rename_building(None, b, "3号楼")
    assert [x.name for x in compound.buildings] == ["1号楼", "2号楼", "3号楼"]
    assert audit_actions()[-2:] == ["registry.building.created", "registry.building.renamed"]


def test_residents_one_representative_at_a_time(compound):
    household = compound.buildings[0].households[0]
    a = registry.add_resident(None, household, "甲", None, "owner", True)
    b = registry.add_resident(None, household, "乙", "13700000000", "family", True)
    assert (a.is_representative, b.is_representative) == (False, True)
    registry.update_resident(None, a, "甲", None, "owner", True)
    assert (a.is_representative, b.is_representative) == (True, False)
    registry.remove_resident(None, b)
    assert [r.name for r in household.residents] == ["甲"]
    with pytest.raises(ValidationFailed):
        registry.add_resident(None, household, "", None, "nonsense", False)
    assert audit_actions() == ["registry.resident.added", "registry.resident.added",
                               "registry.resident.updated", "registry.resident.removed"]


def test_search_finds_by_room_owner_and_phone_tail(compound):
    def rooms(q):
        return [h.room for h in db.session.scalars(registry.household_search(compound, q))]

    assert rooms("102") == ["102", "102"]
    assert rooms("业主1号楼0") == ["101"]
    assert len(rooms("5678")) == 8
    assert rooms("100%") == [] and rooms("_") == []


def test_find_compound_by_name_or_community_path(compound):
    assert registry.find_compound("劳动局家属院") == compound
    assert registry.find_compound(f"{compound.community.name}/劳动局家属院") == compound
    factories.make_compound("劳动局家属院")
    with pytest.raises(ValidationFailed):
        registry.find_compound("劳动局家属院")
    with pytest.raises(NotFound):
        registry.find_compound("没有这个小区")


# --- import -----------------------------------------------------------------------------------


def test_import_creates_and_updates_by_building_unit_room(compound):
    csv = (HEADER_ZH + "劳动局家属院,1号楼,1,1,101,70.50,新业主,K9,13800000000\n"
           "劳动局家属院,1号楼,2单元,3,301室,65.25,孙八,,\n").encode()
    before = households_in(compound)
    summary = registry.import_households(None, csv, "f.csv")
    assert (summary.created, summary.updated, summary.unchanged) == (1, 1, 0)
    assert households_in(compound) == before + 1
    new = db.session.scalars(select(Household).where(Household.room == "301")).one()
    assert (new.unit, new.floor, new.area_dm2, new.owner_key, new.phone) == (
        "2", 3, 6525, None, None)
    event = db.session.scalars(select(AuditEvent)).one()
    assert event.action == "registry.households.imported" and event.compound_id == compound.id
    assert '"created":1' in event.payload and '"sha256"' in event.payload


def test_import_with_english_headers_and_default_compound(compound):
    csv = b"building,unit,room,area_m2,owner_name\n2\xe5\x8f\xb7\xe6\xa5\xbc,1,909,50,x\n"
    summary = registry.import_households(None, csv, "f.csv", compound=compound)
    assert summary.created == 1


@pytest.mark.parametrize(("content", "expected"), [
    # wrong columns: no room and no area
    ("小区,楼栋,业主姓名\n劳动局家属院,1号楼,x\n", [(1, "room"), (1, "area_m2")]),
    # duplicate rooms: the second one names the first
    (HEADER_ZH + "劳动局家属院,1号楼,1,5,501,50,a,,\n劳动局家属院,1号楼,1,5,501室,60,b,,\n",
     [(3, "E (房号)")]),
    # negative and non-numeric areas, unknown building, bad phone, too many decimals
    (HEADER_ZH + "劳动局家属院,1号楼,1,5,501,-50,a,,\n"
                 "劳动局家属院,1号楼,1,5,502,五十,b,,\n"
                 "劳动局家属院,9号楼,1,5,503,50,c,,\n"
                 "劳动局家属院,1号楼,1,5,504,50,d,,call me\n"
                 "劳动局家属院,1号楼,1,5,505,50.123,e,,\n"
                 "别的小区,1号楼,1,5,506,50,f,,\n",
     [(2, "F (专有部分面积)"), (3, "F (专有部分面积)"), (4, "B (楼栋)"), (5, "I (联系电话)"),
      (6, "F (专有部分面积)"), (7, "A (小区)")]),
])
def test_bad_files_report_every_error_and_write_nothing(compound, content, expected):
    before_households, before_audit = households_in(compound), audit_count()
    with pytest.raises(ImportRejected) as e:
        registry.import_households(None, content.encode(), "bad.csv")
    assert [(err.line, err.column) for err in e.value.errors] == expected
    assert all(err.message for err in e.value.errors)
    assert households_in(compound) == before_households and audit_count() == before_audit


def test_gbk_csv_from_excel_and_bom_are_read(compound):
    text = HEADER_ZH + "劳动局家属院,1号楼,1,7,701,72.10,周九,,\n"
    assert registry.import_households(None, text.encode("gbk"), "excel.csv").created == 1
    text = HEADER_ZH + "劳动局家属院,1号楼,1,7,702,72.10,周九,,\n"
    assert registry.import_households(None, b"\xef\xbb\xbf" + text.encode(), "b.csv").created == 1


def test_empty_file_is_rejected(compound):
    for data in (b"", HEADER_ZH.encode()):
        with pytest.raises(ImportRejected):
            registry.import_households(None, data, "empty.csv")


def test_unknown_buildings_can_be_created_on_request(compound):
    csv = (HEADER_ZH + "劳动局家属院,7号楼,1,1,101,50,a,,\n劳动局家属院,7号楼,1,1,102,50,b,,\n")
    summary = registry.import_households(None, csv.encode(), "f.csv", create_buildings=True)
    assert summary.created == 2 and summary.buildings_created == ["劳动局家属院 7号楼"]
    assert "7号楼" in [b.name for b in compound.buildings]


def test_import_outside_scope_is_refused_per_row(compound):
    other = factories.make_compound("别处")
    factories.make_building(other, "1号楼")
    csv = (HEADER_ZH + "别处,1号楼,1,1,101,50,a,,\n").encode()
    with pytest.raises(ImportRejected) as e:
        registry.import_households(None, csv, "f.csv", scope=frozenset({compound.id}))
    assert "outside" in e.value.errors[0].message


def test_import_row_for_another_compound_than_chosen_is_refused(compound):
    factories.make_building(factories.make_compound("别处"), "1号楼")
    csv = (HEADER_ZH + "别处,1号楼,1,1,101,50,a,,\n").encode()
    with pytest.raises(ImportRejected):
        registry.import_households(None, csv, "f.csv", compound=compound)


def test_xlsx_import(compound):
    wb = Workbook()
    ws = wb.active
    ws.append(["楼栋", "单元", "楼层", "房号", "面积", "业主", "证件号", "电话"])
    ws.append(["2号楼", 1, 8, 801, 99.5, "吴十", "abc", 13511112222])
    buffer = io.BytesIO()
    wb.save(buffer)
    summary = registry.import_households(None, buffer.getvalue(), "f.xlsx", compound=compound)
    household = db.session.scalars(select(Household).where(Household.room == "801")).one()
    assert summary.created == 1 and household.area_dm2 == 9950 and household.phone == "13511112222"


def test_ten_thousand_rows_import_with_progress(compound):
    lines = [HEADER_ZH.strip()]
    for b in range(1, 11):
        for n in range(1000):
            lines.append(f"劳动局家属院,{b}号楼,{n % 4 + 1},{n // 40 + 1},{n + 1:04d},"
                         f"{60 + n % 50}.{n % 100:02d},业主{n},,")
    ticks: list[tuple[int, int]] = []
    summary = registry.import_households(None, "\n".join(lines).encode(), "big.csv",
                                         create_buildings=True,
                                         progress=lambda a, t: ticks.append((a, t)))
    assert summary.rows == 10_000 and summary.created + summary.updated == 10_000
    assert sum(a for a, _ in ticks) == 20_000 and {t for _, t in ticks} == {20_000}
    assert households_in(compound) >= 10_000


def test_export_round_trips_through_import(compound):
    for fmt in ("csv", "xlsx"):
        data = registry.export_households(None, [compound], fmt, "zh")
        summary = registry.import_households(None, data, f"round.{fmt}")
        assert (summary.created, summary.updated, summary.unchanged) == (0, 0, 8)
    data = registry.export_households(None, [compound], "csv", "en")
    assert data.startswith(b"\xef\xbb\xbfcompound,building,unit,floor,room,area_m2")
    assert b"60.00" in data and b"13812345678" in data
    assert audit_actions().count("registry.households.exported") == 3


def test_traditional_chinese_headers_are_accepted(compound):
    csv = ("小區,樓棟,單元,樓層,房號,專有部分面積,業主姓名,業主標識,聯絡電話\n"
           "劳动局家属院,1号楼,1,9,909,50,陳大文,,\n")
    assert registry.import_households(None, csv.encode("utf-8"), "f.csv").created == 1


# --- import without holding up voting ---------------------------------------------------------


def staged_rows() -> int:
    from consult.registry.models import StagedHousehold

    return db.session.scalar(select(func.count(StagedHousehold.id)))


def last_job():
    from consult.registry.models import ImportJob

    return db.session.scalars(select(ImportJob).order_by(ImportJob.id.desc())).first()


def test_an_import_is_staged_then_written_in_one_step_and_its_job_records_it(compound,
                                                                           monkeypatch):
    seen: list[tuple[int, int]] = []
    real_apply = registry.apply_households

    def apply(actor, job, plan):  # the rows wait in staging, none in the registry yet
        seen.append((staged_rows(), households_in(compound)))
        return real_apply(actor, job, plan)

    monkeypatch.setattr(registry, "apply_households", apply)
    csv = (HEADER_ZH + "劳动局家属院,1号楼,1,1,101,70.50,新业主,K9,13800000000\n"
           "劳动局家属院,1号楼,2单元,3,301室,65.25,孙八,,\n"
           "劳动局家属院,3号楼,1,1,101,50,周九,,\n").encode()
    summary = registry.import_households(None, csv, "f.csv", create_buildings=True)
    assert seen == [(3, 8)]
    assert (summary.created, summary.updated, summary.unchanged) == (2, 1, 0)
    assert summary.buildings_created == ["劳动局家属院 3号楼"] and households_in(compound) == 10
    assert staged_rows() == 0  # thrown away once written
    job = last_job()
    assert (job.status, job.done, job.total, job.data) == ("done", 6, 6, None)
    assert registry.import_summary(job).created == 2
    new = db.session.scalars(select(Household).join(Household.building).where(
        Building.name == "3号楼")).one()
    assert (new.room, new.area_dm2, new.sort_key) == ("101", 5000, "0000000001/0000000101")


@pytest.mark.parametrize("change", ["edited", "added", "building added"])
def test_a_registry_change_between_checking_and_writing_is_refused_and_nothing_written(
        compound, monkeypatch, change):
    csv = (HEADER_ZH + "劳动局家属院,1号楼,1,1,101,70.50,新业主,,\n"
           "劳动局家属院,1号楼,1,9,909,50,新户,,\n"
           "劳动局家属院,5号楼,1,1,101,50,新楼,,\n").encode()
    real_apply = registry.apply_households

    def someone_else_writes_first(actor, job, plan):
        # Another committee member saves a change after the file was checked, before it is
        # written: what the import would write rests on what it read.
        building = compound.buildings[0]
        if change == "edited":
            household = next(h for h in building.households if h.room == "101")
            registry.update_household(None, household, registry.household_data(
                unit="1", floor="1", room="101", area="99", owner_name="别人改的",
                owner_key=None, phone=None))
        elif change == "added":
            registry.create_household(None, building, registry.household_data(
                unit="1", floor="9", room="909", area="40", owner_name="别人加的",
                owner_key=None, phone=None))
        else:
            registry.create_building(None, compound, "5号楼")
        db.session.commit()
        return real_apply(actor, job, plan)

    monkeypatch.setattr(registry, "apply_households", someone_else_writes_first)
    before = households_in(compound)
    actions = audit_actions()
    with pytest.raises(ImportRejected) as e:
        registry.import_households(None, csv, "f.csv", create_buildings=True)
    assert "The registry changed while the file was being checked" in e.value.message
    assert "nothing was imported" in e.value.message
    expected = {"edited": [(2, "E (房号)")], "added": [(3, "E (房号)")],
                "building added": [(4, "B (楼栋)")]}[change]
    assert [(err.line, err.column) for err in e.value.errors] == expected
    assert "meanwhile" in e.value.errors[0].message or "while the file" in e.value.errors[0].message
    # Only the other member's change is there; not a row of the file.
    assert households_in(compound) == before + (change == "added")
    assert not db.session.scalars(select(Household).where(
        Household.owner_name.in_(["新业主", "新户", "新楼"]))).all()
    assert audit_actions()[len(actions):] == {
        "edited": ["registry.household.updated"], "added": ["registry.household.created"],
        "building added": ["registry.building.created"]}[change]
    assert staged_rows() == 0
    job = last_job()
    assert job.status == "failed" and registry.import_problems(job).errors == e.value.errors


def test_what_an_interrupted_import_staged_is_cleared_by_the_next_one(compound):
    from datetime import timedelta

    from consult.core.tabular import read_table
    from consult.registry.models import IMPORT_JOB_STALLED_AFTER

    csv = (HEADER_ZH + "劳动局家属院,1号楼,1,9,901,50,甲,,\n劳动局家属院,1号楼,1,9,902,50,乙,,\n"
           ).encode()
    # A process checks and stages a file and dies before writing it.
    job = registry._new_job(None, compound, "f.csv", False)
    plan = registry.check_households(read_table(csv, "f.csv", registry.HOUSEHOLD_COLUMNS), csv,
                                     "f.csv", compound=compound)
    registry._job_status(job, "writing")
    registry.stage_households(job, plan)
    assert staged_rows() == 2 and households_in(compound) == 8
    assert job.in_progress
    job.updated_at -= IMPORT_JOB_STALLED_AFTER + timedelta(seconds=1)
    db.session.commit()
    assert job.stalled and "server was restarted" in registry.import_problems(job).message
    # The next import clears it; what it staged never reached the registry.
    other = (HEADER_ZH + "劳动局家属院,2号楼,1,9,901,50,丙,,\n").encode()
    assert registry.import_households(None, other, "g.csv").created == 1
    db.session.refresh(job)
    assert job.status == "failed" and "server was restarted" in job.message
    assert staged_rows() == 0 and households_in(compound) == 9


def test_writing_a_stopped_import_is_refused(compound):
    from consult.core.tabular import read_table

    csv = (HEADER_ZH + "劳动局家属院,1号楼,1,9,901,50,甲,,\n").encode()
    job = registry._new_job(None, compound, "f.csv", False)
    plan = registry.check_households(read_table(csv, "f.csv", registry.HOUSEHOLD_COLUMNS), csv,
                                     "f.csv", compound=compound)
    registry._job_status(job, "writing")
    registry.stage_households(job, plan)
    job.status = "failed"  # given up as interrupted by another process's cleanup
    db.session.commit()
    with pytest.raises(ImportRejected, match="stopped before it was written"):
        registry.apply_households(None, job, plan)
    assert households_in(compound) == 8


def test_import_report_says_what_an_import_did():
    summary = registry.ImportSummary(rows=5, created=2, updated=1, unchanged=2)
    assert registry.import_report(summary) == [
        "Imported 5 rows: 2 new, 1 changed, 2 unchanged."]
    summary.buildings_created = ["7号楼", "8号楼"]
    assert registry.import_report(summary)[1:] == ["New buildings: 7号楼, 8号楼"]
