"""Small, pure text helpers for registry values: natural ordering and masking."""

from __future__ import annotations

import re

_DIGITS = re.compile(r"\d+")


def natural_key(value: str) -> str:
    """A string that sorts like humans count: "2号楼" before "10号楼", "501" before "1501".

    Runs of digits are zero-padded to 10 places so plain string order is numeric order.
    """
    return _DIGITS.sub(lambda m: m.group(0).lstrip("0").rjust(10, "0"), value.strip())


def mask_phone(phone: str | None) -> str:
    """Show only the first three and last four digits: 138****5678."""
    if not phone:
        return ""
    digits = re.sub(r"\D", "", phone)
    if len(digits) <= 4:
        return "*" * len(digits)
    if len(digits) <= 7:
        return "*" * (len(digits) - 4) + digits[-4:]
    return digits[:3] + "*" * (len(digits) - 7) + digits[-4:]


def strip_suffix(value: str, *suffixes: str) -> str:
    """Drop a trailing word such as 单元 or 室 that people type out of habit."""
    value = value.strip()
    for suffix in suffixes:
        if value.endswith(suffix) and len(value) > len(suffix):
            return value[: -len(suffix)].strip()
    return value
