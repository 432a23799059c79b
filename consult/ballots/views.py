"""Voting pages: the resident's ballot (choose → review → receipt), the committee's entry of
paper, door-to-door and proxy ballots, the electoral roll and the tally."""

from __future__ import annotations

import hashlib
import json
import threading
from collections import OrderedDict
from typing import Any

from flask import (
    Blueprint,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_login import current_user
from markupsafe import Markup
from werkzeug.wrappers import Response

from consult.ballots import entries, explain, shares
from consult.ballots import service as ballots
from consult.ballots.explain import CHOICE_LABELS
from consult.ballots.forms import ConfirmVoteForm, RollExportForm
from consult.ballots.models import BallotChannel
from consult.consultations import service as consultation_service
from consult.consultations.models import Consultation, Secrecy
from consult.core import sorting
from consult.core.database import starts_reading
from consult.core.errors import NotFound, PermissionDenied, ValidationFailed
from consult.core.forms import page_number, page_size, text_arg
from consult.core.models import utcnow
from consult.core.pagination import paginate_rows
from consult.core.policy import authorize, can, require
from consult.extensions import db
from consult.process import loading, workflow

bp = Blueprint("ballots", __name__, url_prefix="/consultations")


def _submitted_choices(consultation: Consultation, source: Any) -> dict[int, str]:
    """Every ``item_<id>`` field of the form: the service refuses ids of other consultations."""
    chosen = {item.id: "" for item in consultation.items}
    for key, value in source.items():
        if key.startswith("item_"):
            if not key[5:].isdecimal():  # isdigit() would let "²" through to int()
                raise ValidationFailed(_("The ballot names an item that is not part of this "
                                         "consultation."))
            chosen[int(key[5:])] = value
    return chosen


def _choice_options(consultation: Consultation, channel: BallotChannel) -> list[tuple[str, str]]:
    return [(c.value, str(CHOICE_LABELS[c.value]))
            for c in ballots.allowed_choices(consultation, channel)]


# The session key of the answers chosen but not sent while the resident reads an item's page.
DRAFT_KEY = "vote_draft"


def _keep_draft(consultation: Consultation, household_id: int, chosen: dict[int, str]) -> None:
    """Remember unsent answers (only valid ones, one ballot at a time) in the signed session
    cookie, so that reading an item's details does not lose them."""
    allowed = {value for value, _label in _choice_options(consultation, BallotChannel.ONLINE)}
    session[DRAFT_KEY] = {"consultation": consultation.id, "household": household_id,
                          "choices": {str(k): v for k, v in chosen.items() if v in allowed}}


def _draft(consultation: Consultation, household_id: int) -> dict[int, str]:
    """The unsent answers kept for this ballot, if any."""
    draft = session.get(DRAFT_KEY)
    if not isinstance(draft, dict) or draft.get("consultation") != consultation.id \
            or draft.get("household") != household_id:
        return {}
    items = {item.id for item in consultation.items}
    return {int(k): str(v) for k, v in (draft.get("choices") or {}).items()
            if str(k).isdecimal() and int(k) in items}


@bp.route("/<int:consultation_id>/vote", methods=["GET", "POST"])
@starts_reading  # the POST only checks the answers and shows them for review
@require("consultation.participate")
def vote(consultation_id: int) -> Response | tuple[str, int] | str:
    """Screen 1: choose an answer for each item (POST goes on to the review screen, or, from
    an item's "Read the details" button, keeps the answers and shows that item)."""
    consultation, household = loading.load_participating(consultation_id)
    ballots.check_vote_open(consultation, utcnow())
    consultation_service.load_items(consultation)
    if ballots.roll_entry_for(consultation, household.id) is None:
        raise PermissionDenied(_("Your household is not on the electoral roll of this vote."))
    errors: dict[str, list[str]] = {}
    if request.method == "POST":
        form = ConfirmVoteForm()
        chosen = _submitted_choices(consultation, request.form)
        details = request.form.get("details", "")
        if form.validate_on_submit() and details:
            item_ids = {item.id for item in consultation.items}
            if not details.isdecimal() or int(details) not in item_ids:
                raise NotFound(_("No such item."))
            _keep_draft(consultation, household.id, chosen)
            return redirect(url_for("consultations.item", consultation_id=consultation_id,
                                    item_id=int(details), ballot=1))
        if form.validate_on_submit():
            try:
                answers = ballots.review(consultation, chosen, BallotChannel.ONLINE)
            except ValidationFailed as exc:
                errors = exc.errors
            else:
                return render_template("ballots/review.html", c=consultation, answers=answers,
                                       chosen=chosen, household=household,
                                       form=ConfirmVoteForm(
                                           submission=ballots.new_submission_token()))
    else:
        current = ballots.ballot_of(consultation, household.id)
        chosen = {c.item_id: c.choice for c in current.choices} if current else {}
        chosen.update(_draft(consultation, household.id))
        chosen.update({item.id: request.args[f"item_{item.id}"] for item in consultation.items
                       if request.args.get(f"item_{item.id}")})
    return render_template("ballots/vote.html", c=consultation, household=household,
                           chosen=chosen, errors=errors, form=ConfirmVoteForm(),
                           attachments=consultation_service.attachment_counts(consultation),
                           shares=shares.household_shares(consultation, household),
                           choices=_choice_options(consultation, BallotChannel.ONLINE)), (
        400 if errors else 200)


@bp.post("/<int:consultation_id>/vote/confirm")
@starts_reading  # everything is read and checked before ballots.cast takes the write lock
@require("consultation.participate")
def confirm(consultation_id: int) -> Response:
    """Screen 2 → 3: the reviewed answers are recorded and the receipt is shown."""
    consultation, household = loading.load_participating(consultation_id)
    consultation_service.load_items(consultation)
    form = ConfirmVoteForm()
    if not form.validate_on_submit():
        raise ValidationFailed(_("The form could not be read; please vote again."))
    try:
        ballots.cast(current_user, consultation, household,
                     _submitted_choices(consultation, request.form), BallotChannel.ONLINE,
                     submission=form.submission.data)
    except ballots.AlreadyRecorded as exc:
        db.session.rollback()
        flash(exc.message, "info")
        return redirect(url_for("ballots.receipt", consultation_id=consultation.id))
    db.session.commit()
    session.pop(DRAFT_KEY, None)
    flash(_("Your vote has been recorded."), "success")
    # The id from the address: ``consultation.id`` is expired by the commit and would be
    # read again in a new transaction.
    return redirect(url_for("ballots.receipt", consultation_id=consultation_id))


@bp.get("/<int:consultation_id>/ballot")
@require("consultation.participate")
def receipt(consultation_id: int) -> str:
    consultation, household = loading.load_participating(consultation_id)
    ballot = ballots.ballot_of(consultation, household.id)
    # What the committee corrected (when and why; not who: residents see "the committee").
    corrections = entries.corrections_of(consultation, household.id) if ballot else []
    return render_template("ballots/receipt.html", c=consultation, ballot=ballot,
                           household=household, answers=ballots.answers_of(consultation, ballot),
                           vote_open=consultation.vote_is_open(), corrections=corrections)


# --- committee ------------------------------------------------------------------------------


@bp.get("/<int:consultation_id>/ballots")
@require("ballot.inspect")
def index(consultation_id: int) -> Response | str:
    consultation = loading.load(consultation_id)
    status = text_arg("status", 20)
    building = text_arg("building", 50)
    room = text_arg("room", 40)
    sort = sorting.parse(request.args.get("sort"), list(ballots.BALLOT_LIST_SORTS), "address")
    entering = consultation.vote_is_open() or workflow.awaits_count(consultation)
    can_enter = can(current_user, "ballot.enter", consultation)
    search = ballots.room_search(room) if room else None
    if search and can_enter and entering:
        # One household with exactly that room: the member holds its paper, open its form.
        found = db.session.scalars(ballots.ballots_page_query(
            consultation, building=building or None, room=search[0]).limit(2)).all()
        if len(found) == 1:
            return redirect(url_for("ballots.enter", consultation_id=consultation_id,
                                    household_id=found[0].household_id))
    page = paginate_rows(ballots.ballots_page_query(consultation, status=status or None,
                                                    building=building or None, sort=sort,
                                                    room=search[1] if search else None),
                         page_number(), page_size())
    return render_template(
        "ballots/index.html", c=consultation, page=page, status=status, building=building,
        room=room,
        buildings=ballots.roll_buildings(consultation), totals=ballots.roll_totals(consultation),
        channels=ballots.counts_by_channel(consultation), export_form=RollExportForm(),
        show_choices=consultation.secrecy == Secrecy.OPEN, pending=entries.pending(consultation),
        double_entry=ballots.double_entry_on(consultation),
        can_enter=can_enter, entering=entering, sort=sort,
        # Staff who record door-to-door answers only (grid workers): that link alone.
        can_visit=not can_enter and can(current_user, "ballot.visit", consultation))


@bp.post("/<int:consultation_id>/roll/export")
@require("ballot.inspect")
def export_roll(consultation_id: int) -> Response:
    consultation = loading.load(consultation_id)
    form = RollExportForm()
    fmt = form.fmt.data if form.validate_on_submit() else ""
    data = ballots.export_roll(current_user, consultation, fmt)
    db.session.commit()
    mimetype = ("text/csv; charset=utf-8" if fmt == "csv" else
                "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")
    return Response(data, mimetype=mimetype, headers={
        "Content-Disposition": f'attachment; filename="roll-{consultation.id}-'
                               f'{consultation.round}.{fmt}"'})


@bp.get("/<int:consultation_id>/tally")
@require("consultation.view")
def tally(consultation_id: int) -> str:
    """The frozen result once the vote closed (public); the live count while it runs (staff)."""
    consultation = loading.load(consultation_id)
    if ballots.frozen_tally(consultation) is None:
        authorize(current_user, "ballot.inspect", consultation)  # the live count is internal
    data = ballots.current_tally(consultation, live=True)
    if data is None:
        raise NotFound(_("Voting has not started yet."))
    waiting = entries.pending(consultation) if data.get("provisional") else None
    worded = explain.reword(data)
    return render_template("ballots/tally.html", c=consultation, tally=worded,
                           items_html=_items_html(worded["items"]), pending=waiting,
                           awaits_count=workflow.awaits_count(consultation),
                           live_max_age=current_app.config["LIVE_TALLY_MAX_AGE_S"])


# The items' blocks of the results page as last rendered, by language and content: at
# 10,000 households they are hundreds of kilobytes of per-building tables, and most views show
# a count already rendered (the published result, or the live count kept between views).
_RENDERED: OrderedDict[tuple[str, str], Markup] = OrderedDict()
_RENDERED_KEEP = 16
_RENDERED_LOCK = threading.Lock()


def _items_html(items: list[dict[str, Any]]) -> Markup:
    content = json.dumps(items, sort_keys=True, ensure_ascii=False, default=str)
    key = (str(get_locale()), hashlib.sha256(content.encode()).hexdigest())
    with _RENDERED_LOCK:
        html = _RENDERED.get(key)
        if html is not None:
            _RENDERED.move_to_end(key)
            return html
    html = Markup(render_template("ballots/_tally_items.html", items=items))  # noqa: S704
    with _RENDERED_LOCK:
        _RENDERED[key] = html
        while len(_RENDERED) > _RENDERED_KEEP:
            _RENDERED.popitem(last=False)
    return html


# The committee's entry of ballots, settling entries, corrections and imports.
from consult.ballots import entry_views, visit_views  # noqa: E402, F401
