"""Times as people enter and read them (Asia/Shanghai) versus as they are stored (UTC)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

from flask_babel import format_date as babel_format_date
from flask_babel import format_datetime as babel_format_datetime
from flask_babel import get_locale
from flask_babel import gettext as _

LOCAL = ZoneInfo("Asia/Shanghai")

# Every date people enter (a deadline, a meeting) lies within these years. Beyond them Python
# cannot even convert some times to UTC (year 1 in Beijing is year 0 in UTC), and nobody plans
# a renovation for the year 9999.
FIRST_YEAR, LAST_YEAR = 2000, 2100
EARLIEST = datetime(FIRST_YEAR, 1, 1, tzinfo=LOCAL)
LATEST = datetime(LAST_YEAR, 12, 31, 23, 59, 59, tzinfo=LOCAL)


# Babel's short English forms are American (12/4/26): read as 12 April elsewhere, and the
# year in two digits. English pages name the month instead; Chinese short forms put the year
# first (2026/12/4) and stay as Babel writes them.
_ENGLISH_SHORT = {"date": "d MMM y", "datetime": "d MMM y, HH:mm"}


def _pattern(kind: str, format: str | None) -> str | None:
    if format == "short" and str(get_locale()) == "en":
        return _ENGLISH_SHORT[kind]
    return format


def format_datetime(value: datetime | None, format: str | None = None) -> str:
    """A moment for reading, in the reader's language and in Beijing time (Flask-Babel's
    ``format_datetime``), with an unambiguous short form in English: 4 Dec 2026, 01:18."""
    return babel_format_datetime(value, _pattern("datetime", format))


def format_date(value: date | datetime | None, format: str | None = None) -> str:
    """A day for reading, in the reader's language (Flask-Babel's ``format_date``), with an
    unambiguous short form in English: 4 Dec 2026."""
    return babel_format_date(value, _pattern("date", format))


def plausible(value: datetime) -> bool:
    """Whether a time lies within FIRST_YEAR to LAST_YEAR in Beijing time; a naive value is a
    wall-clock time in Asia/Shanghai."""
    if value.tzinfo is None:
        return EARLIEST.replace(tzinfo=None) <= value <= LATEST.replace(tzinfo=None)
    return EARLIEST <= value <= LATEST


def out_of_range_message() -> str:
    """What a field outside the plausible years says, in the reader's language."""
    return _("Enter a date between the years %(first)s and %(last)s.", first=FIRST_YEAR,
             last=LAST_YEAR)


def local_to_utc(value: datetime | None) -> datetime | None:
    """A wall-clock time typed in Asia/Shanghai → an aware UTC datetime.

    Raises ValueError for a time outside the plausible years (see ``plausible``), rather than
    the OverflowError Python raises near the ends of its calendar."""
    if value is None:
        return None
    if not plausible(value):
        raise ValueError(f"{value!r} lies outside {FIRST_YEAR}–{LAST_YEAR}")
    if value.tzinfo is None:
        value = value.replace(tzinfo=LOCAL)
    return value.astimezone(UTC)


def utc_to_local(value: datetime | None) -> datetime | None:
    """An aware UTC datetime → a naive Asia/Shanghai wall-clock time, for form fields."""
    if value is None:
        return None
    return value.astimezone(LOCAL).replace(tzinfo=None)
