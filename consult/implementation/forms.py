"""Implementation forms: progress, ticking an item off, inspection notes, and the rating."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf.file import FileField, MultipleFileField
from wtforms import BooleanField, RadioField, SelectField, StringField, TextAreaField

from consult.core.forms import FlaskForm, max_length, options, required
from consult.implementation.models import RATING_LABELS
from consult.implementation.service import (
    MAX_COMMENT_LENGTH,
    MAX_INSPECTION_LENGTH,
    MAX_NOTE_LENGTH,
    MAX_PHOTOS,
)

_IMAGES = "image/jpeg,image/png,image/webp"


def item_choices(items: list, whole: object) -> list:
    """Select options: the whole works (0), then each item by number and title."""
    return options([(0, whole)] + [(item.id, f"{item.number}. {item.title}") for item in items])


class ProgressForm(FlaskForm):
    item_id = SelectField(_l("What this entry is about"), coerce=int, choices=[])
    percent = StringField(_l("Progress (percent, 0 to 100)"),
                          validators=[required(), max_length(5)],
                          render_kw={"inputmode": "numeric", "autocomplete": "off"})
    spend = StringField(_l("Spent since the previous entry (yuan, up to two decimals)"),
                        validators=[max_length(20)],
                        render_kw={"inputmode": "decimal", "autocomplete": "off"})
    note = TextAreaField(_l("Note"), validators=[max_length(MAX_NOTE_LENGTH)],
                         render_kw={"rows": 4})
    photos = MultipleFileField(_l("Photos (up to %(n)s; JPEG, PNG or WebP)", n=MAX_PHOTOS),
                               render_kw={"accept": _IMAGES})
    is_final = BooleanField(_l("This is the final report: the works are finished (100 %)"))


class CompleteItemForm(FlaskForm):
    final_cost = StringField(_l("Final cost (yuan, up to two decimals)"),
                             validators=[required(), max_length(20)],
                             render_kw={"inputmode": "decimal", "autocomplete": "off"})
    note = TextAreaField(_l("Note (what was done, deviations from the plan)"),
                         validators=[max_length(MAX_NOTE_LENGTH)], render_kw={"rows": 3})


class InspectionForm(FlaskForm):
    item_id = SelectField(_l("What was inspected"), coerce=int, choices=[])
    text = TextAreaField(_l("Inspection note"),
                         validators=[required(), max_length(MAX_INSPECTION_LENGTH)],
                         render_kw={"rows": 5})
    photo = FileField(_l("Photo (optional; JPEG, PNG or WebP)"), render_kw={"accept": _IMAGES})


class EvaluationForm(FlaskForm):
    rating = RadioField(_l("How satisfied are you with the works?"), choices=[],
                        validate_choice=False)
    comment = TextAreaField(_l("Anything you want to add (optional)"),
                            validators=[max_length(MAX_COMMENT_LENGTH)], render_kw={"rows": 3})

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.rating.choices = options((k.value, v) for k, v in RATING_LABELS.items())
