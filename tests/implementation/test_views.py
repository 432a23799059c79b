import io
import re
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from consult.consultations.states import Action
from consult.core.models import utcnow
from consult.extensions import db
from consult.implementation import service
from consult.implementation.models import Evaluation, Inspection, ProgressEntry
from consult.notices import service as notices
from consult.notices.models import NoticeKind
from consult.process import workflow
from consult.uploads.models import Attachment
from tests import factories
from tests.implementation.conftest import actions_since, audit_seq, image_bytes

EN = {"Accept-Language": "en"}


def count(model) -> int:
    return db.session.scalar(select(func.count()).select_from(model))


def url(c, tail: str = "works") -> str:
    return f"/consultations/{c.id}/{tail}"


def publish_result(c, now):
    committee = factories.make_user("committee", compound=c.compound)
    service.add_progress(committee, c, service.progress_data(
        item_id=None, percent="100", spend="3,000", note="全部完工", is_final=True), now=now)
    for item in service.implementable_items(c):
        service.complete_item(committee, item, item.estimated_cost_fen, "", now=now)
    workflow.apply(c, Action.PUBLISH_RESULT, committee, now=now)
    return notices.current_notice(c, NoticeKind.RESULT)


# --- the works page ---------------------------------------------------------------------------


def test_works_page_is_public_and_shows_no_forms_to_visitors(client, works):
    c = works.consultation
    r = client.get(url(c), headers=EN)
    assert r.status_code == 200
    assert "改造项目1" in r.text and "改造项目2" in r.text and "1,000.00" in r.text
    assert "/works/progress" not in r.text and "/works/inspections" not in r.text
    assert "/complete" not in r.text and "/evaluation" not in r.text
    assert "style=" not in r.text


def test_works_page_before_the_works_started(client, login_as, compound):
    draft = factories.make_consultation(compound)
    assert client.get(url(draft)).status_code == 404
    voting = factories.make_consultation(compound, stage="discussing")
    r = client.get(url(voting), headers=EN)
    assert r.status_code == 409 and "have not started" in r.text


def test_committee_and_supervisor_see_their_buttons(client, login_as, works, compound):
    c = works.consultation
    login_as("committee", compound=compound)
    text = client.get(url(c)).text
    assert "/works/progress" in text and text.count("/complete") == 2
    assert "/works/inspections" not in text
    client.post("/logout")
    login_as("supervisor", compound=compound)
    text = client.get(url(c)).text
    assert "/works/inspections" in text and "/works/progress" not in text
    assert "/complete" not in text


def test_committee_records_progress_with_photos(client, login_as, works, compound):
    c = works.consultation
    login_as("committee", compound=compound)
    assert client.get(url(c, "works/progress")).status_code == 200
    seq = audit_seq()
    r = client.post(url(c, "works/progress"), data={
        "item_id": "0", "percent": "45", "spend": "12,000.5", "note": "雨污分流管道铺设过半",
        "photos": [(io.BytesIO(image_bytes()), "一.png"),
                   (io.BytesIO(image_bytes("JPEG", color="blue")), "二.jpg")],
    }, content_type="multipart/form-data")
    assert r.status_code == 302 and r.headers["Location"].endswith(url(c))
    entry = db.session.scalars(select(ProgressEntry)).one()
    assert (entry.percent, entry.spend_fen, len(entry.photos)) == (45, 1_200_050, 2)
    assert actions_since(seq) == ["implementation.progress_added"]
    page = client.get(url(c), headers=EN).text
    for photo in entry.photos:
        assert f'src="/files/{photo.id}"' in page
    assert "45 %" in page and "12,000.50" in page and "style=" not in page
    assert client.get(f"/files/{entry.photos[0].id}").mimetype == "image/jpeg"


def test_progress_with_a_non_image_is_refused_and_nothing_is_written(client, login_as, works,
                                                                       compound):
    c = works.consultation
    login_as("committee", compound=compound)
    seq, attachments = audit_seq(), count(Attachment)
    r = client.post(url(c, "works/progress"), data={
        "item_id": "0", "percent": "45", "spend": "", "note": "",
        "photos": [(io.BytesIO(image_bytes()), "ok.png"), (io.BytesIO(b"MZ\x90\x00"), "x.exe")],
    }, content_type="multipart/form-data", headers=EN)
    assert r.status_code == 200
    assert "x.exe is not a photo" in r.text
    assert count(ProgressEntry) == 0 and count(Attachment) == attachments
    assert actions_since(seq) == []


def test_progress_form_errors_stay_next_to_the_fields(client, login_as, works, compound):
    c = works.consultation
    login_as("committee", compound=compound)
    r = client.post(url(c, "works/progress"), data={
        "item_id": "0", "percent": "120", "spend": "1.234", "note": ""}, headers=EN)
    assert r.status_code == 200
    assert "whole number from 0 to 100" in r.text and "at most two decimals" in r.text
    assert count(ProgressEntry) == 0


def test_progress_refused_at_the_wrong_stage(client, login_as, compound):
    c = factories.make_consultation(compound, stage="resolution_public")
    login_as("committee", compound=compound)
    seq = audit_seq()
    r = client.post(url(c, "works/progress"), data={"item_id": "0", "percent": "10"},
                    headers=EN)
    assert r.status_code == 409 and "while the works are under way" in r.text
    assert count(ProgressEntry) == 0 and actions_since(seq) == []


def test_committee_of_another_compound_is_refused(client, login_as, works):
    c = works.consultation
    login_as("committee", compound=factories.make_compound("别的小区"))
    assert client.get(url(c, "works/progress")).status_code == 403
    item = c.items[0]
    r = client.post(url(c, f"works/items/{item.id}/complete"), data={"final_cost": "1"})
    assert r.status_code == 403 and item.completed_at is None


def test_ticking_an_item_off_and_correcting_it(client, login_as, works, compound):
    c = works.consultation
    item = c.items[0]
    login_as("committee", compound=compound)
    form = client.get(url(c, f"works/items/{item.id}/complete")).text
    assert "1,000.00" in form and 'value="1,000.00"' not in form  # shown, not prefilled
    seq = audit_seq()
    r = client.post(url(c, f"works/items/{item.id}/complete"),
                    data={"final_cost": "980.5", "note": "节约了材料"})
    assert r.status_code == 302
    assert (item.final_cost_fen, item.completion_note) == (98_050, "节约了材料")
    assert item.completed_at is not None
    form = client.get(url(c, f"works/items/{item.id}/complete")).text
    assert 'value="980.50"' in form
    client.post(url(c, f"works/items/{item.id}/complete"),
                data={"final_cost": "1,010", "note": "节约了材料"})
    assert item.final_cost_fen == 101_000
    assert actions_since(seq) == ["implementation.item_completed",
                                  "implementation.item_corrected"]
    page = client.get(url(c), headers=EN).text
    assert "1,010.00" in page and "1 / 2" in page


def test_an_item_that_failed_the_vote_cannot_be_ticked(client, login_as,
                                                       works_with_failed_item, compound):
    c = works_with_failed_item.consultation
    login_as("committee", compound=compound)
    r = client.post(url(c, f"works/items/{c.items[1].id}/complete"), data={"final_cost": "1"},
                    headers=EN)
    assert r.status_code == 409 and c.items[1].completed_at is None
    page = client.get(url(c), headers=EN).text
    assert page.count("/complete") == 1 and "not to be implemented" in page


def test_supervisor_adds_an_inspection_note(client, login_as, works, compound):
    c = works.consultation
    login_as("supervisor", compound=compound)
    seq = audit_seq()
    r = client.post(url(c, "works/inspections"), data={
        "item_id": str(c.items[1].id), "text": "路面平整度不够，需返工",
        "photo": (io.BytesIO(image_bytes()), "路面.png")}, content_type="multipart/form-data")
    assert r.status_code == 302
    note = db.session.scalars(select(Inspection)).one()
    assert note.item_id == c.items[1].id and note.photo_id is not None
    assert actions_since(seq) == ["implementation.inspection_added"]
    page = client.get(url(c)).text
    assert "路面平整度不够" in page and f'src="/files/{note.photo_id}"' in page


def test_inspections_only_by_supervisors_in_scope(client, login_as, works, compound):
    c = works.consultation
    login_as("supervisor", compound=factories.make_compound("别的小区"))
    assert client.post(url(c, "works/inspections"), data={"text": "x"}).status_code == 403
    client.post("/logout")
    login_as("committee", compound=compound)
    assert client.post(url(c, "works/inspections"), data={"text": "x"}).status_code == 403
    assert count(Inspection) == 0


# --- evaluation -------------------------------------------------------------------------------


def test_resident_rates_and_changes_the_rating(client, login_as, works, compound):
    c = works.consultation
    household = compound.buildings[0].households[0]
    login_as("resident", household=household)
    before = client.get(url(c, "evaluation"), headers=EN)
    assert before.status_code == 200 and "once their result is published" in before.text
    assert 'name="rating"' not in before.text
    publish_result(c, utcnow() - timedelta(minutes=1))
    page = client.get(url(c, "evaluation"), headers=EN).text
    assert page.count('type="radio"') == 3 and "btn-lg" in page and "<script" not in page
    assert "style=" not in page
    works_page = client.get(url(c), headers=EN).text
    assert "/evaluation" in works_page
    seq = audit_seq()
    r = client.post(url(c, "evaluation"), data={"rating": "satisfied", "comment": ""},
                    headers=EN)
    assert r.status_code == 302
    confirmed = client.get(r.headers["Location"], headers=EN).text
    assert "Thank you" in confirmed and "Satisfied" in confirmed
    client.post(url(c, "evaluation"), data={"rating": "basically_satisfied", "comment": "不错"})
    evaluation = db.session.scalars(select(Evaluation)).one()
    assert (evaluation.household_id, evaluation.rating, evaluation.comment) == (
        household.id, "basically_satisfied", "不错")
    assert actions_since(seq) == ["implementation.evaluated",
                                  "implementation.evaluation_changed"]


def test_rating_without_a_choice_is_refused(client, login_as, works, compound):
    c = works.consultation
    publish_result(c, utcnow() - timedelta(minutes=1))
    login_as("resident", household=compound.buildings[0].households[0])
    r = client.post(url(c, "evaluation"), data={"comment": "?"}, headers=EN)
    assert r.status_code == 200 and "Choose how satisfied" in r.text
    assert count(Evaluation) == 0


def test_rating_after_the_publicity_period_is_refused(client, login_as, works, compound):
    c = works.consultation
    publish_result(c, utcnow() - timedelta(days=8))
    login_as("resident", household=compound.buildings[0].households[0])
    page = client.get(url(c, "evaluation"), headers=EN)
    assert page.status_code == 200 and "The rating closed" in page.text
    assert 'name="rating"' not in page.text
    seq = audit_seq()
    r = client.post(url(c, "evaluation"), data={"rating": "satisfied"}, headers=EN)
    assert r.status_code == 409 and "publicity period" in r.text
    assert count(Evaluation) == 0 and actions_since(seq) == []


def test_only_households_of_the_consultation_rate(client, login_as, works):
    c = works.consultation
    publish_result(c, utcnow() - timedelta(minutes=1))
    login_as("resident")  # a household of another compound
    r = client.post(url(c, "evaluation"), data={"rating": "satisfied"})
    assert r.status_code == 403 and count(Evaluation) == 0
    client.post("/logout")
    login_as("committee", compound=c.compound)
    assert client.post(url(c, "evaluation"), data={"rating": "satisfied"}).status_code == 403


def test_works_page_shows_the_tally_once_the_result_is_up(client, login_as, works, compound):
    c = works.consultation
    assert "What the households think" not in client.get(url(c), headers=EN).text
    publish_result(c, utcnow() - timedelta(minutes=1))
    households = [h for b in compound.buildings for h in b.households]
    for household, rating in zip(households, ("satisfied", "satisfied", "dissatisfied"),
                                 strict=False):
        service.evaluate(None, c, household, rating, "comment" if rating == "dissatisfied"
                         else "")
    page = client.get(url(c), headers=EN).text
    assert "What the households think" in page
    shares = re.findall(r"(\d+\.\d) %", page)
    assert shares == ["25.0", "0.0", "12.5", "62.5"]
    assert "Comments from households" not in page  # visitors do not see the comments
    login_as("supervisor", compound=compound)
    assert "Comments from households" in client.get(url(c), headers=EN).text


# --- access on a consultation whose works are under way ----------------------------------------

ROUTES = {
    "works": ("works", {"anonymous", "resident", "committee", "committee_elsewhere",
                        "supervisor", "admin"}),
    "progress": ("works/progress", {"committee", "admin"}),
    "complete": ("works/items/{item}/complete", {"committee", "admin"}),
    "inspection": ("works/inspections", {"supervisor", "admin"}),
    "evaluation": ("evaluation", {"resident"}),
}


@pytest.mark.parametrize("role", ["anonymous", "resident", "committee", "committee_elsewhere",
                                  "supervisor", "admin"])
def test_who_reaches_which_page_while_the_result_is_up(client, login_as, works, compound, role):
    c = works.consultation
    # Implementing for the committee's pages, then the result for the rating page.
    if role == "committee_elsewhere":
        login_as("committee", compound=factories.make_compound("别的小区"))
    elif role == "resident":
        login_as("resident", household=compound.buildings[1].households[0])
    elif role != "anonymous":
        login_as(role, compound=compound)
    for name in ("works", "progress", "complete", "inspection"):
        tail, allowed = ROUTES[name]
        r = client.get(url(c, tail.format(item=c.items[0].id)))
        expected = 200 if role in allowed else (302 if role == "anonymous" else 403)
        assert r.status_code == expected, (name, role, r.status_code)
    publish_result(c, utcnow() - timedelta(minutes=1))
    tail, allowed = ROUTES["evaluation"]
    r = client.get(url(c, tail))
    assert r.status_code == (200 if role in allowed else 302 if role == "anonymous" else 403)
    if role == "resident":
        assert 'name="rating"' in r.text
