"""The overview dashboard's pages: the table and charts, the workbook and the monthly report."""

from __future__ import annotations

from flask import Blueprint, render_template, request
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_login import current_user
from werkzeug.wrappers import Response

from consult.consultations.states import stage_label
from consult.core import sorting
from consult.core.forms import page_number
from consult.core.pagination import window_of_list
from consult.core.policy import compound_scope, require
from consult.process import dashboard

bp = Blueprint("dashboard", __name__, url_prefix="/dashboard")


def _build() -> tuple[dashboard.Dashboard, frozenset[int] | None]:
    scope = compound_scope(current_user, "dashboard.view")
    sort = sorting.parse(request.args.get("sort"), dashboard.SORT_KEYS, dashboard.DEFAULT_SORT)
    dash = dashboard.build(scope, dashboard.filters_from(request.args), sort,
                           no_grid=_("No grid"), no_office=_("No street office"))
    return dash, scope


@bp.get("/")
@require("dashboard.view")
def index() -> str:
    dash, _scope = _build()
    level = dashboard.shown_level(request.args, dash.filters)
    page = window_of_list(dash.rows, page_number(), dashboard.PAGE_ROWS)
    return render_template("dashboard/index.html", dash=dash, page=page, level=level,
                           levels=dashboard.LEVELS, short_time=dashboard.short_time,
                           totals=[t for t in dash.totals if t.level == level],
                           percent=dashboard.percent, stage_label=stage_label,
                           money=dashboard.money, stage_text=dashboard.stage_text,
                           level_labels=dashboard.level_labels(),
                           chart_limit=dashboard.CHART_LIMIT, query=request.args.to_dict(),
                           turnout_of=lambda row: row.turnout,
                           satisfaction_of=lambda row: row.satisfaction)


@bp.get("/export.xlsx")
@require("dashboard.view")
def export() -> Response:
    dash, _scope = _build()
    return Response(dashboard.workbook(dash), mimetype=(
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"), headers={
        "Content-Disposition": "attachment; filename=dashboard.xlsx"})


@bp.get("/report.pdf")
@require("dashboard.view")
def report() -> Response:
    dash, scope = _build()
    locale = str(get_locale() or "zh_Hans")
    return Response(dashboard.report_pdf(dash, scope, request.args.get("month"), locale),
                    mimetype="application/pdf", headers={
                        "Content-Disposition": "inline; filename=dashboard-report.pdf"})
