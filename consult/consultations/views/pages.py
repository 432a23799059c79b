"""Consultation list, overview, settings, scope and stage steps."""

from __future__ import annotations

from flask import flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user
from werkzeug.wrappers import Response

from consult.ballots import service as ballots
from consult.ballots.tally import Rule
from consult.consultations import loading, overview, service, workflow
from consult.consultations.forms.settings import ConsultationForm, ScopeForm, StageForm
from consult.consultations.states import Action, Stage
from consult.consultations.views import bp
from consult.core.errors import Conflict, ValidationFailed
from consult.core.forms import options, page_number, page_size, save_form
from consult.core.policy import authorize, compound_scope, require
from consult.core.times import local_to_utc, utc_to_local
from consult.extensions import db
from consult.registry import service as registry
from consult.registry.models import Compound


@bp.get("/")
@require("consultation.view")
def index() -> str:
    scope = compound_scope(current_user, "consultation.manage")
    stage = request.args.get("stage", "")
    stage = stage if stage in {s.value for s in Stage} else ""
    page = db.paginate(service.listing(scope, stage=stage or None), page=page_number(),
                       per_page=page_size(), error_out=False)
    return render_template("consultations/index.html", page=page, stage=stage,
                           counts=service.stage_counts(scope),
                           can_create=scope is None or bool(scope),
                           stage_label=workflow.stage_label, stages=list(Stage))


def _settings(form: ConsultationForm) -> service.Settings:
    return service.settings(
        title=form.title.data, summary=form.summary.data, rule_code=form.rule_code.data,
        rule_json=form.rule_json(), secrecy=form.secrecy.data, locale=form.locale.data,
        solicitation_deadline=local_to_utc(form.solicitation_deadline.data),
        vote_deadline=local_to_utc(form.vote_deadline.data),
        publicity_days=form.publicity_days.data, proxy_cap=form.proxy_cap.data,
        double_entry=form.double_entry_value(),
        proxy_document_required=bool(form.proxy_document_required.data))


@bp.route("/new", methods=["GET", "POST"])
@require("consultation.manage")
def new() -> Response | str:
    form = ConsultationForm()
    compounds = registry.compounds_in_scope(compound_scope(current_user, "consultation.manage"))
    form.compound_id.choices = options((c.id, c.full_name) for c in compounds)
    if request.method == "GET":
        form.compound_id.data = request.args.get("compound", type=int)

    def create() -> object:
        compound = registry.get_or_404(Compound, form.compound_id.data)
        authorize(current_user, "consultation.manage", compound)
        return service.create(current_user, compound, _settings(form))

    saved = save_form(form, create, _("Consultation created as a draft. Add its items next."))
    if saved:
        return redirect(url_for("consultations.show", consultation_id=saved.value.id))
    return render_template("consultations/form.html", form=form, consultation=None)


@bp.get("/<int:consultation_id>")
@require("consultation.view")
def show(consultation_id: int) -> str:
    consultation = loading.load(consultation_id)
    view = overview.build(consultation, current_user)
    return render_template("consultations/show.html", view=view, c=consultation,
                           stage_form=StageForm(), stage_label=workflow.stage_label,
                           action_labels=workflow.ACTION_LABELS,
                           action_effects=workflow.ACTION_EFFECTS,
                           needs_reason=workflow.needs_reason, Stage=Stage)


@bp.route("/<int:consultation_id>/edit", methods=["GET", "POST"])
@require("consultation.manage")
def edit(consultation_id: int) -> Response | str:
    consultation = loading.load_managed(consultation_id)
    form = ConsultationForm(obj=consultation)
    del form.compound_id
    if request.method == "GET":
        form.solicitation_deadline.data = utc_to_local(consultation.solicitation_deadline)
        form.vote_deadline.data = utc_to_local(consultation.vote_deadline)
        form.show_double_entry(consultation.double_entry)
        rule = Rule.from_json(consultation.rule_json)
        if consultation.rule_code == "custom":
            for row, condition in zip(form.conditions, rule.conditions, strict=False):
                row.form.measure.data = condition.measure.value
                row.form.count.data = condition.count.value
                row.form.base.data = condition.base.value
                row.form.comparison.data = condition.comparison.value
                row.form.fraction.data = (f"{condition.fraction.numerator}/"
                                          f"{condition.fraction.denominator}")
    if save_form(form, lambda: service.update(current_user, consultation, _settings(form)),
                 _("Saved.")):
        return redirect(url_for("consultations.show", consultation_id=consultation.id))
    return render_template("consultations/form.html", form=form, consultation=consultation)


@bp.route("/<int:consultation_id>/scope", methods=["GET", "POST"])
@require("consultation.manage")
def scope(consultation_id: int) -> Response | str:
    consultation = loading.load_managed(consultation_id)
    form = ScopeForm()
    if form.validate_on_submit():
        parts = []
        for value in request.form.getlist("part"):
            kind, _sep, rest = value.partition(":")
            building_id, _sep, unit = rest.partition(":")
            if kind in ("building", "unit") and building_id.isdecimal():
                parts.append((int(building_id), unit if kind == "unit" else None))
        try:
            service.set_scope(current_user, consultation, parts)
        except (ValidationFailed, Conflict) as exc:
            db.session.rollback()
            flash(exc.message, "danger")
        else:
            db.session.commit()
            flash(_("Scope saved: %(scope)s.", scope=service.scope_text(consultation)), "success")
            return redirect(url_for("consultations.show", consultation_id=consultation.id))
    chosen = {(s.building_id, s.unit) for s in consultation.scopes}
    return render_template("consultations/scope.html", c=consultation, form=form,
                           units=service.units_by_building(consultation.compound),
                           chosen=chosen, count=ballots.count_in_scope(consultation))


@bp.post("/<int:consultation_id>/stage")
@require("consultation.manage")
def stage(consultation_id: int) -> Response:
    consultation = loading.load_managed(consultation_id)
    form = StageForm()
    if form.validate_on_submit():
        try:
            action = Action(form.action.data)
            workflow.apply(consultation, action, current_user, form.reason.data or "")
        except ValueError:
            flash(_("Unknown step."), "danger")
        except (Conflict, ValidationFailed) as exc:
            db.session.rollback()
            flash(exc.message, "danger")
        else:
            db.session.commit()
            flash(_("Done: %(step)s.", step=workflow.ACTION_LABELS[action]), "success")
    else:
        flash(_("The form could not be read."), "danger")
    return redirect(url_for("consultations.show", consultation_id=consultation.id))
