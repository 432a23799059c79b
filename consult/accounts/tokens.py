"""Bearer tokens of the JSON API, tied to session rows (``sessions``).

A program signs in with the same checks as the browser (``service.code_sign_in`` with its
grace period, pauses and per-address counts; ``service.authenticate`` with its lockout) and
gets two random tokens on a new session row:

- an **access token**, sent as ``Authorization: Bearer …`` on every request, valid for
  ``API_ACCESS_TOKEN_MINUTES``;
- a **refresh token**, which gives the next pair once (rotation). A refresh token presented a
  second time means two programs hold it (a copy was taken): the session ends, so both must
  sign in again.

Only the tokens' SHA-256 is stored. A token works while its session row signs anyone in
(``sessions.refusal``): signing out of the API ends the row; signing out everywhere, a new
password, a change of role or scope and switching the account off raise the account's epoch
and end it with every browser session. Functions flush, never commit.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import current_app
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import delete, select

from consult.accounts import service, sessions
from consult.accounts.models import ApiToken, User, UserSession
from consult.audit import service as audit
from consult.audit.actions import describe
from consult.core.errors import Unauthenticated
from consult.core.models import utcnow
from consult.core.policy import Role
from consult.extensions import db

describe({
    "accounts.api.refresh_reused": _l("API sign-in ended: a used refresh token came back"),
}, kind="accounts")

ACCESS, REFRESH = "access", "refresh"
# Session methods (``UserSession.method``) of the API's sign-ins.
API_CODE, API_PASSWORD = "api_code", "api_password"


class TokenExpired(Unauthenticated):
    """An access token past its time: the program asks for the next one with its refresh
    token."""

    code = "token_expired"


class RefreshReused(Unauthenticated):
    """A refresh token that was used already: its session has been ended (commit it)."""

    code = "token_reused"


@dataclass(frozen=True)
class TokenPair:
    """What a sign-in or a refresh hands the program (the tokens themselves, never stored)."""

    issued_at: datetime
    access_token: str
    access_expires_at: datetime
    refresh_token: str
    refresh_expires_at: datetime
    user: User
    session: UserSession


def token_hash(token: str) -> str:
    """What is stored of a token (random, 256 bits): its SHA-256."""
    return sessions.token_hash(token)


def _refresh_lifetime(user: User) -> timedelta:
    """Staff tokens end with the browser's idle limit; a household's last for days."""
    config = current_app.config
    if user.role == Role.RESIDENT:
        return timedelta(days=int(config["API_REFRESH_TOKEN_DAYS"]))
    return timedelta(minutes=int(config["SESSION_IDLE_MINUTES"]))


def _pair(user: User, record: UserSession, now: datetime) -> TokenPair:
    access, refresh = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    access_until = now + timedelta(minutes=int(current_app.config["API_ACCESS_TOKEN_MINUTES"]))
    refresh_until = now + _refresh_lifetime(user)
    db.session.add_all([
        ApiToken(session_id=record.id, kind=ACCESS, token_hash=token_hash(access),
                 created_at=now, expires_at=access_until),
        ApiToken(session_id=record.id, kind=REFRESH, token_hash=token_hash(refresh),
                 created_at=now, expires_at=refresh_until),
    ])
    db.session.flush()
    return TokenPair(now, access, access_until, refresh, refresh_until, user, record)


def issue(user: User, method: str, *, access_code_id: int | None = None,
          now: datetime | None = None) -> TokenPair:
    """A new session row of ``user`` (``method``) and its first pair of tokens (flushed)."""
    now = now or utcnow()
    record, _cookie_token = sessions.open_session(user, method, now=now,
                                                  access_code_id=access_code_id)
    return _pair(user, record, now)


def sign_in_with_code(address: str | None, device: str | None, text: str,
                      now: datetime | None = None) -> TokenPair:
    """A household signs in with the code from its letter, exactly as on the code page
    (``service.code_sign_in``: pauses, per-code and per-address counts, and the grace
    period, here for the same address and ``device``, the program's own random id). Raises
    what that raises; the caller commits after a refusal too, so the count is kept."""
    signed_in = service.code_sign_in(address, device, text, now)
    return issue(signed_in.user, API_CODE, access_code_id=signed_in.access.id, now=now)


def sign_in_with_password(username: str, password: str,
                          now: datetime | None = None) -> TokenPair | None:
    """Username and password, with the sign-in page's lockout (``service.authenticate``):
    the pair, or None for wrong credentials. Raises ``lockout.SignInLocked``; the caller
    commits either way, so the attempt is recorded."""
    user = service.authenticate(username, password, now)
    return issue(user, API_PASSWORD, now=now) if user is not None else None


def _row(token: str, kind: str, *, lock: bool = False
         ) -> tuple[ApiToken, UserSession, User] | None:
    stmt = (select(ApiToken, UserSession, User)
            .join(UserSession, UserSession.id == ApiToken.session_id)
            .join(User, User.id == UserSession.user_id)
            .where(ApiToken.token_hash == token_hash(token), ApiToken.kind == kind))
    if lock:
        stmt = stmt.with_for_update(of=ApiToken)
    row = db.session.execute(stmt).first()
    return None if row is None else (row[0], row[1], row[2])


def _not_valid() -> Unauthenticated:
    return Unauthenticated(_("This token is not valid. Please sign in again."))


def _check_session(user: User, record: UserSession, now: datetime) -> None:
    reason = sessions.refusal(user, record, now)
    if reason is not None:
        raise Unauthenticated(sessions.refusal_message(current_app, reason))


def authenticate(token: str, now: datetime | None = None) -> tuple[User, UserSession]:
    """The account and session an access token signs in; raises Unauthenticated (or
    TokenExpired) with the reason."""
    now = now or utcnow()
    found = _row(token, ACCESS) if token else None
    if found is None:
        raise _not_valid()
    row, record, user = found
    _check_session(user, record, now)
    if row.expires_at <= now:
        raise TokenExpired(_("This access token has expired. Ask for a new one with the "
                             "refresh token."))
    return user, record


def refresh(token: str, now: datetime | None = None) -> TokenPair:
    """The next pair for a refresh token, which is used up; the session's earlier access
    tokens end. A refresh token used a second time ends its session (raises RefreshReused:
    the caller commits that)."""
    now = now or utcnow()
    found = _row(token, REFRESH, lock=True) if token else None
    if found is None:
        raise _not_valid()
    row, record, user = found
    _check_session(user, record, now)
    if row.used_at is not None:
        record.ended_at = now
        db.session.flush()
        audit.record(None, "accounts.api.refresh_reused", user, {"session_id": record.id},
                     compound_id=user.household.scope_compound_id if user.household else None)
        raise RefreshReused(_("This refresh token was used already, so this sign-in has "
                              "been ended. Please sign in again."))
    if row.expires_at <= now:
        raise _not_valid()
    row.used_at = now
    # The session's earlier access tokens end now; used refresh tokens are kept until they
    # would have expired, so that one coming back is recognised.
    db.session.execute(delete(ApiToken).where(
        ApiToken.session_id == record.id,
        (ApiToken.kind == ACCESS) | (ApiToken.expires_at <= now)))
    db.session.flush()
    return _pair(user, record, now)


def sign_out(record: UserSession, now: datetime | None = None) -> None:
    """End the API session ``record`` and every token of it (flushed)."""
    record.ended_at = now or utcnow()
    db.session.execute(delete(ApiToken).where(ApiToken.session_id == record.id))
    db.session.flush()
