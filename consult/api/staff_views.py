"""The committee's side: the stage steps of a consultation through ``process.workflow`` (an
irreversible step confirmed with the numbers its confirmation shows), and the tally."""

from __future__ import annotations

from typing import Any

from flask import jsonify
from flask_babel import gettext as _
from flask_login import current_user
from marshmallow import INCLUDE, Schema, fields, validate
from werkzeug.wrappers import Response

from consult.api.common import IF_NONE_MATCH, Blueprint, Id, conditional
from consult.api.opinion_views import file_of
from consult.api.resident_views import CHOICES, ConsultationOut, consultation_out
from consult.ballots import entries
from consult.ballots import service as ballots
from consult.ballots.models import BallotChannel
from consult.consultations.states import Action
from consult.core.errors import NotFound
from consult.core.policy import authorize, require
from consult.extensions import db
from consult.process import loading, workflow

bp = Blueprint("api_staff", __name__, url_prefix="/api/v1",
               description="The committee's stage steps and the tally.")

SIGNED_IN: list[dict[str, list[str]]] = [{"bearer": []}]
OPTIONAL: list[dict[str, list[str]]] = [{"bearer": []}, {}]


class WorkflowStepOut(Schema):
    action = fields.String(required=True, metadata={"example": "close_vote"})
    label = fields.String(required=True, metadata={"example": "结束投票"})
    possible = fields.Boolean(required=True, metadata={"example": True})
    missing = fields.List(fields.String(), required=True, metadata={
        "description": "What still stands in the way (empty when possible).", "example": []})
    needs_reason = fields.Boolean(required=True, metadata={"example": False})
    needs_confirmation = fields.Boolean(required=True, metadata={"example": True})
    confirm = fields.Dict(keys=fields.String(), values=fields.Raw(), required=True, metadata={
        "description": "The numbers to send back as `confirm` to take the step.",
        "example": {"households": 120, "voted": 97}})
    consequences = fields.List(fields.String(), required=True, metadata={
        "description": "What the step will do, as the confirmation page says it.",
        "example": ["120 户中已有 97 户投票；23 户将不能再投票。"]})


class StepsOut(Schema):
    items = fields.List(fields.Nested(WorkflowStepOut), required=True)


class StepIn(Schema):
    action = fields.String(required=True, validate=validate.OneOf([a.value for a in Action]),
                           metadata={"example": "close_vote"})
    reason = fields.String(load_default="", validate=validate.Length(max=500),
                           metadata={"example": ""})
    confirm = fields.Dict(keys=fields.String(), values=fields.Raw(allow_none=True),
                          load_default=None, metadata={
        "description": "For an irreversible step: the numbers of its `confirm` as listed.",
        "example": {"households": 120, "voted": 97}})


class TallyOut(Schema):
    """The tally as ``flask tally --json`` prints it (DESIGN §7)."""

    class Meta:
        unknown = INCLUDE

    consultation_id = fields.Integer(required=True, metadata={"example": 7})
    stage = fields.String(required=True, metadata={"example": "vote_counted"})
    rule = fields.Raw(required=True, metadata={"example": "household_majority"})
    roll = fields.Dict(required=True, metadata={
        "example": {"households": 120, "owners": 118, "area_m2": "9876.50"}})
    participation = fields.Dict(required=True, metadata={
        "example": {"households": 97, "owners": 95, "area_m2": "8012.25"}})
    items = fields.List(fields.Dict(), required=True, metadata={
        "description": "Per item: its number and title, the households, owners and area per "
                       "answer, each condition of the rule with its numbers, whether it "
                       "passed, and the counts per building.",
        "example": [{"number": 1, "title": "加装电梯", "counts": {"agree": 90, "disagree": 5,
                                                              "abstain": 2},
                     "owners": {"agree": 88, "disagree": 5, "abstain": 2},
                     "area_m2": {"agree": "7420.50", "disagree": "410.00",
                                 "abstain": "160.25"},
                     "percentages": {"agree": "92.8", "disagree": "5.2", "abstain": "2.0"},
                     "participation": {"households": 97, "owners": 95, "area_m2": "7990.75"},
                     "conditions": [{"text": "参与表决的业主人数不少于总人数的三分之二",
                                     "numerator": 95, "denominator": 118,
                                     "threshold": "2/3", "comparison": "ge",
                                     "met": True}],
                     "passed": True, "owner_conflicts": 0,
                     "by_building": [{"building": "1号楼", "counts": {"agree": 30}}]}]})
    counted_at = fields.DateTime(metadata={
        "description": "The live count only: when it was counted (it is kept between "
                       "requests and counted anew when ballots changed, at most every few "
                       "seconds).", "example": "2026-12-18T08:30:05+00:00"})
    up_to_date = fields.Boolean(metadata={
        "description": "The live count only: whether every ballot recorded so far is in it.",
        "example": True})


@bp.route("/consultations/<int:consultation_id>/steps", methods=["GET"])
@require("consultation.manage")
@conditional
@bp.response(200, StepsOut)
@bp.doc(parameters=[IF_NONE_MATCH], security=SIGNED_IN)
@bp.errors(304, 401, 403, 404)
def steps(consultation_id: int) -> dict[str, Any]:
    """The steps the workflow allows from the current stage, what still stands in their way,
    and for an irreversible one its consequences and the numbers to confirm."""
    consultation = loading.load(consultation_id)
    items = []
    for option in workflow.options(consultation):
        action = option.action
        confirmed = workflow.needs_confirmation(action)
        items.append({
            "action": action.value, "label": str(workflow.ACTION_LABELS[action]),
            "possible": option.possible, "missing": [str(m) for m in option.missing],
            "needs_reason": workflow.needs_reason(action), "needs_confirmation": confirmed,
            "confirm": workflow.confirmation(consultation, action) if confirmed else {},
            "consequences": [str(line) for line in workflow.consequences(consultation, action)]
            if confirmed and option.possible else []})
    return {"items": items}


@bp.route("/consultations/<int:consultation_id>/steps", methods=["POST"])
@require("consultation.manage")
@bp.arguments(StepIn)
@bp.response(200, ConsultationOut)
@bp.doc(security=SIGNED_IN)
@bp.errors(400, 401, 403, 404, 409)
def step(body: dict[str, Any], consultation_id: int) -> dict[str, Any]:
    """Take a step. An irreversible one (open, close or count the vote, publish, new round,
    close, withdraw) needs `confirm` with the numbers listed for it: 409
    `confirmation_mismatch` when they changed meanwhile."""
    consultation = loading.load(consultation_id)
    workflow.apply_confirmed(consultation, Action(body["action"]), current_user,
                             body.get("confirm"), body.get("reason") or "")
    out = consultation_out(consultation)
    db.session.commit()
    return out


@bp.route("/consultations/<int:consultation_id>/tally", methods=["GET"])
@require("consultation.view")
@conditional
@bp.response(200, TallyOut)
@bp.doc(parameters=[IF_NONE_MATCH], security=OPTIONAL)
@bp.errors(304, 401, 403, 404)
def tally(consultation_id: int) -> Response:
    """The frozen result once the vote is counted (public); the live count while it runs
    (staff who may see ballots), as on the tally page."""
    consultation = loading.load(consultation_id)
    if ballots.frozen_tally(consultation) is None:
        authorize(current_user, "ballot.inspect", consultation)  # the live count is internal
    data = ballots.current_tally(consultation, live=True)
    if data is None:
        raise NotFound(_("Voting has not started yet."))
    return jsonify(data)  # as it is, every key (the schema documents the main ones)


# --- paper ballots --------------------------------------------------------------------------------

ENTRY_CHANNELS = [c.value for c in BallotChannel if c is not BallotChannel.ONLINE]


class EntryChoiceIn(Schema):
    item_id = Id(required=True, metadata={"example": 15})
    choice = fields.String(required=True, validate=validate.OneOf(CHOICES),
                           metadata={"example": "agree"})


class FileIn(Schema):
    filename = fields.String(required=True, validate=validate.Length(min=1, max=200),
                             metadata={"example": "ballot-scan.pdf"})
    content_base64 = fields.String(required=True, validate=validate.Length(min=1),
                                   metadata={"example": "JVBERi0xLjQK…"})


class EntryIn(Schema):
    channel = fields.String(required=True, validate=validate.OneOf(ENTRY_CHANNELS),
                            metadata={"example": "paper"})
    choices = fields.List(fields.Nested(EntryChoiceIn), required=True,
                          validate=validate.Length(min=1, max=200))
    serial = fields.String(load_default=None, allow_none=True,
                           validate=validate.Length(max=40), metadata={"example": "A-0042"})
    proxy_name = fields.String(load_default=None, allow_none=True,
                               validate=validate.Length(max=100), metadata={"example": None})
    reason = fields.String(load_default="", validate=validate.Length(max=500), metadata={
        "description": "For a correction of the household's own ballot.", "example": ""})
    evidence = fields.Nested(FileIn, load_default=None, allow_none=True, metadata={
        "description": "For a correction: the scan of the signed paper."})
    proxy_document = fields.Nested(FileIn, load_default=None, allow_none=True, metadata={
        "description": "For a proxy ballot: the written authorisation (委托书)."})


class EntryOut(Schema):
    entry_id = fields.Integer(required=True, metadata={"example": 88})
    state = fields.String(required=True, metadata={
        "description": "counted, awaiting_second (double entry: another member enters the "
                       "same paper), differs (a third member decides), "
                       "awaiting_authorisation, …", "example": "awaiting_second"})


@bp.route("/consultations/<int:consultation_id>/households/<int:household_id>/paper",
          methods=["POST"])
@require("ballot.visit")
@bp.arguments(EntryIn)
@bp.response(200, EntryOut)
@bp.doc(security=SIGNED_IN)
@bp.errors(400, 401, 403, 404, 409, 413)
def paper_entry(body: dict[str, Any], consultation_id: int, household_id: int) -> dict[str, Any]:
    """One member's entry of a household's paper (or door-to-door, or proxy) ballot, with the
    paper-entry page's rules (`ballots.entries.enter`): double entry by a second member,
    corrections of the household's own ballot only with a reason and evidence, grid workers
    the door-to-door channel only."""
    consultation = loading.load(consultation_id)
    _roll, household = ballots.roll_household_or_404(consultation, household_id)
    paper = entries.Paper(BallotChannel(body["channel"]),
                          {c["item_id"]: c["choice"] for c in body["choices"]},
                          body.get("serial"), body.get("proxy_name"))
    lead = entries.enter(current_user, consultation, household, paper,
                         reason=body.get("reason") or "",
                         evidence=file_of(body.get("evidence"), "evidence"),
                         proxy_document=file_of(body.get("proxy_document"), "proxy_document"))
    out = {"entry_id": lead.id, "state": lead.state}
    db.session.commit()
    return out
