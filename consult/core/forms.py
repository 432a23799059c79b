"""Form helpers shared by every domain: validators with translated messages, error mapping."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from functools import cache
from typing import Any, Generic, TypeVar

import flask_wtf
import wtforms
from babel.support import NullTranslations, Translations
from flask import Response, current_app, flash, g, request
from flask_babel import get_locale, gettext
from flask_babel import lazy_gettext as _l
from wtforms import DateField, DateTimeLocalField, Field
from wtforms.fields.choices import SelectChoice
from wtforms.i18n import messages_path
from wtforms.validators import DataRequired, InputRequired, Length, ValidationError

from consult.core.errors import Conflict, ValidationFailed
from consult.core.models import MAX_ID
from consult.core.tabular import looks_like_table
from consult.core.times import EARLIEST, LATEST, out_of_range_message, plausible
from consult.extensions import db

T = TypeVar("T")


@cache
def _wtforms_translations(locale: str) -> NullTranslations:
    """WTForms' own catalog for ``locale``, read once per process (Flask-WTF reads the file
    again on every request). WTForms names Traditional Chinese "zh_TW"."""
    return Translations.load(messages_path(), ["zh_TW" if locale == "zh_Hant" else locale],
                             domain="wtforms")


class FlaskForm(flask_wtf.FlaskForm):
    """The base of every form. WTForms' own messages (a choice that is not offered, a number
    that is not one) follow the page's language like ours: Flask-WTF would look for a
    "zh_Hant" catalog, find none, and fall back to WTForms' Simplified "zh"."""

    class Meta(flask_wtf.FlaskForm.Meta):
        def get_translations(self, form: Any) -> Any:
            if not current_app.config.get("WTF_I18N_ENABLED", True):
                return super().get_translations(form)
            return _wtforms_translations(str(get_locale()))

    def process(self, formdata: Any = None, obj: Any = None, data: Any = None,
                extra_filters: Any = None, **kwargs: Any) -> None:
        """Like WTForms, except that a field the submitted form leaves out is read as empty
        rather than as the stored record's value (``obj``).

        WTForms keeps the value a field was prefilled with from ``obj=household`` when the
        request does not name the field at all, so a hand-made POST without "floor" carried
        on with the stored floor, an int where text is expected. A browser always sends every
        field it shows, so a missing one can only mean "nothing typed". (Values given as
        keywords stay: they are what a view shows on a new form, e.g. the review screen's
        one-time token, built while answering a POST.)
        """
        formdata = self.meta.wrap_formdata(self, formdata)
        if formdata is not None and obj is not None:
            absent = {name for name, field in self._fields.items()
                      if not isinstance(field, (wtforms.FormField, wtforms.FieldList))
                      and field.name not in formdata}
            if absent:
                obj = _Without(obj, absent)
        super().process(formdata, obj, data, extra_filters, **kwargs)

    def validate(self, extra_validators: Any = None) -> bool:
        """The fields' own checks, and no NUL character anywhere: no text of ours has one,
        and PostgreSQL refuses to store or even compare it."""
        valid = super().validate(extra_validators)
        for field in self:
            if _has_nul(field.data):
                field.errors = [*field.errors, gettext(
                    "%(what)s contains control characters.", what=field.label.text)]
                valid = False
        return valid


class _Without:
    """An object as a form's prefill, without the attributes named in ``hidden``."""

    def __init__(self, obj: Any, hidden: set[str]) -> None:
        self._obj, self._hidden = obj, hidden

    def __getattr__(self, name: str) -> Any:
        if name in self._hidden:
            raise AttributeError(name)
        return getattr(self._obj, name)


def _has_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        value = list(value.values())
    return isinstance(value, list) and any(_has_nul(v) for v in value)


class FieldList(wtforms.FieldList):
    """WTForms' FieldList, taking only decimal digits for row numbers: its own check,
    ``isdigit()``, lets "²" through to ``int()``, which fails."""

    def _extract_indices(self, prefix: str, formdata: Any) -> Iterator[int]:
        offset = len(prefix) + 1
        for key in formdata:
            if key.startswith(prefix):
                index = key[offset:].split(self._field_separator, 1)[0]
                if index.isdecimal():
                    yield int(index)


def required() -> DataRequired:
    return DataRequired(message=_l("This field is required."))


def input_required() -> InputRequired:
    return InputRequired(message=_l("This field is required."))


def max_length(n: int) -> Length:
    return Length(max=n, message=_l("At most %(max)d characters.", max=n))


def possible_ids() -> Callable[[FlaskForm, Field], None]:
    """Validator for fields holding record ids (one or a list): each between 0 and MAX_ID."""

    def check(form: FlaskForm, field: Field) -> None:
        values = field.data if isinstance(field.data, list) else [field.data]
        if any(isinstance(v, int) and not 0 <= v <= MAX_ID for v in values):
            raise ValidationError(_l("No such record."))

    return check


def plausible_time() -> Callable[[FlaskForm, Field], None]:
    """Validator for date fields: within the years people plan for (core.times)."""

    def check(form: FlaskForm, field: Field) -> None:
        if field.data is not None and not plausible(field.data):
            raise ValidationError(out_of_range_message())

    return check


DATETIME_FORMAT = "%Y-%m-%dT%H:%M"  # what <input type="datetime-local"> sends


class LocalDateTimeField(DateTimeLocalField):
    """A date and time typed in Beijing time, between core.times.EARLIEST and LATEST: a date
    such as 0001-01-01 or 9999-12-31 is an error next to the field, like a date that is no
    date at all. The browser's date picker is told the same range."""

    def __init__(self, label: Any = None, validators: list[Any] | None = None,
                 **kwargs: Any) -> None:
        render_kw = {"min": EARLIEST.strftime(DATETIME_FORMAT),
                     "max": LATEST.strftime(DATETIME_FORMAT), **(kwargs.pop("render_kw", {}))}
        super().__init__(label, [*(validators or []), plausible_time()],
                         format=DATETIME_FORMAT, render_kw=render_kw, **kwargs)


class LocalDateField(DateField):
    """A calendar date between the years of core.times.FIRST_YEAR and LAST_YEAR: 0001-01-01
    or 9999-12-31 is an error next to the field. The browser's date picker is told the same
    range."""

    def __init__(self, label: Any = None, validators: list[Any] | None = None,
                 **kwargs: Any) -> None:
        render_kw = {"min": EARLIEST.date().isoformat(), "max": LATEST.date().isoformat(),
                     **(kwargs.pop("render_kw", {}))}
        super().__init__(label, [*(validators or []), _plausible_date], render_kw=render_kw,
                         **kwargs)


def _plausible_date(form: FlaskForm, field: Field) -> None:
    if field.data is not None and not EARLIEST.date() <= field.data <= LATEST.date():
        raise ValidationError(out_of_range_message())


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


def apply_conflict(form: FlaskForm, exc: Conflict) -> None:
    """Put a Conflict's message next to the field it names, or on top of the form; the
    response to this request becomes a 409 (see ``refused_status``)."""
    field = getattr(form, exc.field, None) if exc.field else None
    if field is not None and hasattr(field, "errors"):
        field.errors = [*field.errors, exc.message]
    else:
        form.form_errors.append(exc.message)
    g.form_refused_status = exc.status_code


def refused_status(response: Response) -> Response:
    """A page showing a form again after a Conflict is answered with its status (409), not
    the 200 or 400 the view gives a refused form, so that clients and tests see the clash;
    redirects and other errors keep theirs."""
    status = g.get("form_refused_status")
    if status and response.status_code in (200, 400):
        response.status_code = status
    return response


@dataclass(frozen=True)
class Saved(Generic[T]):
    """What a successful ``save_form`` call returned."""

    value: T


def save_form(form: FlaskForm, action: Callable[[], T], success: str | None = None
              ) -> Saved[T] | None:
    """For a submitted, valid form: run the service call and commit once.

    Returns ``Saved(result)`` on success (after flashing ``success``). Returns None when the
    form was not submitted or not valid, or when the service refused the input: then the
    transaction is rolled back and the service's messages sit next to the form's fields. A
    Conflict (the state moved on, e.g. the vote opened meanwhile) comes back the same way, on
    the form with what was typed, and the page is answered with 409 (``refused_status``).
    """
    if not form.validate_on_submit():
        return None
    try:
        value = action()
    except ValidationFailed as exc:
        db.session.rollback()
        apply_errors(form, exc)
        return None
    except Conflict as exc:
        db.session.rollback()
        apply_conflict(form, exc)
        return None
    db.session.commit()
    if success:
        flash(success, "success")
    return Saved(value)


def uploaded_table(field: Field, name: str) -> bytes | None:
    """The content of the CSV or XLSX file sent in ``field`` under ``name``, read up to
    IMPORT_MAX_BYTES; None, with the reason next to the field, for a larger file or one that
    is not a table."""
    limit = current_app.config["IMPORT_MAX_BYTES"]
    data = field.data.read(limit + 1)
    if len(data) > limit:
        field.errors = [gettext("The file is larger than %(mb)s MB.", mb=limit // (1024 * 1024))]
        return None
    if not looks_like_table(name, data):
        field.errors = [gettext("Upload a CSV or XLSX file.")]
        return None
    return data


# No list is this long; a larger ?page= would overflow the query's OFFSET.
MAX_PAGE = 100_000


def page_number() -> int:
    """The ?page= argument, from 1 to MAX_PAGE."""
    return min(MAX_PAGE, max(1, request.args.get("page", 1, type=int) or 1))


_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def text_arg(name: str, max_length: int) -> str:
    """A search or filter text from the query string: without control characters (PostgreSQL
    cannot even compare a NUL), stripped, at most ``max_length`` characters."""
    return _CONTROL.sub("", request.args.get(name, "")).strip()[:max_length]


def id_arg(name: str) -> int | None:
    """A record id from the query string; None when absent or not a possible id."""
    value = request.args.get(name, type=int)
    return value if value is not None and 0 < value <= MAX_ID else None


def page_size() -> int:
    return int(current_app.config["PAGE_SIZE"])


def options(pairs: Iterable[tuple[Any, Any]], optgroup: str | None = None) -> list[SelectChoice]:
    """Select options from (value, label) pairs; labels may be lazy strings."""
    return [SelectChoice(value=value, label=str(label), optgroup=optgroup)
            for value, label in pairs]
