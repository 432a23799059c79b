"""A household's rating of the finished works through the API, while the result notice is up,
through ``implementation.service`` as the evaluation page does."""

from __future__ import annotations

from typing import Any

from flask_login import current_user
from marshmallow import Schema, fields, validate

from consult.api.common import IF_NONE_MATCH, Blueprint, conditional
from consult.consultations.models import Consultation
from consult.core.models import utcnow
from consult.core.policy import require
from consult.extensions import db
from consult.implementation import service
from consult.implementation.models import RATING_LABELS, Evaluation, Rating
from consult.process import loading

bp = Blueprint("api_evaluation", __name__, url_prefix="/api/v1",
               description="The household's rating of the finished works.")

SIGNED_IN: list[dict[str, list[str]]] = [{"bearer": []}]
_RATINGS = [r.value for r in Rating]


class RatingOut(Schema):
    value = fields.String(required=True, metadata={"enum": _RATINGS, "example": "satisfied"})
    label = fields.String(required=True, metadata={"example": "满意"})


class EvaluationOut(Schema):
    open = fields.Boolean(required=True, metadata={
        "description": "Whether the household may rate, or change its rating, now (while "
                       "the result notice is up).", "example": True})
    rating = fields.String(required=True, allow_none=True, metadata={
        "enum": [*_RATINGS, None], "description": "The household's rating; null before.",
        "example": "basically_satisfied"})
    comment = fields.String(required=True, metadata={"example": "施工期间噪音较大。"})
    updated_at = fields.DateTime(required=True, allow_none=True,
                                 metadata={"example": "2026-12-03T08:00:00+00:00"})
    ratings = fields.List(fields.Nested(RatingOut), required=True, metadata={
        "description": "The answers it may give, in order."})


class EvaluationIn(Schema):
    rating = fields.String(required=True, validate=validate.Length(max=40), metadata={
        "enum": _RATINGS, "example": "basically_satisfied"})
    comment = fields.String(load_default="", validate=validate.Length(max=10000),
                            metadata={"example": "施工期间噪音较大。"})


def _out(consultation: Consultation, found: Evaluation | None) -> dict[str, Any]:
    return {"open": service.evaluation_open(consultation, utcnow()),
            "rating": found.rating if found else None,
            "comment": found.comment if found else "",
            "updated_at": found.updated_at if found else None,
            "ratings": [{"value": r.value, "label": str(RATING_LABELS[r])} for r in Rating]}


@bp.route("/consultations/<int:consultation_id>/evaluation", methods=["GET"])
@require("consultation.participate")
@conditional
@bp.response(200, EvaluationOut)
@bp.doc(parameters=[IF_NONE_MATCH], security=SIGNED_IN)
@bp.errors(304, 401, 403, 404)
def evaluation(consultation_id: int) -> dict[str, Any]:
    """The household's rating of the works (null before it rated) and whether it may rate."""
    consultation, household = loading.load_participating(consultation_id)
    return _out(consultation, service.evaluation_of(consultation, household))


@bp.route("/consultations/<int:consultation_id>/evaluation", methods=["PUT"])
@require("consultation.participate")
@bp.arguments(EvaluationIn)
@bp.response(200, EvaluationOut)
@bp.doc(security=SIGNED_IN)
@bp.errors(400, 401, 403, 404, 409)
def evaluation_put(body: dict[str, Any], consultation_id: int) -> dict[str, Any]:
    """Rate the works, or change the rating, while the result notice is up (409 before and
    after); the evaluation page's checks and messages."""
    consultation, household = loading.load_participating(consultation_id)
    found = service.evaluate(current_user, consultation, household, body["rating"],
                             body["comment"])
    out = _out(consultation, found)
    db.session.commit()
    return out
