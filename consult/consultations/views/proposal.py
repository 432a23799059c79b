"""The proposal (一议): its items, and the numbered revisions with what changed."""

from __future__ import annotations

from flask import flash, redirect, render_template, url_for
from flask_babel import gettext as _
from flask_login import current_user
from werkzeug.wrappers import Response

from consult.consultations import papers, service
from consult.consultations.forms.settings import AttachmentsForm, ItemForm
from consult.consultations.models import Consultation, Item
from consult.consultations.views import bp
from consult.core.errors import Conflict
from consult.core.forms import save_form
from consult.core.policy import require
from consult.extensions import db
from consult.process import loading
from consult.registry.forms import ConfirmForm


def _item_data(form: ItemForm) -> service.ItemData:
    return service.item_data(title=form.title.data, description=form.description.data,
                             cost=form.cost.data,
                             split_by_area=bool(form.cost_split_by_area.data))


def _with_papers(form: ItemForm, item: Item) -> Item:
    """The item's files added and taken off, in the transaction of its text."""
    removed = (form.remove.data or []) if form.remove else []  # a new item has none to remove
    papers.change(current_user, item, form.files.data, removed)
    return item


@bp.route("/<int:consultation_id>/items/new", methods=["GET", "POST"])
@require("consultation.manage")
def item_new(consultation_id: int) -> Response | str:
    consultation = loading.load(consultation_id)
    form = ItemForm()
    del form.remove
    if save_form(form, lambda: _with_papers(form, service.add_item(
            current_user, consultation, _item_data(form), form.note.data or "")),
            _("Item added.")):
        return redirect(url_for("consultations.show", consultation_id=consultation.id))
    return render_template("consultations/item_form.html", form=form, c=consultation, item=None)


@bp.route("/<int:consultation_id>/items/<int:item_id>/edit", methods=["GET", "POST"])
@require("consultation.manage")
def item_edit(consultation_id: int, item_id: int) -> Response | str:
    consultation = loading.load(consultation_id)
    item = service.get_item_or_404(consultation, item_id)
    form = ItemForm(obj=item)
    form.remove.choices = [(a.id, a.filename) for a in item.attachments]
    if not form.is_submitted():
        form.cost.data = service.format_money(item.estimated_cost_fen).replace(",", "")
    if save_form(form, lambda: _with_papers(form, service.update_item(
            current_user, item, _item_data(form), form.note.data or "")), _("Saved.")):
        return redirect(url_for("consultations.show", consultation_id=consultation.id))
    return render_template("consultations/item_form.html", form=form, c=consultation, item=item,
                           delete_form=ConfirmForm())


@bp.route("/<int:consultation_id>/attachments", methods=["GET", "POST"])
@require("consultation.manage")
def attachments(consultation_id: int) -> Response | tuple[str, int]:
    """The proposal's own papers (plans, drawings, quotes): add some, take some off."""
    consultation: Consultation = loading.load(consultation_id)
    service.check_proposal_editable(consultation)
    form = AttachmentsForm()
    form.remove.choices = [(a.id, a.filename) for a in consultation.attachments]
    if save_form(form, lambda: papers.change(current_user, consultation, form.files.data,
                                             form.remove.data or []), _("Saved.")):
        return redirect(url_for("consultations.show", consultation_id=consultation.id,
                                _anchor="attachments-heading"))
    return render_template("consultations/attachments.html", form=form, c=consultation), (
        400 if form.errors else 200)


@bp.post("/<int:consultation_id>/items/<int:item_id>/delete")
@require("consultation.manage")
def item_delete(consultation_id: int, item_id: int) -> Response:
    consultation = loading.load(consultation_id)
    item = service.get_item_or_404(consultation, item_id)
    if ConfirmForm().validate_on_submit():
        try:
            service.remove_item(current_user, item)
        except Conflict as exc:
            db.session.rollback()
            flash(exc.message, "danger")
            return redirect(url_for("consultations.item_edit", consultation_id=consultation.id,
                                    item_id=item_id))
        db.session.commit()
        flash(_("Item removed; the others were renumbered."), "success")
    return redirect(url_for("consultations.show", consultation_id=consultation.id))


@bp.get("/<int:consultation_id>/revisions")
@require("consultation.view")
def revisions(consultation_id: int) -> str:
    consultation = loading.load(consultation_id)
    return render_template("consultations/revisions.html", c=consultation,
                           revisions=service.revisions(consultation))


@bp.get("/<int:consultation_id>/revisions/<int:number>")
@require("consultation.view")
def revision(consultation_id: int, number: int) -> str:
    consultation = loading.load(consultation_id)
    revision = service.get_revision_or_404(consultation, number)
    previous = service.previous_revision(revision)
    return render_template("consultations/revision.html", c=consultation, revision=revision,
                           previous=previous, lines=service.diff(previous, revision))
