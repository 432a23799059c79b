"""Sign-in lockout, on top of the rate limits: wrong passwords lock the account for a while;
wrong access codes pause the code they were aimed at, or code sign-in from the client that sent
them, and together raise an alarm.

Every counter lives in the database and is changed in the transaction of the attempt, so all
workers and instances add up to one count.

- An access code's first digits (its selector) name an open code. A wrong code with a real
  selector counts against that code, whoever sends it: after
  ``ACCESS_CODE_PER_CODE_THRESHOLD`` the code is paused, each pause twice as long as the one
  before. The committee sees the pause on the household page and can lift it or issue a new
  letter.
- A wrong code that names no open code is counted per client address (a keyed hash of it; the
  address itself is not stored): many of them pause code sign-in from that address, except for
  a right code, which the per-code counts protect.
- Every wrong code also counts towards an alarm over all addresses.

Locks end by themselves; a committee member (for a household's account or code, in their
compounds) or an administrator can lift them sooner. Locking and unlocking are audited in the
same transaction. Functions flush, never commit.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from datetime import datetime, timedelta
from typing import Any

from flask import current_app
from flask_babel import format_time, ngettext
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import delete, or_, select

from consult.accounts.models import GLOBAL_KEY, AccessCode, ClientLock, User
from consult.audit import service as audit
from consult.audit.actions import describe, describe_objects
from consult.core.database import insert_or_lock
from consult.core.errors import DomainError
from consult.core.models import utcnow
from consult.core.times import format_datetime
from consult.extensions import db

describe({
    "accounts.user.locked": _l("Account locked after wrong passwords"),
    "accounts.user.unlocked": _l("Account unlocked"),
    "accounts.client.locked": _l("Code sign-in paused after wrong access codes"),
    "accounts.access_code.paused": _l("Access code paused after wrong tries"),
    "accounts.access_code.resumed": _l("Access code pause lifted"),
    "accounts.access_code.alarm": _l("Many wrong access codes from all devices"),
}, kind="accounts")
describe_objects({"client": _l("Device")})

log = logging.getLogger(__name__)

# Rows of clients that neither hold a lock nor failed recently are deleted after this long.
_FORGET_AFTER = timedelta(days=1)


class SignInLocked(DomainError):
    """Sign-in refused until ``until`` (a lock, not a wrong password)."""

    status_code = 429
    code = "locked"

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


def client_locked_until(key: str, now: datetime | None = None) -> datetime | None:
    """When the pause of code sign-in from this client ends, or None if it is not paused."""
    now = now or utcnow()
    row = _client_row(key)
    if row is not None and row.locked_until is not None and row.locked_until > now:
        return row.locked_until
    return None


def client_locked(until: datetime, now: datetime) -> SignInLocked:
    return SignInLocked(_(
        "Too many wrong access codes came from this network, so signing in with a code is "
        "paused %(wait)s. Please try again then. If your code keeps failing, ask your "
        "committee for a new letter.", wait=wait_text(until, now)), until)


def count_client_failure(key: str, now: datetime, *, threshold: int, window: timedelta,
                         pause: timedelta) -> tuple[datetime | None, int]:
    """Count one failure of client ``key`` (a keyed hash) within its ``window``; at
    ``threshold`` pause the client until ``now + pause``. Flushes.

    Returns the end of the pause this failure started (or None) and the failures counted: at a
    pause, all of them; otherwise those in the window so far. Rows that neither hold a pause
    nor failed recently are deleted on the way. Simultaneous failures of one client queue on
    its row instead of losing a count.
    """
    db.session.execute(delete(ClientLock).where(
        ClientLock.client_key != GLOBAL_KEY,
        ClientLock.window_started_at < now - _FORGET_AFTER,
        or_(ClientLock.locked_until.is_(None), ClientLock.locked_until < now)))
    row, _created = insert_or_lock(ClientLock, {"client_key": key},
                                   {"failures": 0, "window_started_at": now})
    if row.window_started_at <= now - window:
        row.failures, row.window_started_at = 0, now
    row.failures += 1
    if threshold <= 0 or row.failures < threshold:
        db.session.flush()
        return None, row.failures
    until = now + pause
    failures, row.failures, row.window_started_at, row.locked_until = row.failures, 0, now, until
    db.session.flush()
    return until, failures


def note_wrong_code(key: str, now: datetime | None = None) -> tuple[datetime | None, int]:
    """Count a wrong code from this client; at the threshold pause its code sign-in (audited).

    Returns the end of the pause this failure started (or None) and how many wrong codes the
    client may still enter before a pause.
    """
    now = now or utcnow()
    config = current_app.config
    threshold = int(config["ACCESS_CODE_LOCKOUT_THRESHOLD"])
    until, failures = count_client_failure(
        key, now, threshold=threshold,
        window=timedelta(minutes=int(config["ACCESS_CODE_LOCKOUT_WINDOW_MINUTES"])),
        pause=timedelta(minutes=int(config["ACCESS_CODE_LOCKOUT_MINUTES"])))
    if until is None:
        return None, max(threshold - failures, 0)
    audit.record(None, "accounts.client.locked", ("client", None),
                 {"client": key[:12], "failures": failures, "until": audit.format_time(until)})
    return until, 0


# --- access codes: wrong tries against one code -------------------------------------------------


def code_pause_minutes(pauses: int) -> int:
    """How long the ``pauses``-th pause of a code lasts (1-based): the first
    ``ACCESS_CODE_PER_CODE_PAUSE_MINUTES``, each further one twice as long, up to
    ``ACCESS_CODE_PER_CODE_PAUSE_MAX_HOURS``."""
    config = current_app.config
    base = int(config["ACCESS_CODE_PER_CODE_PAUSE_MINUTES"])
    ceiling = int(config["ACCESS_CODE_PER_CODE_PAUSE_MAX_HOURS"]) * 60
    return min(base * 2 ** min(max(pauses - 1, 0), 30), ceiling)


def code_paused_until(access: AccessCode, now: datetime | None = None) -> datetime | None:
    """When an open code's pause ends, or None if it is not paused."""
    now = now or utcnow()
    return access.paused_until if access.is_usable and access.paused_at(now) else None


def code_paused(until: datetime, now: datetime) -> SignInLocked:
    """The refusal shown for any code aimed at a paused code (right or wrong alike, so that a
    pause never tells whether a guess was right)."""
    return SignInLocked(_(
        "The code of this letter was entered wrongly too many times, so it is paused %(wait)s. "
        "Please try again then, or ask your committee to lift the pause or to print a new "
        "letter.", wait=wait_text(until, now)), until)


def note_wrong_verifier(access: AccessCode, now: datetime) -> datetime | None:
    """Count a wrong code aimed at ``access`` (its row locked by the caller); at the threshold
    pause the code (audited). Returns the end of the pause this failure started, if any."""
    threshold = int(current_app.config["ACCESS_CODE_PER_CODE_THRESHOLD"])
    access.failures += 1
    if threshold <= 0 or access.failures < threshold:
        db.session.flush()
        return None
    access.pauses += 1
    until = now + timedelta(minutes=code_pause_minutes(access.pauses))
    failures, access.failures, access.paused_until = access.failures, 0, until
    db.session.flush()
    household = access.household
    audit.record(None, "accounts.access_code.paused", household,
                 {"access_code_id": access.id, "failures": failures, "pause": access.pauses,
                  "until": audit.format_time(until)},
                 compound_id=household.scope_compound_id)
    return until


def resume_code(actor: Any, access: AccessCode, now: datetime | None = None) -> bool:
    """Lift a code's pause (the household's count starts again; the next pause is still as
    long as it would have been). False if it was not paused."""
    now = now or utcnow()
    until = access.paused_until
    if not access.is_usable or until is None or not access.paused_at(now):
        return False
    access.paused_until, access.failures = None, 0
    db.session.flush()
    household = access.household
    audit.record(actor, "accounts.access_code.resumed", household,
                 {"access_code_id": access.id, "was_paused_until": audit.format_time(until)},
                 compound_id=household.scope_compound_id)
    return True


# --- every client: the alarm --------------------------------------------------------------------


def note_alarm(now: datetime) -> bool:
    """Count a wrong code towards the alarm over all clients; at the threshold raise it once
    per window (an audit event and an error in the log). Returns whether this raised it."""
    config = current_app.config
    threshold = int(config["ACCESS_CODE_ALARM_THRESHOLD"])
    if threshold <= 0:
        return False
    window = timedelta(minutes=int(config["ACCESS_CODE_ALARM_WINDOW_MINUTES"]))
    row, _created = insert_or_lock(ClientLock, {"client_key": GLOBAL_KEY},
                                   {"failures": 0, "window_started_at": now})
    if row.window_started_at <= now - window:
        row.failures, row.window_started_at, row.locked_until = 0, now, None
    row.failures += 1
    raised = row.failures >= threshold and row.locked_until is None
    if raised:
        row.locked_until = row.window_started_at + window  # raised for this window
    db.session.flush()
    if raised:
        log.error("Access-code alarm: %d wrong access codes within %d minutes from all "
                  "devices together.", row.failures, window.total_seconds() // 60)
        audit.record(None, "accounts.access_code.alarm", ("client", None),
                     {"failures": row.failures, "since": audit.format_time(
                         row.window_started_at)})
    return raised
