"""/api/v1: JSON for the WeChat mini-program and the city app, on the same services and the
same policy table as the web pages (docs/api.md).

Requests here sign in with a bearer token (``consult.accounts.tokens``), never with the
browser's cookie: the cookie is not even read, so a page of another site cannot make a
signed-in browser change anything through the API, and no CSRF token is needed. Errors are
the app's one error handler's JSON (``consult.core.handlers``), with a stable ``code``.
"""

from __future__ import annotations

from flask import Flask, g, request
from flask_babel import gettext as _
from flask_login import AnonymousUserMixin
from flask_smorest import Api as SmorestApi  # type: ignore[import-untyped]
from werkzeug.wrappers import Response

from consult.accounts import tokens
from consult.api.common import ErrorEnvelope
from consult.core.errors import Unauthenticated
from consult.core.policy import is_api_request
from consult.extensions import csrf

# Endpoints that take no access token (they hand them out): a stale one sent along with a
# refresh token must not stand in the way.
TOKEN_FREE = frozenset({"api_auth.code", "api_auth.password", "api_auth.refresh"})


class Api(SmorestApi):
    """flask-smorest for the OpenAPI document and request parsing; its error handler is left
    out, so the app keeps one (pages and JSON alike)."""

    ERROR_SCHEMA = ErrorEnvelope

    def _register_error_handlers(self) -> None:
        return None


api = Api()


def _bearer_user() -> None:
    """Before an API request: the signed-in user is the one of its access token, or nobody.

    The browser's cookie is ignored here (``sessions`` skips API paths too): Flask-Login
    keeps the request's user in ``g._login_user``, which is set before anything asks for it.
    """
    if not is_api_request():
        return
    g._login_user = AnonymousUserMixin()
    g.api_session = None
    header = request.headers.get("Authorization", "")
    if not header or request.endpoint in TOKEN_FREE:
        return
    scheme, _sep, token = header.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthenticated(_("Send the access token as \"Authorization: Bearer <token>\"."))
    user, record = tokens.authenticate(token.strip())
    g._login_user = user
    g.api_session = record


def _vary(response: Response) -> Response:
    """An API answer depends on who asks and in which language: no cache may hand one
    account's answer (or ETag) to another."""
    if is_api_request():
        response.vary.add("Authorization")
        response.vary.add("Accept-Language")
    return response


def init_app(app: Flask) -> None:
    """Register the API's blueprints, its OpenAPI document and its sign-in by token."""
    from consult.api import (
        auth_views,
        comment_views,
        dashboard_views,
        docs_views,
        entry_views,
        evaluation_views,
        feedback_views,
        notice_views,
        notification_views,
        opinion_views,
        questionnaire_views,
        resident_views,
        staff_views,
    )

    app.config.setdefault("OPENAPI_URL_PREFIX", None)  # the document is served by docs_views
    api.init_app(app, spec_kwargs={"components": {"securitySchemes": {
        "bearer": {"type": "http", "scheme": "bearer",
                   "description": "The access token from /api/v1/auth/code or "
                                  "/api/v1/auth/password."}}}})
    app.before_request(_bearer_user)
    app.after_request(_vary)
    for blueprint in (auth_views.bp, resident_views.bp, opinion_views.bp, staff_views.bp,
                      notice_views.bp, notification_views.bp, feedback_views.bp,
                      questionnaire_views.bp, evaluation_views.bp, comment_views.bp,
                      entry_views.bp, dashboard_views.bp):
        csrf.exempt(blueprint)  # no cookie is read here: a bearer token cannot be forged
        api.register_blueprint(blueprint)
    app.register_blueprint(docs_views.bp)  # the document and its page are not operations
