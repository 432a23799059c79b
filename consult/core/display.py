"""How numbers look on pages, in the reader's locale (files keep plain machine formats)."""

from __future__ import annotations

from decimal import Decimal

from flask_babel import format_decimal


def area(area_dm2: int | None) -> str:
    """8532 → '85.32', 1729009 → '17,290.09' (m², always two decimals)."""
    if area_dm2 is None:
        return ""
    return format_decimal(Decimal(area_dm2) / 100, format="#,##0.00")
