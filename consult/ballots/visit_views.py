"""Door-to-door follow-up (再入户): the visit lists of a running vote or survey, their split
among teams (shown before it is saved), the printed visit sheets, and each visit's outcome.

Routes of the ``ballots`` blueprint (imported at the end of ``ballots.views``).
"""

from __future__ import annotations

from typing import Any

from flask import flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user
from werkzeug.wrappers import Response

from consult.ballots import entries, explain, visits
from consult.ballots import service as ballots
from consult.ballots.forms import VisitListForm, VisitRecordForm
from consult.ballots.models import (
    BALLOT_CHANNEL_LABELS,
    VISIT_OUTCOME_LABELS,
    BallotChannel,
    Visit,
    VisitList,
)
from consult.ballots.views import _choice_options, _submitted_choices, bp
from consult.consultations.models import Consultation
from consult.core.errors import Conflict, NotFound, ValidationFailed
from consult.core.forms import apply_errors, options
from consult.core.policy import can, require
from consult.extensions import db
from consult.process import loading, visit_sheets


def _list_of(consultation: Consultation, visit_list_id: int) -> VisitList:
    visit_list = visits.get_list_or_404(visit_list_id)
    if visit_list.consultation_id != consultation.id:
        raise NotFound(_("No such visit list."))
    return visit_list


def _remaining(consultation: Consultation) -> dict[str, Any] | None:
    """The live tally in words: each item's conditions with "short by …" where missed."""
    data = ballots.current_tally(consultation)
    return explain.reword(data) if data is not None else None


@bp.get("/<int:consultation_id>/visits")
@require("visits.view")
def visits_index(consultation_id: int) -> str:
    """The follow-up visit lists of a consultation."""
    consultation = loading.load(consultation_id)
    lists = visits.lists_of(consultation)
    return render_template("ballots/visits/index.html", c=consultation, lists=lists,
                           progress={v.id: visits.totals(visits.progress(v)) for v in lists},
                           reason_labels=visits.REASON_LABELS,
                           can_manage=can(current_user, "visits.manage", consultation))


def _list_form(consultation: Consultation) -> VisitListForm:
    form = VisitListForm()
    form.reasons.choices = options((r, visits.REASON_LABELS[r])
                                   for r in visits.reasons_offered(consultation))
    form.building.choices = options([("", _("All buildings"))]
                                    + [(b, b) for b in ballots.roll_buildings(consultation)])
    return form


@bp.route("/<int:consultation_id>/visits/new", methods=["GET", "POST"])
@require("visits.manage")
def visits_new(consultation_id: int) -> Response | str | tuple[str, int]:
    """Make a visit list: the filters and teams, then the split shown, then saved."""
    consultation = loading.load(consultation_id)
    form = _list_form(consultation)
    planned = None
    if not form.is_submitted():
        form.reasons.data = [visits.NOT_VOTED]
    elif form.validate():
        try:
            planned = visits.plan(consultation, form.reasons.data or [], form.building.data,
                                  form.teams.data or "", form.mode.data or "")
            if request.form.get("confirmed") == "1":
                visit_list = visits.create_list(current_user, consultation, planned)
                db.session.commit()
                flash(_("Visit list saved: %(households)d households among %(teams)d teams.",
                        households=planned.total, teams=len(planned.teams)), "success")
                return redirect(url_for("ballots.visit_list", consultation_id=consultation.id,
                                        visit_list_id=visit_list.id))
        except ValidationFailed as exc:
            db.session.rollback()
            apply_errors(form, exc)
            planned = None
    status = 400 if form.is_submitted() and planned is None else 200
    return render_template("ballots/visits/new.html", c=consultation, form=form,
                           planned=planned, reason_labels=visits.REASON_LABELS,
                           open=consultation.vote_is_open()), status


@bp.get("/<int:consultation_id>/visits/<int:visit_list_id>")
@require("visits.view")
def visit_list(consultation_id: int, visit_list_id: int) -> str:
    """A visit list: each team's progress, the distance to the thresholds, the households."""
    consultation = loading.load(consultation_id)
    found = _list_of(consultation, visit_list_id)
    teams = visits.progress(found)
    team_id = request.args.get("team", type=int)
    return render_template(
        "ballots/visits/show.html", c=consultation, visit_list=found, teams=teams,
        total=visits.totals(teams), rows=visits.rows(found), team_id=team_id,
        entry_states=visits.entry_states(found),
        reason_labels=visits.REASON_LABELS, outcome_labels=VISIT_OUTCOME_LABELS,
        tally=_remaining(consultation), choice_labels=explain.CHOICE_LABELS,
        can_record=can(current_user, "visits.record", consultation))


@bp.get("/<int:consultation_id>/visits/<int:visit_list_id>/sheets.pdf")
@require("visits.view")
def visit_sheets_pdf(consultation_id: int, visit_list_id: int) -> Response:
    """The A4 visit sheets: every team (a page break between teams), or ``?team=<id>``."""
    consultation = loading.load(consultation_id)
    found = _list_of(consultation, visit_list_id)
    team = None
    if request.args.get("team"):
        team = next((t for t in found.teams if str(t.id) == request.args["team"]), None)
        if team is None:
            raise NotFound(_("No such team."))
    data = visit_sheets.sheets_pdf(found, team)
    name = visit_sheets.file_name(found, team)
    from urllib.parse import quote
    return Response(data, mimetype="application/pdf", headers={
        "Content-Disposition": f"inline; filename*=UTF-8''{quote(name)}"})


@bp.route("/<int:consultation_id>/visits/<int:visit_list_id>/<int:visit_id>",
          methods=["GET", "POST"])
@require("visits.record")
def visit(consultation_id: int, visit_list_id: int, visit_id: int
          ) -> Response | str | tuple[str, int]:
    """One household's visit (the sheet's QR code opens it): record what it found."""
    consultation = loading.load(consultation_id)
    found = _list_of(consultation, visit_list_id)
    item: Visit = visits.get_visit_or_404(visit_id)
    if item.visit_list_id != found.id:
        raise NotFound(_("No such visit."))
    roll = ballots.roll_entry_for(consultation, item.household_id)
    form = VisitRecordForm()
    form.outcome.choices = options(VISIT_OUTCOME_LABELS.items())
    errors: dict[str, list[str]] = {}
    chosen = (_submitted_choices(consultation, request.form)
              if form.is_submitted() else {})
    if form.validate_on_submit():
        answered = form.outcome.data == "answered"
        try:
            visits.record_visit(current_user, item, form.outcome.data or "",
                                chosen if answered else {}, form.note.data or "")
        except (ValidationFailed, Conflict) as exc:
            db.session.rollback()
            if isinstance(exc, ValidationFailed):
                errors = exc.errors
                apply_errors(form, exc)
            else:
                form.outcome.errors = [*form.outcome.errors, exc.message]
        else:
            label = VISIT_OUTCOME_LABELS[visits.VisitOutcome(form.outcome.data)]
            db.session.commit()
            flash(_("Visit recorded: %(outcome)s.", outcome=label), "success")
            return redirect(url_for("ballots.visit_list", consultation_id=consultation.id,
                                    visit_list_id=found.id, team=item.team_id))
    elif not form.is_submitted() and item.outcome:
        form.outcome.data = item.outcome
        form.note.data = item.note or ""
    current = ballots.ballot_of(consultation, item.household_id)
    return render_template(
        "ballots/visits/visit.html", c=consultation, visit_list=found, visit=item, roll=roll,
        form=form, chosen=chosen, errors=errors, current=current,
        own=ballots.is_households_own(current),
        channel_labels=BALLOT_CHANNEL_LABELS, reason_labels=visits.REASON_LABELS,
        reason_needs=visits.REASON_NEEDS,
        choices=_choice_options(consultation, BallotChannel.DOOR_TO_DOOR),
        case=entries.open_case(consultation, item.household_id),
        can_correct=can(current_user, "ballot.enter", consultation)), (
        400 if errors or form.errors else 200)
