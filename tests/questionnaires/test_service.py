"""问卷: building, answering online, paper entry and its rule, results against a hand count,
free answers taken up as opinions, and the XLSX export."""

from __future__ import annotations

import io
import json
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st
from openpyxl import load_workbook
from sqlalchemy import func, select

from consult.audit.models import AuditEvent
from consult.consultations import questionnaires as service
from consult.consultations.models import Opinion
from consult.consultations.questionnaire_models import Answer, QuestionnaireResponse
from consult.consultations.questionnaire_results import (
    QuestionSpec,
    Reply,
    average,
    percentages,
    tabulate,
)
from consult.core.errors import Conflict, PermissionDenied, ValidationFailed
from consult.extensions import db
from tests import factories
from tests.conftest import audit_actions
from tests.questionnaires.helpers import answers, build


@pytest.fixture
def soliciting(compound):
    return factories.make_consultation(compound, stage="soliciting")


def _households(compound):
    return [h for b in compound.buildings for h in b.households]


def _payload(action: str) -> dict:
    return json.loads(db.session.scalars(select(AuditEvent.payload).where(
        AuditEvent.action == action).order_by(AuditEvent.seq.desc())).first())


# --- pure results -----------------------------------------------------------------------------


def test_percentages_add_up_to_exactly_100_by_largest_remainder():
    assert percentages([1, 1, 1]) == [Decimal("33.4"), Decimal("33.3"), Decimal("33.3")]
    assert sum(percentages([491, 297, 34, 39])) == Decimal("100.0")
    # 57.02 / 34.49 / 3.94 / 4.52: floored 99.8, the two tenths left go to the largest
    # remainders (34.4|9, 3.9|49).
    assert percentages([491, 297, 34, 39]) == [Decimal("57.0"), Decimal("34.5"),
                                               Decimal("4.0"), Decimal("4.5")]
    assert percentages([0, 0]) == [Decimal("0.0"), Decimal("0.0")]


@given(st.lists(st.integers(min_value=0, max_value=3000), min_size=1, max_size=20))
def test_percentages_always_add_up_to_100_and_stay_within_a_tenth(counts):
    shares = percentages(counts)
    total = sum(counts)
    if total == 0:
        assert set(shares) == {Decimal("0.0")}
        return
    assert sum(shares) == Decimal("100.0")
    for count, share in zip(counts, shares, strict=True):
        # Each share is its exact value floored, or one tenth more.
        exact = Decimal(count * 100) / Decimal(total)
        assert Decimal(0) <= share - exact.quantize(Decimal("0.1"), rounding="ROUND_FLOOR") \
            <= Decimal("0.1")


def test_average_rating_to_two_decimals():
    assert average([0, 0, 1, 1, 1]) == Decimal("4.00")
    assert average([1, 0, 0, 0, 1]) == Decimal("3.00")
    assert average([1, 1, 1, 0, 0]) == Decimal("2.00")
    assert average([0, 1, 0, 0, 2]) == Decimal("4.00")
    assert average([1, 0, 1, 0, 1]) == Decimal("3.00")
    assert average([2, 1, 0, 0, 0]) == Decimal("1.33")
    assert average([0] * 5) is None


def test_tabulate_counts_by_question_and_building_by_hand():
    spec = [QuestionSpec(1, "single", ("甲", "乙", "丙")),
            QuestionSpec(2, "multiple", ("水管", "路面")),
            QuestionSpec(3, "rating", ("1", "2", "3", "4", "5")),
            QuestionSpec(4, "text")]
    replies = [Reply(1, "1号楼", 0), Reply(1, "1号楼", 0), Reply(1, "2号楼", 1),
               Reply(2, "1号楼", (0, 1)), Reply(2, "2号楼", (0,)),
               Reply(3, "1号楼", 5), Reply(3, "2号楼", 4), Reply(3, "2号楼", 2),
               Reply(4, "2号楼", "装电梯")]
    single, multiple, rating, text = tabulate(spec, replies, ["1号楼", "2号楼"])
    assert single.total.counts == [2, 1, 0] and single.total.respondents == 3
    assert single.total.percentages == [Decimal("66.7"), Decimal("33.3"), Decimal("0.0")]
    assert [(name, row.counts) for name, row in single.by_building] == [
        ("1号楼", [2, 0, 0]), ("2号楼", [0, 1, 0])]
    assert multiple.total.counts == [2, 1] and multiple.total.respondents == 2
    assert sum(multiple.total.percentages) == Decimal("100.0")
    assert rating.total.counts == [0, 1, 0, 1, 1] and rating.average == Decimal("3.67")
    assert [r.value for r in text.texts] == ["装电梯"]


# --- building ---------------------------------------------------------------------------------


def test_building_a_questionnaire_is_audited_and_ordered(soliciting):
    questionnaire = build(soliciting)
    assert [q.position for q in questionnaire.questions] == [1, 2, 3, 4]
    assert [q.kind for q in questionnaire.questions] == ["single", "multiple", "rating", "text"]
    assert audit_actions() == ["questionnaire.changed"] + ["questionnaire.question_added"] * 4 \
        + ["questionnaire.published"]
    last = questionnaire.questions[-1]
    assert service.move_question(None, last, up=True)
    db.session.expire_all()
    assert [q.kind for q in questionnaire.questions] == ["single", "multiple", "text", "rating"]
    assert not service.move_question(None, questionnaire.questions[0], up=True)
    assert audit_actions()[-1] == "questionnaire.question_moved"


def test_question_data_is_checked():
    with pytest.raises(ValidationFailed) as exc:
        service.question_data(kind="single", text=" ", required=True, choices="只有一个")
    assert set(exc.value.errors) == {"text", "choices"}
    with pytest.raises(ValidationFailed) as exc:
        service.question_data(kind="nonsense", text="问题", required=False, choices="")
    assert set(exc.value.errors) == {"kind"}
    data = service.question_data(kind="multiple", text="问题", required=False,
                                 choices="甲\n\n乙\n甲\n")
    assert data.choices == ("甲", "乙")


def test_before_any_answer_questions_are_freely_edited_and_removed(soliciting):
    questionnaire = build(soliciting)
    first = questionnaire.questions[0]
    service.edit_question(None, first, service.question_data(
        kind="multiple", text="几口人", required=False, choices="一\n二"))
    assert service.choices_of(first) == ["一", "二"]
    service.remove_question(None, questionnaire.questions[1])
    db.session.expire_all()
    assert [q.position for q in questionnaire.questions] == [1, 2, 3]
    assert "questionnaire.question_removed" in audit_actions()


def test_once_answered_questions_cannot_be_removed_nor_choices_changed(soliciting, compound):
    questionnaire = build(soliciting)
    household = _households(compound)[0]
    service.answer_online(None, questionnaire, household, answers(questionnaire, single=1))
    single = questionnaire.questions[0]
    with pytest.raises(Conflict) as exc:
        service.remove_question(None, single)
    assert "already answered" in exc.value.message
    with pytest.raises(Conflict):
        service.edit_question(None, single, service.question_data(
            kind="single", text=single.text, required=True, choices="1人\n2人\n4人"))
    # Rewording and making it optional are still fine; the choices stay as they were.
    service.edit_question(None, single, service.question_data(
        kind="single", text="常住人口？", required=False, choices="1人\n2人\n3人及以上"))
    assert (single.text, single.required) == ("常住人口？", False)


@pytest.mark.parametrize("stage", ["proposing", "voting", "closed"])
def test_the_questionnaire_is_built_only_before_or_while_soliciting(compound, stage):
    consultation = factories.make_consultation(compound, stage=stage)
    with pytest.raises(Conflict):
        service.save_heading(None, consultation, "问卷", "")


# --- answering --------------------------------------------------------------------------------


def test_required_questions_are_enforced_per_question(soliciting):
    questionnaire = build(soliciting)
    with pytest.raises(ValidationFailed) as exc:
        service.parse_answers(questionnaire, lambda name: [])
    single, _multiple, rating, _text = questionnaire.questions
    assert set(exc.value.errors) == {service.field_name(single), service.field_name(rating)}


def test_answers_outside_the_choices_are_refused(soliciting):
    questionnaire = build(soliciting)
    single, multiple, rating, _text = questionnaire.questions
    for name, value in ((single, "3"), (multiple, "9"), (rating, "0"), (rating, "6"),
                        (single, "x")):
        form = {service.field_name(single): ["0"], service.field_name(rating): ["3"]}
        form[service.field_name(name)] = [value]
        with pytest.raises(ValidationFailed) as exc:
            service.parse_answers(questionnaire, lambda n, f=form: f.get(n, []))
        assert list(exc.value.errors) == [service.field_name(name)]


def test_a_household_answers_once_and_changes_its_answers(soliciting, compound):
    questionnaire = build(soliciting)
    household = _households(compound)[0]
    first = service.answer_online(None, questionnaire, household,
                                  answers(questionnaire, single=0, text="加装路灯"))
    again = service.answer_online(None, questionnaire, household,
                                  answers(questionnaire, single=2, multiple=(1, 3)))
    assert first.id == again.id
    assert db.session.scalar(select(func.count()).select_from(QuestionnaireResponse)) == 1
    single, multiple, _rating, text = questionnaire.questions
    stored = service.stored_values(again)
    assert stored[single.id] == "2" and stored[multiple.id] == "[1, 3]"
    assert text.id not in stored  # the text left empty the second time is gone
    payload = _payload("questionnaire.answered")
    assert payload["changed"] is True
    first_payload = json.loads(db.session.scalars(select(AuditEvent.payload).where(
        AuditEvent.action == "questionnaire.answered").order_by(AuditEvent.seq)).first())
    assert "加装路灯" not in json.dumps(first_payload, ensure_ascii=False)  # a digest only


def test_answers_close_with_the_solicitation(soliciting, compound):
    questionnaire = build(soliciting)
    soliciting.stage = "proposing"
    with pytest.raises(Conflict):
        service.answer_online(None, questionnaire, _households(compound)[0],
                              answers(questionnaire))


def test_an_unpublished_questionnaire_takes_no_answers(soliciting, compound):
    questionnaire = build(soliciting, publish=False)
    with pytest.raises(Conflict):
        service.answer_online(None, questionnaire, _households(compound)[0],
                              answers(questionnaire))


def test_a_household_outside_the_scope_cannot_answer(soliciting, compound):
    questionnaire = build(soliciting)
    other = factories.make_household(factories.make_building(factories.make_compound()))
    with pytest.raises(PermissionDenied):
        service.answer_online(None, questionnaire, other, answers(questionnaire))


# --- paper ------------------------------------------------------------------------------------


def test_staff_paper_entry_is_marked_and_audited_with_who(soliciting, compound):
    questionnaire = build(soliciting)
    clerk = factories.make_user("committee", compound=compound)
    household = _households(compound)[1]
    response = service.enter_paper(clerk, questionnaire, household,
                                   answers(questionnaire, single=1))
    assert (response.channel, response.entered_by_id) == ("paper", clerk.id)
    event = db.session.scalars(select(AuditEvent).where(
        AuditEvent.action == "questionnaire.paper_entered")).one()
    assert event.actor_id == clerk.id and json.loads(event.payload)["household_id"] == household.id


def test_paper_entry_never_silently_replaces_an_online_answer(soliciting, compound):
    questionnaire = build(soliciting)
    clerk = factories.make_user("committee", compound=compound)
    household = _households(compound)[0]
    service.answer_online(None, questionnaire, household, answers(questionnaire, single=0))
    with pytest.raises(Conflict) as exc:
        service.enter_paper(clerk, questionnaire, household, answers(questionnaire, single=2))
    assert exc.value.field == "confirm_replace"
    with pytest.raises(ValidationFailed) as refused:
        service.enter_paper(clerk, questionnaire, household, answers(questionnaire, single=2),
                            confirm_replace=True, reason="  ")
    assert "reason" in refused.value.errors
    response = service.response_of(questionnaire, household)
    assert response is not None and response.channel == "online"
    assert service.stored_values(response)[questionnaire.questions[0].id] == "0"
    service.enter_paper(clerk, questionnaire, household, answers(questionnaire, single=2),
                        confirm_replace=True, reason="户主书面更正，网上是孙子代填")
    payload = _payload("questionnaire.paper_entered")
    assert payload["replaced_online"] is True and payload["reason"].startswith("户主书面更正")
    assert payload["previous_answers"][str(questionnaire.questions[0].id)] == "0"
    assert service.response_of(questionnaire, household).channel == "paper"


def test_a_household_may_change_answers_staff_entered_from_its_sheet(soliciting, compound):
    questionnaire = build(soliciting)
    clerk = factories.make_user("committee", compound=compound)
    household = _households(compound)[0]
    service.enter_paper(clerk, questionnaire, household, answers(questionnaire, single=1))
    # Paper again over paper: the clerk corrects a typing slip without any confirmation.
    service.enter_paper(clerk, questionnaire, household, answers(questionnaire, single=2))
    response = service.answer_online(None, questionnaire, household,
                                     answers(questionnaire, single=0))
    assert response.channel == "online"
    assert _payload("questionnaire.answered")["previous_channel"] == "paper"


# --- results, opinions and export ------------------------------------------------------------

# A fixed data set counted by hand: four households in 1号楼, four in 2号楼; six answer.
#   single  (1人/2人/3人及以上):  1号楼 0,0,1   2号楼 2,2,0   → 3 / 1 / 2 of 6
#   multiple (水管/路面/飞线充电/公告栏): {0,1} {0} {} {2} {0,2} {3} → 3 / 1 / 2 / 1 = 7 ticks
#   rating: 5,4,4,3,2,5 → counts 0/1/1/2/2, average 23/6 = 3.83
DATA = [(0, 0, (0, 1), 5, "楼道灯不亮"), (0, 1, (0,), 4, ""), (0, 2, (), 4, ""),
        (1, 0, (2,), 3, "充电桩太少"), (1, 1, (0, 2), 2, ""), (1, 2, (3,), 5, "")]
#          (building, household in it, …); and single answers:
SINGLE = [0, 0, 1, 2, 2, 0]


def _answer_all(questionnaire, compound):
    for (building, n, multiple, rating, text), single in zip(DATA, SINGLE, strict=True):
        household = compound.buildings[building].households[n]
        service.answer_online(None, questionnaire, household, answers(
            questionnaire, single=single, multiple=multiple, rating=rating, text=text))


def test_results_match_a_hand_count(soliciting, compound):
    questionnaire = build(soliciting)
    _answer_all(questionnaire, compound)
    single, multiple, rating, text = service.results(questionnaire)
    assert single.total.counts == [3, 1, 2] and single.total.respondents == 6
    assert single.total.percentages == [Decimal("50.0"), Decimal("16.7"), Decimal("33.3")]
    assert sum(single.total.percentages) == Decimal("100.0")
    assert [(name, row.counts) for name, row in single.by_building] == [
        ("1号楼", [2, 1, 0]), ("2号楼", [1, 0, 2])]
    assert next(row.percentages for _name, row in single.by_building) == [
        Decimal("66.7"), Decimal("33.3"), Decimal("0.0")]
    assert multiple.total.counts == [3, 1, 2, 1] and multiple.total.respondents == 5
    # 42.857 / 14.286 / 28.571 / 14.286: floored 99.7; the three tenths left go to the
    # remainders .86, .86 (the earlier first) and .71.
    assert multiple.total.percentages == [Decimal("42.8"), Decimal("14.3"), Decimal("28.6"),
                                          Decimal("14.3")]
    assert sum(multiple.total.percentages) == Decimal("100.0")
    assert rating.total.counts == [0, 1, 1, 2, 2] and rating.average == Decimal("3.83")
    assert sorted(r.value for r in text.texts) == sorted(["楼道灯不亮", "充电桩太少"])


def test_a_free_answer_becomes_one_opinion_once(soliciting, compound):
    questionnaire = build(soliciting)
    household = _households(compound)[0]
    service.answer_online(None, questionnaire, household,
                          answers(questionnaire, text="单元门禁坏了"))
    answer = db.session.scalars(select(Answer).where(
        Answer.question_id == questionnaire.questions[3].id)).one()
    opinion, made = service.take_up_as_opinion(None, answer, "security")
    assert made and (opinion.text, opinion.channel, opinion.household_id, opinion.category) == (
        "单元门禁坏了", "questionnaire", household.id, "security")
    again, made_again = service.take_up_as_opinion(None, answer, "security")
    assert not made_again and again.id == opinion.id
    assert db.session.scalar(select(func.count()).select_from(Opinion)) == 1
    assert answer.opinion_id == opinion.id
    assert audit_actions()[-2:] == ["opinion.recorded", "questionnaire.answer_taken_up"]
    with pytest.raises(Conflict):
        choice = db.session.scalars(select(Answer).where(
            Answer.question_id == questionnaire.questions[0].id)).one()
        service.take_up_as_opinion(None, choice)


def test_the_xlsx_export_has_answers_and_results(soliciting, compound):
    questionnaire = build(soliciting)
    _answer_all(questionnaire, compound)
    clerk = factories.make_user("committee", compound=compound)
    paper_household = compound.buildings[1].households[3]
    service.enter_paper(clerk, questionnaire, paper_household,
                        answers(questionnaire, single=1, text="=HYPERLINK(\"x\")"))
    book = load_workbook(io.BytesIO(service.export_xlsx(questionnaire)))
    answers_sheet, results_sheet = book.worksheets
    rows = list(answers_sheet.iter_rows(values_only=True))
    assert rows[0][:4] == ("Building", "Unit", "Room", "Channel")
    assert rows[0][4] == "1. 您家常住几口人？"
    assert len(rows) == 1 + 7
    first = rows[1]
    assert first[:3] == ("1号楼", "1", "101") and first[4] == "1人"
    assert first[5] == "水管、路面" and first[6] == "5" and first[7] == "楼道灯不亮"
    last = rows[-1]
    assert last[0] == "2号楼" and last[3] == "Paper, entered by staff" and last[4] == "2人"
    assert not str(last[7]).startswith("=")  # never a formula
    results = list(results_sheet.iter_rows(values_only=True))
    assert results[0] == ("Question", "Answer", "Households", "Percent", "Answered by")
    # 3, 2, 2 of 7: 42.857 / 28.571 / 28.571 → 42.8 / 28.6 / 28.6.
    assert results[1] == ("1. 您家常住几口人？", "1人", 3, 42.8, 7)
    assert (None, "2人", 2, 28.6, 7) in results
    assert (None, "Average rating", None, 3.71, 7) in results
