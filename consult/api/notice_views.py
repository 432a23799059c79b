"""Notices (公示) through the API: a consultation's notices, one notice with its frozen
content, the check of a printed notice's verification code, and the objections (异议) to a
notice with the committee's public answers, through ``notices.service`` as the notice's page
does."""

from __future__ import annotations

from typing import Any

from flask import url_for
from flask_babel import gettext as _
from flask_login import current_user
from marshmallow import Schema, fields, validate

from consult.api.common import IF_NONE_MATCH, Blueprint, conditional
from consult.core.errors import NotFound
from consult.core.models import utcnow
from consult.core.policy import load, require
from consult.extensions import db
from consult.notices import service as notices
from consult.notices.models import Notice, Objection
from consult.process import loading
from consult.registry.service import address_for

bp = Blueprint("api_notices", __name__, url_prefix="/api/v1",
               description="Public notices (公示) and their verification.")

SIGNED_IN: list[dict[str, list[str]]] = [{"bearer": []}]
OPTIONAL: list[dict[str, list[str]]] = [{"bearer": []}, {}]


class NoticeOut(Schema):
    id = fields.Integer(required=True, metadata={"example": 5})
    consultation_id = fields.Integer(required=True, metadata={"example": 7})
    round = fields.Integer(required=True, metadata={"example": 1})
    kind = fields.String(required=True, metadata={"example": "resolution"})
    locale = fields.String(required=True, metadata={"example": "zh_Hans"})
    published_at = fields.DateTime(required=True,
                                   metadata={"example": "2026-12-21T02:00:00+00:00"})
    period_ends_at = fields.DateTime(required=True,
                                     metadata={"example": "2026-12-28T02:00:00+00:00"})
    in_period = fields.Boolean(required=True, metadata={"example": True})
    superseded_at = fields.DateTime(required=True, allow_none=True, metadata={"example": None})
    verify_code = fields.String(required=True, metadata={"example": "7KQ2M9XA"})
    content_sha256 = fields.String(required=True, metadata={"example": "3b1f…"})
    chain_id = fields.Integer(required=True, metadata={
        "description": "The audit chain the notice's head is in: the consultation's id (0: the "
                       "global chain).", "example": 12})
    chain_seq = fields.Integer(required=True, metadata={
        "description": "The audit chain's head when the notice was issued (the position in "
                       "that chain).", "example": 812})
    chain_hash = fields.String(required=True, metadata={"example": "9ac0…"})
    pdf_url = fields.String(required=True, metadata={"example": "/notices/5.pdf"})


class NoticeDetail(NoticeOut):
    content = fields.Dict(required=True, metadata={
        "description": "The notice's frozen content, as it was published.",
        "example": {"title": "关于加装电梯的表决结果公示"}})


class NoticeList(Schema):
    items = fields.List(fields.Nested(NoticeOut), required=True)


def _out(notice: Notice) -> dict[str, Any]:
    return {
        "id": notice.id, "consultation_id": notice.consultation_id, "round": notice.round,
        "kind": notice.kind, "locale": notice.locale, "published_at": notice.published_at,
        "period_ends_at": notice.period_ends_at,
        "in_period": notices.in_period(notice, utcnow()), "superseded_at": notice.superseded_at,
        "verify_code": notice.verify_code, "content_sha256": notice.content_sha256,
        "chain_id": notice.chain_id, "chain_seq": notice.chain_seq,
        "chain_hash": notice.chain_hash, "pdf_url": url_for("notices.pdf", notice_id=notice.id),
    }


def _consultation_id(notice: Notice) -> int:
    """The consultation a notice belongs to; a scoring round's ranking belongs to none (it is
    no notice here)."""
    if notice.consultation_id is None:
        raise NotFound(_("No such notice."))
    return notice.consultation_id


def _consultation_notice(notice_id: int) -> Notice:
    """A consultation's notice the user may see (a scoring round's ranking is not one)."""
    notice = notices.get_notice_or_404(notice_id)
    loading.load(_consultation_id(notice))
    return notice


@bp.route("/consultations/<int:consultation_id>/notices", methods=["GET"])
@require("consultation.view")
@conditional
@bp.response(200, NoticeList)
@bp.doc(parameters=[IF_NONE_MATCH], security=OPTIONAL)
@bp.errors(304, 401, 403, 404)
def notice_list(consultation_id: int) -> dict[str, Any]:
    """The consultation's notices, newest first (superseded ones stay on record)."""
    consultation = loading.load(consultation_id)
    return {"items": [_out(n) for n in notices.notices_of(consultation)]}


@bp.route("/notices/<int:notice_id>", methods=["GET"])
@require("consultation.view")
@conditional
@bp.response(200, NoticeDetail)
@bp.doc(parameters=[IF_NONE_MATCH], security=OPTIONAL)
@bp.errors(304, 401, 403, 404)
def notice_detail(notice_id: int) -> dict[str, Any]:
    """One notice with its frozen content."""
    notice = _consultation_notice(notice_id)
    return {**_out(notice), "content": notices.content_of(notice)}


@bp.route("/verify/<code>", methods=["GET"])
@require("public.view")
@conditional
@bp.response(200, NoticeOut)
@bp.doc(parameters=[IF_NONE_MATCH], security=OPTIONAL)
@bp.errors(304, 401, 404)
def verify(code: str) -> dict[str, Any]:
    """Check the verification code printed on a notice: the notice it belongs to (whether it
    is still in force), or 404 for a code no notice has."""
    notice = notices.by_verify_code(code)
    if notice is None or notice.consultation_id is None:
        raise NotFound(_("No notice has this verification code."))
    return _out(notice)


# --- objections (异议) ------------------------------------------------------------------------


class ObjectionOut(Schema):
    id = fields.Integer(required=True, metadata={"example": 31})
    notice_id = fields.Integer(required=True, metadata={"example": 5})
    household = fields.String(required=True, metadata={
        "description": "The household's address as the reader may see it: its building only, "
                       "unless the reader is that household or staff who read the registry.",
        "example": "1号楼的一户"})
    own = fields.Boolean(required=True, metadata={
        "description": "Filed by the signed-in household.", "example": False})
    text = fields.String(required=True, metadata={"example": "我户面积登记有误，应为 85.32 m²。"})
    created_at = fields.DateTime(required=True,
                                 metadata={"example": "2026-12-22T03:00:00+00:00"})
    answer = fields.String(required=True, allow_none=True, metadata={
        "description": "The committee's public answer (the latest, if revised); null while "
                       "it is awaited.", "example": "已核对房产证，面积已更正。"})
    answered_at = fields.DateTime(required=True, allow_none=True, metadata={
        "example": "2026-12-23T08:30:00+00:00"})


class ObjectionList(Schema):
    items = fields.List(fields.Nested(ObjectionOut), required=True)


class ObjectionIn(Schema):
    text = fields.String(required=True, validate=validate.Length(max=10000), metadata={
        "description": f"1 to {notices.MAX_OBJECTION_LENGTH} characters.",
        "example": "我户面积登记有误，应为 85.32 m²。"})


class AnswerIn(Schema):
    text = fields.String(required=True, validate=validate.Length(max=10000), metadata={
        "description": f"1 to {notices.MAX_OBJECTION_LENGTH} characters.",
        "example": "已核对房产证，面积已更正。"})


def _objection_out(objection: Objection) -> dict[str, Any]:
    household_id = getattr(current_user, "household_id", None)
    return {
        "id": objection.id, "notice_id": objection.notice_id,
        "household": address_for(current_user, objection.household),
        "own": household_id is not None and objection.household_id == household_id,
        "text": objection.text, "created_at": objection.created_at,
        "answer": objection.answer if objection.answered_at else None,
        "answered_at": objection.answered_at,
    }


@bp.route("/notices/<int:notice_id>/objections", methods=["GET"])
@require("consultation.view")
@conditional
@bp.response(200, ObjectionList)
@bp.doc(parameters=[IF_NONE_MATCH], security=OPTIONAL)
@bp.errors(304, 401, 403, 404)
def objection_list(notice_id: int) -> dict[str, Any]:
    """The notice's objections, oldest first, each with the committee's answer, as the
    notice's page shows them (a vote notice takes none)."""
    notice = _consultation_notice(notice_id)
    return {"items": [_objection_out(o) for o in notices.objections_of(notice)]}


@bp.route("/notices/<int:notice_id>/objections", methods=["POST"])
@require("consultation.participate")
@bp.arguments(ObjectionIn)
@bp.response(201, ObjectionOut)
@bp.doc(security=SIGNED_IN)
@bp.errors(400, 401, 403, 404, 409)
def objection_create(body: dict[str, Any], notice_id: int) -> dict[str, Any]:
    """The household's objection, during the notice's publicity period (409 after it, and for
    a vote notice). The committee answers it publicly."""
    notice = notices.get_notice_or_404(notice_id)
    _consultation, household = loading.load_participating(_consultation_id(notice))
    objection = notices.file_objection(current_user, notice, household, body["text"])
    out = _objection_out(objection)
    db.session.commit()
    return out


@bp.route("/objections/<int:objection_id>/answer", methods=["PUT"])
@require("consultation.manage")
@bp.arguments(AnswerIn)
@bp.response(200, ObjectionOut)
@bp.doc(security=SIGNED_IN)
@bp.errors(400, 401, 403, 404)
def objection_answer(body: dict[str, Any], objection_id: int) -> dict[str, Any]:
    """The committee's public answer to an objection, or a revision of it (each is recorded);
    the household that objected is notified."""
    objection = load(notices.get_objection_or_404, objection_id)
    loading.load(_consultation_id(objection.notice))
    notices.answer_objection(current_user, objection, body["text"])
    out = _objection_out(objection)
    db.session.commit()
    return out
