"""问卷: building a consultation's questionnaire, households answering it online, staff typing
in paper sheets, the results, free texts taken up as opinions, and the XLSX export.

Whose data is what:
- the questionnaire is the committee's; it is built while the consultation is a draft or
  collects opinions. Once any household answered, questions can no longer be removed nor
  their choices changed (answers are stored as the choices' positions).
- a household's answers are its own. It answers online once and edits its answers until the
  opinions close. Staff type in a paper sheet for a household; when the household already
  answered online, staff entry is refused unless the member confirms with a reason, which
  the audit trail keeps with the answers replaced. A household that edits online answers
  staff typed in from its sheet replaces them: they are its own answers; the audit trail
  says the paper answers were replaced.

Every function flushes (never commits) and records its audit event.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import exists, func, select
from sqlalchemy.orm import selectinload

from consult.audit import service as audit
from consult.audit.actions import describe, describe_kinds, describe_objects
from consult.audit.presenting import Field, describe_fields
from consult.consultations import opinions, service
from consult.consultations.models import Category, Channel, Consultation, Opinion
from consult.consultations.questionnaire_models import (
    QUESTION_KIND_LABELS,
    RESPONSE_CHANNEL_LABELS,
    Answer,
    Question,
    QuestionKind,
    Questionnaire,
    QuestionnaireResponse,
    ResponseChannel,
)
from consult.consultations.questionnaire_results import (
    RATINGS,
    QuestionResult,
    QuestionSpec,
    Reply,
    tabulate,
)
from consult.consultations.states import Stage
from consult.core.database import lock_row
from consult.core.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from consult.core.models import utcnow
from consult.core.tabular import neutralize_formula
from consult.core.validation import clean_text, field_text
from consult.extensions import db
from consult.registry.models import Building, Household

describe({
    "questionnaire.changed": _l("Questionnaire changed"),
    "questionnaire.question_added": _l("Question added to the questionnaire"),
    "questionnaire.question_changed": _l("Questionnaire question changed"),
    "questionnaire.question_removed": _l("Question removed from the questionnaire"),
    "questionnaire.question_moved": _l("Questionnaire question moved"),
    "questionnaire.published": _l("Questionnaire published"),
    "questionnaire.answered": _l("Questionnaire answered online"),
    "questionnaire.paper_entered": _l("Paper questionnaire entered by staff"),
    "questionnaire.answer_taken_up": _l("Questionnaire answer taken up as an opinion"),
}, kind="questionnaires")
describe_kinds({"questionnaires": _l("Questionnaires")})
describe_objects({"questionnaire": _l("Questionnaire"),
                  "questionnaire_question": _l("Questionnaire question"),
                  "questionnaire_response": _l("Questionnaire answers")})

# How the audit trail reads these events' payloads.
describe_fields({
    "question_id": Field(_l("Question"), hidden=True),
    "answer_id": Field(_l("Answer"), hidden=True),
    "position": Field(_l("Position")),
    "kind": Field(_l("Kind of question"), values=QUESTION_KIND_LABELS),
    "text": Field(_l("Question")),
    "required": Field(_l("An answer is required")),
    "choices": Field(_l("The choices")),
    "questions": Field(_l("Questions")),
    "direction": Field(_l("Moved")),
    "created": Field(_l("Started")),
    "intro_sha256": Field(_l("Introduction"), hidden=True),
    "answers": Field(_l("Answers")),
    "previous_answers": Field(_l("Answers replaced")),
    "previous_channel": Field(_l("Answered before"), values=RESPONSE_CHANNEL_LABELS),
    "replaced_online": Field(_l("Replaced the household's online answers")),
    "changed": Field(_l("Changed earlier answers")),
}, actions=[
    "questionnaire.changed", "questionnaire.question_added", "questionnaire.question_changed",
    "questionnaire.question_removed", "questionnaire.question_moved", "questionnaire.published",
    "questionnaire.answered", "questionnaire.paper_entered", "questionnaire.answer_taken_up"])

BUILDING_STAGES = frozenset({Stage.DRAFT, Stage.SOLICITING})
MAX_QUESTION = 500
MAX_CHOICE = 100
MAX_CHOICES = 20
MAX_TEXT_ANSWER = 2000
MAX_INTRO = 2000
MAX_REASON = 300


# --- building ---------------------------------------------------------------------------------


def questionnaire_of(consultation: Consultation) -> Questionnaire | None:
    """The consultation's questionnaire, if the committee started one."""
    return db.session.scalar(select(Questionnaire).where(
        Questionnaire.consultation_id == consultation.id).options(
        selectinload(Questionnaire.questions)))


def get_or_404(consultation: Consultation) -> Questionnaire:
    """The consultation's questionnaire; NotFound when there is none."""
    found = questionnaire_of(consultation)
    if found is None:
        raise NotFound(_("This consultation has no questionnaire."))
    return found


def check_building(consultation: Consultation) -> None:
    """Raise Conflict unless the questionnaire may be built (a draft, or while opinions are
    collected)."""
    if consultation.stage_enum not in BUILDING_STAGES:
        raise Conflict(_("The questionnaire is built before or while opinions are "
                         "collected."))


def has_responses(questionnaire: Questionnaire) -> bool:
    """Whether any household has answered (online or on paper)."""
    return bool(db.session.scalar(select(exists().where(
        QuestionnaireResponse.questionnaire_id == questionnaire.id))))


def response_count(questionnaire: Questionnaire) -> int:
    return db.session.scalar(select(func.count()).select_from(QuestionnaireResponse).where(
        QuestionnaireResponse.questionnaire_id == questionnaire.id)) or 0


def save_heading(actor: Any, consultation: Consultation, title: str | None,
                 intro: str | None) -> Questionnaire:
    """Start the questionnaire, or change its title and introduction."""
    check_building(consultation)
    errors: dict[str, list[str]] = {}
    cleaned = {}
    for name, value, what, limit, required in (
            ("title", title, _("The title"), 200, True),
            ("intro", intro, _("The introduction"), MAX_INTRO, False)):
        try:
            cleaned[name] = clean_text(value, what=what, max_length=limit, required=required,
                                       multiline=name == "intro")
        except ValueError as exc:
            errors[name] = [str(exc)]
    if errors:
        raise ValidationFailed(_("Please correct the marked fields."), errors)
    questionnaire = questionnaire_of(consultation)
    created = questionnaire is None
    if questionnaire is None:
        questionnaire = Questionnaire(consultation_id=consultation.id)
        db.session.add(questionnaire)
    elif (questionnaire.title, questionnaire.intro) == (cleaned["title"], cleaned["intro"]):
        return questionnaire
    questionnaire.title, questionnaire.intro = cleaned["title"], cleaned["intro"]
    db.session.flush()
    audit.record(actor, "questionnaire.changed", questionnaire, {
        "consultation_id": consultation.id, "created": created, "title": questionnaire.title,
        "intro_sha256": opinions.text_digest(questionnaire.intro)})
    return questionnaire


@dataclass(frozen=True)
class QuestionData:
    kind: QuestionKind
    text: str
    required: bool
    choices: tuple[str, ...]


def question_data(*, kind: str | None, text: str | None, required: bool,
                  choices: str | None) -> QuestionData:
    """Validate a question: its kind, text and, for the choice kinds, 2 to 20 distinct
    choices, one a line. Raises ValidationFailed per field."""
    errors: dict[str, list[str]] = {}
    try:
        chosen = QuestionKind(kind or "")
    except ValueError:
        errors["kind"] = [_("Choose what kind of question it is.")]
        chosen = QuestionKind.TEXT
    cleaned = ""
    try:
        cleaned = clean_text(text, what=_("The question"), max_length=MAX_QUESTION,
                             required=True)
    except ValueError as exc:
        errors["text"] = [str(exc)]
    lines: tuple[str, ...] = ()
    if chosen in (QuestionKind.SINGLE, QuestionKind.MULTIPLE):
        try:
            raw = clean_text(choices, what=_("The choices"), max_length=MAX_CHOICES * 110,
                             multiline=True)
            lines = tuple(dict.fromkeys(line.strip() for line in raw.split("\n")
                                        if line.strip()))
            if not 2 <= len(lines) <= MAX_CHOICES:
                raise ValueError(_("Give between 2 and %(max)s different choices, one a line.",
                                   max=MAX_CHOICES))
            if any(len(line) > MAX_CHOICE for line in lines):
                raise ValueError(_("A choice is longer than %(max)s characters.",
                                   max=MAX_CHOICE))
        except ValueError as exc:
            errors["choices"] = [str(exc)]
    if errors:
        raise ValidationFailed(_("Please correct the marked fields."), errors)
    return QuestionData(chosen, cleaned, bool(required), lines)


def choices_of(question: Question) -> list[str]:
    """A choice question's choices, in order."""
    return list(json.loads(question.choices_json))


def _question_payload(question: Question) -> dict[str, Any]:
    return {"question_id": question.id, "position": question.position, "kind": question.kind,
            "text": question.text, "required": question.required,
            "choices": choices_of(question)}


def add_question(actor: Any, questionnaire: Questionnaire, data: QuestionData) -> Question:
    """Add a question at the end."""
    check_building(questionnaire.consultation)
    position = max((q.position for q in questionnaire.questions), default=0) + 1
    question = Question(questionnaire=questionnaire, position=position, kind=data.kind.value,
                        text=data.text, required=data.required,
                        choices_json=json.dumps(list(data.choices), ensure_ascii=False))
    db.session.add(question)
    db.session.flush()
    audit.record(actor, "questionnaire.question_added", questionnaire,
                 _question_payload(question))
    return question


LOCKED_MESSAGE = _l("Households have already answered this questionnaire: questions can no "
                    "longer be removed, and their kind and choices can no longer be changed. "
                    "You may still reword a question, make it optional or required, and add "
                    "new questions.")


def edit_question(actor: Any, question: Question, data: QuestionData) -> Question:
    """Change a question. Once households answered, its kind and choices stay as they are."""
    questionnaire = question.questionnaire
    check_building(questionnaire.consultation)
    lock_row(questionnaire)
    same_shape = (data.kind.value == question.kind
                  and list(data.choices) == choices_of(question))
    if not same_shape and has_responses(questionnaire):
        raise Conflict(str(LOCKED_MESSAGE), field="choices")
    before = _question_payload(question)
    question.kind, question.text, question.required = data.kind.value, data.text, data.required
    question.choices_json = json.dumps(list(data.choices), ensure_ascii=False)
    after = _question_payload(question)
    if before == after:
        return question
    db.session.flush()
    audit.record(actor, "questionnaire.question_changed", questionnaire,
                 {"before": before, "after": after})
    return question


def remove_question(actor: Any, question: Question) -> None:
    """Take a question off, while no household has answered."""
    questionnaire = question.questionnaire
    check_building(questionnaire.consultation)
    lock_row(questionnaire)
    if has_responses(questionnaire):
        raise Conflict(str(LOCKED_MESSAGE))
    payload = _question_payload(question)
    questionnaire.questions.remove(question)
    db.session.delete(question)
    for number, rest in enumerate(questionnaire.questions, start=1):
        rest.position = number
    db.session.flush()
    audit.record(actor, "questionnaire.question_removed", questionnaire, payload)


def move_question(actor: Any, question: Question, up: bool) -> bool:
    """Swap a question with the one before (``up``) or after it; False at either end."""
    questionnaire = question.questionnaire
    check_building(questionnaire.consultation)
    ordered = list(questionnaire.questions)
    index = ordered.index(question)
    other = index - 1 if up else index + 1
    if not 0 <= other < len(ordered):
        return False
    neighbour = ordered[other]
    # Positions carry no unique constraint, so a plain swap needs no temporary value.
    question.position, neighbour.position = neighbour.position, question.position
    db.session.flush()
    db.session.expire(questionnaire, ["questions"])
    audit.record(actor, "questionnaire.question_moved", questionnaire, {
        "question_id": question.id, "position": question.position,
        "direction": "up" if up else "down"})
    return True


def get_question_or_404(questionnaire: Questionnaire, question_id: int) -> Question:
    question = db.session.get(Question, question_id)
    if question is None or question.questionnaire_id != questionnaire.id:
        raise NotFound(_("No such question."))
    return question


def publish(actor: Any, questionnaire: Questionnaire) -> Questionnaire:
    """Open the questionnaire to the households (they answer while opinions are collected)."""
    check_building(questionnaire.consultation)
    if questionnaire.published_at is not None:
        raise Conflict(_("The questionnaire is already published."))
    if not questionnaire.questions:
        raise Conflict(_("Add at least one question first."))
    questionnaire.published_at = utcnow()
    db.session.flush()
    audit.record(actor, "questionnaire.published", questionnaire, {
        "consultation_id": questionnaire.consultation_id,
        "questions": [_question_payload(q) for q in questionnaire.questions]})
    return questionnaire


# --- answering --------------------------------------------------------------------------------


def is_open(questionnaire: Questionnaire | None) -> bool:
    """Whether households may answer (or change their answers) now."""
    return (questionnaire is not None and questionnaire.published_at is not None
            and questionnaire.consultation.stage_enum is Stage.SOLICITING)


def check_open(questionnaire: Questionnaire) -> None:
    if questionnaire.published_at is None:
        raise Conflict(_("The questionnaire has not been published yet."))
    if questionnaire.consultation.stage_enum is not Stage.SOLICITING:
        raise Conflict(_("The questionnaire is closed: answers were taken while opinions "
                         "were collected."))


def field_name(question: Question) -> str:
    """The form field of a question's answer."""
    return f"q{question.id}"


def parse_answers(questionnaire: Questionnaire, values: Callable[[str], list[str]]
                  ) -> dict[int, str]:
    """Each question's answer, as stored, from the form's ``values`` (a ``getlist``); an
    unanswered optional question is left out. Raises ValidationFailed with a message at
    each question that is required and missing or whose answer is not one of its own."""
    answers: dict[int, str] = {}
    errors: dict[str, list[str]] = {}
    for question in questionnaire.questions:
        name = field_name(question)
        raw = [v.strip() for v in values(name) if v and v.strip()]
        kind = QuestionKind(question.kind)
        try:
            value = _answer_value(question, kind, raw)
        except ValueError as exc:
            errors[name] = [str(exc)]
            continue
        if value is None:
            if question.required:
                errors[name] = [_("Please answer this question.") if kind is QuestionKind.TEXT
                                else _("Please choose an answer to this question.")]
            continue
        answers[question.id] = value
    if errors:
        raise ValidationFailed(
            _("Some required questions are not answered yet; they are marked below."), errors)
    return answers


def _answer_value(question: Question, kind: QuestionKind, raw: list[str]) -> str | None:
    if not raw:
        return None
    if kind is QuestionKind.TEXT:
        return clean_text(raw[0], what=_("Your answer"), max_length=MAX_TEXT_ANSWER,
                          multiline=True) or None
    limit = len(choices_of(question)) if kind is not QuestionKind.RATING else len(RATINGS)
    positions = []
    for one in raw:
        if not one.isdigit() or not 0 <= int(one) - (kind is QuestionKind.RATING) < limit:
            raise ValueError(_("Choose among the answers shown."))
        positions.append(int(one))
    if kind is QuestionKind.MULTIPLE:
        return json.dumps(sorted(set(positions)))
    if len(positions) > 1:
        raise ValueError(_("Choose one answer only."))
    return str(positions[0])


def response_of(questionnaire: Questionnaire, household: Household
                ) -> QuestionnaireResponse | None:
    return db.session.scalar(select(QuestionnaireResponse).where(
        QuestionnaireResponse.questionnaire_id == questionnaire.id,
        QuestionnaireResponse.household_id == household.id))


def stored_values(response: QuestionnaireResponse | None) -> dict[int, str]:
    """question id → stored answer, to fill the form again."""
    return {a.question_id: a.value for a in response.answers} if response else {}


def _write(actor: Any, questionnaire: Questionnaire, household: Household,
           answers: dict[int, str], channel: ResponseChannel
           ) -> tuple[QuestionnaireResponse, dict[str, Any]]:
    """Store ``answers`` as the household's response; returns it and what it replaced."""
    response = response_of(questionnaire, household)
    replaced: dict[str, Any] = {}
    if response is None:
        response = QuestionnaireResponse(questionnaire_id=questionnaire.id,
                                         household_id=household.id, channel=channel.value)
        db.session.add(response)
    else:
        replaced = {"previous_channel": response.channel,
                    "previous_answers": {str(k): v for k, v in stored_values(response).items()}}
    response.channel = channel.value
    response.entered_by_id = getattr(actor, "id", None)
    current = {a.question_id: a for a in response.answers}
    for question_id, answer in list(current.items()):
        if question_id not in answers:
            response.answers.remove(answer)
    for question_id, value in answers.items():
        if question_id in current:
            current[question_id].value = value
        else:
            response.answers.append(Answer(question_id=question_id, value=value))
    response.updated_at = utcnow()
    db.session.flush()
    return response, replaced


def _payload(household: Household, answers: dict[int, str]) -> dict[str, Any]:
    # Free texts are kept as digests, as opinions are: the trail proves them without
    # republishing what a household wrote.
    kinds = {q.id: q.kind for q in db.session.scalars(select(Question).where(
        Question.id.in_(answers)))}
    return {"household_id": household.id,
            "answers": {str(k): (opinions.text_digest(v) if kinds.get(k) == "text" else v)
                        for k, v in answers.items()}}


def answer_online(actor: Any, questionnaire: Questionnaire, household: Household,
                  answers: dict[int, str]) -> QuestionnaireResponse:
    """A household's own answers, new or changed, while the questionnaire is open."""
    check_open(questionnaire)
    if not service.household_in_scope(questionnaire.consultation, household):
        raise PermissionDenied(_("Your household is not among those this consultation "
                                 "concerns."))
    lock_row(questionnaire)
    response, replaced = _write(actor, questionnaire, household, answers,
                                ResponseChannel.ONLINE)
    if replaced:
        replaced["previous_answers"] = _payload(household, {
            int(k): v for k, v in replaced["previous_answers"].items()})["answers"]
    audit.record(actor, "questionnaire.answered", response, {
        **_payload(household, answers), "changed": bool(replaced),
        **({"previous_channel": replaced["previous_channel"]} if replaced else {})},
        chain=questionnaire.consultation_id)
    return response


ONLINE_CONFLICT = _l("This household has already answered online. Its own answers are not "
                     "replaced by a paper sheet unless you confirm it, with the reason.")


def enter_paper(actor: Any, questionnaire: Questionnaire, household: Household,
                answers: dict[int, str], *, confirm_replace: bool = False,
                reason: str | None = None) -> QuestionnaireResponse:
    """Staff type in a household's paper sheet. A household that answered online keeps its
    answers unless ``confirm_replace`` with a ``reason`` (ValidationFailed at "reason"
    without one; Conflict at "confirm_replace" without the confirmation)."""
    check_open(questionnaire)
    consultation = questionnaire.consultation
    if not service.household_in_scope(consultation, household):
        raise NotFound(_("This household is not among those the consultation concerns."))
    lock_row(questionnaire)
    existing = response_of(questionnaire, household)
    cleaned_reason = ""
    if existing is not None and existing.channel == ResponseChannel.ONLINE:
        if not confirm_replace:
            raise Conflict(str(ONLINE_CONFLICT), field="confirm_replace")
        cleaned_reason = field_text(reason, field="reason", what=_("The reason"),
                                    max_length=MAX_REASON, required=True)
    response, replaced = _write(actor, questionnaire, household, answers,
                                ResponseChannel.PAPER)
    payload = _payload(household, answers)
    if replaced:
        payload.update(previous_channel=replaced["previous_channel"], changed=True)
        if replaced["previous_channel"] == ResponseChannel.ONLINE:
            payload.update(replaced_online=True, reason=cleaned_reason, previous_answers=_payload(
                household, {int(k): v for k, v in replaced["previous_answers"].items()}
            )["answers"])
    audit.record(actor, "questionnaire.paper_entered", response, payload,
                 chain=questionnaire.consultation_id)
    return response


# --- reading ----------------------------------------------------------------------------------


def display_value(question: Question, value: str) -> str:
    """A stored answer in words: the choices' texts, the rating or the text."""
    kind = QuestionKind(question.kind)
    if kind is QuestionKind.TEXT or kind is QuestionKind.RATING:
        return value
    choices = choices_of(question)
    positions = json.loads(value) if kind is QuestionKind.MULTIPLE else [int(value)]
    return "、".join(choices[p] for p in positions if 0 <= p < len(choices))


def _reply(question: Question, value: str, building: str, answer_id: int,
           room: str) -> Reply:
    kind = QuestionKind(question.kind)
    decoded: int | tuple[int, ...] | str
    if kind is QuestionKind.MULTIPLE:
        decoded = tuple(json.loads(value))
    elif kind is QuestionKind.TEXT:
        decoded = value
    else:
        decoded = int(value)
    return Reply(question.id, building, decoded, answer_id, room)


def _spec(question: Question) -> QuestionSpec:
    kind = QuestionKind(question.kind)
    options = (RATINGS if kind is QuestionKind.RATING
               else tuple(choices_of(question)) if kind is not QuestionKind.TEXT else ())
    return QuestionSpec(question.id, question.kind, options)


def _answer_rows(questionnaire: Questionnaire) -> list[Any]:
    return list(db.session.execute(
        select(Answer, Household, Building)
        .join(QuestionnaireResponse, Answer.response_id == QuestionnaireResponse.id)
        .join(Household, QuestionnaireResponse.household_id == Household.id)
        .join(Building, Household.building_id == Building.id)
        .where(QuestionnaireResponse.questionnaire_id == questionnaire.id)
        .order_by(Building.sort_key, Household.sort_key, Answer.id)).all())


def results(questionnaire: Questionnaire) -> list[QuestionResult]:
    """Every question's result (``questionnaire_results.tabulate``), buildings in order."""
    questions = {q.id: q for q in questionnaire.questions}
    replies = [_reply(questions[a.question_id], a.value, b.name, a.id, h.label)
               for a, h, b in _answer_rows(questionnaire) if a.question_id in questions]
    buildings = [b.name for b in questionnaire.consultation.compound.buildings]
    return tabulate([_spec(q) for q in questionnaire.questions], replies, buildings)


def taken_up(questionnaire: Questionnaire) -> dict[int, int]:
    """answer id → the opinion it became."""
    rows = db.session.execute(
        select(Answer.id, Answer.opinion_id)
        .join(QuestionnaireResponse, Answer.response_id == QuestionnaireResponse.id)
        .where(QuestionnaireResponse.questionnaire_id == questionnaire.id,
               Answer.opinion_id.is_not(None)))
    return {answer_id: opinion_id for answer_id, opinion_id in rows if opinion_id is not None}


def get_answer_or_404(questionnaire: Questionnaire, answer_id: int) -> Answer:
    answer = db.session.get(Answer, answer_id)
    if answer is None or answer.response.questionnaire_id != questionnaire.id:
        raise NotFound(_("No such answer."))
    return answer


def take_up_as_opinion(actor: Any, answer: Answer, category: str | None = None
                       ) -> tuple[Opinion, bool]:
    """Turn a free-text answer into an opinion of the consultation (channel: questionnaire,
    its household), through the opinions' own service; linked back to the answer. Returns
    the opinion and whether it was made now (False: it had been taken up before)."""
    question = answer.question
    if question.kind != QuestionKind.TEXT:
        raise Conflict(_("Only free-text answers can become opinions."))
    lock_row(answer)
    if answer.opinion_id is not None:
        return db.session.get_one(Opinion, answer.opinion_id), False
    response = answer.response
    consultation = response.questionnaire.consultation
    try:
        chosen = Category(category or Category.OTHER.value)
    except ValueError:
        message = _("Choose what the opinion is about.")
        raise ValidationFailed(message, {"category": [message]}) from None
    opinion = opinions.record_offline(actor, consultation, opinions.OfflineData(
        opinions.OpinionData(chosen, answer.value), Channel.QUESTIONNAIRE, response.household))
    answer.opinion_id = opinion.id
    db.session.flush()
    audit.record(actor, "questionnaire.answer_taken_up", response, {
        "answer_id": answer.id, "question_id": question.id, "opinion_id": opinion.id,
        "household_id": response.household_id}, chain=consultation.id)
    return opinion, True


# --- export -----------------------------------------------------------------------------------


def export_xlsx(questionnaire: Questionnaire) -> bytes:
    """Two sheets: the answers, one row per household (building, unit, room, each question,
    online or paper), and the results, one block per question."""
    from openpyxl import Workbook

    questions = list(questionnaire.questions)
    workbook = Workbook()
    answers_sheet = workbook.active
    assert answers_sheet is not None
    answers_sheet.title = _("Answers")[:31]
    answers_sheet.append([_("Building"), _("Unit"), _("Room"), _("Channel"),
                          *[f"{q.position}. {q.text}" for q in questions]])
    by_household: dict[int, dict[int, str]] = {}
    for answer, household, _building in _answer_rows(questionnaire):
        by_household.setdefault(household.id, {})[answer.question_id] = answer.value
    responses = db.session.execute(
        select(QuestionnaireResponse, Household, Building)
        .join(Household, QuestionnaireResponse.household_id == Household.id)
        .join(Building, Household.building_id == Building.id)
        .where(QuestionnaireResponse.questionnaire_id == questionnaire.id)
        .order_by(Building.sort_key, Household.sort_key))
    for response, household, building in responses:
        values = by_household.get(household.id, {})
        answers_sheet.append([_text(v) for v in (
            building.name, household.unit, household.room,
            str(RESPONSE_CHANNEL_LABELS[ResponseChannel(response.channel)]),
            *[display_value(q, values[q.id]) if q.id in values else "" for q in questions])])
    results_sheet = workbook.create_sheet(_("Results")[:31])
    results_sheet.append([_("Question"), _("Answer"), _("Households"), _("Percent"),
                          _("Answered by")])
    for question, result in zip(questions, results(questionnaire), strict=True):
        heading = f"{question.position}. {question.text}"
        if question.kind == QuestionKind.TEXT:
            results_sheet.append([_text(heading), _("Free text"), result.total.respondents,
                                  None, result.total.respondents])
            for reply in result.texts:
                results_sheet.append([None, _text(str(reply.value)), None, None,
                                      _text(reply.room)])
            continue
        for option, count, share in zip(result.options, result.total.counts,
                                        result.total.percentages, strict=True):
            results_sheet.append([_text(heading), _text(option), count, float(share),
                                  result.total.respondents])
            heading = ""
        if result.average is not None:
            results_sheet.append([None, _("Average rating"), None, float(result.average),
                                  result.total.respondents])
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def _text(value: str) -> str:
    """A cell's text that a spreadsheet will never read as a formula."""
    return neutralize_formula(value)


def question_kind_label(kind: str) -> str:
    return str(QUESTION_KIND_LABELS[QuestionKind(kind)])


def questions_for_sheet(questionnaire: Questionnaire) -> Sequence[tuple[Question, list[str]]]:
    """Each question with what a paper sheet offers to tick (choices, or ratings)."""
    return [(q, list(RATINGS) if q.kind == QuestionKind.RATING else choices_of(q))
            for q in questionnaire.questions]
