"""Notification rows (the in-app centre), each person's preferences, and the outbox of
outbound messages (one row per event, recipient and channel)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from consult.core.models import UTCDateTime, utcnow
from consult.extensions import Model


class Channel(StrEnum):
    """Outbound channels; the in-app centre is no channel: it is always on."""

    EMAIL = "email"
    SMS = "sms"


class OutboxStatus(StrEnum):
    PENDING = "pending"   # waits for its next attempt
    SENDING = "sending"   # claimed by one sender
    SENT = "sent"
    FAILED = "failed"     # gave up after the last attempt


class Notification(Model):
    """One notice in a person's centre. The text is written when shown, in the reader's
    language, from ``event`` and ``params``."""

    __tablename__ = "notification"
    __table_args__ = (
        # The same event never shows twice for one person.
        UniqueConstraint("user_id", "dedupe_key"),
        # The header's unread count: one index range per person.
        Index("ix_notification_user_read", "user_id", "read_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user_account.id"))
    event: Mapped[str] = mapped_column(String(40))
    dedupe_key: Mapped[str] = mapped_column(String(200))
    params_json: Mapped[str] = mapped_column(Text, default="{}")
    link: Mapped[str] = mapped_column(String(300), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    read_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)


class NotificationSettings(Model):
    """A person's choices: outbound channels per event, an email address, quiet hours. No row:
    the defaults (every event by every channel the person can be reached by, no quiet hours)."""

    __tablename__ = "notification_settings"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user_account.id"), unique=True)
    email: Mapped[str | None] = mapped_column(String(254), default=None)
    # JSON: {"email": [events switched off], "sms": [...]}; an event missing is on.
    off_json: Mapped[str] = mapped_column(Text, default="{}")
    # Minutes after local midnight; both None: no quiet hours.
    quiet_start: Mapped[int | None] = mapped_column(default=None)
    quiet_end: Mapped[int | None] = mapped_column(default=None)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class OutboxMessage(Model):
    """One message to send: a row per (event, recipient, channel), never two."""

    __tablename__ = "outbox_message"
    __table_args__ = (
        UniqueConstraint("dedupe_key", "user_id", "channel"),
        # The sender's query: due rows by time.
        Index("ix_outbox_message_due", "status", "next_attempt_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    dedupe_key: Mapped[str] = mapped_column(String(200))
    user_id: Mapped[int] = mapped_column(ForeignKey("user_account.id"))
    channel: Mapped[str] = mapped_column(String(10))
    address: Mapped[str] = mapped_column(String(254))
    locale: Mapped[str] = mapped_column(String(10))
    event: Mapped[str] = mapped_column(String(40))
    params_json: Mapped[str] = mapped_column(Text, default="{}")
    link: Mapped[str] = mapped_column(String(300), default="")
    status: Mapped[str] = mapped_column(String(10), default=OutboxStatus.PENDING.value)
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    claimed_by: Mapped[str | None] = mapped_column(String(80), default=None)
    claimed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    last_error: Mapped[str | None] = mapped_column(String(500), default=None)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
