"""Notifying people: the one entry point ``notify``, the in-app centre, preferences and
quiet hours.

Services flush, never commit: the caller's transaction carries the notifications and their
outbox rows together with the change that caused them (the outbox pattern). A change that
rolls back notifies nobody; a committed one is sent later by ``flask send-notifications``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from flask import current_app
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import Select, bindparam, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import selectinload

from consult.accounts.models import User
from consult.audit import service as audit
from consult.audit.actions import describe, describe_objects
from consult.core.database import affected_rows
from consult.core.errors import NotFound, ValidationFailed
from consult.core.models import utcnow
from consult.core.pagination import Window, window
from consult.core.policy import Role
from consult.extensions import db
from consult.notifications import events
from consult.notifications.models import (
    Channel,
    Notification,
    NotificationSettings,
    OutboxMessage,
)

describe({"notifications.preferences_changed": _l("Notification preferences changed")},
         kind="accounts")
describe_objects({"notification_settings": _l("Notification preferences")})

_EMAIL = re.compile(r"[^@\s]{1,64}@[^@\s]+\.[^@\s]+")
_HHMM = re.compile(r"([01]?\d|2[0-3]):([0-5]\d)")
MAX_EMAIL = 254


def _zone() -> ZoneInfo:
    return ZoneInfo(current_app.config.get("BABEL_DEFAULT_TIMEZONE") or "Asia/Shanghai")


# --- preferences ------------------------------------------------------------------------------


@dataclass
class Preferences:
    """What a person chose (or the defaults): switched-off events per channel, an email
    address, quiet hours in minutes after local midnight."""

    email: str | None = None
    off: dict[str, set[str]] = field(default_factory=dict)
    quiet_start: int | None = None
    quiet_end: int | None = None

    def wants(self, channel: Channel, event: str) -> bool:
        return event not in self.off.get(channel.value, set())

    @property
    def has_quiet_hours(self) -> bool:
        return (self.quiet_start is not None and self.quiet_end is not None
                and self.quiet_start != self.quiet_end)

    def quiet_until(self, now: datetime) -> datetime | None:
        """The end of the quiet hours ``now`` falls in (UTC), or None when it falls in none."""
        if not self.has_quiet_hours:
            return None
        assert self.quiet_start is not None and self.quiet_end is not None
        local = now.astimezone(_zone())
        minute = local.hour * 60 + local.minute
        start, end = self.quiet_start, self.quiet_end
        if start < end:
            inside, next_day = start <= minute < end, False
        else:  # across midnight: 22:00–07:00
            inside, next_day = minute >= start or minute < end, minute >= start
        if not inside:
            return None
        day = local.date() + timedelta(days=1 if next_day else 0)
        ends = datetime(day.year, day.month, day.day, end // 60, end % 60, tzinfo=_zone())
        return ends.astimezone(now.tzinfo)


def preferences_from_row(row: NotificationSettings | None) -> Preferences:
    if row is None:
        return Preferences()
    off = {channel: set(values) for channel, values in json.loads(row.off_json or "{}").items()}
    return Preferences(row.email, off, row.quiet_start, row.quiet_end)


def preferences_of(user: User) -> Preferences:
    """The person's preferences (the defaults if they never chose)."""
    return preferences_from_row(db.session.scalar(
        select(NotificationSettings).where(NotificationSettings.user_id == user.id)))


def events_for(user: User) -> tuple[str, ...]:
    """The events a person can receive: a household's, or staff's."""
    return events.HOUSEHOLD_EVENTS if user.role == Role.RESIDENT.value else events.STAFF_EVENTS


def parse_time(value: str) -> int | None:
    """Minutes after midnight from ``HH:MM`` (empty: None); ValueError when malformed."""
    value = (value or "").strip()
    if not value:
        return None
    match = _HHMM.fullmatch(value)
    if not match:
        raise ValueError(value)
    return int(match.group(1)) * 60 + int(match.group(2))


def format_minutes(minutes: int | None) -> str:
    return "" if minutes is None else f"{minutes // 60:02d}:{minutes % 60:02d}"


def save_preferences(actor: User, email: str, off: Mapping[str, Iterable[str]],
                     quiet_start: str, quiet_end: str) -> NotificationSettings:
    """Store the actor's own preferences; raises ValidationFailed naming the bad fields."""
    errors: dict[str, list[str]] = {}
    email = (email or "").strip()
    if email and (len(email) > MAX_EMAIL or not _EMAIL.fullmatch(email)):
        errors["email"] = [_("Enter an email address such as name@example.com, or leave it "
                             "empty.")]
    times: dict[str, int | None] = {}
    for name, value in (("quiet_start", quiet_start), ("quiet_end", quiet_end)):
        try:
            times[name] = parse_time(value)
        except ValueError:
            errors[name] = [_("Enter a time as hours and minutes, such as 22:00.")]
    if not errors and (times["quiet_start"] is None) != (times["quiet_end"] is None):
        message = _("Give both the start and the end of the quiet hours, or neither.")
        errors["quiet_end"] = [message]
    if errors:
        raise ValidationFailed(next(iter(errors.values()))[0], errors)
    allowed = set(events_for(actor))
    clean = {channel.value: sorted(set(off.get(channel.value, ())) & allowed)
             for channel in Channel}
    row = db.session.scalar(select(NotificationSettings)
                            .where(NotificationSettings.user_id == actor.id))
    if row is None:
        row = NotificationSettings(user_id=actor.id)
        db.session.add(row)
    row.email = email or None
    row.off_json = json.dumps(clean, sort_keys=True)
    row.quiet_start, row.quiet_end = times["quiet_start"], times["quiet_end"]
    row.updated_at = utcnow()
    db.session.flush()
    # The address itself stays out of the trail: only whether one is given.
    audit.record(actor, "notifications.preferences_changed",
                 ("notification_settings", row.id), {
                     "email_given": bool(row.email), "off": clean,
                     "quiet": [format_minutes(row.quiet_start), format_minutes(row.quiet_end)]})
    return row


# --- recipients -------------------------------------------------------------------------------


def household_accounts(household_ids: Iterable[int]) -> list[int]:
    """The active accounts of these households (one per household), by id."""
    wanted = set(household_ids)
    if not wanted:
        return []
    # Households with an account are far fewer than those on a city's roll: read those
    # accounts once and keep the ones asked for, rather than sending every household's id
    # (past PostgreSQL's 65,535 parameters, and slow well before).
    rows = db.session.execute(select(User.id, User.household_id).where(
        User.household_id.is_not(None), User.active.is_(True)))
    return sorted(user_id for user_id, household_id in rows if household_id in wanted)


def _outbound(user: User, prefs: Preferences, event: str) -> list[tuple[Channel, str]]:
    """The channels (and addresses) an event goes out by for this person."""
    config = current_app.config
    found = []
    if config.get("SMTP_HOST") and prefs.email and prefs.wants(Channel.EMAIL, event):
        found.append((Channel.EMAIL, prefs.email))
    phone = user.household.phone if user.household is not None else None
    if config.get("SMS_PROVIDER") and phone and prefs.wants(Channel.SMS, event):
        found.append((Channel.SMS, phone))
    return found


def _insert(model: type[Any], rows: list[dict[str, Any]], key: list[str]) -> None:
    """Insert ``rows``, skipping any whose unique ``key`` is taken (a simultaneous notify)."""
    if not rows:
        return
    dialect = db.session.get_bind().dialect.name
    insert = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(model)
    db.session.execute(insert.on_conflict_do_nothing(index_elements=key), rows)


def notify(event: str, recipients: Iterable[int | User], params: Mapping[str, Any],
           link: str, dedupe_key: str, *, now: datetime | None = None) -> int:
    """Notify people of an event, once: the one entry point every domain calls.

    - ``event``: a code of ``consult.notifications.events`` (it names the texts, and what a
      person may switch off);
    - ``recipients``: user ids or users (inactive accounts are skipped);
    - ``params``: plain JSON values the event's texts use (``consultation``: its title;
      ``deadline``: an ISO time; ``locale``: the language of messages to people who chose none);
    - ``link``: the path of the page the notification opens (``/consultations/5``);
    - ``dedupe_key``: names this occurrence of the event: a person is notified of a key at most
      once, and each outbound channel sends it at most once (unique constraints), so calling
      again (a retried command, a second sender) changes nothing.

    Writes, in the caller's transaction, an in-app notification per person and an outbox row
    per channel the person accepts (an address, the channel configured, the event not switched
    off); a row falling into the person's quiet hours waits until they end. Returns how many
    people were newly notified.
    """
    if event not in events.EVENT_LABELS:
        raise ValueError(f"unknown event {event!r}")
    now = now or utcnow()
    ids = {r if isinstance(r, int) else r.id for r in recipients}
    if not ids:
        return 0
    dedupe_key = dedupe_key[:200]
    done = set(db.session.scalars(select(Notification.user_id).where(
        Notification.dedupe_key == dedupe_key, Notification.user_id.in_(ids))))
    users = list(db.session.scalars(select(User).options(selectinload(User.household)).where(
        User.id.in_(ids - done), User.active.is_(True)).order_by(User.id)))
    if not users:
        return 0
    settings = {row.user_id: row for row in db.session.scalars(select(NotificationSettings)
                .where(NotificationSettings.user_id.in_([u.id for u in users])))}
    text = json.dumps(dict(params), sort_keys=True, default=str)
    default_locale = str(params.get("locale") or current_app.config["BABEL_DEFAULT_LOCALE"])
    notes, outbox = [], []
    for user in users:
        notes.append({"user_id": user.id, "event": event, "dedupe_key": dedupe_key,
                      "params_json": text, "link": link[:300], "created_at": now,
                      "read_at": None})
        prefs = preferences_from_row(settings.get(user.id))
        due = prefs.quiet_until(now) or now
        for channel, address in _outbound(user, prefs, event):
            outbox.append({
                "dedupe_key": dedupe_key, "user_id": user.id, "channel": channel.value,
                "address": address, "locale": user.locale or default_locale, "event": event,
                "params_json": text, "link": link[:300], "status": "pending", "attempts": 0,
                "next_attempt_at": due, "created_at": now})
    _insert(Notification, notes, ["user_id", "dedupe_key"])
    _insert(OutboxMessage, outbox, ["dedupe_key", "user_id", "channel"])
    db.session.flush()
    return len(notes)


# --- the centre -------------------------------------------------------------------------------


_UNREAD = select(func.count(Notification.id)).where(
    Notification.user_id == bindparam("user"), Notification.read_at.is_(None))


def unread_count(user_id: int) -> int:
    """Unread notifications of a person: one COUNT over an index range (a statement built once:
    it is on every signed-in page)."""
    return db.session.scalar(_UNREAD, {"user": user_id}) or 0


def own_notifications(user: User) -> Select[Notification]:
    """The person's own notifications, newest first: the centre's page and the API's list."""
    return (select(Notification).where(Notification.user_id == user.id)
            .order_by(Notification.created_at.desc(), Notification.id.desc()))


def page_of(user: User, page: int, per_page: int) -> Window:
    """A page of the person's own notifications, newest first (unread ones marked)."""
    return window(own_notifications(user), page, per_page)


def text_of(notification: Notification | OutboxMessage) -> tuple[str, str]:
    """Headline and sentence of a notification, in the current language."""
    params = json.loads(notification.params_json or "{}")
    return events.title(notification.event, params), events.body(notification.event, params)


def mark_read(user: User, notification_id: int, now: datetime | None = None) -> None:
    """Mark one of the person's own notifications read; anyone else's is not found."""
    mine = db.session.scalar(select(Notification.id).where(
        Notification.id == notification_id, Notification.user_id == user.id))
    if mine is None:
        raise NotFound(_("No such notification."))
    db.session.execute(update(Notification).where(
        Notification.id == notification_id, Notification.user_id == user.id,
        Notification.read_at.is_(None)).values(read_at=now or utcnow()))


def mark_all_read(user: User, now: datetime | None = None) -> int:
    """Mark every unread notification of the person read; returns how many."""
    return affected_rows(db.session.execute(update(Notification).where(
        Notification.user_id == user.id, Notification.read_at.is_(None))
        .values(read_at=now or utcnow())))


def path_for(endpoint: str, **values: Any) -> str:
    """The path of a page (``/consultations/5``), inside a request or not (commands, jobs)."""
    return current_app.url_map.bind("localhost").build(endpoint, values)
