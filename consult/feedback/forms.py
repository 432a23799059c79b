"""Forms of defect feedback: the report, the steps on a report, and the warranty period."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf.file import FileField, MultipleFileField
from wtforms import HiddenField, SelectField, StringField, TextAreaField
from wtforms.validators import Optional

from consult.core.forms import FlaskForm, LocalDateField, max_length, possible_ids, required
from consult.feedback.service import (
    MAX_ASSIGNEE_LENGTH,
    MAX_PHOTOS,
    MAX_REASON_LENGTH,
    MAX_TEXT_LENGTH,
)

_IMAGES = "image/jpeg,image/png,image/webp"


class ReportForm(FlaskForm):
    """A defect in a finished item. The view removes ``household_id`` unless a grid worker
    reports for a household."""

    # The three choices are checked by the service, in its own words (and only once the
    # warranty period is open: before, the form says why nothing can be reported yet).
    item_id = SelectField(_l("Which finished item"), coerce=int, choices=[],
                          validate_choice=False, validators=[possible_ids()])
    building_id = SelectField(_l("Building"), coerce=int, choices=[],
                              validate_choice=False, validators=[possible_ids()])
    household_id = SelectField(_l("Household you report for"), coerce=int, choices=[],
                               validate_choice=False, validators=[possible_ids()])
    text = TextAreaField(_l("What is wrong, and where exactly"),
                         validators=[required(), max_length(MAX_TEXT_LENGTH)],
                         render_kw={"rows": 5})
    photos = MultipleFileField(
        _l("Photos (optional, up to %(n)s; JPEG, PNG or WebP; seen by staff only)",
           n=MAX_PHOTOS), render_kw={"accept": _IMAGES})


class MoveForm(FlaskForm):
    """One step on a report; the service says which fields the step needs."""

    action = HiddenField()
    reason = TextAreaField(_l("Reason"), validators=[Optional(), max_length(MAX_REASON_LENGTH)],
                           render_kw={"rows": 3})
    assignee = StringField(_l("Who fixes it (person or contractor)"),
                           validators=[Optional(), max_length(MAX_ASSIGNEE_LENGTH)])
    due_on = LocalDateField(_l("Due day"), validators=[Optional()])
    note = TextAreaField(_l("What was done"), validators=[Optional(), max_length(MAX_TEXT_LENGTH)],
                         render_kw={"rows": 3})
    photo = FileField(_l("Photo of the fixed defect (JPEG, PNG or WebP)"),
                      render_kw={"accept": _IMAGES})


class WarrantyForm(FlaskForm):
    months = StringField(_l("Warranty period (months)"), validators=[required(), max_length(4)],
                         render_kw={"inputmode": "numeric", "autocomplete": "off"})
