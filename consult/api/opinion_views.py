"""Opinions (一征) through the API: the list, a household's own opinion with a photo, its
support (+1) of another's, and taking either back, through ``consultations.opinions``."""

from __future__ import annotations

import base64
import binascii
import io
from typing import Any

from flask import url_for
from flask_babel import gettext as _
from flask_login import current_user
from marshmallow import Schema, fields, validate
from werkzeug.datastructures import FileStorage
from werkzeug.wrappers import Response

from consult.api.common import IF_NONE_MATCH, Blueprint, PageArgs, PageOf, conditional, page
from consult.consultations import opinions
from consult.consultations.models import Category, Opinion
from consult.core.errors import ValidationFailed
from consult.core.policy import authorize, require
from consult.extensions import db
from consult.process import loading
from consult.registry.models import Household

bp = Blueprint("api_opinions", __name__, url_prefix="/api/v1",
               description="Opinions while a consultation collects them (一征).")

SIGNED_IN: list[dict[str, list[str]]] = [{"bearer": []}]
OPTIONAL: list[dict[str, list[str]]] = [{"bearer": []}, {}]


class OpinionOut(Schema):
    id = fields.Integer(required=True, metadata={"example": 31})
    category = fields.String(required=True, metadata={"example": "charging"})
    text = fields.String(required=True, metadata={"example": "楼下需要安装充电桩，避免飞线充电。"})
    channel = fields.String(required=True, metadata={"example": "online"})
    supports = fields.Integer(required=True, metadata={"example": 12})
    own = fields.Boolean(required=True, metadata={
        "description": "Given by the signed-in household.", "example": False})
    supported = fields.Boolean(required=True, metadata={
        "description": "Supported by the signed-in household.", "example": True})
    merged_into_id = fields.Integer(required=True, allow_none=True, metadata={"example": None})
    photo_url = fields.String(required=True, allow_none=True,
                              metadata={"example": "/files/9"})


class OpinionPage(PageOf):
    items = fields.List(fields.Nested(OpinionOut), required=True)


class OpinionListArgs(PageArgs):
    category = fields.String(load_default=None,
                             validate=validate.OneOf([c.value for c in Category]),
                             metadata={"example": "charging"})


class PhotoIn(Schema):
    filename = fields.String(required=True, validate=validate.Length(min=1, max=200),
                             metadata={"example": "charging.jpg"})
    content_base64 = fields.String(required=True, validate=validate.Length(min=1), metadata={
        "description": "The image (JPEG, PNG or WebP), base64-encoded; the size limit is the "
                       "web form's.", "example": "iVBORw0KGgo…"})


class OpinionIn(Schema):
    category = fields.String(required=True, validate=validate.OneOf([c.value for c in Category]),
                             metadata={"example": "charging"})
    text = fields.String(required=True, validate=validate.Length(min=1, max=5000),
                         metadata={"example": "楼下需要安装充电桩，避免飞线充电。"})
    photo = fields.Nested(PhotoIn, load_default=None, allow_none=True)


class SupportOut(Schema):
    supported = fields.Boolean(required=True, metadata={"example": True})
    counted_now = fields.Boolean(required=True, metadata={
        "description": "False when the support had been counted already.", "example": True})


def _household() -> Household | None:
    return getattr(current_user, "household", None)


def _out(found: Opinion, counts: dict[int, int], supported: set[int]) -> dict[str, Any]:
    household = _household()
    return {
        "id": found.id, "category": found.category, "text": found.text,
        "channel": found.channel, "supports": counts.get(found.id, 0),
        "own": household is not None and found.household_id == household.id,
        "supported": found.id in supported, "merged_into_id": found.merged_into_id,
        "photo_url": url_for("uploads.file", attachment_id=found.photo_id)
        if found.photo_id else None,
    }


def file_of(data: dict[str, Any] | None, field: str) -> FileStorage | None:
    """A file sent as ``{filename, content_base64}``, as a web form would have uploaded it,
    for the same upload checks; refused input is named at ``field``."""
    if not data:
        return None
    try:
        raw = base64.b64decode(data["content_base64"], validate=True)
    except (binascii.Error, ValueError) as exc:
        message = _("The file is not valid base64.")
        raise ValidationFailed(message, {field: [message]}) from exc
    return FileStorage(stream=io.BytesIO(raw), filename=data["filename"])


@bp.route("/consultations/<int:consultation_id>/opinions", methods=["GET"])
@require("consultation.view")
@conditional
@bp.arguments(OpinionListArgs, location="query")
@bp.response(200, OpinionPage)
@bp.doc(parameters=[IF_NONE_MATCH], security=OPTIONAL)
@bp.errors(304, 400, 401, 403, 404)
def opinion_list(args: dict[str, Any], consultation_id: int) -> dict[str, Any]:
    """The consultation's opinions, newest first (withdrawn ones left out), with their
    supports. Households are not named."""
    consultation = loading.load(consultation_id)
    stmt = opinions.listing(consultation, category=args.get("category"), order="newest")
    rows, cursor = page(stmt.order_by(None).order_by(Opinion.id.desc()), Opinion.id, args)
    ids = [o.id for o in rows]
    counts = opinions.support_counts(ids)
    supported = opinions.supported_by(_household(), ids)
    return {"items": [_out(o, counts, supported) for o in rows], "next_cursor": cursor}


@bp.route("/consultations/<int:consultation_id>/opinions", methods=["POST"])
@require("consultation.participate")
@bp.arguments(OpinionIn)
@bp.response(201, OpinionOut)
@bp.doc(security=SIGNED_IN)
@bp.errors(400, 401, 403, 404, 409, 413)
def opinion_create(body: dict[str, Any], consultation_id: int) -> dict[str, Any]:
    """The household's opinion, while opinions are collected, with an optional photo checked
    like the web form's upload (type and size)."""
    consultation, household = loading.load_participating(consultation_id)
    found = opinions.submit(current_user, consultation, household,
                            opinions.opinion_data(category=body["category"], text=body["text"]),
                            file_of(body.get("photo"), "photo"))
    out = _out(found, {}, set())
    db.session.commit()
    return out


@bp.route("/consultations/<int:consultation_id>/opinions/<int:opinion_id>/support",
          methods=["POST"])
@require("consultation.participate")
@bp.response(200, SupportOut)
@bp.doc(security=SIGNED_IN)
@bp.errors(401, 403, 404, 409)
def opinion_support(consultation_id: int, opinion_id: int) -> dict[str, Any]:
    """The household's +1 on another household's opinion (counted once)."""
    consultation, household = loading.load_participating(consultation_id)
    found = opinions.get_opinion_or_404(consultation, opinion_id)
    counted = opinions.support(current_user, found, household)
    db.session.commit()
    return {"supported": True, "counted_now": counted}


@bp.route("/consultations/<int:consultation_id>/opinions/<int:opinion_id>/support",
          methods=["DELETE"])
@require("consultation.participate")
@bp.response(204)
@bp.doc(security=SIGNED_IN)
@bp.errors(401, 403, 404, 409)
def support_withdraw(consultation_id: int, opinion_id: int) -> Response:
    """Take back the household's +1 (while opinions are collected)."""
    consultation, household = loading.load_participating(consultation_id)
    found = opinions.get_opinion_or_404(consultation, opinion_id)
    opinions.check_support_withdrawable(found, household)
    opinions.withdraw_support(current_user, found, household)
    db.session.commit()
    return Response(status=204)


@bp.route("/consultations/<int:consultation_id>/opinions/<int:opinion_id>",
          methods=["DELETE"])
@require("consultation.participate")
@bp.response(204)
@bp.doc(security=SIGNED_IN)
@bp.errors(401, 403, 404, 409)
def opinion_withdraw(consultation_id: int, opinion_id: int) -> Response:
    """Withdraw the household's own opinion (no other household's: 403) while opinions are
    collected and before the committee used it."""
    consultation, household = loading.load_participating(consultation_id)
    found = opinions.get_opinion_or_404(consultation, opinion_id)
    authorize(current_user, "consultation.participate", found)
    opinions.withdraw(current_user, found, household)
    db.session.commit()
    return Response(status=204)
