"""The public list per compound (by building only), its link from the result notice, the
street office's dashboard counts and the audit chain after a report's life."""

from __future__ import annotations

from datetime import timedelta

from consult.core.sorting import Sort
from consult.extensions import db
from consult.feedback import service
from consult.feedback.states import Action
from consult.notices import service as notices
from consult.notices.models import NoticeKind
from consult.process import dashboard
from consult.registry.models import Resident
from tests import factories
from tests.feedback.test_life import EN
from tests.feedback.test_rules import _photo, a_report, assigned


def test_the_public_list_names_no_one_and_no_room(client, finished):
    mine = finished.mine
    mine.owner_name = "王秀英"
    mine.room = "302"
    mine.unit = "3"
    db.session.add(Resident(household=mine, name="王秀英", relation="owner"))
    db.session.flush()
    found = service.report(finished.resident, finished.consultation, service.ReportInput(
        item_id=finished.consultation.items[0].id, building_id=mine.building_id,
        text="王秀英家门口302室外的路面塌陷"))
    service.move(found, Action.ACCEPT, finished.committee)
    service.move(found, Action.ASSIGN, finished.committee, assignee="张师傅维修队",
                 due_on=service.local_day(service.utcnow()))
    service.move(found, Action.MARK_FIXED, finished.committee, note="修好", photo=_photo())
    page = client.get(f"/compounds/{finished.compound.id}/feedback", headers=EN)  # no sign-in
    assert page.status_code == 200
    body = page.text
    assert mine.building.name in body and "改造项目1" in body and "Fixed" in body
    for private in ("王秀英", "302", mine.label, "张师傅", "路面塌陷"):
        assert private not in body, private
    assert "Days to fix" in body


def test_the_public_list_shows_every_state_with_its_dates(client, finished, frozen):
    fixed = assigned(finished, due_days=1)
    frozen.advance(days=4)
    service.move(fixed, Action.MARK_FIXED, finished.committee, note="修好", photo=_photo())
    late = assigned(finished, due_days=0)
    frozen.advance(days=1)
    rows = {r.number: r for r in service.public_rows(finished.compound.id, frozen.at)}
    assert rows[fixed.id].days_to_fix == 4 and rows[fixed.id].fixed_at is not None
    assert rows[late.id].overdue and rows[late.id].days_to_fix is None
    body = client.get(f"/compounds/{finished.compound.id}/feedback", headers=EN).text
    assert body.count("overdue") == 1


def test_the_result_notice_links_to_the_public_list(client, finished):
    notice = notices.current_notice(finished.consultation, NoticeKind.RESULT)
    page = client.get(f"/notices/{notice.id}", headers=EN)
    assert page.status_code == 200
    assert f'href="/compounds/{finished.compound.id}/feedback"' in page.text
    assert "/feedback/new" not in page.text  # a visitor cannot report
    factories.sign_in(client, finished.resident)
    page = client.get(f"/notices/{notice.id}", headers=EN)
    assert f'href="/consultations/{finished.consultation.id}/feedback/new"' in page.text


def test_dashboard_counts_open_overdue_and_fixed(client, finished, frozen, login_as):
    a_report(finished)                      # open
    late = assigned(finished, due_days=0)   # overdue tomorrow
    done = assigned(finished, due_days=5)
    service.move(done, Action.MARK_FIXED, finished.committee, note="修好", photo=_photo())
    confirmed = assigned(finished, due_days=5)
    service.move(confirmed, Action.MARK_FIXED, finished.committee, note="修好", photo=_photo())
    service.move(confirmed, Action.CONFIRM, finished.resident)
    rejected = a_report(finished)
    service.move(rejected, Action.REJECT, finished.committee, reason="不属于本次改造")
    frozen.advance(days=1)
    assert late.due_on < service.local_day(frozen.at)
    other = factories.make_compound_with_households(per_building=1)
    dash = dashboard.build(None, dashboard.Filters(), Sort("name", False), now=frozen.at)
    row = next(r for r in dash.rows if r.compound_id == finished.compound.id)
    assert (row.defects_open, row.defects_overdue, row.defects_fixed) == (2, 1, 2)
    empty = next(r for r in dash.rows if r.compound_id == other.id)
    assert (empty.defects_open, empty.defects_overdue, empty.defects_fixed) == (0, 0, 0)
    assert (dash.grand.defects_open, dash.grand.defects_overdue,
            dash.grand.defects_fixed) == (2, 1, 2)
    login_as("admin")
    page = client.get("/dashboard/", headers=EN).text
    assert "Defect reports: open · overdue · fixed" in page
    assert '2 · <strong class="text-danger">1</strong> · 2' in page


def test_the_audit_chain_verifies_after_a_reports_life(finished, runner):
    found = assigned(finished, due_days=1)
    service.move(found, Action.MARK_FIXED, finished.committee, note="修好", photo=_photo())
    service.move(found, Action.REOPEN, finished.resident, reason="又坏了")
    service.move(found, Action.ASSIGN, finished.committee, assignee="乙",
                 due_on=service.local_day(service.utcnow()) + timedelta(days=2))
    service.move(found, Action.MARK_FIXED, finished.committee, note="再修", photo=_photo())
    service.move(found, Action.CONFIRM, finished.resident)
    steps = [s.action for s in service.history(found)]
    assert steps == ["feedback.reported", "feedback.accepted", "feedback.assigned",
                     "feedback.fixed", "feedback.reopened", "feedback.assigned",
                     "feedback.fixed", "feedback.confirmed"]
    outcome = runner.invoke(args=["audit", "verify"], env={"CONSULT_LANG": "en"})
    assert outcome.exit_code == 0, outcome.output


def test_the_audit_page_reads_feedback_events(client, finished, login_as):
    found = a_report(finished)
    service.move(found, Action.REJECT, finished.committee, reason="重复报告")
    login_as("supervisor", compound=finished.compound)
    page = client.get("/audit/", headers=EN)
    assert page.status_code == 200
    assert "Defect report rejected" in page.text and "Defect reported" in page.text


