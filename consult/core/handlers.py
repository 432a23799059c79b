"""One place that turns errors into pages or JSON, and the headers every response carries."""

from __future__ import annotations

import logging
from urllib.parse import urlsplit, urlunsplit

from flask import Flask, Response, current_app, jsonify, render_template, request
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException

from consult.core.errors import DomainError, PermissionDenied
from consult.core.policy import declared_action, never_stored
from consult.extensions import db, login_manager

log = logging.getLogger(__name__)

TITLES = {
    400: _l("The request could not be understood"),
    401: _l("Please sign in"),
    403: _l("Not allowed"),
    404: _l("Not found"),
    405: _l("Not allowed this way"),
    409: _l("This clashes with the current state"),
    413: _l("The upload is too large"),
    429: _l("Too many attempts"),
    500: _l("Something went wrong on our side"),
}
DEFAULT_MESSAGES = {
    400: _l("Please go back and check what you entered."),
    403: _l("Your account does not allow this."),
    404: _l("This page or record does not exist. Check the address, or start again from the "
            "home page."),
    405: _l("This address cannot be used this way."),
    409: _l("Somebody may have changed this in the meantime. Reload the page and try again."),
    413: _l("The file is larger than this site accepts."),
    429: _l("Please wait a minute before trying again."),
    500: _l("The error has been logged. Please try again later."),
}


def wants_json() -> bool:
    if request.path.startswith("/api/"):
        return True
    best = request.accept_mimetypes.best_match(["text/html", "application/json"])
    return best == "application/json" and request.accept_mimetypes[best] > request.accept_mimetypes[
        "text/html"]


def page_came_from() -> str | None:
    """The page of this site the request was sent from (a form's page), to offer a way back
    to it instead of only the home page; None for another site's or no referrer."""
    referrer = request.referrer
    if not referrer:
        return None
    came, here = urlsplit(referrer), urlsplit(request.host_url)
    if (came.scheme, came.netloc) != (here.scheme, here.netloc):
        return None
    if request.method == "GET" and referrer == request.url:
        return None  # the page that failed itself
    return urlunsplit(("", "", came.path or "/", came.query, ""))


def error_response(status: int, message: str | None = None) -> tuple[Response | str, int]:
    title = str(TITLES.get(status, TITLES[500 if status >= 500 else 400]))
    text = message or str(DEFAULT_MESSAGES.get(status, DEFAULT_MESSAGES[400]))
    if wants_json():
        return jsonify({"error": {"status": status, "title": title, "message": text}}), status
    return render_template("errors/error.html", status=status, title=title, message=text,
                           back=page_came_from()), status


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(DomainError)
    def _domain(exc: DomainError) -> ResponseReturnValue:
        db.session.rollback()
        if (isinstance(exc, PermissionDenied) and not current_user.is_authenticated
                and not wants_json()):
            return login_manager.unauthorized()  # sign in first, then we'll see
        return error_response(exc.status_code, exc.message)

    @app.errorhandler(CSRFError)
    def _csrf(exc: CSRFError) -> ResponseReturnValue:
        return error_response(400, _("The form has expired or was not sent from this site. "
                                     "Please reload the page and submit it again."))

    @app.errorhandler(HTTPException)
    def _http(exc: HTTPException) -> ResponseReturnValue:
        status = exc.code or 500
        # Werkzeug's own descriptions are English; ours are translated.
        return error_response(status)

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception) -> ResponseReturnValue:
        log.exception("unhandled error on %s %s", request.method, request.path)
        db.session.rollback()
        return error_response(500)


CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "font-src 'self'; object-src 'none'; base-uri 'self'; form-action 'self'; "
    "frame-ancestors 'none'"
)


def add_security_headers(response: Response) -> Response:
    response.headers.setdefault("Content-Security-Policy", CSP)
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("X-Frame-Options", "DENY")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    response.headers.setdefault("Permissions-Policy", "camera=(), microphone=(), geolocation=()")
    # Only over HTTPS: browsers ignore it on plain HTTP, and a development server has none.
    max_age = current_app.config.get("HSTS_MAX_AGE", 0)
    if max_age and request.is_secure:
        response.headers.setdefault("Strict-Transport-Security", f"max-age={max_age}")
    return response


def add_cache_headers(response: Response) -> Response:
    """``Cache-Control: no-store`` where the policy says a response is private (the view's
    action, or a household's own pages); this replaces whatever the view set."""
    if never_stored(current_user, declared_action(), response.mimetype):
        response.headers["Cache-Control"] = "no-store"
    return response
