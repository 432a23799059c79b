"""Comments on an item of the proposal (二议) through the API: the threads with their
replies, a household's comment or reply while the proposal is discussed (and its withdrawal),
and the committee's side: its own comments and answers, and hiding a comment with a reason;
through ``consultations.discussion`` as the item's page does."""

from __future__ import annotations

from typing import Any

from flask_login import current_user
from marshmallow import Schema, fields, validate
from werkzeug.wrappers import Response

from consult.api.common import IF_NONE_MATCH, Blueprint, Id, PageArgs, PageOf, conditional, page
from consult.consultations import discussion
from consult.consultations import service as consultations
from consult.consultations.models import Comment
from consult.core.policy import authorize, require
from consult.extensions import db
from consult.process import loading
from consult.registry.service import address_for

bp = Blueprint("api_comments", __name__, url_prefix="/api/v1",
               description="Comments on the items of a proposal (二议).")

SIGNED_IN: list[dict[str, list[str]]] = [{"bearer": []}]
OPTIONAL: list[dict[str, list[str]]] = [{"bearer": []}, {}]


class CommentOut(Schema):
    id = fields.Integer(required=True, metadata={"example": 52})
    parent_id = fields.Integer(required=True, allow_none=True, metadata={"example": None})
    by = fields.String(required=True, metadata={
        "enum": ["household", "committee"], "example": "household"})
    author = fields.String(required=True, allow_none=True, metadata={
        "description": "A household's address as the reader may see it: its building only, "
                       "unless the reader is that household or staff who read the registry.",
        "example": "1号楼的一户"})
    own = fields.Boolean(required=True, metadata={
        "description": "Written by the signed-in household.", "example": False})
    text = fields.String(required=True, allow_none=True, metadata={
        "description": "null when hidden by the committee or withdrawn.",
        "example": "建议电梯井道放在北侧。"})
    hidden_reason = fields.String(required=True, allow_none=True, metadata={
        "description": "Why the committee hid it (shown to everyone).", "example": None})
    withdrawn = fields.Boolean(required=True, metadata={"example": False})
    created_at = fields.DateTime(required=True,
                                 metadata={"example": "2026-12-02T09:00:00+00:00"})


class ThreadOut(CommentOut):
    replies = fields.List(fields.Nested(CommentOut), required=True)


class ThreadPage(PageOf):
    items = fields.List(fields.Nested(ThreadOut), required=True)
    count = fields.Integer(required=True, metadata={
        "description": "The item's comments and replies (withdrawn ones left out).",
        "example": 7})


class CommentIn(Schema):
    text = fields.String(required=True, validate=validate.Length(max=10000),
                         metadata={"example": "建议电梯井道放在北侧。"})
    parent_id = Id(load_default=None, allow_none=True, metadata={
        "description": "The comment answered (a reply to a reply joins its thread).",
        "example": None})


class ModerationIn(Schema):
    reason = fields.String(required=True, validate=validate.Length(max=10000), metadata={
        "description": f"Shown to everyone in the comment's place; 1 to "
                       f"{discussion.MAX_REASON} characters.", "example": "含有人身攻击内容"})


def _out(comment: Comment) -> dict[str, Any]:
    household_id = getattr(current_user, "household_id", None)
    shown = comment.moderated_at is None and comment.withdrawn_at is None
    return {
        "id": comment.id, "parent_id": comment.parent_id,
        "by": "household" if comment.household_id else "committee",
        "author": address_for(current_user, comment.household) if comment.household else None,
        "own": household_id is not None and comment.household_id == household_id,
        "text": comment.text if shown else None,
        "hidden_reason": comment.moderation_reason if comment.moderated_at else None,
        "withdrawn": comment.withdrawn_at is not None, "created_at": comment.created_at,
    }


@bp.route("/consultations/<int:consultation_id>/items/<int:item_id>/comments",
          methods=["GET"])
@require("consultation.view")
@conditional
@bp.arguments(PageArgs, location="query")
@bp.response(200, ThreadPage)
@bp.doc(parameters=[IF_NONE_MATCH], security=OPTIONAL)
@bp.errors(304, 400, 401, 403, 404)
def comment_list(args: dict[str, Any], consultation_id: int, item_id: int) -> dict[str, Any]:
    """The item's threads, newest first, each with its replies oldest first."""
    consultation = loading.load(consultation_id)
    item = consultations.get_item_or_404(consultation, item_id)
    stmt = discussion.threads(item).order_by(None).order_by(Comment.id.desc())
    rows, cursor = page(stmt, Comment.id, args)
    replies = discussion.replies(t.id for t in rows)
    return {"items": [{**_out(t), "replies": [_out(r) for r in replies[t.id]]} for t in rows],
            "next_cursor": cursor, "count": discussion.count(item)}


@bp.route("/consultations/<int:consultation_id>/items/<int:item_id>/comments",
          methods=["POST"])
@require("consultation.participate")
@bp.arguments(CommentIn)
@bp.response(201, CommentOut)
@bp.doc(security=SIGNED_IN)
@bp.errors(400, 401, 403, 404, 409)
def comment_create(body: dict[str, Any], consultation_id: int, item_id: int
                   ) -> dict[str, Any]:
    """The household's comment, or reply, while the proposal is discussed (409 otherwise)."""
    consultation, household = loading.load_participating(consultation_id)
    item = consultations.get_item_or_404(consultation, item_id)
    found = discussion.comment_as_household(current_user, item, household, body["text"],
                                            body["parent_id"])
    out = _out(found)
    db.session.commit()
    return out


@bp.route("/consultations/<int:consultation_id>/items/<int:item_id>/comments/committee",
          methods=["POST"])
@require("consultation.manage")
@bp.arguments(CommentIn)
@bp.response(201, CommentOut)
@bp.doc(security=SIGNED_IN)
@bp.errors(400, 401, 403, 404, 409)
def committee_comment_create(body: dict[str, Any], consultation_id: int, item_id: int
                             ) -> dict[str, Any]:
    """The committee's comment, or its answer to a thread, shown as the committee's (no
    member is named), while the proposal is discussed (409 otherwise)."""
    consultation = loading.load(consultation_id)
    item = consultations.get_item_or_404(consultation, item_id)
    found = discussion.comment_as_committee(current_user, item, body["text"], body["parent_id"])
    out = _out(found)
    db.session.commit()
    return out


@bp.route("/consultations/<int:consultation_id>/items/<int:item_id>/comments/<int:comment_id>"
          "/moderate", methods=["POST"])
@require("consultation.manage")
@bp.arguments(ModerationIn)
@bp.response(200, CommentOut)
@bp.doc(security=SIGNED_IN)
@bp.errors(400, 401, 403, 404, 409)
def comment_moderate(body: dict[str, Any], consultation_id: int, item_id: int,
                     comment_id: int) -> dict[str, Any]:
    """Hide a comment's text, at any stage: the reason is shown to everyone in its place
    (409 if it is hidden already)."""
    consultation = loading.load(consultation_id)
    item = consultations.get_item_or_404(consultation, item_id)
    comment = discussion.get_comment_or_404(item, comment_id)
    discussion.moderate(current_user, comment, body["reason"])
    out = _out(comment)
    db.session.commit()
    return out


@bp.route("/consultations/<int:consultation_id>/items/<int:item_id>/comments/<int:comment_id>",
          methods=["DELETE"])
@require("consultation.participate")
@bp.response(204)
@bp.doc(security=SIGNED_IN)
@bp.errors(401, 403, 404, 409)
def comment_withdraw(consultation_id: int, item_id: int, comment_id: int) -> Response:
    """Withdraw the household's own comment (no other household's: 403) while the proposal is
    discussed: it leaves the lists and counts; a thread with replies keeps its place, marked
    as withdrawn."""
    consultation, household = loading.load_participating(consultation_id)
    item = consultations.get_item_or_404(consultation, item_id)
    comment = discussion.get_comment_or_404(item, comment_id)
    authorize(current_user, "consultation.participate", comment)
    discussion.withdraw(current_user, comment, household)
    db.session.commit()
    return Response(status=204)
