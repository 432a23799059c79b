"""How long a sign-in lasts.

- A resident who keeps their phone signed in ("remembered": every access-code sign-in, or the
  box ticked on the password form) gets a permanent session cookie and stays signed in while
  the phone is used at least once every ``PERMANENT_SESSION_LIFETIME`` (REMEMBER_DAYS).
- Every other session, and every staff session whatever the box says, ends after
  ``SESSION_IDLE_MINUTES`` without a request, and with the browser.

The time of the last request is kept in the signed session cookie, so the check needs no
database and holds across app processes. Flask-Login's own remember-me cookie is not used: it
carries no time and would outlive both limits.
"""

from __future__ import annotations

from datetime import datetime

from flask import Flask, flash, g, request, session
from flask_babel import ngettext
from flask_login import current_user, login_user, logout_user

from consult.core.models import utcnow
from consult.core.policy import Role

SEEN = "seen"  # the session key: epoch seconds of the last request
# Refreshing the time on every request would rewrite the cookie on every response.
_REFRESH_SECONDS = 60
_NO_SESSION = frozenset({"static", "bootstrap.static", "main.healthz"})


def start(user: object, remember: bool, now: datetime | None = None) -> None:
    """Sign ``user`` in on a fresh session; only a resident's session may be remembered."""
    session.clear()  # nothing carried over from before signing in
    login_user(user, remember=False)
    session.permanent = bool(remember) and getattr(user, "role", None) == Role.RESIDENT
    session[SEEN] = int((now or utcnow()).timestamp())


def idle_limit_seconds(app: Flask, remembered: bool) -> int:
    """How long this kind of session survives without a request."""
    if remembered:
        return int(app.config["PERMANENT_SESSION_LIFETIME"].total_seconds())
    return int(app.config["SESSION_IDLE_MINUTES"]) * 60


def _expire(app: Flask) -> None:
    """Before each request: end a session that has been idle too long."""
    if request.endpoint in _NO_SESSION or "_user_id" not in session:
        return
    if not current_user.is_authenticated:
        return
    remembered = bool(session.permanent) and current_user.role == Role.RESIDENT
    now = int(utcnow().timestamp())
    seen = session.get(SEEN)
    if isinstance(seen, int) and now - seen > idle_limit_seconds(app, remembered):
        logout_user()
        session.clear()
        session.permanent = False
        g.session_expired = True
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
