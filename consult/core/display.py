"""How pages look for their reader: numbers in the reader's locale (files keep plain machine
formats), and the text size this browser asked for."""

from __future__ import annotations

import unicodedata
from decimal import Decimal

from flask import has_request_context, request
from flask_babel import format_decimal


def area(area_dm2: int | None) -> str:
    """8532 → '85.32', 1729009 → '17,290.09' (m², always two decimals)."""
    if area_dm2 is None:
        return ""
    return format_decimal(Decimal(area_dm2) / 100, format="#,##0.00")


def area_m2(value: str | None) -> str:
    """'17290.09' (m², as frozen in a tally) → '17,290.09' in the reader's locale."""
    if not value:
        return ""
    return format_decimal(Decimal(value), format="#,##0.00")


CHOICE_ORDER = ("agree", "disagree", "abstain", "undecided", "not_reached", "none")


def choice_order(keys: list[str]) -> list[str]:
    """Answers in the order people expect (agree first, no answer last), whatever the JSON."""
    return sorted(keys, key=lambda k: CHOICE_ORDER.index(k) if k in CHOICE_ORDER else 99)


def text_width(text: str, size: float) -> float:
    """Roughly how wide ``text`` is at font ``size`` in an SVG: enough to place a column.

    A chart cannot measure its own labels, so wide (CJK, full-width) characters count as
    one em and the rest as 0.6 em, a little over the average of the sans fonts we ship.
    """
    wide = sum(1 for ch in text if unicodedata.east_asian_width(ch) in ("W", "F"))
    return size * (wide + 0.6 * (len(text) - wide))


TEXT_COOKIE = "text"
TEXT_LARGE = "large"


def large_text() -> bool:
    """Whether this browser chose larger text (for readers who find the normal size small)."""
    return has_request_context() and request.cookies.get(TEXT_COOKIE) == TEXT_LARGE
