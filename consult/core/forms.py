"""Form helpers shared by every domain: validators with translated messages, error mapping."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from flask import current_app, request
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, InputRequired, Length

from consult.core.errors import ValidationFailed


def required() -> DataRequired:
    return DataRequired(message=_l("This field is required."))


def input_required() -> InputRequired:
    return InputRequired(message=_l("This field is required."))


def max_length(n: int) -> Length:
    return Length(max=n, message=_l("At most %(max)d characters.", max=n))


def apply_errors(form: FlaskForm, exc: ValidationFailed) -> None:
    """Put a service's field errors next to the matching form fields; the rest go on top."""
    for name, messages in exc.errors.items():
        field = getattr(form, name, None)
        if field is not None and hasattr(field, "errors"):
            field.errors = list(field.errors) + list(messages)
        else:
            form.form_errors.extend(messages)
    if not exc.errors:
        form.form_errors.append(exc.message)


def page_number() -> int:
    """The ?page= argument, at least 1."""
    return max(1, request.args.get("page", 1, type=int) or 1)


def page_size() -> int:
    return int(current_app.config["PAGE_SIZE"])


def options(pairs: Iterable[tuple[Any, Any]], optgroup: str | None = None) -> list[SelectChoice]:
    """Select options from (value, label) pairs; labels may be lazy strings."""
    return [SelectChoice(value=value, label=str(label), optgroup=optgroup)
            for value, label in pairs]
