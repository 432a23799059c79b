"""二议: comments on the items of the proposal, one level of replies, and their moderation.

Every function flushes (never commits), checks the stage and records its audit event. Audit
payloads keep a comment's SHA-256, not its text, so a hidden comment is not republished by an
export of the trail.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import Select, exists, func, or_, select
from sqlalchemy.orm import aliased, selectinload

from consult.audit import service as audit
from consult.audit.actions import describe, describe_objects
from consult.consultations import service
from consult.consultations.models import Comment, Item
from consult.consultations.opinions import text_digest
from consult.consultations.states import Stage
from consult.core.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from consult.core.models import utcnow
from consult.core.validation import clean_text, field_text
from consult.extensions import db
from consult.registry.models import Household

describe({
    "comment.posted": _l("Comment posted"),
    "comment.moderated": _l("Comment hidden by the committee"),
    "comment.withdrawn": _l("Comment withdrawn by its household"),
}, kind="opinions")
describe_objects({"comment": _l("Comment")})

MAX_TEXT = 2000
MAX_REASON = 300


def check_open(item: Item) -> None:
    """Raise Conflict unless the item's consultation is being discussed."""
    if item.consultation.stage_enum is not Stage.DISCUSSING:
        raise Conflict(_("Comments are open only while the proposal is being discussed."))


def _text(text: str | None) -> str:
    return field_text(text, field="text", what=_("Your comment"), max_length=MAX_TEXT,
                      required=True, multiline=True)


def _thread(item: Item, parent_id: int | None) -> Comment | None:
    """The top-level comment a reply belongs to: a reply to a reply joins the same thread."""
    if parent_id is None:
        return None
    parent = db.session.get(Comment, parent_id)
    if parent is None or parent.item_id != item.id:
        raise NotFound(_("No such comment."))
    if parent.parent_id is not None:
        parent = db.session.get(Comment, parent.parent_id)
    if parent is not None and parent.withdrawn_at is not None:
        raise Conflict(_("This comment was withdrawn by its household; it takes no more "
                         "replies."))
    return parent


def _post(actor: Any, item: Item, text: str | None, household: Household | None,
          parent_id: int | None) -> Comment:
    check_open(item)
    cleaned = _text(text)
    top = _thread(item, parent_id)
    comment = Comment(item_id=item.id, parent_id=top.id if top else None,
                      household_id=household.id if household else None,
                      author_id=getattr(actor, "id", None), text=cleaned)
    db.session.add(comment)
    db.session.flush()
    audit.record(actor, "comment.posted", comment, {
        "item": item.number, "item_id": item.id, "reply_to": top.id if top else None,
        "as": "household" if household else "committee",
        "household_id": household.id if household else None,
        "text_sha256": text_digest(cleaned), "text_length": len(cleaned)},
        chain=item.consultation_id)
    return comment


def comment_as_household(actor: Any, item: Item, household: Household, text: str | None,
                         parent_id: int | None = None) -> Comment:
    """A resident's comment (or reply), for their household, which must be in scope."""
    if not service.household_in_scope(item.consultation, household):
        raise PermissionDenied(_("Your household is not among those this consultation "
                                 "concerns."))
    return _post(actor, item, text, household, parent_id)


def comment_as_committee(actor: Any, item: Item, text: str | None,
                         parent_id: int | None = None) -> Comment:
    """A committee member's comment or answer, shown as the committee's."""
    return _post(actor, item, text, None, parent_id)


def moderation_reason(reason: str | None) -> str:
    """Validate a moderation reason: required, at most 300 characters."""
    try:
        return clean_text(reason, what=_("The reason"), max_length=MAX_REASON, required=True,
                          multiline=True)
    except ValueError as exc:
        raise ValidationFailed(str(exc), {"reason": [str(exc)]}) from None


def moderate(actor: Any, comment: Comment, reason: str | None) -> Comment:
    """Hide a comment's text; the reason stays visible in its place. Possible at any stage."""
    cleaned = moderation_reason(reason)
    if comment.moderated_at is not None:
        raise Conflict(_("This comment is already hidden."))
    comment.moderated_at = utcnow()
    comment.moderated_by_id = getattr(actor, "id", None)
    comment.moderation_reason = cleaned
    db.session.flush()
    audit.record(actor, "comment.moderated", comment, {
        "item": comment.item.number, "item_id": comment.item_id, "reason": cleaned,
        "text_sha256": text_digest(comment.text)}, chain=comment.item.consultation_id)
    return comment


def withdraw(actor: Any, comment: Comment, household: Household) -> Comment:
    """A household takes back its own comment while the proposal is discussed: it leaves the
    lists and counts (a thread with replies keeps its place, marked as withdrawn); the row and
    the audit trail keep it."""
    if comment.household_id != household.id:
        raise PermissionDenied(_("Only the household that wrote a comment can withdraw it."))
    check_withdrawable(comment)
    comment.withdrawn_at = utcnow()
    db.session.flush()
    audit.record(actor, "comment.withdrawn", comment, {
        "item": comment.item.number, "item_id": comment.item_id,
        "household_id": household.id, "text_sha256": text_digest(comment.text)},
        chain=comment.item.consultation_id)
    return comment


def check_withdrawable(comment: Comment) -> None:
    """Raise Conflict unless the comment may still be withdrawn (discussion open, not yet
    withdrawn)."""
    if comment.item.consultation.stage_enum is not Stage.DISCUSSING:
        raise Conflict(_("Comments can be withdrawn only while the proposal is being "
                         "discussed."))
    if comment.withdrawn_at is not None:
        raise Conflict(_("This comment was already withdrawn."))


# --- reading ----------------------------------------------------------------------------------

_Reply = aliased(Comment)


def _shown() -> Any:
    """Comments still shown: not withdrawn, or withdrawn with replies that are not."""
    return or_(Comment.withdrawn_at.is_(None), exists().where(
        _Reply.parent_id == Comment.id, _Reply.withdrawn_at.is_(None)))


def get_comment_or_404(item: Item, comment_id: int) -> Comment:
    comment = db.session.get(Comment, comment_id)
    if comment is None or comment.item_id != item.id:
        raise NotFound(_("No such comment."))
    return comment


def threads(item: Item) -> Select[Any]:
    """The item's top-level comments, oldest first (the unit of pagination); a withdrawn one
    only while replies to it are shown."""
    return (select(Comment).where(Comment.item_id == item.id, Comment.parent_id.is_(None),
                                  _shown())
            .options(selectinload(Comment.household).selectinload(Household.building))
            .order_by(Comment.id))


def replies(top_ids: Iterable[int]) -> dict[int, list[Comment]]:
    """The replies of these top-level comments, oldest first, by thread (not withdrawn ones)."""
    ids = list(top_ids)
    result: dict[int, list[Comment]] = {i: [] for i in ids}
    if not ids:
        return result
    for reply in db.session.scalars(
            select(Comment).where(Comment.parent_id.in_(ids), Comment.withdrawn_at.is_(None))
            .options(selectinload(Comment.household).selectinload(Household.building))
            .order_by(Comment.id)):
        result[reply.parent_id].append(reply)  # type: ignore[index]
    return result


def count(item: Item) -> int:
    """The item's comments and replies, withdrawn ones left out."""
    return db.session.scalar(select(func.count(Comment.id)).where(
        Comment.item_id == item.id, Comment.withdrawn_at.is_(None))) or 0


def own_comments(items: Iterable[Item], household: Household) -> list[Comment]:
    """The household's comments (not withdrawn) on these items, oldest first."""
    ids = [item.id for item in items]
    if not ids:
        return []
    return list(db.session.scalars(select(Comment).where(
        Comment.item_id.in_(ids), Comment.household_id == household.id,
        Comment.withdrawn_at.is_(None)).options(selectinload(Comment.item))
        .order_by(Comment.id)))


def page_of(comment: Comment, per_page: int) -> int:
    """The page on which a comment's thread appears."""
    top_id = comment.parent_id or comment.id
    before = db.session.scalar(select(func.count(Comment.id)).where(
        Comment.item_id == comment.item_id, Comment.parent_id.is_(None),
        Comment.id < top_id, _shown())) or 0
    return before // per_page + 1
