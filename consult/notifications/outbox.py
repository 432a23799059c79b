"""The outbox: due rows are claimed by one sender, sent, and marked sent or put back with a
later attempt (exponential backoff).

Each step flushes; the sender (``consult.notifications.commands.send_pending``) commits after
each, so that a claim is visible to every other sender before the message goes out. The claim
is one ``UPDATE … WHERE status = 'pending' AND claimed_by IS NULL`` whose row count says who
won: it works the same on SQLite (one writer at a time) and PostgreSQL (the second UPDATE
waits for the first and then matches no row).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, update

from consult.accounts.models import User
from consult.core.database import affected_rows
from consult.extensions import db
from consult.notifications import channels
from consult.notifications.models import NotificationSettings, OutboxMessage, OutboxStatus
from consult.notifications.service import preferences_from_row

MAX_ATTEMPTS = 8
FIRST_RETRY = timedelta(minutes=1)
LONGEST_WAIT = timedelta(hours=6)
# A claim older than this belongs to a sender that died while sending: the row goes back.
STALE_CLAIM = timedelta(minutes=15)


@dataclass
class Counts:
    """What one run of the sender did."""

    sent: int = 0
    failed: int = 0      # attempts that failed (tried again later unless given up)
    given_up: int = 0
    deferred: int = 0    # fell into quiet hours
    skipped: int = 0     # claimed by another sender first


def backoff(attempts: int) -> timedelta:
    """The wait after the ``attempts``-th failed attempt: 1, 2, 4 … minutes, at most 6 hours."""
    return min(FIRST_RETRY * 2 ** max(0, attempts - 1), LONGEST_WAIT)


def release_stale(now: datetime) -> int:
    """Put rows claimed by a sender that never finished back in the queue."""
    return affected_rows(db.session.execute(update(OutboxMessage).where(
        OutboxMessage.status == OutboxStatus.SENDING.value,
        OutboxMessage.claimed_at < now - STALE_CLAIM).values(
        status=OutboxStatus.PENDING.value, claimed_by=None, claimed_at=None)))


def due_ids(now: datetime, limit: int) -> list[int]:
    """Rows whose time has come, oldest first."""
    return list(db.session.scalars(select(OutboxMessage.id).where(
        OutboxMessage.status == OutboxStatus.PENDING.value,
        OutboxMessage.next_attempt_at <= now)
        .order_by(OutboxMessage.next_attempt_at, OutboxMessage.id).limit(limit)))


def claim(row_id: int, sender: str, now: datetime) -> bool:
    """Take the row for ``sender``; False when another sender has it (or it is not due)."""
    return affected_rows(db.session.execute(update(OutboxMessage).where(
        OutboxMessage.id == row_id, OutboxMessage.status == OutboxStatus.PENDING.value,
        OutboxMessage.claimed_by.is_(None), OutboxMessage.next_attempt_at <= now).values(
        status=OutboxStatus.SENDING.value, claimed_by=sender[:80], claimed_at=now))) == 1


def _mine(row_id: int, sender: str) -> OutboxMessage | None:
    return db.session.scalar(select(OutboxMessage).where(
        OutboxMessage.id == row_id, OutboxMessage.claimed_by == sender,
        OutboxMessage.status == OutboxStatus.SENDING.value)
        .execution_options(populate_existing=True))


def defer_if_quiet(row_id: int, sender: str, now: datetime) -> bool:
    """Put a claimed row back until the end of its recipient's quiet hours, if ``now`` is in
    them (preferences may have changed since it was queued); returns whether it did."""
    row = _mine(row_id, sender)
    if row is None:
        return False
    settings = db.session.scalar(select(NotificationSettings)
                                 .where(NotificationSettings.user_id == row.user_id))
    until = preferences_from_row(settings).quiet_until(now)
    if until is None:
        return False
    row.status, row.claimed_by, row.claimed_at = OutboxStatus.PENDING.value, None, None
    row.next_attempt_at = until
    db.session.flush()
    return True


def send_claimed(row_id: int, sender: str, now: datetime) -> str:
    """Send a row this sender claimed; returns "sent", "failed" or "given_up". The result is
    written only if the claim is still this sender's."""
    row = _mine(row_id, sender)
    if row is None:
        return "skipped"
    active = db.session.scalar(select(User.active).where(User.id == row.user_id))
    try:
        if not active:
            raise channels.SendFailed("the account is no longer active")
        channels.deliver(row, now)
    except channels.SendFailed as exc:
        attempts = row.attempts + 1
        gave_up = attempts >= MAX_ATTEMPTS or not active
        db.session.execute(update(OutboxMessage).where(
            OutboxMessage.id == row_id, OutboxMessage.claimed_by == sender).values(
            attempts=attempts, last_error=str(exc)[:500], claimed_by=None, claimed_at=None,
            status=(OutboxStatus.FAILED if gave_up else OutboxStatus.PENDING).value,
            next_attempt_at=now + backoff(attempts)))
        return "given_up" if gave_up else "failed"
    db.session.execute(update(OutboxMessage).where(
        OutboxMessage.id == row_id, OutboxMessage.claimed_by == sender).values(
        attempts=row.attempts + 1, status=OutboxStatus.SENT.value, sent_at=now,
        claimed_by=None, claimed_at=None, last_error=None))
    return "sent"
