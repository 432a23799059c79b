"""The baseline of the load test: a bench-only blueprint whose form flow has the vote path's
shape (open a form, send it for review, confirm) but whose confirmation only inserts one row.

It runs through the same stack as the vote (the app factory, the signed session cookie, the
sign-in check of ``@require``, CSRF, the page layout, a database transaction and its commit),
so the vote's throughput as a fraction of this one is what the real work costs: loading the
consultation and its items, the roll, validating the choices, the ballot upsert and the audit
chain append.

Never part of the app: only ``bench/wsgi_bench.py`` registers it, and only when the bench asks
(``BENCH_BASELINE=1``). The row goes to a table of its own metadata, which the migrations
never see; the bench creates it before starting the server.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Flask, current_app, redirect, render_template, url_for
from flask_login import current_user
from jinja2 import Template
from sqlalchemy import Column, DateTime, Integer, MetaData, String, Table, func, insert
from werkzeug.wrappers import Response
from wtforms import HiddenField

from consult.core.database import lock_row, starts_reading
from consult.core.forms import FlaskForm
from consult.core.policy import require
from consult.extensions import db

URL_PREFIX = "/_bench"
metadata = MetaData()
rows = Table(
    "bench_baseline_row", metadata,
    Column("id", Integer, primary_key=True),
    Column("created_at", DateTime, server_default=func.current_timestamp()),
    Column("note", String(64)),
)
bp = Blueprint("bench_baseline", __name__, url_prefix=URL_PREFIX)

# In the app's page layout (header, menu, language and text-size switches) like every page of
# the app: the layout is part of the stack, not of the vote's work.
_PAGE = """{% extends "base.html" %}{% block title %}baseline{% endblock %}{% block content %}
<form method="post" action="{{ action }}">{{ form.csrf_token }}{{ form.note }}
<button>send</button></form>{% endblock %}"""


def _page() -> Template:
    """The page, compiled once per process like the app's own templates (rendering it with
    ``render_template_string`` would compile it on every request)."""
    template = current_app.extensions.get("bench_baseline_page")
    if template is None:
        template = current_app.extensions["bench_baseline_page"] = (
            current_app.jinja_env.from_string(_PAGE))
    return template


class BaselineForm(FlaskForm):
    note = HiddenField()


@bp.get("/baseline")
@require("consultation.participate")
def form() -> str:
    """Step 1: a form with its CSRF token."""
    return render_template(_page(), form=BaselineForm(),
                                  action=url_for("bench_baseline.review"))


@bp.post("/baseline")
@starts_reading  # as the vote's review: a POST that writes nothing takes no write lock
@require("consultation.participate")
def review() -> tuple[str, int] | str:
    """Step 2: the form validated (CSRF) and shown again with a fresh token."""
    submitted = BaselineForm()
    if not submitted.validate_on_submit():
        return "invalid", 400
    return render_template(_page(), form=BaselineForm(note=submitted.note.data),
                                  action=url_for("bench_baseline.confirm"))


@bp.post("/baseline/confirm")
@starts_reading  # as the vote's confirmation: checks first, the write lock only for the write
@require("consultation.participate")
def confirm() -> Response | tuple[str, int]:
    """Step 3: the form validated (CSRF), one row inserted and committed, locking as the
    vote's confirmation does: the write lock (SQLite) and one shared row lock (PostgreSQL) are
    taken by ``lock_row`` after the checks, as ``ballots.cast`` takes them on the
    consultation."""
    submitted = BaselineForm()
    if not submitted.validate_on_submit():
        return "invalid", 400
    lock_row(current_user._get_current_object(), shared=True)
    db.session.execute(insert(rows).values(note=(submitted.note.data or "")[:64]))
    db.session.commit()
    return redirect(url_for("bench_baseline.form"))


def register(app: Flask) -> None:
    """Add the baseline routes to ``app`` (the bench's own server only)."""
    app.register_blueprint(bp)


def create_table(engine: Any) -> None:
    """Create the baseline's table (once, before the server's workers start)."""
    metadata.create_all(engine)
