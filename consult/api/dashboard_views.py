"""The overview dashboard through the API: the compounds in the caller's scope compared, one
row per compound as the web table has it, with its filters, sort and totals per level
(``process.dashboard``)."""

from __future__ import annotations

from fractions import Fraction
from typing import Any

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
    page_of_list,
)
from consult.consultations.states import stage_label
from consult.core import sorting
from consult.core.policy import compound_scope, require
from consult.process import dashboard

bp = Blueprint("api_dashboard", __name__, url_prefix="/api/v1",
               description="The overview dashboard: the compounds in scope compared.")

SIGNED_IN: list[dict[str, list[str]]] = [{"bearer": []}]

SORTS = [f"{way}{key}" for key in dashboard.SORT_KEYS for way in ("", "-")]
TOTAL_LEVELS = [*dashboard.LEVELS, "all"]


def _share(value: Fraction | None) -> float | None:
    """A share (0–1) to four decimals; the page prints it as a percentage."""
    return None if value is None else round(float(value), 4)


class DashboardArgs(PageArgs):
    community = Id(strict=False, load_default=None,
                               metadata={"description": "Only the compounds of this "
                                                        "community (one of `communities`).",
                                         "example": 3})
    grid = Id(strict=False, load_default=None,
                          metadata={"description": "Only the compounds of this grid (one of "
                                                   "`grids`).", "example": 5})
    sort = fields.String(load_default=dashboard.DEFAULT_SORT, validate=validate.OneOf(SORTS),
                         metadata={"description": "A column, ascending; with a leading "
                                                  "\"-\", descending. Rows without a value "
                                                  "(no running vote, no works) go last "
                                                  "either way.", "example": "-turnout"})
    level = fields.String(load_default=None, validate=validate.OneOf(dashboard.LEVELS),
                          metadata={"description": "Only the totals of this level (all "
                                                   "levels when left out).",
                                    "example": "community"})


class StageCountOut(Schema):
    stage = fields.String(required=True, metadata={"example": "voting"})
    label = fields.String(required=True, metadata={"example": "投票中"})
    count = fields.Integer(required=True, metadata={"example": 1})


class VoteOut(Schema):
    consultation_id = fields.Integer(required=True, metadata={"example": 7})
    title = fields.String(required=True, metadata={"example": "加装电梯"})
    deadline = fields.DateTime(required=True, allow_none=True,
                               metadata={"example": "2026-12-09T10:00:00+00:00"})
    roll_households = fields.Integer(required=True, metadata={"example": 120})
    voted_households = fields.Integer(required=True, metadata={"example": 97})
    roll_owners = fields.Integer(required=True, metadata={
        "description": "Counted only when the vote's rule counts owners (else 0).",
        "example": 0})
    voted_owners = fields.Integer(required=True, metadata={"example": 0})
    roll_area_dm2 = fields.Integer(required=True, metadata={
        "description": "Exclusive area on the roll, in 0.01 m².", "example": 987650})
    voted_area_dm2 = fields.Integer(required=True, metadata={"example": 801225})
    still_needed = fields.List(fields.String(), required=True, metadata={
        "description": "What participation still lacks under the vote's rule, in the "
                       "language asked for; empty when reached.",
        "example": ["还差 3 户"]})
    turnout_threshold = fields.Boolean(required=True, metadata={
        "description": "Whether the rule sets a turnout at all.", "example": True})


class RowOut(Schema):
    compound_id = fields.Integer(required=True, metadata={"example": 4})
    name = fields.String(required=True, metadata={"example": "幸福小区"})
    community_id = fields.Integer(required=True, metadata={"example": 3})
    community = fields.String(required=True, metadata={"example": "甲社区"})
    grid_id = fields.Integer(required=True, allow_none=True, metadata={"example": 5})
    grid = fields.String(required=True, allow_none=True, metadata={"example": "一网格"})
    office_id = fields.Integer(required=True, allow_none=True, metadata={"example": 1})
    office = fields.String(required=True, allow_none=True, metadata={"example": "东街道"})
    consultations = fields.Integer(required=True, metadata={
        "description": "Consultations past their draft.", "example": 2})
    stages = fields.List(fields.Nested(StageCountOut), required=True)
    vote = fields.Nested(VoteOut, required=True, allow_none=True, metadata={
        "description": "The running vote (the one closing first if several are open)."})
    turnout = fields.Float(required=True, allow_none=True, metadata={
        "description": "Households that voted of those on the roll, 0–1.", "example": 0.8083})
    turnout_area = fields.Float(required=True, allow_none=True, metadata={"example": 0.8113})
    deadline = fields.DateTime(required=True, allow_none=True, metadata={
        "description": "The nearest deadline to come (a vote's or a solicitation's).",
        "example": "2026-12-09T10:00:00+00:00"})
    days_left = fields.Integer(required=True, allow_none=True, metadata={
        "description": "Whole days to the deadline's day, Beijing time (0: today).",
        "example": 5})
    items_done = fields.Integer(required=True, metadata={"example": 1})
    items_all = fields.Integer(required=True, metadata={"example": 2})
    works = fields.Float(required=True, allow_none=True, metadata={"example": 0.5})
    budget_fen = fields.Integer(required=True, metadata={"example": 300000})
    spent_fen = fields.Integer(required=True, metadata={"example": 50000})
    satisfied = fields.Integer(required=True, metadata={
        "description": "Evaluations satisfied or basically satisfied.", "example": 3})
    evaluations = fields.Integer(required=True, metadata={"example": 4})
    satisfaction = fields.Float(required=True, allow_none=True, metadata={"example": 0.75})
    objections = fields.Integer(required=True, metadata={
        "description": "Objections to notices not answered yet.", "example": 1})
    feedback = fields.Integer(required=True, metadata={
        "description": "Residents' opinions of running consultations no item took up.",
        "example": 2})
    defects_open = fields.Integer(required=True, metadata={"example": 1})
    defects_overdue = fields.Integer(required=True, metadata={"example": 0})
    defects_fixed = fields.Integer(required=True, metadata={"example": 2})
    last_activity = fields.DateTime(required=True, allow_none=True,
                                    metadata={"example": "2026-12-04T12:48:00+00:00"})


class TotalsOut(Schema):
    level = fields.String(required=True, validate=validate.OneOf(TOTAL_LEVELS),
                          metadata={"example": "community"})
    key = fields.Integer(required=True, allow_none=True, metadata={
        "description": "The grid's, community's or office's id; a grid level's negative "
                       "key groups a community's compounds without a grid; null for all "
                       "and for compounds without an office.", "example": 3})
    name = fields.String(required=True, metadata={"example": "甲社区"})
    compounds = fields.Integer(required=True, metadata={"example": 2})
    consultations = fields.Integer(required=True, metadata={"example": 3})
    votes = fields.Integer(required=True, metadata={"example": 1})
    roll_households = fields.Integer(required=True, metadata={"example": 120})
    voted_households = fields.Integer(required=True, metadata={"example": 97})
    roll_area_dm2 = fields.Integer(required=True, metadata={"example": 987650})
    voted_area_dm2 = fields.Integer(required=True, metadata={"example": 801225})
    turnout = fields.Float(required=True, allow_none=True, metadata={"example": 0.8083})
    turnout_area = fields.Float(required=True, allow_none=True, metadata={"example": 0.8113})
    items_done = fields.Integer(required=True, metadata={"example": 1})
    items_all = fields.Integer(required=True, metadata={"example": 2})
    works = fields.Float(required=True, allow_none=True, metadata={"example": 0.5})
    budget_fen = fields.Integer(required=True, metadata={"example": 300000})
    spent_fen = fields.Integer(required=True, metadata={"example": 50000})
    satisfied = fields.Integer(required=True, metadata={"example": 3})
    evaluations = fields.Integer(required=True, metadata={"example": 4})
    satisfaction = fields.Float(required=True, allow_none=True, metadata={"example": 0.75})
    objections = fields.Integer(required=True, metadata={"example": 1})
    feedback = fields.Integer(required=True, metadata={"example": 2})
    defects_open = fields.Integer(required=True, metadata={"example": 1})
    defects_overdue = fields.Integer(required=True, metadata={"example": 0})
    defects_fixed = fields.Integer(required=True, metadata={"example": 2})
    last_activity = fields.DateTime(required=True, allow_none=True,
                                    metadata={"example": "2026-12-04T12:48:00+00:00"})


class CommunityOut(Schema):
    id = fields.Integer(required=True, metadata={"example": 3})
    name = fields.String(required=True, metadata={"example": "甲社区"})


class GridOut(Schema):
    id = fields.Integer(required=True, metadata={"example": 5})
    name = fields.String(required=True, metadata={"example": "一网格"})
    community_id = fields.Integer(required=True, metadata={"example": 3})


class DashboardOut(PageOf):
    items = fields.List(fields.Nested(RowOut), required=True)
    count = fields.Integer(required=True, metadata={
        "description": "Compounds shown, on every page.", "example": 42})
    sort = fields.String(required=True, metadata={"example": "-turnout"})
    community = fields.Integer(required=True, allow_none=True, metadata={"example": None})
    grid = fields.Integer(required=True, allow_none=True, metadata={"example": None})
    communities = fields.List(fields.Nested(CommunityOut), required=True, metadata={
        "description": "The communities in scope: the values of `community`."})
    grids = fields.List(fields.Nested(GridOut), required=True, metadata={
        "description": "The grids in scope: the values of `grid`."})
    totals = fields.List(fields.Nested(TotalsOut), required=True, metadata={
        "description": "Per grid, community and street office (each in name order), over "
                       "every compound shown, not only this page."})
    grand = fields.Nested(TotalsOut, required=True, metadata={
        "description": "Everything shown (level \"all\")."})


def _vote(v: dashboard.Vote | None) -> dict[str, Any] | None:
    if v is None:
        return None
    return {"consultation_id": v.consultation_id, "title": v.title, "deadline": v.deadline,
            "roll_households": v.roll_households, "voted_households": v.voted_households,
            "roll_owners": v.roll_owners, "voted_owners": v.voted_owners,
            "roll_area_dm2": v.roll_area_dm2, "voted_area_dm2": v.voted_area_dm2,
            "still_needed": [str(text) for text in v.missing],
            "turnout_threshold": bool(v.conditions)}


def _row(r: dashboard.Row) -> dict[str, Any]:
    return {
        "compound_id": r.compound_id, "name": r.name, "community_id": r.community_id,
        "community": r.community, "grid_id": r.grid_id, "grid": r.grid or None,
        "office_id": r.office_id, "office": r.office or None,
        "consultations": r.consultations,
        "stages": [{"stage": stage, "label": str(stage_label(stage)), "count": count}
                   for stage, count in r.stages.items()],
        "vote": _vote(r.vote), "turnout": _share(r.turnout),
        "turnout_area": _share(r.turnout_area), "deadline": r.deadline,
        "days_left": r.days_left, "items_done": r.items_done, "items_all": r.items_all,
        "works": _share(r.works), "budget_fen": r.budget_fen, "spent_fen": r.spent_fen,
        "satisfied": r.satisfied, "evaluations": r.evaluations,
        "satisfaction": _share(r.satisfaction), "objections": r.objections,
        "feedback": r.feedback, "defects_open": r.defects_open,
        "defects_overdue": r.defects_overdue, "defects_fixed": r.defects_fixed,
        "last_activity": r.last_activity}


def _totals(t: dashboard.Totals) -> dict[str, Any]:
    return {
        "level": t.level, "key": t.key, "name": t.name, "compounds": t.compounds,
        "consultations": t.consultations, "votes": t.votes,
        "roll_households": t.roll_households, "voted_households": t.voted_households,
        "roll_area_dm2": t.roll_area_dm2, "voted_area_dm2": t.voted_area_dm2,
        "turnout": _share(t.turnout), "turnout_area": _share(t.turnout_area),
        "items_done": t.items_done, "items_all": t.items_all, "works": _share(t.works),
        "budget_fen": t.budget_fen, "spent_fen": t.spent_fen, "satisfied": t.satisfied,
        "evaluations": t.evaluations, "satisfaction": _share(t.satisfaction),
        "objections": t.objections, "feedback": t.feedback,
        "defects_open": t.defects_open, "defects_overdue": t.defects_overdue,
        "defects_fixed": t.defects_fixed, "last_activity": t.last_activity}


@bp.route("/dashboard", methods=["GET"])
@require("dashboard.view")
@conditional
@bp.arguments(DashboardArgs, location="query")
@bp.response(200, DashboardOut)
@bp.doc(parameters=[IF_NONE_MATCH], security=SIGNED_IN)
@bp.errors(304, 400, 401, 403)
def dashboard_rows(args: dict[str, Any]) -> dict[str, Any]:
    """The overview dashboard's table: one row per compound in the caller's scope (a
    committee member its compound, a street office or supervisor its compounds, a grid
    worker its grid's, administrators all), filtered by `community` and `grid`, sorted by
    `sort`, in pages (`cursor`, `limit`), with the totals per level over every compound
    shown. Money in fen (分), areas in 0.01 m², shares from 0 to 1."""
    scope = compound_scope(current_user, "dashboard.view")
    sort = sorting.parse(args["sort"], dashboard.SORT_KEYS, dashboard.DEFAULT_SORT)
    filters = dashboard.filters_from({name: str(args[name]) for name in ("community", "grid")
                                      if args.get(name) is not None})
    dash = dashboard.build(scope, filters, sort, no_grid=_("No grid"),
                           no_office=_("No street office"))
    view = f"{sort.value}|{filters.community_id}|{filters.grid_id}"
    rows, cursor = page_of_list(dash.rows, args, view)
    level = args.get("level")
    return {
        "items": [_row(r) for r in rows], "next_cursor": cursor, "count": len(dash.rows),
        "sort": sort.value, "community": filters.community_id, "grid": filters.grid_id,
        "communities": [{"id": cid, "name": name} for cid, name in dash.communities],
        "grids": [{"id": gid, "name": name, "community_id": comm}
                  for gid, name, comm in dash.grids],
        "totals": [_totals(t) for t in dash.totals if level is None or t.level == level],
        "grand": _totals(dash.grand)}
