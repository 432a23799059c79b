"""Checking the free text people type, with messages they understand."""

from __future__ import annotations

import re
from enum import Enum
from typing import TypeVar

from flask_babel import gettext as _

from consult.core.errors import ValidationFailed

E = TypeVar("E", bound=Enum)

_CONTROL_LINE = re.compile(r"[\x00-\x1f\x7f]")
_CONTROL_TEXT = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")  # keeps tabs and line breaks


def clean_text(value: str | None, *, what: str, max_length: int, required: bool = False,
               multiline: bool = False) -> str:
    """Stripped text within its limits; raises ValueError with a message naming ``what``.

    One-line values may hold no control characters at all; multi-line ones keep their line
    breaks (normalised to \\n) and tabs.
    """
    value = value or ""
    if multiline:
        value = value.replace("\r\n", "\n").replace("\r", "\n")
    value = value.strip()
    if required and not value:
        raise ValueError(_("%(what)s is required.", what=what))
    if (_CONTROL_TEXT if multiline else _CONTROL_LINE).search(value):
        raise ValueError(_("%(what)s contains control characters.", what=what))
    if len(value) > max_length:
        raise ValueError(_("%(what)s is longer than %(max)s characters.", what=what,
                           max=max_length))
    return value


def field_text(value: str | None, *, field: str, what: str, max_length: int,
               required: bool = False, multiline: bool = False) -> str:
    """``clean_text`` for a form field: the message goes next to ``field``."""
    try:
        return clean_text(value, what=what, max_length=max_length, required=required,
                          multiline=multiline)
    except ValueError as exc:
        raise ValidationFailed(str(exc), {field: [str(exc)]}) from None


def enum_member(kind: type[E], value: str | None) -> E:
    """The member of ``kind`` whose value is ``value`` (a form's choice); ValueError if there is
    none, as when the field was not sent."""
    if value is None:
        raise ValueError(f"no {kind.__name__} was given")
    return kind(value)
