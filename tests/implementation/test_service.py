import json
from datetime import timedelta
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from consult.consultations.states import Action, Stage
from consult.core.errors import Conflict, ValidationFailed
from consult.extensions import db
from consult.implementation import service
from consult.implementation.models import Evaluation, Inspection, ProgressEntry
from consult.notices import service as notices
from consult.notices.models import NoticeKind
from consult.process import workflow
from consult.uploads.models import Attachment
from tests import factories
from tests.implementation.conftest import (
    actions_since,
    audit_seq,
    image_bytes,
    payload_since,
    upload,
)


def count(model) -> int:
    return db.session.scalar(select(func.count()).select_from(model))


def data(**overrides):
    values = {"item_id": None, "percent": "40", "spend": "1,250.50", "note": "管道已铺设",
              "is_final": False}
    values.update(overrides)
    return service.progress_data(**values)


def finish(consultation, committee, now):
    """Final report and every item ticked off: ready to publish the result."""
    service.add_progress(committee, consultation, data(percent="100", is_final=True), now=now)
    for item in service.implementable_items(consultation):
        service.complete_item(committee, item, item.estimated_cost_fen - 100, "按计划完成",
                              now=now)


def publish_result(consultation, committee, now):
    finish(consultation, committee, now)
    workflow.apply(consultation, Action.PUBLISH_RESULT, committee, now=now)
    return notices.current_notice(consultation, NoticeKind.RESULT)


# --- progress ---------------------------------------------------------------------------------


def test_progress_entry_with_photos_is_recorded_and_audited(works, compound):
    committee = factories.make_user("committee", compound=compound)
    c = works.consultation
    seq = audit_seq()
    entry = service.add_progress(committee, c, data(), [upload("a.png"), upload("b.png")])
    assert (entry.percent, entry.spend_fen, entry.note, entry.is_final) == (
        40, 125050, "管道已铺设", False)
    assert [p.mimetype for p in entry.photos] == ["image/jpeg", "image/jpeg"]
    assert all(p.consultation_id == c.id for p in entry.photos)
    assert actions_since(seq) == ["implementation.progress_added"]
    payload = json.loads(payload_since(seq, "implementation.progress_added")[0])
    assert payload["spend_fen"] == 125050 and len(payload["photos"]) == 2
    assert service.overall_percent(c) == 40 and service.total_spent(c) == 125050


def test_progress_for_one_item_does_not_change_the_overall_percent(works, compound):
    committee = factories.make_user("committee", compound=compound)
    c = works.consultation
    item = c.items[1]
    service.add_progress(committee, c, data(percent="30"))
    service.add_progress(committee, c, data(item_id=item.id, percent="90", spend=""))
    assert service.overall_percent(c) == 30
    assert service.item_percents(c) == {item.id: 90}
    assert service.total_spent(c) == 125050


@pytest.mark.parametrize(("values", "field"), [
    ({"percent": "101"}, "percent"),
    ({"percent": "-1"}, "percent"),
    ({"percent": "四十"}, "percent"),
    ({"spend": "12.345"}, "spend"),
    ({"spend": "-3"}, "spend"),
    ({"note": "长" * 2001}, "note"),
    ({"is_final": True, "percent": "90"}, "is_final"),
])
def test_progress_data_is_validated_per_field(values, field):
    with pytest.raises(ValidationFailed) as e:
        data(**values)
    assert field in e.value.errors


def test_final_report_is_about_the_whole_works(works):
    with pytest.raises(ValidationFailed) as e:
        data(item_id=works.consultation.items[0].id, percent="100", is_final=True)
    assert "is_final" in e.value.errors


def test_all_photos_are_checked_before_anything_is_stored(works, compound):
    committee = factories.make_user("committee", compound=compound)
    seq, attachments = audit_seq(), count(Attachment)
    with pytest.raises(ValidationFailed) as e:
        service.add_progress(committee, works.consultation, data(),
                             [upload("good.png"), upload("notes.txt", b"just text")])
    assert "notes.txt" in e.value.errors["photos"][0]
    assert "JPEG, PNG or WebP" in e.value.errors["photos"][0]
    assert count(Attachment) == attachments and count(ProgressEntry) == 0
    assert actions_since(seq) == []


def test_more_than_six_photos_are_refused(works, compound):
    committee = factories.make_user("committee", compound=compound)
    with pytest.raises(ValidationFailed) as e:
        service.add_progress(committee, works.consultation, data(), [upload() for _ in range(7)])
    assert "6" in e.value.errors["photos"][0]
    assert count(ProgressEntry) == 0


def test_an_oversized_photo_is_refused_with_its_name(app, works, compound):
    committee = factories.make_user("committee", compound=compound)
    app.config["UPLOAD_MAX_BYTES"] = 2 * 1024 * 1024
    try:
        big = image_bytes("PNG", size=(1200, 1200)) + b"\0" * (2 * 1024 * 1024)
        with pytest.raises(ValidationFailed) as e:
            service.add_progress(committee, works.consultation, data(), [upload("huge.png", big)])
    finally:
        app.config["UPLOAD_MAX_BYTES"] = 8 * 1024 * 1024
    assert "huge.png" in e.value.message and "2 MB" in e.value.message
    assert count(ProgressEntry) == 0


def test_progress_for_an_item_that_is_not_implemented_is_refused(works_with_failed_item,
                                                                 compound):
    committee = factories.make_user("committee", compound=compound)
    c = works_with_failed_item.consultation
    with pytest.raises(ValidationFailed) as e:
        service.add_progress(committee, c, data(item_id=c.items[1].id))
    assert "item_id" in e.value.errors


@pytest.mark.parametrize("stage", ["discussing", "resolution_public", "result_public", "closed"])
def test_progress_is_recorded_only_while_implementing(compound, stage):
    committee = factories.make_user("committee", compound=compound)
    c = factories.make_consultation(compound, stage=stage)
    seq = audit_seq()
    with pytest.raises(Conflict, match="works are under way"):
        service.add_progress(committee, c, data())
    assert count(ProgressEntry) == 0 and actions_since(seq) == []


# --- checklist --------------------------------------------------------------------------------


def test_ticking_off_and_correcting_an_item(works, compound):
    committee = factories.make_user("committee", compound=compound)
    item = works.consultation.items[0]
    seq = audit_seq()
    service.complete_item(committee, item, 95_000, "少用了材料", now=works.now)
    assert (item.completed_at, item.completed_by_id, item.final_cost_fen, item.completion_note) \
        == (works.now, committee.id, 95_000, "少用了材料")
    other = factories.make_user("committee", compound=compound)
    service.complete_item(other, item, 97_500, "少用了材料", now=works.now + timedelta(days=1))
    assert item.final_cost_fen == 97_500
    assert (item.completed_at, item.completed_by_id) == (works.now, committee.id)
    service.complete_item(other, item, 97_500, "少用了材料")  # no change, no event
    assert actions_since(seq) == ["implementation.item_completed",
                                  "implementation.item_corrected"]
    corrected = json.loads(payload_since(seq, "implementation.item_corrected")[0])
    assert corrected["final_cost_fen"] == {"from": 95_000, "to": 97_500}


def test_final_cost_is_parsed_from_yuan():
    assert service.final_cost("1,234.5") == 123_450
    assert service.final_cost("0") == 0
    for bad in ("", "12.345", "abc"):
        with pytest.raises(ValidationFailed) as e:
            service.final_cost(bad)
        assert "final_cost" in e.value.errors


def test_an_item_that_did_not_pass_cannot_be_ticked(works_with_failed_item, compound):
    committee = factories.make_user("committee", compound=compound)
    c = works_with_failed_item.consultation
    assert [i.number for i in service.implementable_items(c)] == [1]
    with pytest.raises(Conflict, match="not among the items to implement"):
        service.complete_item(committee, c.items[1], 100)
    assert c.items[1].completed_at is None


def test_ticks_are_refused_outside_the_works(compound):
    committee = factories.make_user("committee", compound=compound)
    c = factories.make_consultation(compound, stage="result_public")
    with pytest.raises(Conflict):
        service.complete_item(committee, c.items[0], 100)


# --- inspections ------------------------------------------------------------------------------


def test_supervisor_adds_an_inspection_note_with_a_photo(works, compound):
    supervisor = factories.make_user("supervisor", compound=compound)
    c = works.consultation
    seq = audit_seq()
    note = service.add_inspection(supervisor, c, " 井盖未固定 ", c.items[0].id, upload())
    assert (note.text, note.item_id, note.author_id) == ("井盖未固定", c.items[0].id,
                                                         supervisor.id)
    assert note.photo is not None and note.photo.is_image
    assert actions_since(seq) == ["implementation.inspection_added"]
    assert service.inspections(c) == [note]


def test_inspection_note_is_validated(works, compound):
    supervisor = factories.make_user("supervisor", compound=compound)
    with pytest.raises(ValidationFailed) as e:
        service.add_inspection(supervisor, works.consultation, "  ", None,
                               upload("x.pdf", b"%PDF-1.4"))
    assert set(e.value.errors) == {"text", "photo"}
    with pytest.raises(ValidationFailed) as e:
        service.add_inspection(supervisor, works.consultation, "字" * 2001)
    assert "text" in e.value.errors
    assert count(Inspection) == 0


def test_inspections_are_possible_until_the_result_notice_is_over(works, compound):
    supervisor = factories.make_user("supervisor", compound=compound)
    committee = factories.make_user("committee", compound=compound)
    c = works.consultation
    publish_result(c, committee, works.now)
    service.add_inspection(supervisor, c, "公示期间复查")
    workflow.apply(c, Action.CLOSE, committee, now=works.now + timedelta(days=8))
    with pytest.raises(Conflict, match="Inspection notes"):
        service.add_inspection(supervisor, c, "太晚了")
    assert count(Inspection) == 1


# --- result summary ---------------------------------------------------------------------------


def test_result_summary_content(works_with_failed_item, compound):
    committee = factories.make_user("committee", compound=compound)
    supervisor = factories.make_user("supervisor", compound=compound)
    c = works_with_failed_item.consultation
    now = works_with_failed_item.now
    first = service.add_progress(committee, c, data(percent="50", spend="500"), [upload()],
                                 now=now)
    service.add_progress(committee, c, data(item_id=c.items[0].id, percent="100", spend="250.25",
                                            note=""), now=now + timedelta(days=1))
    service.add_inspection(supervisor, c, "质量合格", c.items[0].id, upload(),
                           now=now + timedelta(days=2))
    service.complete_item(committee, c.items[0], 98_000, "完工", now=now + timedelta(days=3))
    summary = service.result_summary(c)
    json.dumps(summary)  # serialisable as it is
    assert summary["kind"] == "result"
    assert summary["consultation"] == {"id": c.id, "title": c.title, "round": 1}
    assert summary["compound"] == {"name": compound.name, "community": compound.community.name}
    assert summary["items"] == [
        {"number": 1, "title": "改造项目1", "implemented": True, "estimated_cost_fen": 100_000,
         "final_cost_fen": 98_000, "completed_at": (now + timedelta(days=3)).isoformat(),
         "completion_note": "完工"},
        {"number": 2, "title": "改造项目2", "implemented": False, "estimated_cost_fen": 200_000,
         "final_cost_fen": None, "completed_at": None, "completion_note": ""},
    ]
    assert summary["totals"] == {"estimated_fen": 100_000, "final_fen": 98_000,
                                 "spent_fen": 75_025}
    assert summary["percent"] == 50
    assert summary["progress"] == [
        {"date": now.isoformat(), "item": None, "percent": 50, "spend_fen": 50_000,
         "note": "管道已铺设", "is_final": False, "photos": [first.photos[0].id]},
        {"date": (now + timedelta(days=1)).isoformat(), "item": 1, "percent": 100,
         "spend_fen": 25_025, "note": "", "is_final": False, "photos": []},
    ]
    [inspection] = summary["inspections"]
    assert inspection["item"] == 1 and inspection["text"] == "质量合格"
    assert isinstance(inspection["photo"], int)
    text = json.dumps(summary, ensure_ascii=False)
    assert "业主" not in text and "13812345678" not in text and "user" not in text


def test_publishing_the_result_freezes_the_summary(works, compound):
    committee = factories.make_user("committee", compound=compound)
    c = works.consultation
    with pytest.raises(Conflict, match="final report first"):
        workflow.apply(c, Action.PUBLISH_RESULT, committee, now=works.now)
    notice = publish_result(c, committee, works.now)
    assert c.stage == Stage.RESULT_PUBLIC
    assert notices.content_of(notice) == service.result_summary(c)


# --- evaluation -------------------------------------------------------------------------------


def test_evaluation_only_while_the_result_notice_is_up(works, compound):
    committee = factories.make_user("committee", compound=compound)
    c = works.consultation
    household = compound.buildings[0].households[0]
    with pytest.raises(Conflict, match="once their result is published"):
        service.evaluate(None, c, household, "satisfied", now=works.now)
    notice = publish_result(c, committee, works.now)
    with pytest.raises(Conflict, match="not up yet"):
        service.evaluate(None, c, household, "satisfied", now=works.now - timedelta(minutes=1))
    seq = audit_seq()
    with pytest.raises(Conflict, match="closed"):
        service.evaluate(None, c, household, "satisfied", now=notice.period_ends_at)
    assert count(Evaluation) == 0 and actions_since(seq) == []
    assert service.evaluation_open(c, notice.period_ends_at - timedelta(seconds=1))
    assert not service.evaluation_open(c, notice.period_ends_at)


def test_one_evaluation_per_household_changed_in_place(works, compound):
    committee = factories.make_user("committee", compound=compound)
    c = works.consultation
    publish_result(c, committee, works.now)
    household = compound.buildings[0].households[0]
    resident = factories.make_user("resident", household=household)
    seq = audit_seq()
    first = service.evaluate(resident, c, household, "basically_satisfied", "",
                             now=works.now + timedelta(hours=1))
    again = service.evaluate(resident, c, household, "dissatisfied", "楼道还没刷",
                             now=works.now + timedelta(days=2))
    service.evaluate(resident, c, household, "dissatisfied", "楼道还没刷",
                     now=works.now + timedelta(days=3))  # unchanged: no event
    assert again.id == first.id and count(Evaluation) == 1
    assert (again.rating, again.comment) == ("dissatisfied", "楼道还没刷")
    assert actions_since(seq) == ["implementation.evaluated", "implementation.evaluation_changed"]
    changed = json.loads(payload_since(seq, "implementation.evaluation_changed")[0])
    assert changed["rating"] == {"from": "basically_satisfied", "to": "dissatisfied"}
    assert "楼道" not in payload_since(seq, "implementation.evaluation_changed")[0]


def test_evaluation_is_validated_and_limited_to_the_compound(works, compound):
    committee = factories.make_user("committee", compound=compound)
    c = works.consultation
    publish_result(c, committee, works.now)
    household = compound.buildings[0].households[0]
    now = works.now + timedelta(hours=1)
    with pytest.raises(ValidationFailed) as e:
        service.evaluate(None, c, household, "great", now=now)
    assert "rating" in e.value.errors
    with pytest.raises(ValidationFailed) as e:
        service.evaluate(None, c, household, "satisfied", "字" * 501, now=now)
    assert "comment" in e.value.errors
    stranger = factories.make_household(factories.make_building(factories.make_compound()))
    with pytest.raises(Conflict):
        service.evaluate(None, c, stranger, "satisfied", now=now)
    assert count(Evaluation) == 0


def test_evaluation_tally_counts_households_and_sums_to_100(app):
    compound = factories.make_compound_with_households(per_building=3)  # 6 households
    committee = factories.make_user("committee", compound=compound)
    c = factories.make_consultation(compound)
    now = factories.walk_to(c, "implementing")
    publish_result(c, committee, now)
    households = [h for b in compound.buildings for h in b.households]
    for household, rating in zip(households, ["satisfied", "basically_satisfied",
                                              "dissatisfied"], strict=False):
        service.evaluate(None, c, household, rating, now=now + timedelta(hours=1))
    tally = service.evaluation_tally(c)
    assert tally["counts"] == {"satisfied": 1, "basically_satisfied": 1, "dissatisfied": 1,
                               "not_rated": 3}
    assert (tally["rated"], tally["roll_households"], tally["total"]) == (3, 6, 6)
    assert tally["percentages"] == {"satisfied": "16.7", "basically_satisfied": "16.7",
                                    "dissatisfied": "16.6", "not_rated": "50.0"}
    assert sum(Decimal(v) for v in tally["percentages"].values()) == Decimal("100.0")


def test_evaluation_tally_before_anyone_rated(works):
    tally = service.evaluation_tally(works.consultation)
    assert tally["counts"]["not_rated"] == 8 and tally["rated"] == 0
    assert sum(Decimal(v) for v in tally["percentages"].values()) == Decimal("100.0")


# --- the whole way ----------------------------------------------------------------------------


def test_from_works_to_closing(works, compound):
    committee = factories.make_user("committee", compound=compound)
    supervisor = factories.make_user("supervisor", compound=compound)
    c, now = works.consultation, works.now
    seq = audit_seq()
    service.add_progress(committee, c, data(percent="60", spend="1,000"), [upload()], now=now)
    service.add_inspection(supervisor, c, "施工围挡到位", now=now + timedelta(days=1))
    now += timedelta(days=30)
    service.add_progress(committee, c, data(percent="100", spend="2,000", is_final=True),
                         now=now)
    with pytest.raises(Conflict, match="Tick off every item"):
        workflow.apply(c, Action.PUBLISH_RESULT, committee, now=now)
    for item in service.implementable_items(c):
        service.complete_item(committee, item, item.estimated_cost_fen, "", now=now)
    workflow.apply(c, Action.PUBLISH_RESULT, committee, now=now)
    assert c.stage == Stage.RESULT_PUBLIC
    notice = notices.current_notice(c, NoticeKind.RESULT)
    assert notices.content_of(notice)["totals"] == {
        "estimated_fen": 300_000, "final_fen": 300_000, "spent_fen": 300_000}
    household = compound.buildings[1].households[0]
    service.evaluate(None, c, household, "satisfied", now=now + timedelta(days=1))
    with pytest.raises(Conflict, match="publicity period"):
        workflow.apply(c, Action.CLOSE, committee, now=now + timedelta(days=6))
    now = notice.period_ends_at + timedelta(minutes=1)
    with pytest.raises(Conflict):
        service.evaluate(None, c, household, "dissatisfied", now=now)
    workflow.apply(c, Action.CLOSE, committee, now=now)
    assert c.stage == Stage.CLOSED
    assert service.works_started(c)
    assert service.evaluation_tally(c)["counts"]["satisfied"] == 1
    assert [a for a in actions_since(seq) if a.startswith("implementation.")] == [
        "implementation.progress_added", "implementation.inspection_added",
        "implementation.progress_added", "implementation.item_completed",
        "implementation.item_completed", "implementation.evaluated"]
