"""Consultation list, overview, settings, scope and stage steps."""

from __future__ import annotations

from flask import flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user
from werkzeug.wrappers import Response

from consult.ballots import service as ballots
from consult.ballots.tally import Rule
from consult.consultations import questionnaires, service, states
from consult.consultations.forms.settings import ConsultationForm, ScopeForm, StageForm
from consult.consultations.models import Consultation
from consult.consultations.states import Action, Stage
from consult.consultations.views import bp
from consult.core.errors import Conflict, ValidationFailed
from consult.core.forms import id_arg, options, page_number, page_size, save_form, text_arg
from consult.core.policy import compound_scope, load, require
from consult.core.times import local_to_utc, utc_to_local
from consult.extensions import db
from consult.process import loading, overview, workflow
from consult.registry import service as registry
from consult.registry.models import Compound

# The longest search text taken from the query string (a title has at most 200 characters).
MAX_SEARCH = 100


def _can_create() -> bool:
    """Whether the user runs consultations somewhere (reading drafts is not enough)."""
    manage = compound_scope(current_user, "consultation.manage")
    return manage is None or bool(manage)


@bp.get("/")
@require("consultation.view")
def index() -> str:
    scope = compound_scope(current_user, "consultation.view_drafts")
    stage = request.args.get("stage", "")
    stage = stage if stage in {s.value for s in Stage} else ""
    search = text_arg("q", MAX_SEARCH)
    compound_id = id_arg("compound")
    # The compound filter offers the compounds the user manages consultations in.
    compounds = registry.compounds_in_scope(scope) if scope is None or scope else []
    page = db.paginate(service.listing(scope, stage=stage or None, compound_id=compound_id,
                                       search=search),
                       page=page_number(), per_page=page_size(), error_out=False)
    return render_template("consultations/index.html", page=page, stage=stage,
                           counts=service.stage_counts(scope, compound_id=compound_id,
                                                       search=search),
                           search=search, compound_id=compound_id, compounds=compounds,
                           can_create=_can_create(),
                           stage_label=states.stage_label, stages=list(Stage))


def _settings(form: ConsultationForm, rule_json: str | None = None) -> service.Settings:
    """The form's settings; ``rule_json``: the stored local rule, when its rows are frozen
    (and so not sent)."""
    return service.settings(
        title=form.title.data, summary=form.summary.data, rule_code=form.rule_code.data,
        rule_json=rule_json or form.rule_json(), secrecy=form.secrecy.data,
        locale=form.locale.data,
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

    def create() -> Consultation:
        return service.create(current_user, load(Compound, form.compound_id.data),
                              _settings(form))

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
                           questionnaire=questionnaires.questionnaire_of(consultation),
                           stage_form=StageForm(), stage_label=states.stage_label,
                           action_labels=workflow.ACTION_LABELS,
                           action_effects=workflow.ACTION_EFFECTS,
                           needs_reason=workflow.needs_reason, Stage=Stage)


@bp.route("/<int:consultation_id>/edit", methods=["GET", "POST"])
@require("consultation.manage")
def edit(consultation_id: int) -> Response | str:
    consultation = loading.load(consultation_id)
    frozen = service.frozen_settings(consultation)
    form = ConsultationForm(obj=consultation)
    del form.compound_id
    stored_rule = None
    if request.method == "POST":
        # Frozen fields are shown disabled, so a browser does not send them: they keep their
        # stored values. One sent anyway, changed, is refused by the service at its field.
        _keep_frozen(form, consultation, frozen)
        if "conditions" in frozen and not any(k.startswith("conditions-") for k in request.form):
            stored_rule = consultation.rule_json
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
    if save_form(form, lambda: service.update(current_user, consultation,
                                              _settings(form, stored_rule)),
                 _("Saved.")):
        return redirect(url_for("consultations.show", consultation_id=consultation.id))
    return render_template("consultations/form.html", form=form, consultation=consultation,
                           frozen=frozen,
                           all_frozen=set(service.SETTING_FIELDS) <= set(frozen))


def _keep_frozen(form: ConsultationForm, consultation: Consultation,
                 frozen: dict[str, str]) -> None:
    """Give the frozen fields the request leaves out their stored values."""
    for name in frozen:
        field = getattr(form, name, None)
        if field is None or name == "conditions" or field.name in request.form:
            continue
        if name == "double_entry":
            form.show_double_entry(consultation.double_entry)
        elif name in ("solicitation_deadline", "vote_deadline"):
            field.data = utc_to_local(getattr(consultation, name))
        else:
            field.data = getattr(consultation, name)


@bp.route("/<int:consultation_id>/scope", methods=["GET", "POST"])
@require("consultation.manage")
def scope(consultation_id: int) -> Response | tuple[str, int]:
    consultation = loading.load(consultation_id)
    form = ScopeForm()
    refused: set[tuple[int, str | None]] | None = None
    status = 200
    if form.validate_on_submit():
        parts: list[tuple[int, str | None]] = []
        for value in request.form.getlist("part"):
            kind, _sep, rest = value.partition(":")
            building_id, _sep, unit = rest.partition(":")
            if kind in ("building", "unit") and building_id.isdecimal():
                parts.append((int(building_id), unit if kind == "unit" else None))
        try:
            service.set_scope(current_user, consultation, parts)
        except (ValidationFailed, Conflict) as exc:
            db.session.rollback()
            # The refusal sits on the form, which comes back ticked as sent.
            form.form_errors.append(exc.message)
            refused = set(parts)
            status = exc.status_code
        else:
            db.session.commit()
            flash(_("Scope saved: %(scope)s.", scope=service.scope_text(consultation)), "success")
            return redirect(url_for("consultations.show", consultation_id=consultation.id))
    chosen = refused if refused is not None else {
        (s.building_id, s.unit) for s in consultation.scopes}
    return render_template("consultations/scope.html", c=consultation, form=form,
                           units=service.units_by_building(consultation.compound),
                           chosen=chosen, count=ballots.count_in_scope(consultation),
                           frozen=service.scope_frozen(consultation)), status


@bp.post("/<int:consultation_id>/stage")
@require("consultation.manage")
def stage(consultation_id: int) -> Response | str:
    """Take a stage step; an irreversible one first shows what it will do and asks again."""
    consultation = loading.load(consultation_id)
    back = redirect(url_for("consultations.show", consultation_id=consultation.id))
    form = StageForm()
    if not form.validate_on_submit():
        flash(_("The form could not be read."), "danger")
        return back
    try:
        action = Action(form.action.data)
    except ValueError:
        flash(_("Unknown step."), "danger")
        return back
    reason = form.reason.data or ""
    try:
        if workflow.needs_confirmation(action) and form.confirmed.data != "1":
            workflow.check(consultation, action, reason)
            return render_template(
                "consultations/confirm_step.html", c=consultation, form=form, action=action,
                label=workflow.ACTION_LABELS[action], needs_reason=workflow.needs_reason(action),
                consequences=workflow.consequences(consultation, action))
        workflow.apply(consultation, action, current_user, reason)
    except (Conflict, ValidationFailed) as exc:
        db.session.rollback()
        flash(exc.message, "danger")
        return back
    db.session.commit()
    flash(_("Done: %(step)s.", step=workflow.ACTION_LABELS[action]), "success")
    return back
