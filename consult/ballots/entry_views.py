"""The committee's entry of paper, door-to-door and proxy ballots: the entry form (first and
second entries, corrections), a household's ballot page, the entries still waiting and their
decision, the list of corrections, written authorisations, and importing a file with a preview.

Routes of the ``ballots`` blueprint (imported at the end of ``ballots.views``).
"""

from __future__ import annotations

from flask import flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user
from werkzeug.wrappers import Response

from consult.ballots import entries, staging
from consult.ballots import service as ballots
from consult.ballots.entries import CORRECTION_CHANNELS, VISIT_CHANNELS
from consult.ballots.forms import (
    STAFF_CHANNELS,
    AuthorisationForm,
    BallotImportForm,
    DecisionForm,
    EntryForm,
    ImportConfirmForm,
)
from consult.ballots.models import BALLOT_CHANNEL_LABELS, BallotChannel, EntryState, RollEntry
from consult.ballots.views import _choice_options, _submitted_choices, bp
from consult.consultations.models import Consultation, Secrecy
from consult.core.database import starts_reading
from consult.core.errors import ImportRejected, PermissionDenied, ValidationFailed
from consult.core.forms import apply_errors, save_form, uploaded_table
from consult.core.policy import can, denial_message, require
from consult.extensions import db
from consult.process import loading, workflow
from consult.registry.models import Household


def _entered_message(consultation: Consultation, lead: entries.BallotEntry,
                     household: Household) -> tuple[str, str]:
    """What became of an entry, for the member who made it."""
    state = lead.state
    if state == EntryState.COUNTED:
        ballot = ballots.ballot_of(consultation, household.id)
        receipt = ballot.receipt if ballot else ""
        if lead.is_correction:
            return _("The ballot of %(household)s is corrected (receipt %(receipt)s). The "
                     "household sees the correction and its reason.", household=household.label,
                     receipt=receipt), "success"
        return _("Ballot of %(household)s recorded (receipt %(receipt)s).",
                 household=household.label, receipt=receipt), "success"
    if state == EntryState.AWAITING_SECOND:
        return _("First entry of the ballot of %(household)s recorded. It counts once another "
                 "member enters the same paper ballot and both entries agree.",
                 household=household.label), "info"
    if state == EntryState.DIFFERS:
        return _("The two entries of the ballot of %(household)s differ. The paper ballot "
                 "waits for a member who made neither entry to decide.",
                 household=household.label), "warning"
    return _("Ballot of %(household)s entered. It counts once the written authorisation "
             "(委托书) is attached.", household=household.label), "warning"


def _paper(form: EntryForm | DecisionForm, chosen: dict[int, str]) -> entries.Paper:
    return entries.Paper(BallotChannel(form.channel.data), chosen, form.serial.data,
                         form.proxy_name.data)


def _entry_channel(offered: tuple[BallotChannel, ...], value: str | None) -> BallotChannel:
    """The channel the form is for: the one asked for when it is offered, else paper (the
    first offered); the posted value itself is checked by the form's field."""
    return next((c for c in offered if c.value == value), offered[0])


@bp.route("/<int:consultation_id>/ballots/<int:household_id>/enter", methods=["GET", "POST"])
@require("ballot.visit")
def enter(consultation_id: int, household_id: int) -> Response | str | tuple[str, int]:
    """A household's paper ballot: its first or second entry, or a correction of the ballot
    it already has. The channel is chosen first (``?channel=``, no script needed): the form
    then offers that channel's answers only, and the proxy's fields only for a proxy."""
    consultation = loading.load(consultation_id)
    roll, household = ballots.roll_household_or_404(consultation, household_id)
    page = entries.entry_page(consultation, household_id, current_user)
    correcting = page.mode == "correct"
    # Staff who only record answers at the door (grid workers) get that channel alone.
    visit_only = not can(current_user, "ballot.enter", consultation)
    if visit_only and correcting:
        raise PermissionDenied(denial_message(current_user, "ballot.enter", consultation))
    offered = (VISIT_CHANNELS if visit_only else
               CORRECTION_CHANNELS if correcting else STAFF_CHANNELS)
    form = EntryForm(correcting=correcting, channels=offered)
    channel = _entry_channel(offered, request.form.get("channel") if form.is_submitted()
                             else request.args.get("channel"))
    errors: dict[str, list[str]] = {}
    chosen = _submitted_choices(consultation, request.form) if form.is_submitted() else {}
    if form.validate_on_submit():
        try:
            lead = entries.enter(current_user, consultation, household, _paper(form, chosen),
                                 reason=form.reason.data or "",
                                 evidence=form.evidence.data or None,
                                 # Only a proxy ballot comes with a written authorisation.
                                 proxy_document=(form.proxy_document.data or None)
                                 if channel is BallotChannel.PROXY else None)
        except ValidationFailed as exc:
            db.session.rollback()
            errors = exc.errors
            apply_errors(form, exc)
            page = entries.entry_page(consultation, household_id, current_user)
        else:
            message, level = _entered_message(consultation, lead, household)
            going_on = request.form.get("then") == "next"
            following = (entries.next_to_enter(consultation, roll, current_user)
                         if going_on else None)
            target = (url_for("ballots.enter", consultation_id=consultation_id,
                              household_id=following.household_id, channel=channel.value)
                      if following is not None else
                      url_for("ballots.index", consultation_id=consultation_id,
                              status="missing") if going_on else
                      url_for("ballots.index", consultation_id=consultation_id,
                              building=roll.building_name))
            end_of_roll = going_on and following is None
            label = household.label
            db.session.commit()
            flash(message, level)
            if end_of_roll:
                flash(_("No household after %(household)s on the roll is still without a "
                        "ballot.", household=label), "info")
            return redirect(target)
    elif not form.is_submitted():
        form.channel.data = channel.value
        if request.args.get("serial"):
            form.serial.data = request.args["serial"][:40]  # scanned from the paper ballot
    staff = entries.users({page.ballot.entered_by_id if page.ballot else None,
                           page.case.entered_by_id if page.case else None})
    return render_template(
        "ballots/enter.html", c=consultation, entry=roll, form=form, chosen=chosen,
        errors=errors, page=page, staff=staff, channel=channel,
        channels=[(c, BALLOT_CHANNEL_LABELS[c]) for c in offered],
        serial_arg=request.args.get("serial", "")[:40] or None,
        current_answers=ballots.answers_of(consultation, page.ballot)
        if consultation.secrecy == Secrecy.OPEN else [],
        # Only the chosen channel's answers ("not reached" is for door-to-door); a correction
        # never offers the answers that cannot replace a ballot (the rule is
        # entries.NEVER_REPLACE; the service refuses them too).
        choices=[(value, label) for value, label in _choice_options(consultation, channel)
                 if not correcting or value not in entries.NEVER_REPLACE],
        can_decide=can(current_user, "ballot.decide", consultation)), (
        400 if errors or form.errors else 200)


@bp.get("/<int:consultation_id>/ballots/<int:household_id>")
@require("ballot.inspect")
def household(consultation_id: int, household_id: int) -> str:
    """A household's ballot for the committee and supervisors: who entered it and how, its
    written authorisation, every entry and correction of this round."""
    consultation = loading.load(consultation_id)
    return _household_page(consultation, household_id, AuthorisationForm())


def _household_page(consultation: Consultation, household_id: int,
                    authorisation_form: AuthorisationForm) -> str:
    roll, _household_row = ballots.roll_household_or_404(consultation, household_id)
    ballot = ballots.ballot_of(consultation, household_id)
    cases = entries.household_entries(consultation, household_id)
    staff = entries.users({ballot.entered_by_id if ballot else None} | {
        e.entered_by_id for row in cases for e in row.entries} | {
        row.lead.settled_by_id for row in cases})
    document = ballot.proxy_document if ballot is not None else None
    case = next((row.lead for row in cases if row.lead.state in
                 {s.value for s in entries.OPEN_ENTRY_STATES}), None)
    needs_document = case is not None and any(
        e.channel == BallotChannel.PROXY for row in cases if row.lead is case
        for e in row.entries) and case.proxy_document_id is None
    needs_document = needs_document or (
        case is None and ballot is not None and ballot.channel == BallotChannel.PROXY
        and ballot.proxy_document_id is None)
    return render_template(
        "ballots/household.html", c=consultation, entry=roll, ballot=ballot, cases=cases,
        staff=staff, document=document, case=case, needs_document=needs_document,
        show_choices=consultation.secrecy == Secrecy.OPEN,
        answers=ballots.answers_of(consultation, ballot),
        item_numbers={item.id: item.number for item in consultation.items},
        choices_of=entries.choices_of, authorisation_form=authorisation_form,
        can_enter=can(current_user, "ballot.enter", consultation),
        corrections=entries.corrections_of(consultation, household_id))


@bp.post("/<int:consultation_id>/ballots/<int:household_id>/authorisation")
@require("ballot.enter")
def authorise(consultation_id: int, household_id: int) -> Response | tuple[str, int]:
    """Attach a proxy's written authorisation (委托书) later; a file that is refused brings
    the household's page back with the reason at the field."""
    consultation = loading.load(consultation_id)
    _roll, household_row = ballots.roll_household_or_404(consultation, household_id)
    form = AuthorisationForm()
    saved = save_form(form, lambda: entries.attach_authorisation(
        current_user, consultation, household_row, form.document.data))
    if not saved:
        return _household_page(consultation, household_id, form), 400
    flash(_("The written authorisation is attached; the proxy ballot counts now.")
          if saved.value == "counted" else _("The written authorisation is attached."),
          "success")
    return redirect(url_for("ballots.household", consultation_id=consultation_id,
                            household_id=household_id))


@bp.get("/<int:consultation_id>/entries")
@require("ballot.inspect")
def waiting(consultation_id: int) -> str:
    """Paper ballots that do not count yet: awaiting their second entry, a decision between
    entries that differ, or a proxy's written authorisation. No answers are shown."""
    consultation = loading.load(consultation_id)
    rows = entries.waiting(consultation)
    staff = entries.users({e.entered_by_id for row in rows for e in row.entries})
    can_enter = can(current_user, "ballot.enter", consultation)
    can_decide = can(current_user, "ballot.decide", consultation)
    return render_template("ballots/waiting.html", c=consultation, rows=rows, staff=staff,
                           pending=entries.pending(consultation),
                           double_entry=ballots.double_entry_on(consultation),
                           next_action=lambda lead: entries.next_action(
                               lead, current_user, can_enter=can_enter,
                               can_decide=can_decide),
                           awaits_count=workflow.awaits_count(consultation))


@bp.route("/<int:consultation_id>/entries/<int:entry_id>/decide", methods=["GET", "POST"])
@require("ballot.decide")
def decide(consultation_id: int, entry_id: int) -> Response | str | tuple[str, int]:
    """A member who made neither entry decides against the paper: one of the entries, or the
    answers as the paper gives them."""
    consultation = loading.load(consultation_id)
    lead = entries.get_case_or_404(consultation, entry_id)
    roll, _household_row = ballots.roll_household_or_404(consultation, lead.household_id)
    if lead.state != EntryState.DIFFERS:
        flash(_("This paper ballot does not wait for a decision."), "info")
        return redirect(url_for("ballots.household", consultation_id=consultation_id,
                                household_id=lead.household_id))
    form = DecisionForm()
    case = entries.case_entries(lead)
    form.pick.choices = [(str(e.id), str(e.id)) for e in case] + [("paper", "paper")]
    errors: dict[str, list[str]] = {}
    chosen = _submitted_choices(consultation, request.form) if form.is_submitted() else {}
    if form.validate_on_submit():
        pick = form.pick.data or ""
        try:
            entries.decide(current_user, consultation, lead, pick,
                           _paper(form, chosen) if pick == "paper" else None,
                           form.note.data or "")
        except ValidationFailed as exc:
            db.session.rollback()
            errors = exc.errors
            apply_errors(form, exc)
            lead = entries.get_case_or_404(consultation, entry_id)
            case = entries.case_entries(lead)
        else:
            db.session.commit()
            flash(_("Decided: the ballot of %(household)s counts as chosen.",
                    household=roll_label(roll)), "success")
            return redirect(url_for("ballots.waiting", consultation_id=consultation_id))
    staff = entries.users({e.entered_by_id for e in case})
    return render_template(
        "ballots/decide.html", c=consultation, entry=roll, lead=lead, case=case, form=form,
        staff=staff, errors=errors, chosen=chosen, choices_of=entries.choices_of,
        choices=_choice_options(consultation, BallotChannel.DOOR_TO_DOOR),
        is_enterer=any(entries.same_person(e.entered_by_id, current_user) for e in case)), (
        400 if errors else 200)


def roll_label(roll: RollEntry) -> str:
    from consult.registry.models import household_label

    return household_label(roll.building_name, roll.unit, roll.room)


@bp.get("/<int:consultation_id>/corrections")
@require("ballot.inspect")
def corrections(consultation_id: int) -> str:
    """Every correction of the consultation's ballots: who, when, why, the evidence, and for an
    open ballot the answers before and after."""
    consultation = loading.load(consultation_id)
    rows = entries.corrections(consultation)
    staff = entries.users({e.entered_by_id for row in rows for e in row.entries}
                          | {row.lead.settled_by_id for row in rows})
    return render_template("ballots/corrections.html", c=consultation, rows=rows, staff=staff,
                           show_choices=consultation.secrecy == Secrecy.OPEN)


# --- importing a file -----------------------------------------------------------------------



def _preview(consultation: Consultation, checked: ballots.BallotFile,
             status: int = 200) -> tuple[str, int]:
    return render_template("ballots/import_preview.html", c=consultation, checked=checked,
                           form=ImportConfirmForm(sha256=checked.sha256,
                                                  filename=checked.filename),
                           Outcome=ballots.FileOutcome), status


@bp.route("/<int:consultation_id>/ballots/import", methods=["GET", "POST"])
@require("ballot.enter")
@starts_reading  # the file is read and checked without the write lock; nothing is written
def import_file(consultation_id: int) -> Response | str | tuple[str, int]:
    """Upload a paper-ballot file: every row is checked and shown, nothing is written."""
    consultation = loading.load(consultation_id)
    form = BallotImportForm()
    problems = None
    if form.validate_on_submit():
        name = (form.file.data.filename or "ballots.csv")[:200]
        data = uploaded_table(form.file, name)
        if data is not None:
            try:
                checked = staging.preview(current_user, consultation, data, name)
            except ImportRejected as exc:  # not a ballot table at all
                problems = exc
            else:
                return _preview(consultation, checked, 400 if checked.errors else 200)
    return render_template("ballots/import.html", c=consultation, form=form,
                           problems=problems,
                           double_entry=ballots.double_entry_on(consultation)), (
        400 if form.errors or problems else 200)


@bp.post("/<int:consultation_id>/ballots/import/confirm")
@require("ballot.enter")
@starts_reading  # checked again without the write lock, which only the writes take
def import_confirm(consultation_id: int) -> Response | str | tuple[str, int]:
    """Enter the file just previewed, checked once more against what is recorded now."""
    consultation = loading.load(consultation_id)
    form = ImportConfirmForm()
    sha256 = (form.sha256.data or "") if form.validate_on_submit() else ""
    data = staging.kept(consultation.id, current_user, sha256)
    if data is None:
        flash(_("That file is no longer waiting to be entered; upload it again."), "warning")
        return redirect(url_for("ballots.import_file", consultation_id=consultation_id))
    name = (form.filename.data or "ballots.csv")[:200]
    try:
        summary = ballots.import_ballots(current_user, consultation, data, name)
    except ImportRejected:
        db.session.rollback()
        # Something changed since the preview: show the file as it checks now.
        return _preview(consultation, ballots.check_ballot_file(current_user, consultation,
                                                                data, name), 400)
    db.session.commit()
    staging.drop(consultation_id, current_user, sha256)
    flash(_("File entered: %(households)s households, of which %(counted)s counted now, "
            "%(second)s await their second entry, %(differs)s differ from their first entry "
            "and %(authorisation)s await a written authorisation; %(unchanged)s were "
            "already recorded exactly so.", households=summary.households,
            counted=summary.new + summary.changed, second=summary.awaiting_second,
            differs=summary.differs, authorisation=summary.awaiting_authorisation,
            unchanged=summary.unchanged), "success")
    return redirect(url_for("ballots.index", consultation_id=consultation_id))
