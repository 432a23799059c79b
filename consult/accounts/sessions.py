"""Sessions: how long a sign-in lasts, and how it is ended for every copy of its cookie.

Every sign-in is a ``UserSession`` row. The browser's signed cookie carries the account id and
a random token; the row stores only the token's hash. The user loader reads the account and
the session row in one statement, and refuses the session when

- the row is ended (signing out ends the row, so every copy of that cookie stops working,
  while the household's other phones stay signed in);
- the row's epoch is not the account's ``session_epoch``: raising the account's epoch ends
  every session of the account at once ("sign out everywhere", a password set by the owner or
  reset by an administrator, a change of role or scope, switching the account off). The
  browser that changed its own password goes on with a new session row and token (``renew``),
  so copies of its old cookie end too;
- the account is switched off;
- it is a staff session older than ``STAFF_SESSION_MAX_HOURS``.

Idle limits are kept in the cookie, so checking them needs no database:

- A resident who keeps their phone signed in ("remembered": every access-code sign-in, or the
  box ticked on the password form) gets a permanent session cookie and stays signed in while
  the phone is used at least once every ``PERMANENT_SESSION_LIFETIME`` (REMEMBER_DAYS).
- Every other session, and every staff session whatever the box says, ends after
  ``SESSION_IDLE_MINUTES`` without a request, and with the browser.

Cookies signed before session rows existed carry no token. A resident's such cookie is still
accepted while the account's epoch is 0 (so households need no new letters after an upgrade).
Its copies cannot be told apart, so signing it out raises the epoch, which ends every session
of the account, as do the changes above. Staff must sign in again.

A refused session is cleared and the sign-in page says why. Flask-Login's own remember-me
cookie is not used: it carries no time and would outlive every limit.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta
from typing import Any

from flask import Flask, current_app, flash, g, request, session
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_babel import ngettext
from flask_login import current_user, login_user, logout_user
from sqlalchemy import bindparam, delete, or_, select
from sqlalchemy.orm import joinedload

from consult.accounts.models import User, UserSession
from consult.audit import service as audit
from consult.audit.actions import describe
from consult.core.models import utcnow
from consult.core.policy import API_PREFIX, Role
from consult.extensions import db
from consult.registry.models import Household

describe({
    "accounts.sessions.ended": _l("Signed out everywhere"),
}, kind="accounts")

SEEN = "seen"  # the session key: epoch seconds of the last request
SID = "sid"  # the session key: the random token naming the session's row
# Refreshing the time on every request would rewrite the cookie on every response.
_REFRESH_SECONDS = 60
_NO_SESSION = frozenset({"static", "bootstrap.static", "main.healthz"})

# Why the user loader refused a session (g.session_refused), for the message.
SIGNED_OUT, ENDED, SWITCHED_OFF, STAFF_LIMIT, EXPIRED = (
    "signed_out", "ended", "switched_off", "staff", "expired")


def token_hash(token: str) -> str:
    """What is stored of a session token: its SHA-256 (the token is random, 256 bits)."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _staff_limit(app: Flask) -> timedelta:
    return timedelta(hours=int(app.config["STAFF_SESSION_MAX_HOURS"]))


def open_session(user: User, method: str, *, now: datetime | None = None,
                 welcome: bool = False, access_code_id: int | None = None,
                 prune: bool = True) -> tuple[UserSession, str]:
    """Record a new session of ``user`` (flushed); returns it and the token for the cookie.

    ``welcome``: the session may choose a password without the current one for
    ``WELCOME_MINUTES`` (a fresh access-code sign-in). The account's ended sessions are
    deleted on the way (``prune``).
    """
    now = now or utcnow()
    if prune:
        _prune(user, now)
    token = secrets.token_urlsafe(32)
    record = UserSession(
        user_id=user.id, token_hash=token_hash(token), epoch=user.session_epoch, method=method,
        created_at=now, access_code_id=access_code_id,
        welcome_until=now + timedelta(minutes=int(current_app.config["WELCOME_MINUTES"]))
        if welcome else None)
    db.session.add(record)
    db.session.flush()
    return record, token


def _prune(user: User, now: datetime) -> None:
    """Forget the account's sessions that can never be valid again."""
    dead = or_(UserSession.ended_at.isnot(None), UserSession.epoch != user.session_epoch)
    if user.role != Role.RESIDENT:
        dead = or_(dead, UserSession.created_at < now - _staff_limit(current_app))
    # "fetch": rows deleted here leave the session too (SQLite may hand their ids out again).
    db.session.execute(delete(UserSession).where(UserSession.user_id == user.id, dead)
                       .execution_options(synchronize_session="fetch"))


def cookie_fields(user: User, token: str, now: datetime | None = None) -> dict[str, Any]:
    """What a signed-in session cookie holds besides Flask-Login's own keys."""
    return {SID: token, SEEN: int((now or utcnow()).timestamp())}


def start(user: User, remember: bool, method: str, *, now: datetime | None = None,
          welcome: bool = False, access_code_id: int | None = None) -> UserSession:
    """Sign ``user`` in on a fresh session (recorded, flushed: the caller commits); only a
    resident's session may be remembered."""
    now = now or utcnow()
    record, token = open_session(user, method, now=now, welcome=welcome,
                                 access_code_id=access_code_id)
    session.clear()  # nothing carried over from before signing in
    login_user(user, remember=False)
    session.permanent = bool(remember) and user.role == Role.RESIDENT
    session.update(cookie_fields(user, token, now))
    g.session_record = record
    return record


def current_record() -> UserSession | None:
    """The signed-in request's session row (None for a cookie from before session rows)."""
    if not current_user.is_authenticated:
        return None
    return g.get("session_record")


def renew(user: User, now: datetime | None = None) -> UserSession:
    """Keep this browser signed in on a new session row, at the account's current epoch,
    after a change that ended every session of the account (its own new password). Copies of
    the old cookie stay ended. Flushed: the caller commits."""
    now = now or utcnow()
    old = current_record()
    if old is not None and old.ended_at is None and old.epoch == user.session_epoch:
        old.ended_at = now  # not ended by an epoch change: end it here
    # The old row stays until the next sign-in, so its copies are told what happened.
    record, token = open_session(user, old.method if old else "legacy", now=now, prune=False,
                                 access_code_id=old.access_code_id if old else None)
    if old is not None:
        record.welcome_used_at = old.welcome_used_at  # a choice made stays made
        db.session.flush()
    session[SID] = token
    g.session_record = record
    return record


def end_all(user: User) -> None:
    """End every session of ``user`` at once (flushed)."""
    user.session_epoch = User.session_epoch + 1  # in SQL: simultaneous changes both count
    db.session.flush()


def end_current(now: datetime | None = None) -> None:
    """Sign-out: end the current session for every copy of its cookie (flushed). A cookie
    from before session rows cannot be told from its copies: those all end together."""
    record = current_record()
    if record is not None:
        record.ended_at = now or utcnow()
        db.session.flush()
    elif current_user.is_authenticated:
        end_all(current_user)


def sign_out_everywhere(user: User) -> None:
    """End every session of the account, this one included, and record it (flushed)."""
    end_all(user)
    audit.record(user, "accounts.sessions.ended", user, {"reason": "sign_out_everywhere"},
                 compound_id=user.household.scope_compound_id if user.household else None)


def welcome_open(record: UserSession | None, now: datetime | None = None) -> bool:
    """Whether this session may still choose a password without the current one."""
    now = now or utcnow()
    return (record is not None and record.welcome_used_at is None
            and record.welcome_until is not None and record.welcome_until > now)


def load_user(user_id: str) -> User | None:
    """Flask-Login's user loader: the account of a valid session, in one statement.

    A resident's household and its building are on nearly every page they see (the address,
    the scope check), so they come with it. Sets ``g.session_refused`` when it refuses.
    """
    if not user_id.isdigit():
        return None
    found = _signed_in(int(user_id))
    if isinstance(found, str):
        g.session_refused = found
        return None
    user, record = found
    g.session_record = record
    return user


def refusal(user: User, record: UserSession, now: datetime | None = None) -> str | None:
    """Why the session ``record`` of ``user`` no longer signs anyone in (None: it does). The
    same rules hold for a browser's cookie and for the API's tokens, which belong to a
    session row."""
    now = now or utcnow()
    if not user.active:
        return SWITCHED_OFF
    if record.ended_at is not None:
        return SIGNED_OUT
    if record.epoch != user.session_epoch:
        return ENDED
    if user.role != Role.RESIDENT and (
            record.created_at <= now - _staff_limit(current_app)):
        return STAFF_LIMIT
    return None


# Built once: it runs on every signed-in request (bench/results/profile-vote.md).
_SIGNED_IN = (
    select(User, UserSession).join(UserSession, UserSession.user_id == User.id)
    .where(User.id == bindparam("user"), UserSession.token_hash == bindparam("token"))
    .options(joinedload(User.household).joinedload(Household.building)))


def _signed_in(user_id: int) -> tuple[User, UserSession | None] | str:
    """The account ``user_id`` and the session row this request's cookie names (None for a
    resident's cookie signed before session rows existed), or why the session is refused."""
    options = [joinedload(User.household).joinedload(Household.building)]
    token = session.get(SID)
    now = utcnow()
    if isinstance(token, str):
        row = db.session.execute(_SIGNED_IN, {"user": user_id,
                                              "token": token_hash(token)}).first()
        if row is None:
            return EXPIRED
        user, record = row
        refused = refusal(user, record, now)
        return refused if refused is not None else (user, record)
    account = db.session.get(User, user_id, options=options)
    if account is not None and not account.active:
        return SWITCHED_OFF
    if account is None or account.role != Role.RESIDENT:
        return EXPIRED
    if account.session_epoch != 0:
        return ENDED
    return account, None


def refusal_message(app: Flask, reason: str | None) -> str:
    if reason == SIGNED_OUT:
        return _("This sign-in was ended by signing out. Please sign in again.")
    if reason == SWITCHED_OFF:
        return _("This account is switched off. Please ask your committee.")
    if reason == STAFF_LIMIT:
        hours = int(app.config["STAFF_SESSION_MAX_HOURS"])
        return ngettext("Staff sign-ins end %(num)d hour after signing in. Please sign in "
                        "again.",
                        "Staff sign-ins end %(num)d hours after signing in. Please sign in "
                        "again.", hours)
    if reason == ENDED:
        return _("You were signed out because the password, the role or the access of this "
                 "account changed, or because it was signed out everywhere. Please sign in "
                 "again.")
    return _("Your sign-in has expired. Please sign in again.")


def idle_limit_seconds(app: Flask, remembered: bool) -> int:
    """How long this kind of session survives without a request."""
    if remembered:
        return int(app.config["PERMANENT_SESSION_LIFETIME"].total_seconds())
    return int(app.config["SESSION_IDLE_MINUTES"]) * 60


def _sign_out_here() -> None:
    logout_user()
    session.clear()
    session.permanent = False
    g.session_expired = True


def _expire(app: Flask) -> None:
    """Before each request: end a session that was refused or has been idle too long."""
    if (request.endpoint in _NO_SESSION or request.path.startswith(API_PREFIX)
            or "_user_id" not in session):  # the API signs in with tokens, not the cookie
        return
    if not current_user.is_authenticated:
        reason = g.get("session_refused")
        _sign_out_here()
        flash(refusal_message(app, reason), "info")
        return
    remembered = bool(session.permanent) and current_user.role == Role.RESIDENT
    now = int(utcnow().timestamp())
    seen = session.get(SEEN)
    if isinstance(seen, int) and now - seen > idle_limit_seconds(app, remembered):
        _sign_out_here()
        if remembered:
            days = int(app.config["PERMANENT_SESSION_LIFETIME"].days)
            flash(ngettext("You were signed out because this device was not used for %(num)d "
                           "day. Please sign in again.",
                           "You were signed out because this device was not used for %(num)d "
                           "days. Please sign in again.", days), "info")
        else:
            minutes = int(app.config["SESSION_IDLE_MINUTES"])
            flash(ngettext("You were signed out after %(num)d minute without activity. Please "
                           "sign in again.",
                           "You were signed out after %(num)d minutes without activity. Please "
                           "sign in again.", minutes), "info")
        return
    # A session without the time (signed in before this rule) starts its clock now.
    if not isinstance(seen, int) or now - seen >= _REFRESH_SECONDS:
        session[SEEN] = now


def init_app(app: Flask) -> None:
    """Check every request's session before its view runs."""
    app.before_request(lambda: _expire(app))
