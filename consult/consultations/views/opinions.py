"""一征: the opinions list, a resident's opinion, offline entry, supports, sorting and merging,
and which opinions an item came from."""

from __future__ import annotations

from collections.abc import Callable

from flask import flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user
from werkzeug.wrappers import Response

from consult.consultations import discussion, opinions, service
from consult.consultations.forms.opinions import (
    CategoryForm,
    ItemOpinionsForm,
    MergeForm,
    OfflineOpinionForm,
    OpinionForm,
    WithdrawForm,
)
from consult.consultations.models import (
    CATEGORY_LABELS,
    CHANNEL_LABELS,
    Category,
    Channel,
    Consultation,
    Opinion,
)
from consult.consultations.states import EDITABLE_PROPOSAL_STAGES
from consult.consultations.views import bp
from consult.core.errors import Conflict, NotFound
from consult.core.forms import id_arg, page_number, page_size, save_form
from consult.core.policy import authorize, can, require
from consult.core.urls import safe_next
from consult.extensions import db
from consult.process import loading
from consult.registry.forms import ConfirmForm
from consult.registry.models import Household


def _viewer_household(consultation: Consultation) -> Household | None:
    """The signed-in resident's household when it may take part in this consultation."""
    household = getattr(current_user, "household", None)
    if household is None or not can(current_user, "consultation.participate", household):
        return None
    return household if service.household_in_scope(consultation, household) else None


def _labels() -> dict[str, object]:
    return {"category_label": opinions.category_label,
            "opinion_channel_label": lambda v: CHANNEL_LABELS.get(Channel(v), v),
            "categories": [(c.value, label) for c, label in CATEGORY_LABELS.items()]}


@bp.get("/<int:consultation_id>/opinions", endpoint="opinions")
@require("consultation.view")
def opinions_list(consultation_id: int) -> str:
    consultation = loading.load(consultation_id)
    category = request.args.get("category", "")
    category = category if category in {c.value for c in Category} else ""
    item_id = id_arg("item")
    item = service.get_item_or_404(consultation, item_id) if item_id else None
    order = request.args.get("order", "")
    order = order if order in opinions.OPINION_ORDERS else "support"
    page = db.paginate(opinions.listing(consultation, category=category or None, item=item,
                                        order=order),
                       page=page_number(), per_page=page_size(), error_out=False)
    ids = [o.id for o in page.items]
    household = _viewer_household(consultation)
    staff = can(current_user, "audit.view", consultation)
    return render_template(
        "consultations/opinions/list.html", c=consultation, page=page, category=category,
        item=item, order=order, orders=opinions.OPINION_ORDER_LABELS,
        counts=opinions.support_counts(ids), household=household,
        supported=opinions.supported_by(household, ids), staff=staff,
        authors=opinions.authors(o.author_id for o in page.items) if staff else {},
        can_manage=can(current_user, "consultation.manage", consultation),
        curating=consultation.stage_enum in opinions.CURATION_STAGES, **_labels())


@bp.get("/<int:consultation_id>/opinions/summary")
@require("consultation.view")
def opinion_summary(consultation_id: int) -> str:
    consultation = loading.load(consultation_id)
    return render_template("consultations/opinions/summary.html", c=consultation,
                           summary=opinions.summary(consultation), **_labels())


@bp.route("/<int:consultation_id>/opinions/new", methods=["GET", "POST"])
@require("consultation.participate")
def opinion_new(consultation_id: int) -> Response | tuple[str, int]:
    consultation, household = loading.load_participating(consultation_id)
    opinions.check_collecting(consultation)
    form = OpinionForm()
    saved = save_form(form, lambda: opinions.submit(
        current_user, consultation, household,
        opinions.opinion_data(category=form.category.data, text=form.text.data),
        form.photo.data), _("Thank you. Your opinion has been received."))
    if saved:
        return redirect(url_for("consultations.opinion", consultation_id=consultation.id,
                                opinion_id=saved.value.id))
    return render_template("consultations/opinions/new.html", c=consultation, form=form,
                           household=household), 400 if form.errors else 200


@bp.route("/<int:consultation_id>/opinions/record", methods=["GET", "POST"])
@require("opinion.record")
def opinion_record(consultation_id: int) -> Response | tuple[str, int]:
    consultation = loading.load(consultation_id)
    opinions.check_collecting(consultation)
    form = OfflineOpinionForm(buildings=consultation.compound.buildings)
    if not form.is_submitted() and id_arg("building_id"):
        # Opened from the QR code of a printed opinion form: that household, on paper.
        form.building_id.data = id_arg("building_id")
        form.unit.data = request.args.get("unit", "")[:20]
        form.room.data = request.args.get("room", "")[:20]
        form.channel.data = "questionnaire"
    if not form.is_submitted() and request.args.get("channel") in {
            c.value for c in opinions.OFFLINE_CHANNELS}:
        # Recording one opinion after another: the channel chosen for the last one.
        form.channel.data = request.args["channel"]
    saved = save_form(form, lambda: opinions.record_offline(
        current_user, consultation, opinions.offline_data(
            consultation, category=form.category.data, text=form.text.data,
            channel=form.channel.data, building_id=form.building_id.data or None,
            unit=form.unit.data, room=form.room.data), form.photo.data),
        _("Opinion recorded."))
    if saved:
        if request.form.get("again"):
            # The next opinion usually came the same way and from the same building: keep
            # both selected (the unit and room are the next household's).
            return redirect(url_for("consultations.opinion_record",
                                    consultation_id=consultation.id,
                                    channel=form.channel.data or None,
                                    building_id=form.building_id.data or None))
        return redirect(url_for("consultations.opinions", consultation_id=consultation.id))
    return render_template("consultations/opinions/record.html", c=consultation, form=form), \
        400 if form.errors else 200


@bp.get("/<int:consultation_id>/opinions/<int:opinion_id>")
@require("consultation.view")
def opinion(consultation_id: int, opinion_id: int) -> tuple[str, int]:
    consultation = loading.load(consultation_id)
    found = opinions.get_opinion_or_404(consultation, opinion_id)
    if found.withdrawn_at is not None and not can(current_user, "audit.view", consultation):
        raise NotFound(_("This opinion was withdrawn by its household."))
    return _render_opinion(consultation, found)


def _render_opinion(consultation: Consultation, found: Opinion,
                    category_form: CategoryForm | None = None, merge_form: MergeForm | None = None,
                    status: int = 200) -> tuple[str, int]:
    household = _viewer_household(consultation)
    staff = can(current_user, "audit.view", consultation)
    category_form = category_form or CategoryForm(category=found.category)
    return render_template(
        "consultations/opinions/show.html", c=consultation, o=found,
        supports=opinions.support_counts([found.id]).get(found.id, 0), household=household,
        supported=bool(opinions.supported_by(household, [found.id])),
        merged_here=opinions.merged_here(found), staff=staff,
        authors=opinions.authors([found.author_id]) if staff else {},
        can_manage=can(current_user, "consultation.manage", consultation),
        curating=consultation.stage_enum in opinions.CURATION_STAGES,
        category_form=category_form, merge_form=merge_form or MergeForm(),
        **_labels()), status


@bp.post("/<int:consultation_id>/opinions/<int:opinion_id>/support")
@require("consultation.participate")
def opinion_support(consultation_id: int, opinion_id: int) -> Response:
    consultation, household = loading.load_participating(consultation_id)
    found = opinions.get_opinion_or_404(consultation, opinion_id)
    form = ConfirmForm()
    if form.validate_on_submit():
        if opinions.support(current_user, found, household):
            db.session.commit()
            flash(_("Thank you: your household's support for opinion #%(n)s is counted.",
                    n=found.id), "success")
        else:
            flash(_("Your household's support for opinion #%(n)s was already counted.",
                    n=found.id), "info")
    return redirect(safe_next(form.next.data) or url_for(
        "consultations.opinions", consultation_id=consultation.id) + f"#opinion-{found.id}")


@bp.post("/<int:consultation_id>/opinions/<int:opinion_id>/category")
@require("consultation.manage")
def opinion_categorise(consultation_id: int, opinion_id: int) -> Response | tuple[str, int]:
    consultation = loading.load(consultation_id)
    found = opinions.get_opinion_or_404(consultation, opinion_id)
    form = CategoryForm()
    if save_form(form, lambda: opinions.categorise(current_user, found, form.category.data),
                 _("Saved.")):
        return redirect(url_for("consultations.opinion", consultation_id=consultation.id,
                                opinion_id=found.id))
    return _render_opinion(consultation, found, category_form=form, status=400)


@bp.post("/<int:consultation_id>/opinions/<int:opinion_id>/merge")
@require("consultation.manage")
def opinion_merge(consultation_id: int, opinion_id: int) -> Response | tuple[str, int]:
    consultation = loading.load(consultation_id)
    found = opinions.get_opinion_or_404(consultation, opinion_id)
    form = MergeForm()
    saved = save_form(form, lambda: opinions.merge(current_user, found, form.target.data))
    if saved:
        flash(_("Opinion #%(n)s was merged into opinion #%(m)s.", n=found.id,
                m=saved.value.id), "success")
        return redirect(url_for("consultations.opinion", consultation_id=consultation.id,
                                opinion_id=saved.value.id))
    return _render_opinion(consultation, found, merge_form=form, status=400)


@bp.route("/<int:consultation_id>/items/<int:item_id>/opinions", methods=["GET", "POST"])
@require("consultation.manage")
def item_opinions(consultation_id: int, item_id: int) -> Response | tuple[str, int]:
    consultation = loading.load(consultation_id)
    item = service.get_item_or_404(consultation, item_id)
    form = ItemOpinionsForm()
    if not form.is_submitted():
        form.opinion_ids.data = [o.id for o in item.opinions]
    if save_form(form, lambda: opinions.set_item_opinions(
            current_user, item, form.opinion_ids.data or []), _("Saved.")):
        return redirect(url_for("consultations.item", consultation_id=consultation.id,
                                item_id=item.id))
    return render_template(
        "consultations/opinions/item_opinions.html", c=consultation, item=item, form=form,
        choices=opinions.item_choices(consultation), chosen=set(form.opinion_ids.data or []),
        editable=consultation.stage_enum in EDITABLE_PROPOSAL_STAGES, **_labels()), \
        400 if form.errors else 200


# --- a household's own posts, and taking them back -----------------------------------------


@bp.get("/<int:consultation_id>/mine")
@require("consultation.participate")
def mine(consultation_id: int) -> str:
    """What this household wrote and supported in the consultation, each with its way back
    while its stage is open."""
    consultation, household = loading.load_participating(consultation_id)
    return render_template(
        "consultations/mine.html", c=consultation, household=household,
        own=opinions.own_opinions(consultation, household),
        supports=opinions.own_supports(consultation, household),
        comments=discussion.own_comments(consultation.items, household), **_labels())


def confirm_withdrawal(consultation: Consultation, check: Callable[[], None],
                       withdraw: Callable[[], object], *, done: str, back: str, heading: str,
                       text: str, explanation: str, landing: str | None = None
                       ) -> Response | tuple[str, int]:
    """A household taking back what it posted: the confirmation page, then the withdrawal once
    confirmed (to ``landing``, else ``back``). A post that can no longer be withdrawn (its
    stage closed) goes ``back`` with the reason."""
    try:
        check()
    except Conflict as exc:
        db.session.rollback()
        flash(exc.message, "danger")
        return redirect(back)
    form = WithdrawForm()
    if save_form(form, withdraw, done):
        return redirect(landing or back)
    return render_template("consultations/withdraw.html", c=consultation, form=form, back=back,
                           heading=heading, text=text, explanation=explanation), \
        400 if form.errors else 200


@bp.route("/<int:consultation_id>/opinions/<int:opinion_id>/withdraw", methods=["GET", "POST"])
@require("consultation.participate")
def opinion_withdraw(consultation_id: int, opinion_id: int) -> Response | tuple[str, int]:
    """Confirm, then withdraw the household's own opinion (no other household's: 403)."""
    consultation, household = loading.load_participating(consultation_id)
    found = opinions.get_opinion_or_404(consultation, opinion_id)
    authorize(current_user, "consultation.participate", found)
    return confirm_withdrawal(
        consultation, lambda: opinions.check_withdrawable(found),
        lambda: opinions.withdraw(current_user, found, household),
        done=_("Your opinion #%(n)s has been withdrawn.", n=found.id),
        back=url_for("consultations.mine", consultation_id=consultation.id),
        heading=_("Withdraw your opinion #%(n)s?", n=found.id), text=found.text,
        explanation=_("It will no longer be listed or counted, and its supports go with it. "
                      "The audit trail keeps a record that it was given and withdrawn."))


@bp.route("/<int:consultation_id>/opinions/<int:opinion_id>/support/withdraw",
          methods=["GET", "POST"])
@require("consultation.participate")
def support_withdraw(consultation_id: int, opinion_id: int) -> Response | tuple[str, int]:
    """Confirm, then take back the household's own +1 on an opinion."""
    consultation, household = loading.load_participating(consultation_id)
    found = opinions.get_opinion_or_404(consultation, opinion_id)
    return confirm_withdrawal(
        consultation, lambda: opinions.check_support_withdrawable(found, household),
        lambda: opinions.withdraw_support(current_user, found, household),
        done=_("Your household's support for opinion #%(n)s is withdrawn.", n=found.id),
        back=url_for("consultations.mine", consultation_id=consultation.id),
        heading=_("Withdraw your support for opinion #%(n)s?", n=found.id), text=found.text,
        explanation=_("Your household will no longer be counted among its supporters. You "
                      "can support it again while opinions are collected."))
