"""Scoring round pages: the rounds, opening one, scoring, closing, and the ranking notice."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user
from werkzeug.wrappers import Response

from consult.core.errors import Conflict, NotFound, ValidationFailed
from consult.core.forms import options, save_form, text_arg
from consult.core.models import utcnow
from consult.core.policy import authorize, can, require
from consult.extensions import db
from consult.notices import service as notices
from consult.notices.views import pdf_response
from consult.registry.forms import ConfirmForm
from consult.scoring import printing
from consult.scoring import service as scoring
from consult.scoring.forms import RoundForm, score_form
from consult.scoring.models import ScoringRound

bp = Blueprint("scoring", __name__)


@bp.get("/scoring")
@require("scoring.view")
def index() -> str:
    return render_template("scoring/index.html", rounds=scoring.rounds_for(current_user),
                           can_manage=can(current_user, "scoring.manage"))


def _round_form(round_: ScoringRound | None) -> RoundForm:
    form = RoundForm()
    form.compound_ids.choices = options([(c.id, f"{c.community.name} · {c.name}")
                                         for c in scoring.compound_choices()])
    if request.method == "GET":
        if round_ is None:
            today = utcnow().date()
            form.period_start.data = today
            form.period_end.data = today + timedelta(days=60)
            form.criteria.data = scoring.starting_sheet()
        else:
            form.name.data = round_.name
            form.period_start.data = round_.period_start
            form.period_end.data = round_.period_end
            form.compound_ids.data = [p.compound_id for p in round_.participants]
            form.criteria.data = scoring.sheet_text(round_)
            form.inspector_weight_pct.data = round_.inspector_weight_pct
            form.decimals.data = round_.decimals
            form.honour_count.data = round_.honour_count
            form.outlier_points.data = round_.outlier_points
    return form


def _input(form: RoundForm) -> scoring.RoundInput:
    """The form's values for the service; the sheet's lines are checked there."""
    return scoring.RoundInput(
        name=form.name.data or "", period_start=form.period_start.data,
        period_end=form.period_end.data, compound_ids=list(form.compound_ids.data or []),
        criteria=scoring.parse_sheet(form.criteria.data or ""),
        inspector_weight_pct=form.inspector_weight_pct.data or 0,
        decimals=form.decimals.data or 0, honour_count=form.honour_count.data or 0,
        outlier_points=form.outlier_points.data or 0)


@bp.route("/scoring/new", methods=["GET", "POST"])
@require("scoring.manage")
def new() -> Response | tuple[str, int] | str:
    form = _round_form(None)
    saved = save_form(form, lambda: scoring.open_round(current_user, _input(form)),
                      _("The round is open: the compounds' committees can score now."))
    if saved:
        return redirect(url_for("scoring.show", round_id=saved.value.id))
    return render_template("scoring/form.html", form=form, round=None), (
        400 if form.is_submitted() else 200)


@bp.route("/scoring/<int:round_id>/edit", methods=["GET", "POST"])
@require("scoring.manage")
def edit(round_id: int) -> Response | tuple[str, int] | str:
    round_ = scoring.visible_round(current_user, round_id, "scoring.manage")
    form = _round_form(round_)
    saved = save_form(form, lambda: scoring.update_round(current_user, round_, _input(form)),
                      _("The round is saved."))
    if saved:
        return redirect(url_for("scoring.show", round_id=round_.id))
    return render_template("scoring/form.html", form=form, round=round_,
                           started=scoring.score_count(round_) > 0), (
        400 if form.is_submitted() else 200)


@bp.get("/scoring/<int:round_id>")
@require("scoring.view")
def show(round_id: int) -> str:
    round_ = scoring.visible_round(current_user, round_id)
    mine = [p for p in round_.participants if can(current_user, "scoring.score", p)]
    return render_template(
        "scoring/show.html", round=round_, progress=scoring.progress(round_), mine=mine,
        can_manage=can(current_user, "scoring.manage"),
        inspectors=scoring.inspectors_of(round_), notice=scoring.ranking_notice(round_),
        started=scoring.score_count(round_) > 0)


def _sheet_page(round_: ScoringRound, form: Any, target: Any, scorer: Any | None,
                action: str, status: int = 200) -> tuple[str, int]:
    return render_template("scoring/score.html", round=round_, form=form, target=target,
                           scorer=scorer, action=action), status


def _fill(form: Any, round_: ScoringRound, key: str, target_id: int) -> None:
    if request.method != "GET":
        return
    for criterion_id, points in scoring.scores_of(round_, key, target_id).items():
        getattr(form, f"c{criterion_id}").data = scoring.compute.shown(points, round_.decimals)


def _values(form: Any, round_: ScoringRound) -> dict[int, str]:
    return {c.id: getattr(form, f"c{c.id}").data or "" for c in round_.criteria}


@bp.route("/scoring/<int:round_id>/compounds/<int:scorer_id>/score/<int:target_id>",
          methods=["GET", "POST"])
@require("scoring.score")
def score(round_id: int, scorer_id: int, target_id: int) -> Response | tuple[str, int]:
    """A compound's committee scores another compound on every criterion."""
    round_ = scoring.visible_round(current_user, round_id, "scoring.score")
    scorer = next((p for p in round_.participants if p.compound_id == scorer_id), None)
    target = next((p for p in round_.participants if p.compound_id == target_id), None)
    if scorer is None or target is None:
        raise NotFound(_("This compound does not take part in the round."))
    authorize(current_user, "scoring.score", scorer)
    form = score_form(round_.criteria, round_.decimals, with_inspector=False)
    _fill(form, round_, f"c:{scorer_id}", target_id)
    action = url_for("scoring.score", round_id=round_.id, scorer_id=scorer_id,
                     target_id=target_id)
    if save_form(form, lambda: scoring.record_scores(current_user, round_, scorer_id,
                                                     target_id, _values(form, round_)),
                 _("The scores for %(name)s are saved.", name=target.compound.name)):
        return redirect(url_for("scoring.show", round_id=round_.id))
    return _sheet_page(round_, form, target, scorer, action,
                       400 if form.is_submitted() else 200)


@bp.route("/scoring/<int:round_id>/inspectors/score/<int:target_id>", methods=["GET", "POST"])
@require("scoring.manage")
def inspect(round_id: int, target_id: int) -> Response | tuple[str, int]:
    """The street office enters one of its inspectors' sheets for a compound."""
    round_ = scoring.visible_round(current_user, round_id, "scoring.manage")
    target = next((p for p in round_.participants if p.compound_id == target_id), None)
    if target is None:
        raise NotFound(_("This compound does not take part in the round."))
    form = score_form(round_.criteria, round_.decimals, with_inspector=True)
    name = text_arg("inspector", 50)  # no control characters: PostgreSQL refuses a NUL
    if request.method == "GET" and name:
        form.inspector.data = name
        _fill(form, round_, f"i:{name}", target_id)
    action = url_for("scoring.inspect", round_id=round_.id, target_id=target_id)
    if save_form(form, lambda: scoring.record_inspector_scores(
            current_user, round_, form.inspector.data or "", target_id, _values(form, round_)),
                 _("The inspector's scores for %(name)s are saved.", name=target.compound.name)):
        return redirect(url_for("scoring.show", round_id=round_.id))
    return _sheet_page(round_, form, target, None, action, 400 if form.is_submitted() else 200)


@bp.route("/scoring/<int:round_id>/close", methods=["GET", "POST"])
@require("scoring.manage")
def close(round_id: int) -> Response | str | tuple[str, int]:
    """Ask first, with the numbers; then close, compute, rank and publish."""
    round_ = scoring.visible_round(current_user, round_id, "scoring.manage")
    form = ConfirmForm()
    counts = scoring.progress(round_)
    if request.method == "POST" and request.form.get("confirmed") == "1":
        if not form.validate_on_submit():
            raise ValidationFailed(_("The form could not be read."))
        try:
            notice = scoring.close_round(current_user, round_)
        except Conflict as exc:
            db.session.rollback()
            flash(exc.message, "danger")
            return redirect(url_for("scoring.show", round_id=round_.id))
        db.session.commit()
        flash(_("The round is closed and its ranking published."), "success")
        return redirect(url_for("scoring.notice", ranking_id=notice.id))
    if not round_.is_open:
        flash(_("This round is closed already."), "info")
        return redirect(url_for("scoring.show", round_id=round_.id))
    return render_template("scoring/close.html", round=round_, progress=counts, form=form)


@bp.get("/scoring/notices/<int:ranking_id>")
@require("public.view")
def notice(ranking_id: int) -> str:
    """The published ranking: public, like every notice."""
    found = notices.get_notice_or_404(ranking_id)
    round_ = scoring.round_of_notice(found)
    return render_template("scoring/notice.html", notice=found, round=round_,
                           content=notices.content_of(found))


@bp.get("/scoring/notices/<int:ranking_id>.pdf")
@require("public.view")
def notice_pdf(ranking_id: int) -> Response:
    found = notices.get_notice_or_404(ranking_id)
    scoring.round_of_notice(found)
    return pdf_response(printing.ranking_file(found), printing.ranking_file_name(found),
                        f"ranking-{found.verify_code}.pdf", "public, max-age=3600")

