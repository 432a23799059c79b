"""Sign-in lockout, on top of the rate limits: wrong passwords lock the account for a while,
wrong access codes pause code sign-in from the client that sent them.

An access code names no household until it matches, so wrong codes cannot be counted against a
household: they are counted per client address (a keyed hash of it; the address itself is not
stored). Locks end by themselves; a committee member (for a household's account, in their
compounds) or an administrator can lift an account lock sooner. Locking and unlocking are
audited in the same transaction. Functions flush, never commit.
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import datetime, timedelta
from typing import Any

from flask import current_app
from flask_babel import format_datetime, format_time, ngettext
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import delete, or_, select

from consult.accounts.models import ClientLock, User
from consult.audit import service as audit
from consult.audit.actions import describe, describe_objects
from consult.core.database import insert_or_lock
from consult.core.errors import DomainError
from consult.core.models import utcnow
from consult.extensions import db

describe({
    "accounts.user.locked": _l("Account locked after wrong passwords"),
    "accounts.user.unlocked": _l("Account unlocked"),
    "accounts.client.locked": _l("Code sign-in paused after wrong access codes"),
})
describe_objects({"client": _l("Device")})

# Rows of clients that neither hold a lock nor failed recently are deleted after this long.
_FORGET_AFTER = timedelta(days=1)


class SignInLocked(DomainError):
    """Sign-in refused until ``until`` (a lock, not a wrong password)."""

    status_code = 429

    def __init__(self, message: str, until: datetime) -> None:
        super().__init__(message)
        self.until = until


def wait_text(until: datetime, now: datetime) -> str:
    """'until 15:42 (in 30 minutes)' in the reader's language and time zone."""
    minutes = max(1, -(-int((until - now).total_seconds()) // 60))  # rounded up
    when = (format_time(until, "short") if until - now < timedelta(hours=12)
            else format_datetime(until, "short"))
    return ngettext("until %(time)s (in %(num)d minute)", "until %(time)s (in %(num)d minutes)",
                    minutes, time=when)


# --- accounts: wrong passwords -----------------------------------------------------------------


def account_locked_until(user: User, now: datetime | None = None) -> datetime | None:
    """When the account's lock ends, or None if it is not locked."""
    now = now or utcnow()
    if user.locked_until is not None and user.locked_until > now:
        return user.locked_until
    return None


def account_locked(user: User, now: datetime) -> SignInLocked:
    """The refusal shown while the account is locked."""
    until = user.locked_until or now
    return SignInLocked(_(
        "Too many wrong passwords: this account is locked %(wait)s. Please try again then, or "
        "ask your committee to unlock it.", wait=wait_text(until, now)), until)


def note_wrong_password(user: User, now: datetime) -> datetime | None:
    """Count a wrong password; at the threshold lock the account (audited). Returns the end of
    the lock this failure started, if it started one."""
    user.failed_logins += 1
    threshold = int(current_app.config["LOGIN_LOCKOUT_THRESHOLD"])
    if threshold <= 0 or user.failed_logins < threshold:
        db.session.flush()
        return None
    until = now + timedelta(minutes=int(current_app.config["LOGIN_LOCKOUT_MINUTES"]))
    failures, user.failed_logins, user.locked_until = user.failed_logins, 0, until
    db.session.flush()
    audit.record(None, "accounts.user.locked", user,
                 {"failures": failures, "until": audit.format_time(until)},
                 compound_id=user.household.scope_compound_id if user.household else None)
    return until


def unlock_account(actor: Any, user: User, now: datetime | None = None) -> bool:
    """Lift the account's lock and forget its wrong passwords; False if it was not locked."""
    until = account_locked_until(user, now)
    if until is None:
        return False
    user.locked_until = None
    user.failed_logins = 0
    db.session.flush()
    audit.record(actor, "accounts.user.unlocked", user, {"was_locked_until": audit.format_time(
        until)}, compound_id=user.household.scope_compound_id if user.household else None)
    return True


# --- clients: wrong access codes ----------------------------------------------------------------


def client_key(address: str | None) -> str:
    """A keyed hash of the client's address: equal for one address, meaningless without the
    secret key (addresses are personal information and need not be stored)."""
    key = current_app.config["SECRET_KEY"].encode("utf-8")
    return hmac.new(key, f"client:{address or '-'}".encode(), hashlib.sha256).hexdigest()


def _client_row(key: str) -> ClientLock | None:
    return db.session.scalar(select(ClientLock).where(ClientLock.client_key == key))


def check_client(key: str, now: datetime | None = None) -> None:
    """Raise SignInLocked while code sign-in from this client is paused."""
    now = now or utcnow()
    row = _client_row(key)
    if row is not None and row.locked_until is not None and row.locked_until > now:
        raise client_locked(row.locked_until, now)


def client_locked(until: datetime, now: datetime) -> SignInLocked:
    return SignInLocked(_(
        "Too many wrong access codes were entered on this device, so signing in with a code is "
        "paused %(wait)s. Please try again then. If your code keeps failing, ask your "
        "committee for a new letter.", wait=wait_text(until, now)), until)


def note_wrong_code(key: str, now: datetime | None = None) -> tuple[datetime | None, int]:
    """Count a wrong code from this client; at the threshold pause its code sign-in (audited).

    Returns the end of the pause this failure started (or None) and how many wrong codes the
    client may still enter before a pause.
    """
    now = now or utcnow()
    config = current_app.config
    threshold = int(config["ACCESS_CODE_LOCKOUT_THRESHOLD"])
    window = timedelta(minutes=int(config["ACCESS_CODE_LOCKOUT_WINDOW_MINUTES"]))
    db.session.execute(delete(ClientLock).where(
        ClientLock.window_started_at < now - _FORGET_AFTER,
        or_(ClientLock.locked_until.is_(None), ClientLock.locked_until < now)))
    # Simultaneous wrong codes from one client queue on its row instead of losing a count.
    row, _created = insert_or_lock(ClientLock, {"client_key": key},
                                   {"failures": 0, "window_started_at": now})
    if row.window_started_at <= now - window:
        row.failures, row.window_started_at = 0, now
    row.failures += 1
    if threshold <= 0 or row.failures < threshold:
        db.session.flush()
        return None, max(threshold - row.failures, 0)
    until = now + timedelta(minutes=int(config["ACCESS_CODE_LOCKOUT_MINUTES"]))
    failures, row.failures, row.window_started_at, row.locked_until = row.failures, 0, now, until
    db.session.flush()
    audit.record(None, "accounts.client.locked", ("client", None),
                 {"client": key[:12], "failures": failures, "until": audit.format_time(until)})
    return until, 0


def forget_wrong_codes(key: str) -> None:
    """A code worked: the client's earlier mistakes no longer count."""
    row = _client_row(key)
    if row is not None and row.failures:
        row.failures = 0
        db.session.flush()
