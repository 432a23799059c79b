"""The proposal (一议): its items, and the numbered revisions with what changed."""

from __future__ import annotations

from flask import flash, redirect, render_template, url_for
from flask_babel import gettext as _
from flask_login import current_user
from werkzeug.wrappers import Response

from consult.consultations import loading, service
from consult.consultations.forms.settings import ItemForm
from consult.consultations.views import bp
from consult.core.errors import Conflict
from consult.core.forms import save_form
from consult.core.policy import require
from consult.extensions import db
from consult.registry.forms import ConfirmForm


def _item_data(form: ItemForm) -> service.ItemData:
    return service.item_data(title=form.title.data, description=form.description.data,
                             cost=form.cost.data)


@bp.route("/<int:consultation_id>/items/new", methods=["GET", "POST"])
@require("consultation.manage")
def item_new(consultation_id: int) -> Response | str:
    consultation = loading.load_managed(consultation_id)
    form = ItemForm()
    if save_form(form, lambda: service.add_item(current_user, consultation, _item_data(form),
                                                form.note.data or ""), _("Item added.")):
        return redirect(url_for("consultations.show", consultation_id=consultation.id))
    return render_template("consultations/item_form.html", form=form, c=consultation, item=None)


@bp.route("/<int:consultation_id>/items/<int:item_id>/edit", methods=["GET", "POST"])
@require("consultation.manage")
def item_edit(consultation_id: int, item_id: int) -> Response | str:
    consultation = loading.load_managed(consultation_id)
    item = service.get_item_or_404(consultation, item_id)
    form = ItemForm(obj=item)
    if not form.is_submitted():
        form.cost.data = service.format_money(item.estimated_cost_fen).replace(",", "")
    if save_form(form, lambda: service.update_item(current_user, item, _item_data(form),
                                                   form.note.data or ""), _("Saved.")):
        return redirect(url_for("consultations.show", consultation_id=consultation.id))
    return render_template("consultations/item_form.html", form=form, c=consultation, item=item,
                           delete_form=ConfirmForm())


@bp.post("/<int:consultation_id>/items/<int:item_id>/delete")
@require("consultation.manage")
def item_delete(consultation_id: int, item_id: int) -> Response:
    consultation = loading.load_managed(consultation_id)
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
