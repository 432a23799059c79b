"""The household's side of the API: its account, what waits for it, the consultations of its
compound, and its ballot (cast, changed until the close, its receipt and the receipt's
proof), through the services the web pages use."""

from __future__ import annotations

from typing import Any

from flask import current_app, jsonify
from flask_babel import gettext as _
from flask_limiter.util import get_remote_address
from flask_login import current_user
from marshmallow import Schema, fields, validate

from consult.api import idempotency
from consult.api.common import IF_NONE_MATCH, Blueprint, Id, PageArgs, PageOf, conditional, page
from consult.ballots import entries, proofs
from consult.ballots import service as ballots
from consult.ballots.models import Ballot, BallotChannel
from consult.consultations import service as consultations
from consult.consultations.models import Consultation
from consult.consultations.states import Stage
from consult.core.database import lock_row, starts_reading
from consult.core.errors import Conflict, NotFound
from consult.core.policy import compound_scope, require
from consult.extensions import db, limiter
from consult.process import inbox, loading, todo
from consult.registry.models import Household

bp = Blueprint("api_resident", __name__, url_prefix="/api/v1",
               description="A household's account, tasks, consultations and ballot.")

# Operations that need a token, and those a token only widens (drafts for staff).
SIGNED_IN: list[dict[str, list[str]]] = [{"bearer": []}]
OPTIONAL: list[dict[str, list[str]]] = [{"bearer": []}, {}]
CHOICES = ("agree", "disagree", "abstain", "undecided", "not_reached")

# --- schemas ------------------------------------------------------------------------------------


class CompoundOut(Schema):
    id = fields.Integer(required=True, metadata={"example": 3})
    name = fields.String(required=True, metadata={"example": "幸福里小区"})


class HouseholdOut(Schema):
    id = fields.Integer(required=True, metadata={"example": 41})
    label = fields.String(required=True, metadata={"example": "1号楼 1单元 101"})
    building = fields.String(required=True, metadata={"example": "1号楼"})
    unit = fields.String(required=True, metadata={"example": "1"})
    room = fields.String(required=True, metadata={"example": "101"})
    compound = fields.Nested(CompoundOut, required=True)


class MeOut(Schema):
    id = fields.Integer(required=True, metadata={"example": 12})
    username = fields.String(required=True, metadata={"example": "h000041"})
    display_name = fields.String(required=True, metadata={"example": "1号楼 1单元 101"})
    role = fields.String(required=True, metadata={"example": "resident"})
    locale = fields.String(required=True, allow_none=True, metadata={"example": "zh_Hans"})
    household = fields.Nested(HouseholdOut, required=True, allow_none=True)


class TaskOut(Schema):
    kind = fields.String(required=True, metadata={
        "description": "Households: opinion, comment, vote, objection, evaluate, follow. "
                       "Committee: objections, vote_closing, papers, overdue, "
                       "no_final_report.", "example": "vote"})
    consultation_id = fields.Integer(required=True, metadata={"example": 7})
    consultation_title = fields.String(required=True, metadata={"example": "加装电梯"})
    deadline = fields.DateTime(required=True, allow_none=True,
                               metadata={"example": "2026-12-20T10:00:00+00:00"})
    done = fields.Boolean(required=True, metadata={"example": False})
    receipt = fields.String(required=True, allow_none=True, metadata={"example": None})


class TasksOut(Schema):
    items = fields.List(fields.Nested(TaskOut), required=True)


class ConsultationListArgs(PageArgs):
    stage = fields.String(load_default=None, validate=validate.OneOf([s.value for s in Stage]),
                          metadata={"example": "voting"})


class ConsultationOut(Schema):
    id = fields.Integer(required=True, metadata={"example": 7})
    title = fields.String(required=True, metadata={"example": "加装电梯"})
    stage = fields.String(required=True, metadata={"example": "voting"})
    round = fields.Integer(required=True, metadata={"example": 1})
    compound_id = fields.Integer(required=True, metadata={"example": 3})
    solicitation_deadline = fields.DateTime(required=True, allow_none=True,
                                            metadata={"example": None})
    vote_deadline = fields.DateTime(required=True, allow_none=True,
                                    metadata={"example": "2026-12-20T10:00:00+00:00"})
    vote_open = fields.Boolean(required=True, metadata={"example": True})


class ConsultationPage(PageOf):
    items = fields.List(fields.Nested(ConsultationOut), required=True)


class ItemOut(Schema):
    id = fields.Integer(required=True, metadata={"example": 15})
    number = fields.Integer(required=True, metadata={"example": 1})
    title = fields.String(required=True, metadata={"example": "更换供水管道"})
    description = fields.String(required=True, metadata={
        "description": "Markdown, as the committee wrote it.", "example": "全部更换为不锈钢管。"})
    estimated_cost_fen = fields.Integer(required=True, metadata={
        "description": "Estimated cost in 分 (0.01 yuan).", "example": 12000000})


class ConsultationDetail(ConsultationOut):
    summary = fields.String(required=True, metadata={"example": "征求全体住户意见。"})
    rule_code = fields.String(required=True, metadata={"example": "household_two_thirds"})
    secrecy = fields.String(required=True, metadata={"example": "open"})
    vote_opens_at = fields.DateTime(required=True, allow_none=True, metadata={"example": None})
    items = fields.List(fields.Nested(ItemOut), required=True)


class ChoiceOut(Schema):
    item_id = fields.Integer(required=True, metadata={"example": 15})
    number = fields.Integer(required=True, metadata={"example": 1})
    choice = fields.String(required=True, metadata={"example": "agree"})


class CorrectionOut(Schema):
    at = fields.DateTime(required=True, allow_none=True,
                         metadata={"example": "2026-12-21T02:00:00+00:00"})
    reason = fields.String(required=True, metadata={"example": "书面表决票录入有误"})
    version = fields.Integer(required=True, metadata={"example": 2})


class BallotOut(Schema):
    receipt = fields.String(required=True, metadata={"example": "K7QX-3MPA-9RTV-W2HC"})
    channel = fields.String(required=True, metadata={"example": "online"})
    version = fields.Integer(required=True, metadata={
        "description": "1 for the first ballot, one more for each change.", "example": 1})
    cast_at = fields.DateTime(required=True, metadata={"example": "2026-12-18T08:30:00+00:00"})
    choices = fields.List(fields.Nested(ChoiceOut), required=True)
    corrections = fields.List(fields.Nested(CorrectionOut), required=True, metadata={
        "description": "Corrections the committee made to this household's ballot (newest "
                       "first)."})


class BallotState(Schema):
    consultation_id = fields.Integer(required=True, metadata={"example": 7})
    round = fields.Integer(required=True, metadata={"example": 1})
    vote_open = fields.Boolean(required=True, metadata={"example": True})
    on_roll = fields.Boolean(required=True, metadata={
        "description": "Whether the household is on the frozen electoral roll.",
        "example": True})
    allowed_choices = fields.List(fields.String(), required=True,
                                  metadata={"example": ["agree", "disagree", "abstain"]})
    ballot = fields.Nested(BallotOut, required=True, allow_none=True)


class ChoiceIn(Schema):
    item_id = Id(required=True, metadata={"example": 15})
    choice = fields.String(required=True, validate=validate.OneOf(CHOICES),
                           metadata={"example": "agree"})


class BallotIn(Schema):
    choices = fields.List(fields.Nested(ChoiceIn), required=True,
                          validate=validate.Length(min=1, max=200), metadata={
        "description": "One answer for every item of the consultation.",
        "example": [{"item_id": 15, "choice": "agree"}, {"item_id": 16, "choice": "abstain"}]})


class IdempotencyHeader(Schema):
    key = fields.String(required=True, data_key=idempotency.HEADER,
                        validate=validate.Length(min=8, max=100), metadata={
        "description": "A new random key per change (e.g. a UUID). Sent again with the same "
                       "body, the first answer is replayed; with another body, 409.",
        "example": "5f0c9b8e-2d4a-4c1e-9a7b-3e6f1d2c8b90"})


class ProofIn(Schema):
    receipt = fields.String(required=True, validate=validate.Length(min=1, max=40),
                            metadata={"example": "K7QX-3MPA-9RTV-W2HC"})


class StepOut(Schema):
    side = fields.String(required=True, metadata={"example": "left"})
    sibling = fields.String(required=True, metadata={"example": "9f2c…"})
    result = fields.String(required=True, metadata={"example": "a41b…"})


class AnswerOut(Schema):
    number = fields.Integer(required=True, metadata={"example": 1})
    answer = fields.String(required=True, metadata={"example": "agree"})


class ProofOut(Schema):
    consultation_id = fields.Integer(required=True, metadata={"example": 7})
    round = fields.Integer(required=True, metadata={"example": 1})
    holds = fields.Boolean(required=True, metadata={
        "description": "Whether the audit path leads to the root frozen at the count (and "
                       "printed on the resolution notice).", "example": True})
    index = fields.Integer(required=True, metadata={"example": 4})
    size = fields.Integer(required=True, metadata={"example": 120})
    receipt_hash = fields.String(required=True, metadata={"example": "5d1e…"})
    leaf_data = fields.String(required=True, metadata={"example": "{…}"})
    leaf_hash = fields.String(required=True, metadata={"example": "77ab…"})
    root = fields.String(required=True, metadata={"example": "c3d9…"})
    frozen_root = fields.String(required=True, metadata={"example": "c3d9…"})
    steps = fields.List(fields.Nested(StepOut), required=True)
    answers = fields.List(fields.Nested(AnswerOut), required=True)


# --- what is shown ------------------------------------------------------------------------------


def _household_out(household: Household) -> dict[str, Any]:
    compound = household.building.compound
    return {"id": household.id, "label": household.label, "building": household.building.name,
            "unit": household.unit, "room": household.room,
            "compound": {"id": compound.id, "name": compound.name}}


def consultation_out(c: Consultation) -> dict[str, Any]:
    return {"id": c.id, "title": c.title, "stage": c.stage, "round": c.round,
            "compound_id": c.compound_id, "solicitation_deadline": c.solicitation_deadline,
            "vote_deadline": c.vote_deadline, "vote_open": c.vote_is_open()}


def _ballot_out(consultation: Consultation, household: Household, ballot: Ballot | None,
                chosen: dict[int, str] | None = None) -> dict[str, Any] | None:
    """The ballot as the household sees it; ``chosen`` gives its answers when they were just
    recorded (they are not read back)."""
    if ballot is None:
        return None
    consultations.load_items(consultation)  # their own fields only, not their attachments
    answers = ([(item, chosen[item.id]) for item in consultation.items if item.id in chosen]
               if chosen is not None else ballots.answers_of(consultation, ballot))
    return {
        "receipt": ballot.receipt, "channel": ballot.channel, "version": ballot.version,
        "cast_at": ballot.cast_at,
        "choices": [{"item_id": item.id, "number": item.number, "choice": choice}
                    for item, choice in answers],
        "corrections": [{"at": c.at, "reason": c.reason, "version": c.version}
                        for c in entries.corrections_of(consultation, household.id)],
    }


def _ballot_state(consultation: Consultation, household: Household,
                  recorded: tuple[Ballot, dict[int, str]] | None = None) -> dict[str, Any]:
    """The household's ballot state; ``recorded`` is the ballot just cast and its answers,
    which are then not read back (the cast refused unless the vote was open and the
    household on the roll)."""
    ballot, chosen = recorded if recorded is not None else (
        ballots.ballot_of(consultation, household.id), None)
    return {
        "consultation_id": consultation.id, "round": consultation.round,
        "vote_open": True if recorded is not None else consultation.vote_is_open(),
        "on_roll": recorded is not None
        or ballots.roll_entry_for(consultation, household.id) is not None,
        "allowed_choices": [c.value for c in ballots.allowed_choices(consultation,
                                                                      BallotChannel.ONLINE)],
        "ballot": _ballot_out(consultation, household, ballot, chosen),
    }


# --- operations ---------------------------------------------------------------------------------


@bp.route("/me", methods=["GET"])
@require("account.self")
@conditional
@bp.response(200, MeOut)
@bp.doc(parameters=[IF_NONE_MATCH], security=SIGNED_IN)
@bp.errors(304, 401)
def me() -> dict[str, Any]:
    """The signed-in account and, for a household's account, its household (nobody else's)."""
    household = current_user.household
    return {"id": current_user.id, "username": current_user.username,
            "display_name": current_user.shown_name, "role": current_user.role,
            "locale": current_user.locale,
            "household": _household_out(household) if household is not None else None}


@bp.route("/me/tasks", methods=["GET"])
@require("account.self")
@conditional
@bp.response(200, TasksOut)
@bp.doc(parameters=[IF_NONE_MATCH], security=SIGNED_IN)
@bp.errors(304, 401)
def tasks() -> dict[str, Any]:
    """What waits for the account: a household's tasks (its home page's list: opinions,
    votes, objections, evaluations), or a committee member's to-do list."""
    items: list[dict[str, Any]] = []
    household = current_user.household
    if household is not None:
        for task in inbox.tasks_for(household):
            items.append({"kind": task.kind, "consultation_id": task.consultation.id,
                          "consultation_title": task.consultation.title,
                          "deadline": task.deadline, "done": task.done,
                          "receipt": task.receipt})
    else:
        for work in todo.todo_for(current_user):
            assert work.consultation is not None
            items.append({"kind": work.kind, "consultation_id": work.consultation_id,
                          "consultation_title": work.consultation.title, "deadline": work.due,
                          "done": False, "receipt": None})
    return {"items": items}


@bp.route("/consultations", methods=["GET"])
@require("consultation.view")
@conditional
@bp.arguments(ConsultationListArgs, location="query")
@bp.response(200, ConsultationPage)
@bp.doc(parameters=[IF_NONE_MATCH], security=OPTIONAL)
@bp.errors(304, 400, 401)
def consultation_list(args: dict[str, Any]) -> dict[str, Any]:
    """Consultations, newest first: a household sees those of its compound; staff what the
    web list shows them (published ones, and drafts where they run consultations)."""
    household = getattr(current_user, "household", None)
    scope = compound_scope(current_user, "consultation.view_drafts")
    stmt = consultations.listing(scope, stage=args.get("stage"))
    if household is not None:
        stmt = stmt.where(Consultation.compound_id == household.building.compound_id)
    rows, cursor = page(stmt, Consultation.id, args)
    return {"items": [consultation_out(c) for c in rows], "next_cursor": cursor}


@bp.route("/consultations/<int:consultation_id>", methods=["GET"])
@require("consultation.view")
@conditional
@bp.response(200, ConsultationDetail)
@bp.doc(parameters=[IF_NONE_MATCH], security=OPTIONAL)
@bp.errors(304, 401, 403, 404)
def consultation_detail(consultation_id: int) -> dict[str, Any]:
    """One consultation with its items (drafts only for those who may read them)."""
    c = loading.load(consultation_id)
    return {**consultation_out(c), "summary": c.summary, "rule_code": c.rule_code,
            "secrecy": c.secrecy, "vote_opens_at": c.vote_opens_at,
            "items": [{"id": i.id, "number": i.number, "title": i.title,
                       "description": i.description, "estimated_cost_fen": i.estimated_cost_fen}
                      for i in c.items]}


@bp.route("/consultations/<int:consultation_id>/ballot", methods=["GET"])
@require("consultation.participate")
@conditional
@bp.response(200, BallotState)
@bp.doc(parameters=[IF_NONE_MATCH], security=SIGNED_IN)
@bp.errors(304, 401, 403, 404)
def ballot(consultation_id: int) -> dict[str, Any]:
    """The household's current ballot (null before it voted), whether the vote is open and
    which answers it may give."""
    consultation, household = loading.load_participating(consultation_id)
    return _ballot_state(consultation, household)


@bp.route("/consultations/<int:consultation_id>/ballot", methods=["PUT"])
@starts_reading  # everything is read and checked before the write lock is taken
@require("consultation.participate")
@bp.arguments(IdempotencyHeader, location="headers", as_kwargs=True)
@bp.arguments(BallotIn)
@bp.response(200, BallotState)
@bp.doc(security=SIGNED_IN)
@bp.errors(400, 401, 403, 404, 409)
def ballot_put(body: dict[str, Any], consultation_id: int, key: str) -> Any:
    """Cast the household's ballot, or change it until the vote closes: one answer for every
    item. The last ballot is the one counted. Refused with 409 `vote_closed` outside the
    vote, 403 for a household the consultation does not concern."""
    consultation, household = loading.load_participating(consultation_id)
    chosen: dict[int, str] = {}
    for answer in body["choices"]:
        chosen[answer["item_id"]] = answer["choice"]
    # Read before the write lock (the serialised section): the items and the roll entry,
    # which the cast checks the answers against.
    consultations.load_items(consultation)  # here, not under the lock
    entry = ballots.roll_entry_for(consultation, household.id)
    # From here the transaction writes: the key's claim and the ballot commit together.
    lock_row(consultation, shared=True)
    claim, replay = idempotency.begin(current_user, key)
    if replay is not None:
        return replay
    ballot = ballots.cast(current_user, consultation, household, chosen, BallotChannel.ONLINE,
                          roll_entry=entry)
    answer = BallotState().dump(_ballot_state(consultation, household, (ballot, chosen)))
    idempotency.finish(claim, 200, answer)
    db.session.commit()
    return jsonify(answer)  # dumped already: the same body is kept for a replay


@bp.route("/consultations/<int:consultation_id>/receipt", methods=["GET"])
@require("consultation.participate")
@conditional
@bp.response(200, BallotOut)
@bp.doc(parameters=[IF_NONE_MATCH], security=SIGNED_IN)
@bp.errors(304, 401, 403, 404)
def receipt(consultation_id: int) -> dict[str, Any] | None:
    """The household's receipt: its current ballot's code, time and answers (404 before it
    voted)."""
    consultation, household = loading.load_participating(consultation_id)
    out = _ballot_out(consultation, household, ballots.ballot_of(consultation, household.id))
    if out is None:
        raise NotFound(_("Your household has no ballot in this vote."))
    return out


def _receipt_limit() -> str:
    return str(current_app.config["RECEIPT_RATE_LIMIT"])


@bp.route("/consultations/<int:consultation_id>/proof", methods=["POST"])
@require("ballot.prove")
@limiter.limit(_receipt_limit)
@bp.arguments(ProofIn)
@bp.response(200, ProofOut)
@bp.doc(security=OPTIONAL)
@bp.errors(400, 401, 404, 409, 429)
def proof(body: dict[str, Any], consultation_id: int) -> dict[str, Any]:
    """Check a receipt against the counted ballots: its answers as counted and the audit path
    to the root frozen at the count (anyone holding the code may ask; wrong codes are counted
    and pause checks from the address, as on the proof page)."""
    consultation = loading.load(consultation_id)
    if not proofs.tree_heads(consultation):
        raise Conflict(_("The ballots of this consultation have not been counted yet."))
    try:
        found = proofs.check_receipt(get_remote_address(), consultation, body["receipt"])
    except (proofs.ReceiptNotFound, proofs.ReceiptChecksPaused):
        db.session.commit()  # a wrong code is counted, and may have started a pause
        raise
    db.session.commit()
    return {
        "consultation_id": found.consultation_id, "round": found.round, "holds": found.holds,
        "index": found.index, "size": found.size, "receipt_hash": found.receipt_hash,
        "leaf_data": found.leaf_data, "leaf_hash": found.leaf_hash, "root": found.root,
        "frozen_root": found.frozen_root,
        "steps": [{"side": s.side, "sibling": s.sibling, "result": s.result}
                  for s in found.steps],
        "answers": [{"number": int(n), "answer": a}
                    for n, a in sorted(found.answers.items(), key=lambda pair: int(pair[0]))],
    }
