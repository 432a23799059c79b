"""Notices (公示) through the API: a consultation's notices, one notice with its frozen
content, and the check of a printed notice's verification code."""

from __future__ import annotations

from typing import Any

from flask import url_for
from flask_babel import gettext as _
from marshmallow import Schema, fields

from consult.api.common import IF_NONE_MATCH, Blueprint, conditional
from consult.core.errors import NotFound
from consult.core.models import utcnow
from consult.core.policy import require
from consult.notices import service as notices
from consult.notices.models import Notice
from consult.process import loading

bp = Blueprint("api_notices", __name__, url_prefix="/api/v1",
               description="Public notices (公示) and their verification.")

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
    chain_seq = fields.Integer(required=True, metadata={
        "description": "The audit chain's head when the notice was issued.", "example": 812})
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
        "chain_seq": notice.chain_seq, "chain_hash": notice.chain_hash,
        "pdf_url": url_for("notices.pdf", notice_id=notice.id),
    }


def _consultation_notice(notice_id: int) -> Notice:
    """A consultation's notice the user may see (a scoring round's ranking is not one)."""
    notice = notices.get_notice_or_404(notice_id)
    if notice.consultation_id is None:
        raise NotFound(_("No such notice."))
    loading.load(notice.consultation_id)
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
