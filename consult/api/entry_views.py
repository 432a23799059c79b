"""Paper ballots that do not count yet, through ``ballots.entries`` as on their pages: the
list of those waiting (no answers), the differing entries of one paper for a member who may
decide, the decision, and a proxy's written authorisation attached later."""

from __future__ import annotations

from typing import Any

from flask import url_for
from flask_babel import gettext as _
from flask_login import current_user
from marshmallow import Schema, fields, validate

from consult.api.common import IF_NONE_MATCH, Blueprint, conditional
from consult.api.opinion_views import file_of
from consult.api.staff_views import ENTRY_CHANNELS, EntryChoiceIn, EntryOut, FileIn
from consult.ballots import entries
from consult.ballots import service as ballots
from consult.ballots.models import ENTRY_STATE_LABELS, BallotChannel, BallotEntry, EntryState
from consult.core.errors import Conflict, PermissionDenied
from consult.core.policy import can, require
from consult.extensions import db
from consult.process import loading, workflow
from consult.registry.models import household_label

bp = Blueprint("api_entries", __name__, url_prefix="/api/v1",
               description="Paper ballots waiting: second entries, decisions between "
                           "differing entries, written authorisations.")

SIGNED_IN: list[dict[str, list[str]]] = [{"bearer": []}]

ENTRY_STATES = [s.value for s in EntryState]


class EnteredByOut(Schema):
    id = fields.Integer(required=True, metadata={"example": 12})
    name = fields.String(required=True, metadata={"example": "王委员"})


class EntryMadeOut(Schema):
    """One member's entry of a paper, as the list of waiting papers shows it: no answers."""

    id = fields.Integer(required=True, metadata={"example": 88})
    state = fields.String(required=True, validate=validate.OneOf(ENTRY_STATES),
                          metadata={"example": "awaiting_second"})
    channel = fields.String(required=True, validate=validate.OneOf(ENTRY_CHANNELS),
                            metadata={"example": "paper"})
    source = fields.String(required=True, metadata={
        "description": "form, import (from a file) or decision.", "example": "form"})
    entered_by = fields.Nested(EnteredByOut, required=True, allow_none=True, metadata={
        "description": "null: entered from the command line.",
        "example": {"id": 12, "name": "王委员"}})
    entered_at = fields.DateTime(required=True, metadata={"example": "2026-12-04T02:10:00+00:00"})


class WaitingOut(Schema):
    entry_id = fields.Integer(required=True, metadata={
        "description": "The paper's first entry, which holds the state of the case.",
        "example": 88})
    household_id = fields.Integer(required=True, metadata={"example": 301})
    household = fields.String(required=True, metadata={
        "description": "The household as the roll names it.", "example": "3号楼 1单元 502"})
    state = fields.String(required=True, metadata={
        "description": "awaiting_second, differs or awaiting_authorisation.",
        "example": "differs"})
    state_label = fields.String(required=True, metadata={"example": "两次录入不一致：待裁定"})
    is_correction = fields.Boolean(required=True, metadata={"example": False})
    entries = fields.List(fields.Nested(EntryMadeOut), required=True)
    actions = fields.List(fields.String(), required=True, metadata={
        "description": "What the caller may do with it, as the page offers: second_entry "
                       "(POST …/households/{household_id}/paper), decide, "
                       "attach_authorisation.", "example": ["decide"]})


class PendingOut(Schema):
    awaiting_second = fields.Integer(required=True, metadata={"example": 3})
    differs = fields.Integer(required=True, metadata={"example": 1})
    awaiting_authorisation = fields.Integer(required=True, metadata={"example": 0})


class WaitingList(Schema):
    items = fields.List(fields.Nested(WaitingOut), required=True)
    pending = fields.Nested(PendingOut, required=True)
    double_entry = fields.Boolean(required=True, metadata={"example": True})
    proxy_document_required = fields.Boolean(required=True, metadata={"example": True})
    awaits_count = fields.Boolean(required=True, metadata={
        "description": "The vote has closed; it is counted once no paper awaits a second "
                       "entry or a decision.", "example": False})


class EntryAnswerOut(Schema):
    item_id = fields.Integer(required=True, metadata={"example": 15})
    number = fields.Integer(required=True, metadata={"example": 1})
    choice = fields.String(required=True, allow_none=True, metadata={
        "description": "null: the entry has no answer for the item.", "example": "agree"})


class EntryReadOut(EntryMadeOut):
    """One entry of a paper whose entries differ, as the decision page shows it."""

    serial = fields.String(required=True, allow_none=True, metadata={"example": "A-0042"})
    proxy_name = fields.String(required=True, allow_none=True, metadata={"example": None})
    choices = fields.List(fields.Nested(EntryAnswerOut), required=True)


class CaseOut(Schema):
    entry_id = fields.Integer(required=True, metadata={"example": 88})
    household_id = fields.Integer(required=True, metadata={"example": 301})
    household = fields.String(required=True, metadata={"example": "3号楼 1单元 502"})
    owner_name = fields.String(required=True, metadata={"example": "李四"})
    state = fields.String(required=True, metadata={"example": "differs"})
    is_correction = fields.Boolean(required=True, metadata={"example": False})
    correction_reason = fields.String(required=True, allow_none=True, metadata={
        "description": "Of a correction of the household's own ballot.", "example": None})
    evidence_url = fields.String(required=True, allow_none=True,
                                 metadata={"example": None})
    entries = fields.List(fields.Nested(EntryReadOut), required=True)


class DecisionIn(Schema):
    pick = fields.String(required=True, validate=validate.Regexp(r"^(paper|[0-9]{1,12})$"),
                         metadata={"description": "The id of the entry that reads the paper "
                                                  "right, or \"paper\" to count `choices` as "
                                                  "you read the paper.", "example": "89"})
    choices = fields.List(fields.Nested(EntryChoiceIn), load_default=None,
                          validate=validate.Length(max=200), metadata={
        "description": "With pick \"paper\": the paper's answers.",
        "example": [{"item_id": 15, "choice": "agree"}]})
    channel = fields.String(load_default=ENTRY_CHANNELS[0],
                            validate=validate.OneOf(ENTRY_CHANNELS), metadata={
        "description": "With pick \"paper\": how the ballot came in.", "example": "paper"})
    serial = fields.String(load_default=None, allow_none=True,
                           validate=validate.Length(max=40), metadata={"example": "A-0042"})
    proxy_name = fields.String(load_default=None, allow_none=True,
                               validate=validate.Length(max=100), metadata={"example": None})
    note = fields.String(load_default="", validate=validate.Length(max=entries.MAX_REASON),
                         metadata={"description": "For the record (optional).",
                                   "example": "纸质表决票第 2 项勾选“同意”。"})


class AuthorisationIn(Schema):
    document = fields.Nested(FileIn, required=True, metadata={
        "description": "The scan or photo of the written authorisation (委托书)."})


class AuthorisationOut(Schema):
    outcome = fields.String(required=True, validate=validate.OneOf(["counted", "attached"]),
                            metadata={
        "description": "counted: the proxy ballot waited only for it and counts now; "
                       "attached: to a ballot, or to an entry that still waits for "
                       "something else.", "example": "counted"})


def _by(entry: BallotEntry, staff: dict[int, Any]) -> dict[str, Any] | None:
    user = staff.get(entry.entered_by_id) if entry.entered_by_id is not None else None
    return {"id": user.id, "name": user.display_name} if user is not None else None


def _made(entry: BallotEntry, staff: dict[int, Any]) -> dict[str, Any]:
    return {"id": entry.id, "state": entry.state, "channel": entry.channel,
            "source": entry.source, "entered_by": _by(entry, staff),
            "entered_at": entry.entered_at}


def _actions(lead: BallotEntry, can_enter: bool, can_decide: bool) -> list[str]:
    """The waiting page's action for a paper, for the caller (none while it waits for
    another member)."""
    action = entries.next_action(lead, current_user, can_enter=can_enter,
                                 can_decide=can_decide)
    return [action] if action is not None and action != "wait_for_another" else []


@bp.route("/consultations/<int:consultation_id>/entries", methods=["GET"])
@require("ballot.inspect")
@conditional
@bp.response(200, WaitingList)
@bp.doc(parameters=[IF_NONE_MATCH], security=SIGNED_IN)
@bp.errors(304, 401, 403, 404)
def entry_list(consultation_id: int) -> dict[str, Any]:
    """Paper ballots of the current round that do not count yet — awaiting their second
    entry, a decision between entries that differ, or a proxy's written authorisation — in
    address order, with who entered them and when. No answers are shown."""
    consultation = loading.load(consultation_id)
    rows = entries.waiting(consultation)
    staff = entries.users({e.entered_by_id for row in rows for e in row.entries})
    can_enter = can(current_user, "ballot.enter", consultation)
    can_decide = can(current_user, "ballot.decide", consultation)
    pending = entries.pending(consultation)
    return {
        "items": [{
            "entry_id": row.lead.id, "household_id": row.lead.household_id,
            "household": row.label, "state": row.lead.state,
            "state_label": str(ENTRY_STATE_LABELS[EntryState(row.lead.state)]),
            "is_correction": row.lead.is_correction,
            "entries": [_made(e, staff) for e in row.entries],
            "actions": _actions(row.lead, can_enter, can_decide)} for row in rows],
        "pending": {"awaiting_second": pending.awaiting_second, "differs": pending.differs,
                    "awaiting_authorisation": pending.awaiting_authorisation},
        "double_entry": ballots.double_entry_on(consultation),
        "proxy_document_required": bool(consultation.proxy_document_required),
        "awaits_count": workflow.awaits_count(consultation)}


@bp.route("/consultations/<int:consultation_id>/entries/<int:entry_id>", methods=["GET"])
@require("ballot.decide")
@conditional
@bp.response(200, CaseOut)
@bp.doc(parameters=[IF_NONE_MATCH], security=SIGNED_IN)
@bp.errors(304, 401, 403, 404, 409)
def entry_case(consultation_id: int, entry_id: int) -> dict[str, Any]:
    """A paper whose entries differ, for a member who may decide: every entry with its
    answers, side by side, as the decision page shows them. 409 when the paper does not
    wait for a decision; 403 for a member who made one of its entries (the page shows them
    no answers either)."""
    consultation = loading.load(consultation_id)
    lead = entries.get_case_or_404(consultation, entry_id)
    roll, _household = ballots.roll_household_or_404(consultation, lead.household_id)
    if lead.state != EntryState.DIFFERS:
        raise Conflict(_("This paper ballot does not wait for a decision."))
    case = entries.case_entries(lead)
    if any(entries.same_person(e.entered_by_id, current_user) for e in case):
        raise PermissionDenied(_("You entered this paper ballot; a member who made "
                                 "neither entry decides."))
    staff = entries.users({e.entered_by_id for e in case})
    items = sorted(consultation.items, key=lambda item: item.number)
    return {
        "entry_id": lead.id, "household_id": lead.household_id,
        "household": household_label(roll.building_name, roll.unit, roll.room),
        "owner_name": roll.owner_name, "state": lead.state,
        "is_correction": lead.is_correction, "correction_reason": lead.correction_reason,
        "evidence_url": url_for("uploads.file", attachment_id=lead.evidence_id)
        if lead.evidence_id else None,
        "entries": [{
            **_made(e, staff), "serial": e.serial, "proxy_name": e.proxy_name,
            "choices": [{"item_id": item.id, "number": item.number,
                         "choice": entries.choices_of(e).get(item.id)} for item in items]}
            for e in case]}


@bp.route("/consultations/<int:consultation_id>/entries/<int:entry_id>/decision",
          methods=["POST"])
@require("ballot.decide")
@bp.arguments(DecisionIn)
@bp.response(200, EntryOut)
@bp.doc(security=SIGNED_IN)
@bp.errors(400, 401, 403, 404, 409)
def entry_decision(body: dict[str, Any], consultation_id: int, entry_id: int
                   ) -> dict[str, Any]:
    """Decide a paper whose entries differ, against the paper itself (`entries.decide`):
    `pick` one of its entries by id, or `"paper"` with the answers as you read them. Only a
    member who made neither entry decides (403 otherwise); 409 when the paper does not wait
    for a decision. Audited as `ballot.entries_decided`; answers the paper's new state."""
    consultation = loading.load(consultation_id)
    lead = entries.get_case_or_404(consultation, entry_id)
    ballots.roll_household_or_404(consultation, lead.household_id)
    pick = body["pick"]
    paper = entries.Paper(BallotChannel(body["channel"]),
                          {c["item_id"]: c["choice"] for c in body.get("choices") or []},
                          body.get("serial"), body.get("proxy_name")) if pick == "paper" else None
    entries.decide(current_user, consultation, lead, pick, paper, body.get("note") or "")
    out = {"entry_id": lead.id, "state": lead.state}
    db.session.commit()
    return out


@bp.route("/consultations/<int:consultation_id>/households/<int:household_id>/authorisation",
          methods=["POST"])
@require("ballot.enter")
@bp.arguments(AuthorisationIn)
@bp.response(200, AuthorisationOut)
@bp.doc(security=SIGNED_IN)
@bp.errors(400, 401, 403, 404, 409, 413)
def authorisation(body: dict[str, Any], consultation_id: int, household_id: int
                  ) -> dict[str, Any]:
    """Attach a proxy's written authorisation (委托书) later, through the upload checks of
    the household page's form (`entries.attach_authorisation`): a proxy ballot that waited
    only for it counts now. 409 when the household has no proxy ballot or entry."""
    consultation = loading.load(consultation_id)
    _roll, household = ballots.roll_household_or_404(consultation, household_id)
    outcome = entries.attach_authorisation(current_user, consultation, household,
                                           file_of(body["document"], "document"))
    db.session.commit()
    return {"outcome": outcome}
