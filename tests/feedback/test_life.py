"""The whole life of a defect report over HTTP, for each role that takes part in it."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import select

from consult.audit import service as audit
from consult.extensions import db
from consult.feedback.models import DefectReport
from consult.feedback.service import local_day
from consult.uploads import service as uploads
from consult.uploads.models import Visibility
from tests import factories
from tests.access.uploads import png_upload
from tests.conftest import audit_actions
from tests.feedback.conftest import png

EN = {"Accept-Language": "en"}


def new_url(c: Any) -> str:
    return f"/consultations/{c.id}/feedback/new"


def send_report(client: Any, c: Any, **fields: Any) -> Any:
    item = c.items[0]
    data = {"item_id": str(item.id), "text": "新修的路面裂了一条缝", **fields}
    return client.post(new_url(c), data=data, headers=EN)


def report_id(response: Any) -> int:
    assert response.status_code == 302, response.text
    return int(response.headers["Location"].rstrip("/").rsplit("/", 1)[1])


def step(client: Any, rid: int, action: str, **fields: Any) -> Any:
    return client.post(f"/feedback/{rid}/step", data={"action": action, **fields}, headers=EN)


def due(days: int = 7) -> str:
    return (local_day(factories_now()) + timedelta(days=days)).isoformat()


def factories_now() -> Any:
    from consult.core.models import utcnow

    return utcnow()


def test_a_resident_reports_and_confirms_the_fix(client, finished):
    c = finished.consultation
    factories.sign_in(client, finished.resident)
    form = client.get(new_url(c), headers=EN)
    assert form.status_code == 200
    # The building is preselected from the household.
    building = finished.mine.building
    assert f'<option selected value="{building.id}">' in form.text
    rid = report_id(send_report(client, c, building_id=str(building.id), photos=png()))
    found = db.session.get(DefectReport, rid)
    assert (found.state, found.household_id, found.reporter_role) == (
        "open", finished.mine.id, "resident")
    # The household's photo is for staff: it may show the inside of a home.
    assert [p.visibility for p in found.photos] == [Visibility.STAFF.value]

    factories.sign_in(client, finished.committee)
    assert step(client, rid, "accept").status_code == 302
    assert step(client, rid, "assign", assignee="市政维修队", due_on=due()).status_code == 302
    fixed = step(client, rid, "mark_fixed", note="已重新铺设", photo=png("green"))
    assert fixed.status_code == 302, fixed.text
    assert db.session.get(DefectReport, rid).fix_photo is not None

    factories.sign_in(client, finished.resident)
    assert step(client, rid, "confirm").status_code == 302
    found = db.session.get(DefectReport, rid)
    assert found.state == "confirmed" and found.closed_at is not None
    assert audit_actions()[-5:] == ["feedback.reported", "feedback.accepted",
                                    "feedback.assigned", "feedback.fixed", "feedback.confirmed"]
    page = client.get(f"/feedback/{rid}", headers=EN)
    assert page.status_code == 200
    history = page.text.split('id="history"')[1]
    for label in ("Defect reported", "Defect report accepted", "Defect report assigned",
                  "Defect marked as fixed", "Fix of a defect confirmed"):
        assert label in history
    assert "市政维修队" in history and "已重新铺设" in history
    assert history.count("<time datetime=") == 5
    # The chain holds after the report's whole life.
    assert audit.verify().ok


def test_the_committee_rejects_only_with_a_reason(client, finished):
    c = finished.consultation
    factories.sign_in(client, finished.resident)
    rid = report_id(send_report(client, c, building_id=str(finished.mine.building_id)))
    factories.sign_in(client, finished.committee)
    refused = step(client, rid, "reject", reason="  ")
    assert refused.status_code == 400
    assert "The reason is required." in refused.text
    assert db.session.get(DefectReport, rid).state == "open"
    assert step(client, rid, "reject", reason="属于住户自家装修，不在改造范围").status_code == 302
    found = db.session.get(DefectReport, rid)
    assert found.state == "rejected" and found.reason.startswith("属于住户")
    factories.sign_in(client, finished.resident)
    page = client.get(f"/feedback/{rid}", headers=EN)
    assert "Rejected" in page.text and "属于住户自家装修" in page.text
    assert audit_actions()[-1] == "feedback.rejected"


def test_the_resident_reopens_a_fix_and_the_committee_assigns_again(client, finished):
    c = finished.consultation
    factories.sign_in(client, finished.resident)
    rid = report_id(send_report(client, c, building_id=str(finished.mine.building_id)))
    factories.sign_in(client, finished.committee)
    step(client, rid, "accept")
    step(client, rid, "assign", assignee="甲施工队", due_on=due())
    step(client, rid, "mark_fixed", note="已修", photo=png())
    factories.sign_in(client, finished.resident)
    assert step(client, rid, "reopen").status_code == 400  # a reason is required
    assert step(client, rid, "reopen", reason="下雨后又裂开了").status_code == 302
    found = db.session.get(DefectReport, rid)
    assert (found.state, found.due_on, found.fixed_at) == ("accepted", None, None)
    factories.sign_in(client, finished.committee)
    assert step(client, rid, "assign", assignee="乙施工队", due_on=due(3)).status_code == 302
    assert db.session.get(DefectReport, rid).assignee == "乙施工队"
    assert audit_actions()[-2:] == ["feedback.reopened", "feedback.assigned"]


def test_a_supervisor_reports_and_confirms(client, finished, login_as):
    c = finished.consultation
    supervisor = login_as("supervisor", compound=finished.compound)
    rid = report_id(send_report(client, c, building_id=str(finished.neighbour.building_id)))
    found = db.session.get(DefectReport, rid)
    assert (found.household_id, found.reporter_role) == (None, "supervisor")
    factories.sign_in(client, finished.committee)
    step(client, rid, "accept")
    step(client, rid, "assign", assignee="路灯班", due_on=due())
    step(client, rid, "mark_fixed", note="更换灯泡", photo=png())
    factories.sign_in(client, supervisor)
    assert step(client, rid, "confirm").status_code == 302
    assert db.session.get(DefectReport, rid).state == "confirmed"


def test_a_grid_worker_reports_for_a_named_household(client, finished, login_as):
    c = finished.consultation
    login_as("grid_worker", compound=finished.compound)
    form = client.get(new_url(c), headers=EN)
    assert form.status_code == 200 and 'name="household_id"' in form.text
    missing = send_report(client, c, building_id=str(finished.mine.building_id))
    assert missing.status_code == 400 and "Choose the household you report for." in missing.text
    assert db.session.scalar(select(DefectReport.id)) is None
    rid = report_id(send_report(client, c, building_id=str(finished.mine.building_id),
                                household_id=str(finished.mine.id)))
    found = db.session.get(DefectReport, rid)
    assert (found.household_id, found.reporter_role) == (finished.mine.id, "grid_worker")
    # The household it was made for sees it and may confirm it later; its neighbour may not.
    factories.sign_in(client, finished.resident)
    assert client.get(f"/feedback/{rid}").status_code == 200
    factories.sign_in(client, finished.neighbour_account)
    assert client.get(f"/feedback/{rid}").status_code == 403


def test_the_committee_list_puts_new_reports_first_and_filters(client, finished):
    c = finished.consultation
    factories.sign_in(client, finished.resident)
    first = report_id(send_report(client, c, building_id=str(finished.mine.building_id)))
    second = report_id(send_report(client, c, building_id=str(finished.mine.building_id)))
    factories.sign_in(client, finished.committee)
    step(client, first, "accept")
    page = client.get("/feedback/", headers=EN)
    assert page.status_code == 200
    assert page.text.index(f"/feedback/{second}") < page.text.index(f"/feedback/{first}")
    accepted = client.get("/feedback/?state=accepted", headers=EN)
    assert f"/feedback/{first}" in accepted.text and f"/feedback/{second}" not in accepted.text
    assert "/feedback/" in client.get("/", headers=EN).text  # the navigation's link


def test_the_committee_sets_the_warranty_period(client, finished, login_as):
    c = finished.consultation
    url = f"/consultations/{c.id}/feedback/warranty"
    factories.sign_in(client, finished.committee)
    assert client.get(url, headers=EN).status_code == 200
    bad = client.post(url, data={"months": "0"}, headers=EN)
    assert bad.status_code == 400 and "from 1 to 120" in bad.text
    assert client.post(url, data={"months": "36"}).status_code == 302
    assert c.warranty_months == 36
    assert audit_actions()[-1] == "feedback.warranty_set"
    factories.sign_in(client, finished.resident)
    assert client.post(url, data={"months": "1"}).status_code == 403
    login_as("committee", compound=factories.make_compound("别的小区"))
    assert client.post(url, data={"months": "1"}).status_code == 403
    assert c.warranty_months == 36


def test_the_household_sees_its_own_photos_and_a_neighbour_sees_none(client, finished):
    c = finished.consultation
    factories.sign_in(client, finished.resident)
    rid = report_id(send_report(client, c, building_id=str(finished.mine.building_id),
                                photos=png()))
    photo = db.session.get(DefectReport, rid).photos[0]
    page = client.get(f"/feedback/{rid}", headers=EN)
    own = f"/feedback/{rid}/photos/{photo.id}"
    assert own in page.text
    shown = client.get(own)
    assert shown.status_code == 200 and shown.mimetype.startswith("image/")
    assert shown.headers["Cache-Control"] == "no-store"
    # The stored file itself stays for staff; the report's page is the household's way in.
    assert client.get(f"/files/{photo.id}").status_code == 403

    factories.sign_in(client, finished.neighbour_account)
    assert client.get(own).status_code == 403
    assert client.get(f"/feedback/{rid}", headers=EN).status_code == 403
    # Another file of the consultation is nobody's through this report.
    factories.sign_in(client, finished.resident)
    other = uploads.store(None, png_upload(), consultation=c, visibility=Visibility.STAFF)
    assert client.get(f"/feedback/{rid}/photos/{other.id}").status_code == 404
