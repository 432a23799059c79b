"""Defect feedback pages: reporting, a report's page with its steps and history, the
committee's list, the public list per compound and the warranty period."""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user
from werkzeug.wrappers import Response

from consult.core.errors import Conflict, NotFound, ValidationFailed
from consult.core.forms import apply_conflict, apply_errors, options, save_form
from consult.core.policy import Role, compound_scope, load, require, role_of
from consult.extensions import db
from consult.feedback import service
from consult.feedback.forms import MoveForm, ReportForm, WarrantyForm
from consult.feedback.models import ACTION_LABELS, STATE_LABELS, DefectReport
from consult.feedback.states import TRANSITIONS, Action, State
from consult.process import loading
from consult.registry.models import Compound
from consult.uploads import service as uploads
from consult.uploads.views import file_headers

bp = Blueprint("feedback", __name__)


@bp.route("/consultations/<int:consultation_id>/feedback/new", methods=["GET", "POST"])
@require("feedback.report")
def new(consultation_id: int) -> Response | str | tuple[str, int]:
    """Report a defect in a finished item, during the warranty period."""
    consultation, household = loading.load_household_or_staff(consultation_id)
    period = service.warranty(consultation)
    form = ReportForm()
    form.item_id.choices = options((i.id, f"{i.number}. {i.title}")
                                   for i in service.finished_items(consultation))
    form.building_id.choices = options((b.id, b.name)
                                       for b in service.buildings_of(consultation))
    for_household = role_of(current_user) is Role.GRID_WORKER
    if for_household:
        form.household_id.choices = options(
            [(0, _("Choose the household"))]
            + [(h.id, h.label) for h in service.households_of(consultation)])
    else:
        del form.household_id
    if household is not None and not form.is_submitted():
        form.building_id.data = household.building_id
    saved = save_form(form, lambda: service.report(current_user, consultation,
                                                   service.ReportInput(
        item_id=form.item_id.data, building_id=form.building_id.data, text=form.text.data,
        household_id=form.household_id.data if for_household else None,
        photos=request.files.getlist("photos"))), _("Thank you: your report was received."))
    if saved:
        return redirect(url_for("feedback.show", report_id=saved.value.id))
    mine = service.household_reports(consultation, household) if household else []
    status = 400 if form.is_submitted() else 200
    return render_template("feedback/new.html", c=consultation, form=form, period=period,
                           household=household, mine=mine), status


def _page(found: DefectReport, forms: dict[str, MoveForm] | None = None) -> str:
    actions = service.actions_for(current_user, found)
    forms = forms or {}
    for action in actions:
        forms.setdefault(action.value, MoveForm(formdata=None, action=action.value))
    return render_template(
        "feedback/show.html", r=found, c=found.consultation, actions=actions, forms=forms,
        transitions=TRANSITIONS, action_labels=ACTION_LABELS, state_labels=STATE_LABELS,
        history=service.history(found), overdue=service.is_overdue(found),
        audit_labels=_history_labels())


def _history_labels() -> dict[str, str]:
    from consult.audit.actions import action_label

    return {code: action_label(code) for code in
            (service.REPORTED, *service.AUDIT_ACTIONS.values())}


@bp.get("/feedback/<int:report_id>")
@require("feedback.view")
def show(report_id: int) -> str:
    """A report: what, where, its state, the steps the user may take, and its history."""
    return _page(load(service.get_or_404, report_id))


@bp.get("/feedback/<int:report_id>/photos/<int:photo_id>")
@require("feedback.view")
def photo(report_id: int, photo_id: int) -> Response:
    """A photo sent with a report, for those who may read the report: the household that sent
    it sees its own photos, which other residents never do (they may show the inside of a
    home)."""
    found = load(service.get_or_404, report_id)
    attachment = next((p for p in found.photos if p.id == photo_id), None)
    if attachment is None:
        raise NotFound(_("No such file."))
    try:
        data = uploads.read(attachment)
    except FileNotFoundError:
        raise NotFound(_("The file is missing from the storage.")) from None
    return Response(data, mimetype=attachment.mimetype, headers=file_headers(attachment))


@bp.post("/feedback/<int:report_id>/step")
@require("feedback.view")
def move(report_id: int) -> Response | tuple[str, int]:
    """Take a step on a report. Who may take which step is checked by the service, over the
    transition table (accepting is the committee's, confirming the household's...)."""
    found = load(service.get_or_404, report_id)
    form = MoveForm()
    action = form.action.data or ""
    if form.validate_on_submit():
        try:
            service.move(found, action, current_user, reason=form.reason.data,
                         assignee=form.assignee.data, due_on=form.due_on.data,
                         photo=request.files.get("photo"), note=form.note.data)
        except ValidationFailed as exc:
            db.session.rollback()
            apply_errors(form, exc)
        except Conflict as exc:
            db.session.rollback()
            apply_conflict(form, exc)
        else:
            db.session.commit()
            flash(_("Done: %(state)s.", state=found.state_label), "success")
            return redirect(url_for("feedback.show", report_id=found.id))
    found = load(service.get_or_404, report_id)
    if action not in {a.value for a in Action}:
        form.form_errors.append(_("Choose a step to take."))
    return _page(found, {action: form}), 400


@bp.get("/feedback/")
@require("feedback.list")
def index() -> str:
    """The reports of the compounds in the user's scope: overdue first, then new ones."""
    state = request.args.get("state") or None
    if state not in {*(s.value for s in State), "overdue", None}:
        state = None
    reports = service.staff_reports(compound_scope(current_user, "feedback.list"), state)
    return render_template("feedback/index.html", reports=reports, state=state,
                           state_labels=STATE_LABELS, is_overdue=service.is_overdue)


@bp.get("/compounds/<int:compound_id>/feedback")
@require("public.view")
def public(compound_id: int) -> str:
    """Every report of a compound for everyone, by building only, as it prints on A4."""
    compound = db.session.get(Compound, compound_id)
    if compound is None:
        raise NotFound(_("No such compound."))
    now = service.utcnow()
    return render_template("feedback/public.html", compound=compound, as_of=now,
                           rows=service.public_rows(compound.id, now), state_labels=STATE_LABELS)


@bp.route("/consultations/<int:consultation_id>/feedback/warranty", methods=["GET", "POST"])
@require("feedback.manage")
def warranty(consultation_id: int) -> Response | str | tuple[str, int]:
    """The committee sets how long after the result notice defects are accepted."""
    consultation = loading.load(consultation_id)
    form = WarrantyForm()
    if not form.is_submitted():
        form.months.data = str(consultation.warranty_months)
    if save_form(form, lambda: service.set_warranty(current_user, consultation,
                                                    form.months.data),
                 _("Warranty period saved.")):
        return redirect(url_for("feedback.warranty", consultation_id=consultation.id))
    return render_template("feedback/warranty.html", c=consultation, form=form,
                           period=service.warranty(consultation)), (
        400 if form.is_submitted() else 200)
