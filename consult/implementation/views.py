"""Implementation pages: progress, the item checklist, inspections, and evaluation."""

from __future__ import annotations

from flask import Blueprint, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user
from werkzeug.wrappers import Response

from consult.consultations import service as consultations
from consult.consultations import states
from consult.consultations.models import Consultation
from consult.consultations.states import Stage
from consult.core.forms import page_number, page_size, save_form
from consult.core.markup import render_markdown
from consult.core.models import utcnow
from consult.core.policy import can, require
from consult.extensions import db
from consult.implementation import service
from consult.implementation.forms import (
    CompleteItemForm,
    EvaluationForm,
    InspectionForm,
    ProgressForm,
    item_choices,
)
from consult.implementation.models import RATING_LABELS, Rating
from consult.process import loading

bp = Blueprint("implementation", __name__, url_prefix="/consultations")


def _works_url(consultation: Consultation) -> str:
    return url_for("implementation.works", consultation_id=consultation.id)


@bp.get("/<int:consultation_id>/works")
@require("consultation.view")
def works(consultation_id: int) -> str:
    consultation = loading.load(consultation_id)
    service.check_works_started(consultation)
    page = db.paginate(service.progress_query(consultation), page=page_number(),
                       per_page=page_size(), error_out=False)
    notice = service.result_notice(consultation)
    implementing = consultation.stage == Stage.IMPLEMENTING
    checklist = service.checklist(consultation)
    return render_template(
        "implementation/works.html", consultation=consultation, page=page,
        overall=service.overall_percent(consultation), totals=service.totals(consultation),
        checklist=checklist, progress=service.checklist_progress(checklist),
        final_report=service.has_final_report(consultation),
        inspections=service.inspections(consultation), notice=notice,
        tally=service.evaluation_tally(consultation) if notice else None,
        evaluation_open=service.evaluation_open(consultation),
        may_log=implementing and can(current_user, "implementation.log", consultation),
        may_inspect=(consultation.stage in (Stage.IMPLEMENTING, Stage.RESULT_PUBLIC)
                     and can(current_user, "implementation.inspect", consultation)),
        may_evaluate=can(current_user, "consultation.participate"),
        comments=(service.evaluation_comments(consultation)
                  if notice and can(current_user, "ballot.inspect", consultation) else None),
        stage_label=states.stage_label(consultation.stage), markdown=render_markdown,
        money=consultations.format_money, rating_label=service.rating_label,
        ratings=[r.value for r in Rating] + [service.NOT_RATED])


@bp.route("/<int:consultation_id>/works/progress", methods=["GET", "POST"])
@require("implementation.log")
def progress_new(consultation_id: int) -> Response | str:
    consultation = loading.load(consultation_id)
    service.check_logging_open(consultation)
    form = ProgressForm()
    form.item_id.choices = item_choices(service.implementable_items(consultation),
                                        _("The whole works"))
    if request.method == "GET" and request.args.get("final") == "1":
        # Linked as "Record the final report": the form starts as one.
        form.percent.data = "100"
        form.is_final.data = True
    if save_form(form, lambda: service.add_progress(
            current_user, consultation, service.progress_data(
                item_id=form.item_id.data, percent=form.percent.data, spend=form.spend.data,
                note=form.note.data, is_final=bool(form.is_final.data)),
            form.photos.data), _("Progress recorded.")):
        return redirect(_works_url(consultation))
    return render_template("implementation/progress_form.html", form=form,
                           consultation=consultation)


@bp.route("/<int:consultation_id>/works/items/<int:item_id>/complete", methods=["GET", "POST"])
@require("implementation.log")
def item_complete(consultation_id: int, item_id: int) -> Response | str:
    consultation = loading.load(consultation_id)
    item = consultations.get_item_or_404(consultation, item_id)
    service.check_item_can_be_ticked(consultation, item)
    form = CompleteItemForm()
    if request.method == "GET" and item.completed_at is not None:
        form.final_cost.data = consultations.format_money(item.final_cost_fen)
        form.note.data = item.completion_note
    corrected = item.completed_at is not None
    if save_form(form, lambda: service.complete_item(
            current_user, item, service.final_cost(form.final_cost.data), form.note.data),
            _("Correction saved.") if corrected else _("Item ticked off.")):
        return redirect(_works_url(consultation))
    return render_template("implementation/item_form.html", form=form, item=item,
                           consultation=consultation, money=consultations.format_money)


@bp.route("/<int:consultation_id>/works/inspections", methods=["GET", "POST"])
@require("implementation.inspect")
def inspection_new(consultation_id: int) -> Response | str:
    consultation = loading.load(consultation_id)
    service.check_inspection_open(consultation)
    form = InspectionForm()
    form.item_id.choices = item_choices(service.implementable_items(consultation),
                                        _("The works in general"))
    if save_form(form, lambda: service.add_inspection(
            current_user, consultation, form.text.data, form.item_id.data, form.photo.data),
            _("Inspection note added.")):
        return redirect(_works_url(consultation))
    return render_template("implementation/inspection_form.html", form=form,
                           consultation=consultation)


@bp.route("/<int:consultation_id>/evaluation", methods=["GET", "POST"])
@require("consultation.participate")
def evaluate(consultation_id: int) -> Response | str:
    consultation, household = loading.load_participating(consultation_id)
    existing = service.evaluation_of(consultation, household)
    form = EvaluationForm(obj=existing)
    if request.method == "POST":
        saved = save_form(form, lambda: service.evaluate(
            current_user, consultation, household, form.rating.data, form.comment.data))
        if saved:
            return redirect(url_for("implementation.evaluate", consultation_id=consultation.id,
                                    saved=1))
    return render_template(
        "implementation/evaluate.html", form=form, consultation=consultation,
        household=household, evaluation=existing, notice=service.result_notice(consultation),
        open=service.evaluation_open(consultation, utcnow()),
        works_started=service.works_started(consultation),
        just_saved=request.args.get("saved") == "1" and existing is not None,
        labels={k.value: v for k, v in RATING_LABELS.items()})
