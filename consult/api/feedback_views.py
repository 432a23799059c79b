"""Defect reports on the finished works (查漏补缺) through the API: a household's reports and
the compound staff's, reporting with photos, a report with its history, its steps, and the
public list per compound, through ``feedback.service`` as the pages do."""

from __future__ import annotations

from datetime import date
from typing import Any

from flask import url_for
from flask_babel import gettext as _
from flask_login import current_user
from marshmallow import Schema, fields, validate

from consult.api.common import (
    IF_NONE_MATCH,
    Blueprint,
    Id,
    PageArgs,
    PageOf,
    conditional,
    decode_cursor,
    encode_cursor,
    page,
)
from consult.api.opinion_views import PhotoIn, file_of
from consult.core.errors import NotFound
from consult.core.policy import authorize, load, require
from consult.extensions import db
from consult.feedback import service
from consult.feedback.models import STATE_LABELS, DefectReport
from consult.feedback.states import Action, State
from consult.process import loading
from consult.registry.models import Compound

bp = Blueprint("api_feedback", __name__, url_prefix="/api/v1",
               description="Defect reports on the finished works (查漏补缺).")

SIGNED_IN: list[dict[str, list[str]]] = [{"bearer": []}]
OPTIONAL: list[dict[str, list[str]]] = [{"bearer": []}, {}]
_STATES = [s.value for s in State]
_ACTIONS = [a.value for a in Action]


class ReportOut(Schema):
    id = fields.Integer(required=True, metadata={"example": 14})
    consultation_id = fields.Integer(required=True, metadata={"example": 7})
    item_id = fields.Integer(required=True, metadata={"example": 21})
    item = fields.String(required=True, metadata={"example": "1. 更换路灯"})
    building_id = fields.Integer(required=True, metadata={"example": 5})
    building = fields.String(required=True, metadata={"example": "1号楼"})
    household_id = fields.Integer(required=True, allow_none=True, metadata={
        "description": "The household it was reported for; none for a supervisor's own.",
        "example": 41})
    reporter_role = fields.String(required=True, metadata={"example": "resident"})
    text = fields.String(required=True, metadata={"example": "楼道路灯又不亮了。"})
    state = fields.String(required=True, metadata={"enum": _STATES, "example": "assigned"})
    state_label = fields.String(required=True, metadata={"example": "已派工"})
    reason = fields.String(required=True, metadata={
        "description": "Of the latest rejection or reopening.", "example": ""})
    assignee = fields.String(required=True, metadata={"example": "物业 王师傅"})
    due_on = fields.Date(required=True, allow_none=True, metadata={"example": "2026-12-10"})
    overdue = fields.Boolean(required=True, metadata={"example": False})
    fix_note = fields.String(required=True, metadata={"example": ""})
    fixed_at = fields.DateTime(required=True, allow_none=True, metadata={"example": None})
    created_at = fields.DateTime(required=True,
                                 metadata={"example": "2026-12-01T08:00:00+00:00"})
    photo_urls = fields.List(fields.String(), required=True, metadata={
        "description": "The report's photos, for those who may read the report.",
        "example": ["/feedback/14/photos/9"]})
    fix_photo_url = fields.String(required=True, allow_none=True,
                                  metadata={"example": None})
    actions = fields.List(fields.String(), required=True, metadata={
        "description": "The steps the signed-in user may take now.", "example": ["confirm"]})


class FeedbackStepOut(Schema):
    at = fields.DateTime(required=True, metadata={"example": "2026-12-02T09:00:00+00:00"})
    action = fields.String(required=True, metadata={"example": "feedback.assigned"})
    role = fields.String(required=True, allow_none=True, metadata={"example": "committee"})
    data = fields.Dict(required=True, metadata={
        "example": {"from": "accepted", "to": "assigned", "assignee": "物业 王师傅",
                    "due_on": "2026-12-10"}})


class ReportDetail(ReportOut):
    history = fields.List(fields.Nested(FeedbackStepOut), required=True)


class ReportPage(PageOf):
    items = fields.List(fields.Nested(ReportOut), required=True)


class ReportIn(Schema):
    item_id = Id(required=True, metadata={"example": 21})
    building_id = Id(required=True, metadata={"example": 5})
    text = fields.String(required=True, validate=validate.Length(max=10000),
                         metadata={"example": "楼道路灯又不亮了。"})
    household_id = Id(load_default=None, allow_none=True, metadata={
        "description": "A grid worker names the household reported for.", "example": None})
    photos = fields.List(fields.Nested(PhotoIn), load_default=list,
                         validate=validate.Length(max=20), metadata={
                             "description": "Images checked like the web form's upload; "
                                            "seen by the compound's staff and the household "
                                            "only."})


class FeedbackStepIn(Schema):
    action = fields.String(required=True, validate=validate.OneOf(_ACTIONS),
                           metadata={"example": "assign"})
    reason = fields.String(load_default=None, allow_none=True,
                           validate=validate.Length(max=10000), metadata={
                               "description": "reject, reopen.", "example": None})
    assignee = fields.String(load_default=None, allow_none=True,
                             validate=validate.Length(max=1000), metadata={
                                 "description": "assign.", "example": "物业 王师傅"})
    due_on = fields.Date(load_default=None, allow_none=True, metadata={
        "description": "assign: the day the fix is due (Beijing).", "example": "2026-12-10"})
    note = fields.String(load_default=None, allow_none=True,
                         validate=validate.Length(max=10000), metadata={
                             "description": "mark_fixed.", "example": None})
    photo = fields.Nested(PhotoIn, load_default=None, allow_none=True, metadata={
        "description": "mark_fixed: a photo of the fixed defect."})


class PublicOut(Schema):
    number = fields.Integer(required=True, metadata={"example": 14})
    consultation = fields.String(required=True, metadata={"example": "老旧小区改造"})
    building = fields.String(required=True, metadata={"example": "1号楼"})
    item = fields.String(required=True, metadata={"example": "1. 更换路灯"})
    state = fields.String(required=True, metadata={"enum": _STATES, "example": "fixed"})
    state_label = fields.String(required=True, metadata={"example": "已修复"})
    reported_at = fields.DateTime(required=True,
                                  metadata={"example": "2026-12-01T08:00:00+00:00"})
    fixed_at = fields.DateTime(required=True, allow_none=True,
                               metadata={"example": "2026-12-03T08:00:00+00:00"})
    days_to_fix = fields.Integer(required=True, allow_none=True, metadata={"example": 2})
    overdue = fields.Boolean(required=True, metadata={"example": False})


class PublicPage(PageOf):
    items = fields.List(fields.Nested(PublicOut), required=True)


def _out(found: DefectReport) -> dict[str, Any]:
    return {
        "id": found.id, "consultation_id": found.consultation_id, "item_id": found.item_id,
        "item": f"{found.item.number}. {found.item.title}", "building_id": found.building_id,
        "building": found.building.name, "household_id": found.household_id,
        "reporter_role": found.reporter_role, "text": found.text, "state": found.state,
        "state_label": found.state_label, "reason": found.reason, "assignee": found.assignee,
        "due_on": found.due_on, "overdue": service.is_overdue(found),
        "fix_note": found.fix_note, "fixed_at": found.fixed_at, "created_at": found.created_at,
        "photo_urls": [url_for("feedback.photo", report_id=found.id, photo_id=p.id)
                       for p in found.photos],
        "fix_photo_url": url_for("uploads.file", attachment_id=found.fix_photo_id)
        if found.fix_photo_id else None,
        "actions": [a.value for a in service.actions_for(current_user, found)],
    }


def _plain(data: dict[str, Any]) -> dict[str, Any]:
    return {k: v.isoformat() if isinstance(v, date) else v for k, v in data.items()}


def _detail(found: DefectReport) -> dict[str, Any]:
    out = _out(found)
    out["history"] = [{"at": s.at, "action": s.action, "role": s.role, "data": _plain(s.data)}
                      for s in service.history(found)]
    return out


@bp.route("/consultations/<int:consultation_id>/feedback", methods=["GET"])
@require("feedback.view")
@conditional
@bp.arguments(PageArgs, location="query")
@bp.response(200, ReportPage)
@bp.doc(parameters=[IF_NONE_MATCH], security=SIGNED_IN)
@bp.errors(304, 400, 401, 403, 404)
def report_list(args: dict[str, Any], consultation_id: int) -> dict[str, Any]:
    """The defect reports on a consultation, newest first: a household's own, or all of them
    for the staff of its compound."""
    consultation, household = loading.load_household_or_staff(consultation_id)
    if household is None:
        authorize(current_user, "feedback.list", consultation)
    rows, cursor = page(service.reports_of(consultation, household), DefectReport.id, args)
    return {"items": [_out(r) for r in rows], "next_cursor": cursor}


@bp.route("/consultations/<int:consultation_id>/feedback", methods=["POST"])
@require("feedback.report")
@bp.arguments(ReportIn)
@bp.response(201, ReportDetail)
@bp.doc(security=SIGNED_IN)
@bp.errors(400, 401, 403, 404, 409, 413)
def report_create(body: dict[str, Any], consultation_id: int) -> dict[str, Any]:
    """Report a defect in a finished item during the warranty period: a household for
    itself, a grid worker for a household (``household_id``), a supervisor on their own."""
    consultation, _household = loading.load_household_or_staff(consultation_id)
    photos = [file_of(p, f"photos.{i}") for i, p in enumerate(body["photos"])]
    found = service.report(current_user, consultation, service.ReportInput(
        item_id=body["item_id"], building_id=body["building_id"], text=body["text"],
        household_id=body["household_id"], photos=[p for p in photos if p is not None]))
    out = _detail(found)
    db.session.commit()
    return out


@bp.route("/feedback/<int:report_id>", methods=["GET"])
@require("feedback.view")
@conditional
@bp.response(200, ReportDetail)
@bp.doc(parameters=[IF_NONE_MATCH], security=SIGNED_IN)
@bp.errors(304, 401, 403, 404)
def report_detail(report_id: int) -> dict[str, Any]:
    """A report with its history, for its household and the staff of its compound."""
    return _detail(load(service.get_or_404, report_id))


@bp.route("/feedback/<int:report_id>/steps", methods=["POST"])
@require("feedback.view")
@bp.arguments(FeedbackStepIn)
@bp.response(200, ReportDetail)
@bp.doc(security=SIGNED_IN)
@bp.errors(400, 401, 403, 404, 409, 413)
def report_step(body: dict[str, Any], report_id: int) -> dict[str, Any]:
    """Take a step on a report: who may take which, from which state, and what it needs are
    the service's (409 ``feedback_step_not_allowed`` from a wrong state)."""
    found = load(service.get_or_404, report_id)
    service.move(found, body["action"], current_user, reason=body["reason"],
                 assignee=body["assignee"], due_on=body["due_on"],
                 photo=file_of(body["photo"], "photo"), note=body["note"])
    out = _detail(found)
    db.session.commit()
    return out


@bp.route("/compounds/<int:compound_id>/feedback", methods=["GET"])
@require("public.view")
@conditional
@bp.arguments(PageArgs, location="query")
@bp.response(200, PublicPage)
@bp.doc(parameters=[IF_NONE_MATCH], security=OPTIONAL)
@bp.errors(304, 400, 404)
def public_list(args: dict[str, Any], compound_id: int) -> dict[str, Any]:
    """Every report of a compound, for everyone, as the public list shows it: the building,
    the item and the dates, never the text, the household or the reporter."""
    if db.session.get(Compound, compound_id) is None:
        raise NotFound(_("No such compound."))
    # Pages go by report number, newest first.
    rows = sorted(service.public_rows(compound_id), key=lambda r: -r.number)
    if args.get("cursor"):
        after = decode_cursor(args["cursor"])
        rows = [r for r in rows if r.number < after]
    limit = int(args.get("limit") or 20)
    more = len(rows) > limit
    rows = rows[:limit]
    return {"items": [{
        "number": r.number, "consultation": r.consultation, "building": r.building,
        "item": r.item, "state": r.state.value, "state_label": str(STATE_LABELS[r.state]),
        "reported_at": r.reported_at, "fixed_at": r.fixed_at, "days_to_fix": r.days_to_fix,
        "overdue": r.overdue} for r in rows],
        "next_cursor": encode_cursor(rows[-1].number) if more and rows else None}
