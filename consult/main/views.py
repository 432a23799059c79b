"""Home page, health check and language switch."""

from __future__ import annotations

from flask import Blueprint, current_app, jsonify, redirect, render_template, request, url_for
from flask_login import current_user
from sqlalchemy import text
from werkzeug.wrappers import Response

from consult.accounts import service as accounts
from consult.consultations import states
from consult.core.display import TEXT_COOKIE, TEXT_LARGE
from consult.core.i18n import LANG_COOKIE_MAX_AGE, SUPPORTED_LOCALES, set_lang_cookie
from consult.core.policy import can, require
from consult.core.urls import safe_next
from consult.extensions import db
from consult.process import inbox, todo
from consult.process.workflow import ACTION_LABELS

bp = Blueprint("main", __name__)


@bp.get("/")
@require("public.view")
def index() -> str:
    household = getattr(current_user, "household", None)
    tasks = inbox.tasks_for(household) if household is not None else []
    # The committee's to-do list, for those who run consultations (None: no such section).
    todos = todo.todo_for(current_user) if can(current_user, "consultation.manage") else None
    return render_template("main/index.html", tasks=tasks, recent=inbox.recent_public(),
                           todos=todos, action_labels=ACTION_LABELS,
                           stage_label=states.stage_label)


@bp.get("/healthz")
@require("public.view")
def healthz() -> tuple[Response, int]:
    try:
        db.session.execute(text("SELECT 1"))
    except Exception:
        current_app.logger.exception("health check: database unreachable")
        return jsonify({"status": "error", "database": "unreachable"}), 503
    return jsonify({"status": "ok"}), 200


@bp.post("/language")
@require("public.view")
def set_language() -> Response:
    locale = request.form.get("lang", "")
    target = safe_next(request.form.get("next")) or url_for("main.index")
    response = redirect(target)
    if locale not in SUPPORTED_LOCALES:
        return response
    if current_user.is_authenticated:
        accounts.set_locale(current_user, current_user, locale)
        db.session.commit()
    set_lang_cookie(response, locale)
    return response


@bp.post("/text-size")
@require("public.view")
def set_text_size() -> Response:
    """Larger text for this browser (kept for a year), or back to the normal size."""
    target = safe_next(request.form.get("next")) or url_for("main.index")
    response = redirect(target)
    size = request.form.get("size", "")
    if size == TEXT_LARGE:
        response.set_cookie(TEXT_COOKIE, TEXT_LARGE, max_age=LANG_COOKIE_MAX_AGE, samesite="Lax",
                            httponly=True,
                            secure=current_app.config.get("SESSION_COOKIE_SECURE", False))
    elif size == "normal":
        response.delete_cookie(TEXT_COOKIE)
    return response
