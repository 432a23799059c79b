"""Times as people enter and read them (Asia/Shanghai) versus as they are stored (UTC)."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

LOCAL = ZoneInfo("Asia/Shanghai")


def local_to_utc(value: datetime | None) -> datetime | None:
    """A wall-clock time typed in Asia/Shanghai → an aware UTC datetime."""
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=LOCAL)
    return value.astimezone(UTC)


def utc_to_local(value: datetime | None) -> datetime | None:
    """An aware UTC datetime → a naive Asia/Shanghai wall-clock time, for form fields."""
    if value is None:
        return None
    return value.astimezone(LOCAL).replace(tzinfo=None)
