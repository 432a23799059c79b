"""Form helpers shared by every domain: validators with translated messages, error mapping."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from flask import current_app, flash, request
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, InputRequired, Length

from consult.core.errors import ValidationFailed
from consult.extensions import db

T = TypeVar("T")


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


@dataclass(frozen=True)
class Saved(Generic[T]):
    """What a successful ``save_form`` call returned."""

    value: T


def save_form(form: FlaskForm, action: Callable[[], T], success: str | None = None
              ) -> Saved[T] | None:
    """For a submitted, valid form: run the service call and commit once.

    Returns ``Saved(result)`` on success (after flashing ``success``). Returns None when the
    form was not submitted or not valid, or when the service refused the input: then the
    transaction is rolled back and the service's messages sit next to the form's fields.
    """
    if not form.validate_on_submit():
        return None
    try:
        value = action()
    except ValidationFailed as exc:
        db.session.rollback()
        apply_errors(form, exc)
        return None
    db.session.commit()
    if success:
        flash(success, "success")
    return Saved(value)


def page_number() -> int:
    """The ?page= argument, at least 1."""
    return max(1, request.args.get("page", 1, type=int) or 1)


def page_size() -> int:
    return int(current_app.config["PAGE_SIZE"])


def options(pairs: Iterable[tuple[Any, Any]], optgroup: str | None = None) -> list[SelectChoice]:
    """Select options from (value, label) pairs; labels may be lazy strings."""
    return [SelectChoice(value=value, label=str(label), optgroup=optgroup)
            for value, label in pairs]
