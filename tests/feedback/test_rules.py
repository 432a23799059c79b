"""Illegal moves are refused with a clear message, whoever tries them; the warranty period
bounds reporting; a report past its due day is overdue by the service's clock."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from consult.core.errors import Conflict, PermissionDenied, ValidationFailed
from consult.extensions import db
from consult.feedback import service
from consult.feedback.models import DefectReport
from consult.feedback.states import Action
from consult.process import todo
from tests import factories
from tests.feedback.conftest import finish, png
from tests.feedback.test_life import EN, new_url, report_id, send_report, step


def a_report(finished: Any, household: Any = None) -> DefectReport:
    household = household or finished.mine
    account = finished.resident if household is finished.mine else finished.neighbour_account
    return service.report(account, finished.consultation, service.ReportInput(
        item_id=finished.consultation.items[0].id, building_id=household.building_id,
        text="楼道灯不亮"))


def assigned(finished: Any, due_days: int = 3) -> DefectReport:
    found = a_report(finished)
    service.move(found, Action.ACCEPT, finished.committee)
    service.move(found, Action.ASSIGN, finished.committee, assignee="电工",
                 due_on=service.local_day(service.utcnow()) + timedelta(days=due_days))
    return found


def count() -> int:
    return db.session.scalar(select(func.count(DefectReport.id)))


# --- illegal moves over HTTP ------------------------------------------------------------------


def test_confirming_an_unfixed_report_is_refused(client, finished):
    found = a_report(finished)
    factories.sign_in(client, finished.resident)
    refused = step(client, found.id, "confirm")
    assert refused.status_code == 409
    assert "Only a fixed report can be confirmed: this one is not fixed yet." in refused.text
    assert db.session.get(DefectReport, found.id).state == "open"


def test_a_resident_may_not_act_on_another_households_report(client, finished):
    found = a_report(finished)
    service.move(found, Action.ACCEPT, finished.committee)
    service.move(found, Action.ASSIGN, finished.committee, assignee="甲",
                 due_on=service.local_day(service.utcnow()))
    service.move(found, Action.MARK_FIXED, finished.committee, note="修好", photo=_photo())
    factories.sign_in(client, finished.neighbour_account)
    # The neighbour may neither see the report nor confirm or reopen it.
    assert client.get(f"/feedback/{found.id}").status_code == 403
    assert step(client, found.id, "confirm").status_code == 403
    assert step(client, found.id, "reopen", reason="不满意").status_code == 403
    with pytest.raises(PermissionDenied, match="made for another household"):
        service.move(found, Action.CONFIRM, finished.neighbour_account)
    # Nor may a resident take the committee's steps on its own report.
    factories.sign_in(client, finished.resident)
    assert step(client, found.id, "reject", reason="x").status_code == 403
    assert db.session.get(DefectReport, found.id).state == "fixed"


def test_a_committee_of_another_compound_is_refused(client, finished, login_as):
    found = a_report(finished)
    login_as("committee", compound=factories.make_compound("别的小区"))
    assert client.get(f"/feedback/{found.id}").status_code == 403
    assert step(client, found.id, "accept").status_code == 403
    listing = client.get("/feedback/", headers=EN)
    assert listing.status_code == 200 and f"/feedback/{found.id}\"" not in listing.text
    assert db.session.get(DefectReport, found.id).state == "open"


def test_a_grid_worker_outside_their_grid_is_refused(client, finished, login_as):
    elsewhere = factories.make_compound_with_households(per_building=1)
    login_as("grid_worker", compound=elsewhere)
    c = finished.consultation
    assert client.get(new_url(c)).status_code == 403
    refused = send_report(client, c, building_id=str(finished.mine.building_id),
                          household_id=str(finished.mine.id))
    assert refused.status_code == 403
    assert count() == 0
    found = a_report(finished)
    assert client.get(f"/feedback/{found.id}").status_code == 403


def test_a_grid_worker_may_not_name_a_household_of_another_compound(client, finished,
                                                                     login_as):
    elsewhere = factories.make_compound_with_households(per_building=1)
    login_as("grid_worker", compound=finished.compound)
    refused = send_report(client, finished.consultation,
                          building_id=str(finished.mine.building_id),
                          household_id=str(elsewhere.buildings[0].households[0].id))
    assert refused.status_code == 400 and count() == 0


def test_a_committee_member_takes_no_checker_step_and_a_step_in_the_wrong_order(finished):
    found = a_report(finished)
    with pytest.raises(Conflict, match="Only an accepted report can be assigned"):
        service.move(found, Action.ASSIGN, finished.committee, assignee="x",
                     due_on=service.local_day(service.utcnow()))
    with pytest.raises(PermissionDenied):
        service.move(found, Action.CONFIRM, finished.committee)
    service.move(found, Action.ACCEPT, finished.committee)
    with pytest.raises(ValidationFailed) as caught:
        service.move(found, Action.ASSIGN, finished.committee, assignee="",
                     due_on=service.local_day(service.utcnow()) - timedelta(days=1))
    assert set(caught.value.errors) == {"assignee", "due_on"}
    service.move(found, Action.ASSIGN, finished.committee, assignee="甲",
                 due_on=service.local_day(service.utcnow()))
    with pytest.raises(ValidationFailed, match="Add a photo"):
        service.move(found, Action.MARK_FIXED, finished.committee, note="修好")
    assert found.state == "assigned"


def test_an_unknown_step_is_refused(client, finished):
    found = a_report(finished)
    factories.sign_in(client, finished.committee)
    refused = step(client, found.id, "teleport")
    assert refused.status_code == 400 and "Choose a step to take." in refused.text


def test_a_fix_photo_must_be_a_photo(client, finished):
    found = assigned(finished)
    factories.sign_in(client, finished.committee)
    import io

    fake = (io.BytesIO(b"%PDF-1.4 not a photo"), "fix.png")
    refused = step(client, found.id, "mark_fixed", note="修好", photo=fake)
    assert refused.status_code == 400 and "Upload a photo (JPEG, PNG or WebP)." in refused.text
    assert db.session.get(DefectReport, found.id).state == "assigned"


def _photo() -> Any:
    from werkzeug.datastructures import FileStorage

    stream, name = png()
    return FileStorage(stream=stream, filename=name, content_type="image/png")


# --- the warranty period ----------------------------------------------------------------------


def test_reports_wait_for_the_result_notice(client, compound):
    c = factories.make_consultation(compound)
    factories.walk_to(c, "implementing")
    resident = factories.make_user("resident", household=compound.buildings[0].households[0])
    factories.sign_in(client, resident)
    page = client.get(new_url(c), headers=EN)
    assert page.status_code == 200
    assert "once the works are finished and their result notice is published" in page.text
    assert 'name="text"' not in page.text
    refused = send_report(client, c, building_id=str(compound.buildings[0].id))
    assert refused.status_code == 409 and count() == 0


def test_reports_end_with_the_warranty_period(client, finished, frozen):
    c = finished.consultation
    start = service.warranty_start(c)
    assert start is not None
    assert service.warranty(c).end == service.add_months(start, 24)
    frozen.at = service.add_months(start, 24) + timedelta(seconds=1)
    factories.sign_in(client, finished.resident)
    page = client.get(new_url(c), headers=EN)
    assert "The warranty period of these works ended on" in page.text
    assert 'name="text"' not in page.text
    refused = send_report(client, c, building_id=str(finished.mine.building_id))
    assert refused.status_code == 409 and "warranty period" in refused.text
    assert count() == 0
    # A longer warranty set by the committee opens it again.
    service.set_warranty(finished.committee, c, 36)
    assert report_id(send_report(client, c, building_id=str(finished.mine.building_id)))


def test_add_months_keeps_the_end_of_the_month():
    from datetime import UTC, datetime

    assert service.add_months(datetime(2026, 1, 31, tzinfo=UTC), 1) == datetime(
        2026, 2, 28, tzinfo=UTC)
    assert service.add_months(datetime(2026, 12, 4, tzinfo=UTC), 24) == datetime(
        2028, 12, 4, tzinfo=UTC)


def test_only_finished_items_can_be_reported_on(client, compound):
    c = factories.make_consultation(compound)
    finish(c)
    c.items[1].completed_at = None
    db.session.flush()
    resident = factories.make_user("resident", household=compound.buildings[0].households[0])
    factories.sign_in(client, resident)
    refused = client.post(new_url(c), data={"item_id": str(c.items[1].id),
                                            "building_id": str(compound.buildings[0].id),
                                            "text": "x"}, headers=EN)
    assert refused.status_code == 400 and count() == 0


# --- overdue ----------------------------------------------------------------------------------


def test_an_assigned_report_past_its_due_day_is_overdue(client, finished, frozen):
    found = assigned(finished, due_days=3)
    assert not service.is_overdue(found)
    frozen.advance(days=3)
    assert not service.is_overdue(found)  # due that day: not late yet
    frozen.advance(days=1)
    assert service.is_overdue(found)
    assert [r.id for r in service.staff_reports(None, "overdue")] == [found.id]
    # On the committee's list, first and flagged; on its to-do list, at the top.
    newer = a_report(finished)
    factories.sign_in(client, finished.committee)
    listing = client.get("/feedback/", headers=EN).text
    assert listing.index(f"/feedback/{found.id}\"") < listing.index(f"/feedback/{newer.id}\"")
    assert "table-danger" in listing
    todos = todo.todo_for(finished.committee, now=frozen.at)
    assert todos[0].kind == todo.DEFECTS and (todos[0].late, todos[0].count) == (1, 1)
    home = client.get("/", headers=EN).text
    assert "1 defect report is past its due day" in home and "1 new defect report" in home
    # Fixed late, it is no longer overdue.
    service.move(found, Action.MARK_FIXED, finished.committee, note="修好", photo=_photo())
    assert not service.is_overdue(found)
    assert service.staff_reports(None, "overdue") == []


def test_reassigning_with_a_later_day_lifts_the_flag(finished, frozen):
    found = assigned(finished, due_days=1)
    frozen.advance(days=2)
    assert service.is_overdue(found)
    service.move(found, Action.ASSIGN, finished.committee, assignee="乙",
                 due_on=service.local_day(frozen.at) + timedelta(days=5))
    assert not service.is_overdue(found)


def test_a_resident_reports_only_for_their_own_household(client, finished):
    factories.sign_in(client, finished.resident)
    rid = report_id(send_report(client, finished.consultation,
                                building_id=str(finished.mine.building_id),
                                household_id=str(finished.neighbour.id)))
    assert db.session.get(DefectReport, rid).household_id == finished.mine.id


def test_a_step_without_its_csrf_token_is_refused(client, finished):
    found = a_report(finished)
    factories.sign_in(client, finished.committee)
    refused = client.post(f"/feedback/{found.id}/step", data={"action": "accept"}, csrf=False)
    assert refused.status_code == 400
    assert db.session.get(DefectReport, found.id).state == "open"
