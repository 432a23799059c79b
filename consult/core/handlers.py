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

from consult.core.errors import DomainError, PermissionDenied, ValidationFailed
from consult.core.policy import declared_action, is_api_request, never_stored, sign_in_first
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


# The stable ``code`` of a JSON error answer, by HTTP status (domain errors name their own).
HTTP_CODES = {
    400: "bad_request", 401: "unauthenticated", 403: "forbidden", 404: "not_found",
    405: "method_not_allowed", 406: "not_acceptable", 409: "conflict",
    412: "precondition_failed", 413: "too_large", 415: "unsupported_media_type",
    422: "validation_failed", 428: "precondition_required", 429: "rate_limited",
    500: "server_error", 503: "unavailable",
}
# What the request parser says of a field, in the reader's language (its own texts are
# English); a text not listed here is passed on as it is.
FIELD_MESSAGES = {
    "Missing data for required field.": _l("This field is required."),
    "Field may not be null.": _l("This field may not be empty."),
    "Unknown field.": _l("Unknown field."),
    "Not a valid string.": _l("Not a valid text."),
    "Not a valid integer.": _l("Not a valid whole number."),
    "Not a valid boolean.": _l("Not a valid yes or no."),
    "Not a valid mapping type.": _l("Not a valid object."),
    "Not a valid list.": _l("Not a valid list."),
    "Invalid input type.": _l("Wrong type of value."),
    "Invalid value.": _l("Not a valid value."),
    "Invalid JSON body.": _l("The body is not valid JSON."),
    "Not a valid datetime.": _l("Not a valid date and time."),
}


def field_errors(messages: object, prefix: str = "") -> dict[str, list[str]]:
    """The parser's nested messages ({"json": {"items": {"0": [...]}}}) as one flat map of a
    dotted field name to translated messages; the request part ("json", "query") is dropped."""
    flat: dict[str, list[str]] = {}
    if isinstance(messages, dict):
        for key, value in messages.items():
            name = str(key)
            if not prefix and name in {"json", "query", "headers", "form", "files", "view_args"}:
                name = ""
            for field, texts in field_errors(value, f"{prefix}.{name}" if prefix and name
                                             else prefix or name).items():
                flat.setdefault(field, []).extend(texts)
    elif isinstance(messages, list | tuple):
        for value in messages:
            if isinstance(value, dict | list | tuple):
                for field, texts in field_errors(value, prefix).items():
                    flat.setdefault(field, []).extend(texts)
            else:
                text = str(value)
                flat.setdefault(prefix, []).append(str(FIELD_MESSAGES.get(text, text)))
    else:
        text = str(messages)
        flat.setdefault(prefix, []).append(str(FIELD_MESSAGES.get(text, text)))
    return flat


def wants_json() -> bool:
    if is_api_request():
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


def error_response(status: int, message: str | None = None, *, code: str | None = None,
                   errors: dict[str, list[str]] | None = None) -> tuple[Response | str, int]:
    """The error page, or for a JSON client ``{"error": {status, code, title, message,
    errors?}}``: ``code`` is stable, the texts are in the reader's language, ``errors`` maps
    a field to its messages."""
    title = str(TITLES.get(status, TITLES[500 if status >= 500 else 400]))
    text = message or str(DEFAULT_MESSAGES.get(status, DEFAULT_MESSAGES[400]))
    if wants_json():
        body: dict[str, object] = {
            "status": status, "code": code or HTTP_CODES.get(status, "error"), "title": title,
            "message": text}
        if errors:
            body["errors"] = errors
        response = jsonify({"error": body})
        if status == 401 and is_api_request():
            response.headers["WWW-Authenticate"] = "Bearer"
        return response, status
    return render_template("errors/error.html", status=status, title=title, message=text,
                           back=page_came_from()), status


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(DomainError)
    def _domain(exc: DomainError) -> ResponseReturnValue:
        db.session.rollback()
        if isinstance(exc, PermissionDenied) and not current_user.is_authenticated:
            if is_api_request():  # a program is told to sign in, not sent to a page
                exc = sign_in_first()
            elif not wants_json():
                return login_manager.unauthorized()  # sign in first, then we'll see
        errors = exc.errors if isinstance(exc, ValidationFailed) else None
        return error_response(exc.status_code, exc.message, code=exc.code, errors=errors)

    @app.errorhandler(CSRFError)
    def _csrf(exc: CSRFError) -> ResponseReturnValue:
        return error_response(400, _("The form has expired or was not sent from this site. "
                                     "Please reload the page and submit it again."))

    @app.errorhandler(HTTPException)
    def _http(exc: HTTPException) -> ResponseReturnValue:
        status = exc.code or 500
        if status < 400:  # not an error (a 304 raised on the way out)
            return exc.get_response()
        # The request parser's field errors (JSON API): "validation_failed", field by field.
        data = getattr(exc, "data", None)
        messages = data.get("messages") if isinstance(data, dict) else None
        if messages is not None:
            return error_response(status, _("Please check what you entered."),
                                  code="validation_failed", errors=field_errors(messages))
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
