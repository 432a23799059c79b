"""问卷 over HTTP: the committee builds it, a household answers (and cannot touch another's),
staff type in paper sheets, the printed sheet read back (text and QR code), the results page
with its charts, free answers taken up as opinions, and the XLSX export."""

from __future__ import annotations

import html
import io
import re
import subprocess
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import zxingcpp
from openpyxl import load_workbook
from PIL import Image
from pypdf import PdfReader
from sqlalchemy import func, select

from consult.consultations import questionnaires as service
from consult.consultations.models import Opinion
from consult.consultations.questionnaire_models import (
    Answer,
    Question,
    Questionnaire,
    QuestionnaireResponse,
)
from consult.extensions import db
from consult.process import inbox
from tests import factories
from tests.conftest import audit_actions
from tests.questionnaires.helpers import answers, build

EN = {"Accept-Language": "en"}


@pytest.fixture
def soliciting(compound):
    return factories.make_consultation(compound, stage="soliciting")


@pytest.fixture
def questionnaire(soliciting):
    return build(soliciting)


def _url(c, endpoint: str = "", **kwargs) -> str:
    base = f"/consultations/{c.id}/questionnaire"
    return base + endpoint


def _form(q: Questionnaire, single: str | None = "0", multiple: tuple[str, ...] = (),
          rating: str | None = "4", text: str = "") -> dict:
    single_q, multiple_q, rating_q, text_q = q.questions
    data: dict = {service.field_name(multiple_q): list(multiple),
                  service.field_name(text_q): text}
    if single is not None:
        data[service.field_name(single_q)] = single
    if rating is not None:
        data[service.field_name(rating_q)] = rating
    return data


# --- building ---------------------------------------------------------------------------------


def test_the_committee_builds_and_publishes_a_questionnaire_over_http(client, login_as,
                                                                      soliciting, compound):
    login_as("committee", compound=compound)
    page = client.get(_url(soliciting, "/build"), headers=EN)
    assert page.status_code == 200 and "Start the questionnaire" in page.text
    response = client.post(_url(soliciting, "/build"), data={"title": "服务需求调查问卷",
                                                            "intro": "每户一份"})
    assert response.status_code == 302
    refused = client.post(_url(soliciting, "/questions"), headers=EN, data={
        "kind": "single", "text": "最需要什么？", "choices": "只有一项"})
    assert refused.status_code == 400 and "between 2 and 20" in refused.text
    assert "最需要什么？" in refused.text  # the work is kept
    for kind, text, choices in (("single", "常住几口人？", "1人\n2人"),
                                ("rating", "满意度", ""), ("text", "建议", "")):
        assert client.post(_url(soliciting, "/questions"), data={
            "kind": kind, "text": text, "choices": choices,
            "required_answer": "y"}).status_code == 302
    q = service.questionnaire_of(soliciting)
    assert [x.text for x in q.questions] == ["常住几口人？", "满意度", "建议"]
    last = q.questions[-1]
    assert client.post(_url(soliciting, f"/questions/{last.id}/move"),
                       data={"direction": "up"}).status_code == 302
    db.session.expire_all()
    assert [x.text for x in q.questions] == ["常住几口人？", "建议", "满意度"]
    edit = client.post(_url(soliciting, f"/questions/{q.questions[0].id}"), data={
        "kind": "single", "text": "常住人口", "choices": "1人\n2人\n3人"})
    assert edit.status_code == 302
    assert client.post(_url(soliciting, f"/questions/{q.questions[1].id}/remove"),
                       data={}).status_code == 302
    assert client.post(_url(soliciting, "/publish"), data={}).status_code == 302
    db.session.expire_all()
    assert q.published_at is not None and len(q.questions) == 2
    assert audit_actions() == [
        "questionnaire.changed", *["questionnaire.question_added"] * 3,
        "questionnaire.question_moved", "questionnaire.question_changed",
        "questionnaire.question_removed", "questionnaire.published"]


def test_after_answers_the_builder_says_what_is_locked(client, login_as, questionnaire,
                                                       soliciting, compound):
    service.answer_online(None, questionnaire, compound.buildings[0].households[0],
                          answers(questionnaire))
    login_as("committee", compound=compound)
    page = client.get(_url(soliciting, "/build"), headers=EN)
    assert "questions can no longer be removed" in page.text
    assert f"/questions/{questionnaire.questions[0].id}/remove" not in page.text
    single = questionnaire.questions[0]
    refused = client.post(_url(soliciting, f"/questions/{single.id}"), headers=EN, data={
        "kind": "single", "text": single.text, "choices": "甲\n乙", "required_answer": "y"})
    assert refused.status_code == 409 and "can no longer be changed" in refused.text
    assert service.choices_of(single) == ["1人", "2人", "3人及以上"]


def test_a_resident_cannot_build(client, login_as, soliciting, compound):
    login_as("resident", household=compound.buildings[0].households[0])
    assert client.post(_url(soliciting, "/build"), data={"title": "x"}).status_code == 403


# --- answering online -------------------------------------------------------------------------


def test_a_household_answers_with_required_questions_enforced_and_work_kept(
        client, login_as, questionnaire, soliciting, compound):
    household = compound.buildings[0].households[0]
    login_as("resident", household=household)
    page = client.get(_url(soliciting), headers=EN)
    assert page.status_code == 200 and "您家常住几口人？" in page.text
    single, multiple, rating, _text = questionnaire.questions
    missing = client.post(_url(soliciting), headers=EN, data=_form(
        questionnaire, single=None, multiple=("1", "3"), rating=None, text="希望加装电梯"))
    assert missing.status_code == 400
    # The message sits at each required question left out, and what was given is kept.
    for question in (single, rating):
        assert re.search(rf'id="q{question.id}-error"[^>]*>.*Please choose an answer',
                         missing.text)
    assert f'id="q{multiple.id}-error"' not in missing.text
    assert "希望加装电梯</textarea>" in missing.text
    assert re.search(rf'name="q{multiple.id}" value="1" checked', missing.text)
    assert re.search(rf'name="q{multiple.id}" value="3" checked', missing.text)
    assert db.session.scalar(select(func.count()).select_from(QuestionnaireResponse)) == 0
    saved = client.post(_url(soliciting), data=_form(questionnaire, single="2",
                                                     multiple=("1",), rating="5"))
    assert saved.status_code == 302
    response = service.response_of(questionnaire, household)
    assert response.channel == "online" and service.stored_values(response)[single.id] == "2"
    # Edited while opinions are collected: the same response, changed.
    again = client.get(_url(soliciting), headers=EN)
    assert re.search(rf'name="q{single.id}" value="2" checked', again.text)
    assert "Save my answers" in again.text
    assert client.post(_url(soliciting), data=_form(questionnaire, single="1")).status_code == 302
    db.session.expire_all()
    assert service.stored_values(response)[single.id] == "1"
    assert db.session.scalar(select(func.count()).select_from(QuestionnaireResponse)) == 1
    # Closed with the solicitation: shown read only, and a post is refused.
    soliciting.stage = "proposing"
    db.session.flush()
    closed = client.get(_url(soliciting), headers=EN)
    assert closed.status_code == 200 and "The questionnaire is closed" in closed.text
    assert re.search(rf'name="q{single.id}" value="1" checked', closed.text)
    assert "<fieldset" in closed.text and " disabled>" in closed.text
    assert "Save my answers" not in closed.text
    refused = client.post(_url(soliciting), data=_form(questionnaire, single="0"))
    assert refused.status_code == 409
    db.session.expire_all()
    assert service.stored_values(response)[single.id] == "1"


def test_the_household_home_and_the_consultation_page_link_the_questionnaire(
        client, login_as, questionnaire, soliciting, compound):
    household = compound.buildings[0].households[0]
    tasks = [t for t in inbox.tasks_for(household) if t.kind == "questionnaire"]
    assert len(tasks) == 1 and not tasks[0].done
    login_as("resident", household=household)
    home = client.get("/", headers=EN)
    assert _url(soliciting) in home.text and "Answer the questionnaire" in home.text
    assert _url(soliciting) in client.get(f"/consultations/{soliciting.id}", headers=EN).text
    service.answer_online(None, questionnaire, household, answers(questionnaire))
    assert [t.done for t in inbox.tasks_for(household) if t.kind == "questionnaire"] == [True]
    soliciting.stage = "proposing"
    assert [t for t in inbox.tasks_for(household) if t.kind == "questionnaire"] == []


def test_a_curious_neighbour_cannot_read_or_change_another_households_answers(
        client, login_as, questionnaire, soliciting, compound):
    owner, neighbour = compound.buildings[0].households[:2]
    service.answer_online(None, questionnaire, owner,
                          answers(questionnaire, single=2, text="我家漏水很严重"))
    login_as("resident", household=neighbour)
    page = client.get(_url(soliciting), headers=EN)
    assert "我家漏水很严重" not in page.text and "Send my answers" in page.text
    # Whatever household id the neighbour sends, the answers are their own household's.
    client.post(_url(soliciting), data={**_form(questionnaire, single="0"),
                                        "household_id": str(owner.id)})
    db.session.expire_all()
    assert service.stored_values(service.response_of(questionnaire, owner))[
        questionnaire.questions[0].id] == "2"
    assert service.response_of(questionnaire, neighbour) is not None
    for url in (_url(soliciting, f"/paper/{owner.id}"), _url(soliciting, "/results"),
                _url(soliciting, "/export.xlsx"), _url(soliciting, "/paper")):
        assert client.get(url).status_code == 403, url
    assert client.post(_url(soliciting, f"/paper/{owner.id}"), data=_form(
        questionnaire)).status_code == 403
    db.session.expire_all()
    assert service.response_of(questionnaire, owner).channel == "online"


def test_a_household_outside_the_scope_is_refused(client, login_as, questionnaire, soliciting):
    stranger = factories.make_household(factories.make_building(factories.make_compound()))
    login_as("resident", household=stranger)
    assert client.get(_url(soliciting)).status_code == 403


def test_answers_need_the_csrf_token(client, login_as, questionnaire, soliciting, compound):
    login_as("resident", household=compound.buildings[0].households[0])
    response = client.post(_url(soliciting), data=_form(questionnaire), csrf=False)
    assert response.status_code == 400
    assert db.session.scalar(select(func.count()).select_from(QuestionnaireResponse)) == 0


# --- paper ------------------------------------------------------------------------------------


def test_staff_enter_a_paper_sheet_marked_as_theirs(client, login_as, questionnaire,
                                                    soliciting, compound):
    household = compound.buildings[1].households[2]
    clerk = login_as("grid_worker", compound=compound)
    found = client.get(_url(soliciting, "/paper"), query_string={
        "building_id": household.building_id, "unit": household.unit, "room": household.room})
    assert found.status_code == 302
    assert found.headers["Location"].endswith(_url(soliciting, f"/paper/{household.id}"))
    nowhere = client.get(_url(soliciting, "/paper"), headers=EN, query_string={
        "building_id": household.building_id, "room": "999"})
    assert nowhere.status_code == 400 and "There is no room 999" in nowhere.text
    missing = client.post(_url(soliciting, f"/paper/{household.id}"), headers=EN,
                          data=_form(questionnaire, rating=None, text="路灯"))
    assert missing.status_code == 400 and "路灯</textarea>" in missing.text
    saved = client.post(_url(soliciting, f"/paper/{household.id}"),
                        data=_form(questionnaire, single="1", multiple=("0", "2")))
    assert saved.status_code == 302
    response = service.response_of(questionnaire, household)
    assert (response.channel, response.entered_by_id) == ("paper", clerk.id)
    assert audit_actions()[-1] == "questionnaire.paper_entered"


def test_staff_entry_over_an_online_answer_needs_confirmation_and_reason(
        client, login_as, questionnaire, soliciting, compound):
    household = compound.buildings[0].households[0]
    service.answer_online(None, questionnaire, household, answers(questionnaire, single=0))
    login_as("committee", compound=compound)
    page = client.get(_url(soliciting, f"/paper/{household.id}"), headers=EN)
    assert "answered online" in page.text and 'name="confirm_replace"' in page.text
    refused = client.post(_url(soliciting, f"/paper/{household.id}"), headers=EN,
                          data=_form(questionnaire, single="2", text="纸质"))
    assert refused.status_code == 409 and "already answered online" in refused.text
    assert "纸质</textarea>" in refused.text
    no_reason = client.post(_url(soliciting, f"/paper/{household.id}"), headers=EN,
                            data={**_form(questionnaire, single="2"), "confirm_replace": "y"})
    assert no_reason.status_code == 400 and "The reason is required" in no_reason.text
    db.session.expire_all()
    assert service.response_of(questionnaire, household).channel == "online"
    confirmed = client.post(_url(soliciting, f"/paper/{household.id}"), data={
        **_form(questionnaire, single="2"), "confirm_replace": "y",
        "reason": "户主到居委会说明网上填错"})
    assert confirmed.status_code == 302
    db.session.expire_all()
    response = service.response_of(questionnaire, household)
    assert response.channel == "paper"
    assert service.stored_values(response)[questionnaire.questions[0].id] == "2"


def test_paper_entry_for_a_household_of_another_compound_is_not_found(
        client, login_as, questionnaire, soliciting, compound):
    stranger = factories.make_household(factories.make_building(factories.make_compound()))
    login_as("committee", compound=compound)
    assert client.get(_url(soliciting, f"/paper/{stranger.id}")).status_code == 404
    assert client.post(_url(soliciting, f"/paper/{stranger.id}"),
                       data=_form(questionnaire)).status_code == 404


def test_the_printed_sheet_reads_back_and_its_qr_opens_the_entry_page(
        client, login_as, questionnaire, soliciting, compound, tmp_path: Path):
    building = compound.buildings[1]
    household = building.households[0]
    login_as("committee", compound=compound)
    response = client.get(_url(soliciting, f"/sheets/{building.id}.pdf"))
    assert response.status_code == 200 and response.mimetype == "application/pdf"
    path = tmp_path / "sheets.pdf"
    path.write_bytes(response.data)
    reader = PdfReader(path)
    assert len(reader.pages) == len(building.households)
    text = reader.pages[0].extract_text()
    assert "2号楼" in text and household.room in text
    for question in questionnaire.questions:
        assert question.text in text
    # The title is printed letter-spaced.
    assert "飞线充电" in text and "服务需求调查问卷" in re.sub(r"\s+", "", text)
    assert household.owner_name not in text  # the address only
    subprocess.run(["pdftoppm", "-r", "150", "-png", "-f", "1", "-l", "1", str(path),
                    str(tmp_path / "page")], check=True)
    image = Image.open(next(tmp_path.glob("page*.png")))
    codes = zxingcpp.read_barcodes(image)
    assert len(codes) == 1
    target = urlsplit(codes[0].text)
    assert target.path == _url(soliciting, f"/paper/{household.id}")
    opened = client.get(target.path, headers=EN)
    assert opened.status_code == 200
    assert "Paper questionnaire" in opened.text and household.room in opened.text


# --- results, opinions, export ----------------------------------------------------------------


def test_results_page_shows_counts_charts_and_buildings(client, login_as, questionnaire,
                                                        soliciting, compound):
    for n, household in enumerate(compound.buildings[0].households[:3]):
        service.answer_online(None, questionnaire, household, answers(
            questionnaire, single=n % 2, rating=5 - n, text="<b>楼道灯</b>" if n == 0 else ""))
    login_as("supervisor", compound=compound)
    page = client.get(_url(soliciting, "/results"), headers=EN)
    assert page.status_code == 200
    # 1人: 2 of 3 (66.7 %), 2人: 1 of 3 (33.3 %); ratings 5, 4, 3 average 4.00.
    assert "66.7%" in page.text and "33.3%" in page.text and "Average: 4.00" in page.text
    assert page.text.count('<svg class="q-chart" role="img"') == 3
    assert "<title" in page.text and "1号楼" in page.text
    assert "&lt;b&gt;楼道灯&lt;/b&gt;" in page.text and "<b>楼道灯" not in page.text
    assert "Make it an opinion" not in page.text  # a supervisor changes nothing


def test_a_free_answer_becomes_an_opinion_in_one_step_once(client, login_as, questionnaire,
                                                           soliciting, compound):
    household = compound.buildings[0].households[0]
    service.answer_online(None, questionnaire, household,
                          answers(questionnaire, text="小区大门需要门禁"))
    answer = db.session.scalars(select(Answer).where(
        Answer.question_id == questionnaire.questions[3].id)).one()
    login_as("committee", compound=compound)
    assert "Make it an opinion" in client.get(_url(soliciting, "/results"), headers=EN).text
    for _ in range(2):
        response = client.post(_url(soliciting, f"/answers/{answer.id}/opinion"),
                               data={"category": "security"})
        assert response.status_code == 302
    opinions = list(db.session.scalars(select(Opinion)))
    assert len(opinions) == 1
    assert (opinions[0].text, opinions[0].channel, opinions[0].household_id) == (
        "小区大门需要门禁", "questionnaire", household.id)
    db.session.expire_all()
    assert answer.opinion_id == opinions[0].id
    page = client.get(_url(soliciting, "/results"), headers=EN)
    assert f"/opinions/{opinions[0].id}" in page.text
    assert audit_actions().count("questionnaire.answer_taken_up") == 1


def test_take_up_of_an_answer_of_another_consultation_is_not_found(
        client, login_as, questionnaire, soliciting, compound):
    other = factories.make_consultation(compound, stage="soliciting")
    build(other)
    service.answer_online(None, questionnaire, compound.buildings[0].households[0],
                          answers(questionnaire, text="别处的回答"))
    answer = db.session.scalars(select(Answer).where(
        Answer.question_id == questionnaire.questions[3].id)).one()
    login_as("committee", compound=compound)
    assert client.post(f"/consultations/{other.id}/questionnaire/answers/{answer.id}/opinion",
                       data={"category": "other"}).status_code == 404
    assert db.session.scalar(select(func.count()).select_from(Opinion)) == 0


def test_the_xlsx_export_over_http(client, login_as, questionnaire, soliciting, compound):
    household = compound.buildings[0].households[0]
    service.answer_online(None, questionnaire, household,
                          answers(questionnaire, single=2, multiple=(0, 3), rating=4))
    login_as("committee", compound=compound)
    response = client.get(_url(soliciting, "/export.xlsx"))
    assert response.status_code == 200
    book = load_workbook(io.BytesIO(response.data))
    assert len(book.worksheets) == 2
    rows = list(book.worksheets[0].iter_rows(values_only=True))
    assert rows[1][:5] == ("1号楼", household.unit, household.room, "网上", "3人及以上")
    assert rows[1][5] == "水管、公告栏" and rows[1][6] == "4"
    assert response.headers["Cache-Control"].startswith("no-store") or \
        "no-store" in response.headers.get("Cache-Control", "")


def test_questions_of_another_consultation_are_not_found(client, login_as, questionnaire,
                                                         soliciting, compound):
    other = factories.make_consultation(compound, stage="soliciting")
    build(other, publish=False)
    login_as("committee", compound=compound)
    question = db.session.scalars(select(Question).where(
        Question.questionnaire_id == questionnaire.id)).first()
    assert client.post(f"/consultations/{other.id}/questionnaire/questions/{question.id}/remove",
                       data={}).status_code == 404
    assert db.session.get(Question, question.id) is not None


def test_the_audit_trail_reads_a_replaced_online_answer_with_who_and_why(
        client, login_as, questionnaire, soliciting, compound):
    household = compound.buildings[0].households[0]
    service.answer_online(None, questionnaire, household, answers(questionnaire, single=0))
    clerk = factories.make_user("committee", compound=compound, username="clerk-wang")
    clerk.display_name = "王干事"
    service.enter_paper(clerk, questionnaire, household, answers(questionnaire, single=2),
                        confirm_replace=True, reason="户主书面更正")
    login_as("supervisor", compound=compound)
    page = client.get("/audit/", headers=EN)
    assert page.status_code == 200
    text = html.unescape(page.text)
    assert "Paper questionnaire entered by staff" in text and "王干事" in text
    assert "户主书面更正" in text and "Replaced the household's online answers" in text
    assert household.owner_name not in text
