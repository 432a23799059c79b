"""Signing in and out of the API: a household's access code or a username and password give a
pair of tokens; the refresh token gives the next pair; signing out ends them."""

from __future__ import annotations

from typing import Any

from flask import current_app, g
from flask_babel import gettext as _
from flask_limiter.util import get_remote_address
from marshmallow import Schema, fields, validate
from werkzeug.wrappers import Response

from consult.accounts import lockout, tokens
from consult.accounts import service as accounts
from consult.api.common import Blueprint
from consult.core.errors import Unauthenticated
from consult.core.policy import require
from consult.extensions import db, limiter

bp = Blueprint("api_auth", __name__, url_prefix="/api/v1/auth",
               description="Sign in with a household's access code or a password; refresh "
                           "and end the tokens.")


def _login_limit() -> str:
    return str(current_app.config["LOGIN_RATE_LIMIT"])


def _code_limit() -> str:
    return str(current_app.config["ACCESS_CODE_RATE_LIMIT"])


class CodeIn(Schema):
    code = fields.String(required=True, validate=validate.Length(min=1, max=40), metadata={
        "description": "The 12 digits on the household's letter (spaces and dashes allowed).",
        "example": "1234 5678 9012"})
    device = fields.String(load_default=None, validate=validate.Regexp(
        r"^[A-Za-z0-9_\-]{20,64}$"), metadata={
        "description": "A random id the program keeps for this phone (20–64 letters, digits, "
                       "- or _). With it, an answer lost on the network can be fetched again: "
                       "the used code signs in once more within the grace period from the "
                       "same address and device.",
        "example": "mp-3f9a1c2e7b5d4a8f9e0c"})


class PasswordIn(Schema):
    username = fields.String(required=True, validate=validate.Length(min=1, max=64),
                             metadata={"example": "h000012"})
    password = fields.String(required=True, validate=validate.Length(min=1, max=200),
                             metadata={"example": "a long passphrase"})


class RefreshIn(Schema):
    refresh_token = fields.String(required=True, validate=validate.Length(min=1, max=200),
                                  metadata={"example": "Zr1…"})


class TokensOut(Schema):
    token_type = fields.String(required=True, metadata={"example": "Bearer"})
    access_token = fields.String(required=True, metadata={"example": "q0N…"})
    expires_in = fields.Integer(required=True, metadata={
        "description": "Seconds the access token is valid.", "example": 900})
    refresh_token = fields.String(required=True, metadata={"example": "Zr1…"})
    refresh_expires_in = fields.Integer(required=True, metadata={"example": 2592000})
    user_id = fields.Integer(required=True, metadata={"example": 12})
    role = fields.String(required=True, metadata={"example": "resident"})


def _tokens_out(pair: tokens.TokenPair) -> dict[str, Any]:
    return {
        "token_type": "Bearer", "access_token": pair.access_token,
        "expires_in": int((pair.access_expires_at - pair.issued_at).total_seconds()),
        "refresh_token": pair.refresh_token,
        "refresh_expires_in": int((pair.refresh_expires_at - pair.issued_at).total_seconds()),
        "user_id": pair.user.id, "role": pair.user.role,
    }


@bp.route("/code", methods=["POST"])
@require("account.sign_in")
@limiter.limit(_code_limit)
@bp.arguments(CodeIn)
@bp.response(200, TokensOut)
@bp.errors(400, 404, 429, 503)
def code(body: dict[str, Any]) -> dict[str, Any]:
    """Sign a household in with its access code: the code's checks, pauses and grace period
    are those of the code page. A wrong code answers 404 `invalid_code`; a paused code or
    address 429 `locked`."""
    try:
        pair = tokens.sign_in_with_code(get_remote_address(), body.get("device"), body["code"])
    except (lockout.SignInLocked, accounts.WrongAccessCode):
        db.session.commit()  # the wrong code counts towards a pause, as on the page
        raise
    out = _tokens_out(pair)
    db.session.commit()
    return out


@bp.route("/password", methods=["POST"])
@require("account.sign_in")
@limiter.limit(_login_limit)
@bp.arguments(PasswordIn)
@bp.response(200, TokensOut)
@bp.errors(400, 401, 429)
def password(body: dict[str, Any]) -> dict[str, Any]:
    """Sign in with a username and password, with the sign-in page's lockout."""
    if "\x00" in body["username"] or "\x00" in body["password"]:
        # No account has a NUL in its name or password, and PostgreSQL refuses one in a query.
        raise Unauthenticated(_("Wrong username or password, or the account is switched off."))
    try:
        pair = tokens.sign_in_with_password(body["username"], body["password"])
    except lockout.SignInLocked:
        db.session.commit()  # the attempt, and the lock it may have started, are recorded
        raise
    db.session.commit()  # the attempt is recorded either way
    if pair is None:
        raise Unauthenticated(_("Wrong username or password, or the account is switched off."))
    return _tokens_out(pair)


@bp.route("/refresh", methods=["POST"])
@require("account.sign_in")
@limiter.limit(_login_limit)
@bp.arguments(RefreshIn)
@bp.response(200, TokensOut)
@bp.errors(400, 401, 429)
def refresh(body: dict[str, Any]) -> dict[str, Any]:
    """The next pair of tokens for a refresh token, which is used up. A refresh token sent a
    second time ends the sign-in (401 `token_reused`)."""
    try:
        pair = tokens.refresh(body["refresh_token"])
    except tokens.RefreshReused:
        db.session.commit()  # the sign-in it ended stays ended
        raise
    out = _tokens_out(pair)
    db.session.commit()
    return out


@bp.route("/logout", methods=["POST"])
@require("account.self")
@bp.response(204)
@bp.doc(security=[{"bearer": []}])
@bp.errors(401)
def logout() -> Response:
    """End this sign-in: its access and refresh tokens stop working. The household's other
    phones and browsers stay signed in."""
    tokens.sign_out(g.api_session)
    db.session.commit()
    return Response(status=204)
