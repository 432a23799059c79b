"""二议: an item of the proposal with its comments; residents and the committee comment, the
committee hides what breaks the rules, with a reason everyone sees."""

from __future__ import annotations

from collections.abc import Callable

from flask import redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user
from werkzeug.wrappers import Response

from consult.ballots import shares
from consult.consultations import discussion, opinions, service
from consult.consultations.forms.discussion import CommentForm, ModerationForm
from consult.consultations.models import Comment, Consultation, Item
from consult.consultations.states import EDITABLE_PROPOSAL_STAGES, Stage
from consult.consultations.views import bp
from consult.consultations.views.opinions import confirm_withdrawal
from consult.core.forms import page_number, page_size, save_form
from consult.core.markup import render_markdown
from consult.core.policy import authorize, can, require
from consult.extensions import db
from consult.process import loading
from consult.registry.models import Household


def _comment_endpoint(consultation: Consultation) -> str | None:
    """Where this visitor's comments go: as their household, as the committee, or nowhere."""
    if consultation.stage_enum is not Stage.DISCUSSING:
        return None
    household = getattr(current_user, "household", None)
    if household is not None and can(current_user, "consultation.participate", household):
        in_scope = service.household_in_scope(consultation, household)
        return "consultations.comment_post" if in_scope else None
    if can(current_user, "consultation.manage", consultation):
        return "consultations.comment_post_committee"
    return None


def _render_item(consultation: Consultation, item: Item, form: CommentForm | None = None,
                 status: int = 200) -> tuple[str, int]:
    page = db.paginate(discussion.threads(item), page=page_number(), per_page=page_size(),
                       error_out=False)
    thread_replies = discussion.replies(t.id for t in page.items)
    everyone = [*page.items, *(r for rs in thread_replies.values() for r in rs)]
    staff = can(current_user, "audit.view", consultation)
    return render_template(
        "consultations/item.html", c=consultation, item=item, page=page,
        replies=thread_replies, authors=opinions.authors(
            [x.author_id for x in everyone if x.household_id is None]
            + ([x.moderated_by_id for x in everyone] if staff else [])),
        description=render_markdown(item.description),
        cost=service.format_money(item.estimated_cost_fen), opinion_count=len(item.opinions),
        comment_count=discussion.count(item), endpoint=_comment_endpoint(consultation),
        form=form or CommentForm(), failed_parent=form.parent() if form else None,
        can_manage=can(current_user, "consultation.manage", consultation), staff=staff,
        editable=consultation.stage_enum in EDITABLE_PROPOSAL_STAGES,
        back_to_ballot=_from_ballot(consultation), mine_id=_own_household_id(consultation),
        share=shares.household_shares(consultation, _own_household(), [item]).get(item.id)
    ), status


def _own_household_id(consultation: Consultation) -> int | None:
    """The signed-in resident's household when it takes part here (its comments are marked)."""
    household = getattr(current_user, "household", None)
    if household is None or not can(current_user, "consultation.participate", household):
        return None
    return household.id if service.household_in_scope(consultation, household) else None


def _from_ballot(consultation: Consultation) -> bool:
    """Whether this page was opened from the resident's unsent ballot ("Read the details"),
    which is kept in the session: the page then leads back to it."""
    household = getattr(current_user, "household", None)
    return (request.args.get("ballot") == "1" and consultation.vote_is_open()
            and household is not None
            and can(current_user, "consultation.participate", household))


def _own_household() -> Household | None:
    """The signed-in household, whose share of a cost split by area its pages show."""
    if not getattr(current_user, "is_authenticated", False):
        return None
    return getattr(current_user, "household", None)


@bp.get("/<int:consultation_id>/items/<int:item_id>")
@require("consultation.view")
def item(consultation_id: int, item_id: int) -> tuple[str, int]:
    consultation = loading.load(consultation_id)
    return _render_item(consultation, service.get_item_or_404(consultation, item_id))


def _post(consultation: Consultation, item: Item, form: CommentForm,
          action: Callable[[], Comment]) -> Response | tuple[str, int]:
    saved = save_form(form, action, _("Your comment has been posted."))
    if saved:
        page = discussion.page_of(saved.value, page_size())
        return redirect(url_for("consultations.item", consultation_id=consultation.id,
                                item_id=item.id, page=page if page > 1 else None)
                        + f"#comment-{saved.value.id}")
    return _render_item(consultation, item, form, status=400)


@bp.post("/<int:consultation_id>/items/<int:item_id>/comments")
@require("consultation.participate")
def comment_post(consultation_id: int, item_id: int) -> Response | tuple[str, int]:
    consultation, household = loading.load_participating(consultation_id)
    found = service.get_item_or_404(consultation, item_id)
    form = CommentForm()
    return _post(consultation, found, form, lambda: discussion.comment_as_household(
        current_user, found, household, form.text.data, form.parent()))


@bp.post("/<int:consultation_id>/items/<int:item_id>/comments/committee")
@require("consultation.manage")
def comment_post_committee(consultation_id: int, item_id: int) -> Response | tuple[str, int]:
    consultation = loading.load(consultation_id)
    found = service.get_item_or_404(consultation, item_id)
    form = CommentForm()
    return _post(consultation, found, form, lambda: discussion.comment_as_committee(
        current_user, found, form.text.data, form.parent()))


@bp.route("/<int:consultation_id>/items/<int:item_id>/comments/<int:comment_id>/moderate",
          methods=["GET", "POST"])
@require("consultation.manage")
def comment_moderate(consultation_id: int, item_id: int,
                     comment_id: int) -> Response | tuple[str, int]:
    consultation = loading.load(consultation_id)
    found = service.get_item_or_404(consultation, item_id)
    comment = discussion.get_comment_or_404(found, comment_id)
    form = ModerationForm()
    if save_form(form, lambda: discussion.moderate(current_user, comment, form.reason.data),
                 _("The comment is hidden; the reason is shown in its place.")):
        page = discussion.page_of(comment, page_size())
        return redirect(url_for("consultations.item", consultation_id=consultation.id,
                                item_id=found.id, page=page if page > 1 else None)
                        + f"#comment-{comment.id}")
    author = None if comment.household_id else opinions.author(comment.author_id)
    return render_template("consultations/comments/moderate.html", c=consultation, item=found,
                           comment=comment, author=author, form=form), \
        400 if form.errors else 200


@bp.route("/<int:consultation_id>/items/<int:item_id>/comments/<int:comment_id>/withdraw",
          methods=["GET", "POST"])
@require("consultation.participate")
def comment_withdraw(consultation_id: int, item_id: int,
                     comment_id: int) -> Response | tuple[str, int]:
    """Confirm, then withdraw the household's own comment (no other household's: 403)."""
    consultation, household = loading.load_participating(consultation_id)
    found = service.get_item_or_404(consultation, item_id)
    comment = discussion.get_comment_or_404(found, comment_id)
    authorize(current_user, "consultation.participate", comment)
    back = url_for("consultations.item", consultation_id=consultation.id, item_id=found.id)
    return confirm_withdrawal(
        consultation, lambda: discussion.check_withdrawable(comment),
        lambda: discussion.withdraw(current_user, comment, household),
        done=_("Your comment has been withdrawn."), back=back,
        landing=back + "#comments-heading",
        heading=_("Withdraw your comment on item %(n)s?", n=found.number), text=comment.text,
        explanation=_("It will no longer be shown or counted; replies to it stay, marked as "
                      "answering a withdrawn comment. The audit trail keeps a record that it "
                      "was posted and withdrawn."))
