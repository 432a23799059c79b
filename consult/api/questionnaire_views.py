"""A consultation's questionnaire (问卷) through the API: its questions and the household's
answers, given or changed while opinions are collected, through
``consultations.questionnaires`` as the answer page does."""

from __future__ import annotations

import json
from typing import Any

from flask_babel import gettext as _
from flask_login import current_user
from marshmallow import Schema, fields, validate

from consult.api.common import IF_NONE_MATCH, Blueprint, conditional
from consult.consultations import questionnaires as service
from consult.consultations.questionnaire_models import (
    Question,
    Questionnaire,
    QuestionnaireResponse,
)
from consult.core.errors import NotFound, ValidationFailed
from consult.core.policy import require
from consult.extensions import db
from consult.process import loading
from consult.registry.models import Household

bp = Blueprint("api_questionnaires", __name__, url_prefix="/api/v1",
               description="A consultation's questionnaire and the household's answers.")

SIGNED_IN: list[dict[str, list[str]]] = [{"bearer": []}]
_KINDS = ["single", "multiple", "rating", "text"]
_ANSWER_DOC = ("Question id → answer: single, the position of the choice (from 0); multiple, "
               "a list of positions; rating, 1 to 5; text, a string. An optional question "
               "may be left out.")
_ANSWERS_EXAMPLE = {"12": 0, "13": [0, 2], "14": 4, "15": "希望增加健身器材"}


class QuestionOut(Schema):
    id = fields.Integer(required=True, metadata={"example": 12})
    position = fields.Integer(required=True, metadata={"example": 1})
    kind = fields.String(required=True, metadata={"enum": _KINDS, "example": "single"})
    text = fields.String(required=True, metadata={"example": "您最希望改造的是？"})
    required = fields.Boolean(required=True, metadata={"example": True})
    choices = fields.List(fields.String(), required=True, metadata={
        "description": "A choice question's choices, in order (positions from 0).",
        "example": ["加装电梯", "外墙保温", "停车位"]})


class QuestionnaireOut(Schema):
    id = fields.Integer(required=True, metadata={"example": 3})
    title = fields.String(required=True, metadata={"example": "服务需求调查问卷"})
    intro = fields.String(required=True, metadata={"example": "请花两分钟回答。"})
    open = fields.Boolean(required=True, metadata={
        "description": "Whether the household may answer or change its answers now.",
        "example": True})
    questions = fields.List(fields.Nested(QuestionOut), required=True)
    answers = fields.Dict(keys=fields.String(), values=fields.Raw(), required=True,
                          metadata={"description": _ANSWER_DOC, "example": _ANSWERS_EXAMPLE})
    answered_at = fields.DateTime(required=True, allow_none=True, metadata={
        "description": "When the household's answers were last saved; null before.",
        "example": "2026-12-03T08:00:00+00:00"})
    channel = fields.String(required=True, allow_none=True, metadata={
        "description": "online, or paper when typed in from its sheet.", "example": "online"})


class AnswersIn(Schema):
    answers = fields.Dict(keys=fields.String(validate=validate.Length(max=20)),
                          values=fields.Raw(allow_none=True), required=True,
                          validate=validate.Length(max=200),
                          metadata={"description": _ANSWER_DOC, "example": _ANSWERS_EXAMPLE})


def _loaded(consultation_id: int) -> tuple[Questionnaire, Household]:
    """The published questionnaire and the signed-in household, as the answer page loads
    them (a questionnaire not yet published is not found)."""
    consultation, household = loading.load_participating(consultation_id)
    questionnaire = service.get_or_404(consultation)
    if questionnaire.published_at is None:
        raise NotFound(_("The questionnaire has not been published yet."))
    return questionnaire, household


def _value_out(question: Question, stored: str) -> Any:
    if question.kind == "text":
        return stored
    if question.kind == "multiple":
        return list(json.loads(stored))
    return int(stored)


def _out(questionnaire: Questionnaire, response: QuestionnaireResponse | None
         ) -> dict[str, Any]:
    stored = service.stored_values(response)
    return {
        "id": questionnaire.id, "title": questionnaire.title, "intro": questionnaire.intro,
        "open": service.is_open(questionnaire),
        "questions": [{"id": q.id, "position": q.position, "kind": q.kind, "text": q.text,
                       "required": q.required,
                       "choices": service.choices_of(q) if q.kind in ("single", "multiple")
                       else []} for q in questionnaire.questions],
        "answers": {str(q.id): _value_out(q, stored[q.id])
                    for q in questionnaire.questions if q.id in stored},
        "answered_at": response.updated_at if response else None,
        "channel": response.channel if response else None,
    }


def _form_values(questionnaire: Questionnaire, answers: dict[str, Any]) -> dict[str, list[str]]:
    """The answers as the answer page's form would post them (field → values), so the
    page's parsing and messages apply; a key that is no question of this questionnaire, or a
    value of no answer's shape, is refused at ``answers.<key>``."""
    known = {str(q.id): q for q in questionnaire.questions}
    values: dict[str, list[str]] = {}
    errors: dict[str, list[str]] = {}
    for key, value in answers.items():
        question = known.get(key)
        if question is None:
            errors[f"answers.{key}"] = [_("No such question.")]
            continue
        items = value if isinstance(value, list) else [value]
        if any(isinstance(v, bool) or not isinstance(v, (int, str)) for v in items if
               v is not None):
            errors[f"answers.{key}"] = [_("Choose among the answers shown.")]
            continue
        values[service.field_name(question)] = [str(v) for v in items if v is not None]
    if errors:
        raise ValidationFailed(next(iter(errors.values()))[0], errors)
    return values


@bp.route("/consultations/<int:consultation_id>/questionnaire", methods=["GET"])
@require("consultation.participate")
@conditional
@bp.response(200, QuestionnaireOut)
@bp.doc(parameters=[IF_NONE_MATCH], security=SIGNED_IN)
@bp.errors(304, 401, 403, 404)
def questionnaire(consultation_id: int) -> dict[str, Any]:
    """The questionnaire's questions and choices, the household's current answers, and
    whether it may answer now (while opinions are collected)."""
    found, household = _loaded(consultation_id)
    return _out(found, service.response_of(found, household))


@bp.route("/consultations/<int:consultation_id>/questionnaire/answers", methods=["PUT"])
@require("consultation.participate")
@bp.arguments(AnswersIn)
@bp.response(200, QuestionnaireOut)
@bp.doc(security=SIGNED_IN)
@bp.errors(400, 401, 403, 404, 409)
def answers_put(body: dict[str, Any], consultation_id: int) -> dict[str, Any]:
    """Give or replace the household's answers, with the answer page's checks: a message at
    each question (``answers.<question id>``) that is required and missing or whose answer
    is not one of its own; 409 once the questionnaire is closed."""
    found, household = _loaded(consultation_id)
    service.check_open(found)
    values = _form_values(found, body["answers"])
    try:
        answers = service.parse_answers(found, lambda name: values.get(name, []))
    except ValidationFailed as exc:
        ids = {service.field_name(q): str(q.id) for q in found.questions}
        raise ValidationFailed(exc.message, {
            f"answers.{ids.get(k, k)}": v for k, v in exc.errors.items()}) from None
    response = service.answer_online(current_user, found, household, answers)
    out = _out(found, response)
    db.session.commit()
    return out
