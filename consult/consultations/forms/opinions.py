"""Forms of 一征: a resident's opinion, an offline opinion, sorting, merging and linking."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf.file import FileField
from wtforms import (
    BooleanField,
    IntegerField,
    SelectField,
    SelectMultipleField,
    StringField,
    TextAreaField,
)
from wtforms.validators import DataRequired, Optional

from consult.consultations.models import CATEGORY_LABELS, CHANNEL_LABELS
from consult.consultations.opinions import MAX_TEXT, OFFLINE_CHANNELS
from consult.core.forms import FlaskForm, max_length, options, possible_ids, required


def _categories() -> list:
    return options((c.value, label) for c, label in CATEGORY_LABELS.items())


class OpinionForm(FlaskForm):
    """What a resident fills in on a phone: what it is about, what they want, a photo."""

    category = SelectField(_l("What is it about?"), choices=[], validators=[required()])
    text = TextAreaField(_l("Your opinion or suggestion"),
                         validators=[required(), max_length(MAX_TEXT)],
                         render_kw={"rows": 6, "maxlength": MAX_TEXT})
    photo = FileField(_l("A photo (optional: JPEG, PNG or WebP)"),
                      render_kw={"accept": "image/jpeg,image/png,image/webp"})

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.category.choices = [("", _l("— choose —")), *_categories()]


class OfflineOpinionForm(OpinionForm):
    """An opinion the committee collected away from the site."""

    text = TextAreaField(_l("The opinion, as the household put it"),
                         validators=[required(), max_length(MAX_TEXT)],
                         render_kw={"rows": 6, "maxlength": MAX_TEXT})
    channel = SelectField(_l("How it reached the committee"), choices=[],
                          validators=[required()])
    building_id = SelectField(_l("Building (leave empty for an anonymous opinion)"),
                              coerce=int, choices=[], validate_choice=False,
                              validators=[possible_ids()])
    unit = StringField(_l("Unit"), validators=[max_length(20)])
    room = StringField(_l("Room"), validators=[max_length(20)])

    def __init__(self, *args: object, buildings: list | None = None, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.channel.choices = [("", _l("— choose —")), *options(
            (c.value, CHANNEL_LABELS[c]) for c in OFFLINE_CHANNELS)]
        self.building_id.choices = [(0, _l("— no household (anonymous) —")),
                                    *options((b.id, b.name) for b in buildings or [])]


class CategoryForm(FlaskForm):
    category = SelectField(_l("Category"), choices=[])

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.category.choices = _categories()


class MergeForm(FlaskForm):
    target = IntegerField(_l("Merge into opinion number"),
                          validators=[required(), possible_ids()],
                          render_kw={"inputmode": "numeric"})


class ItemOpinionsForm(FlaskForm):
    """Ticked opinions; the choices are the consultation's opinions (checked by the service)."""

    opinion_ids = SelectMultipleField(_l("Opinions"), coerce=int, choices=[],
                                      validate_choice=False,
                                      validators=[Optional(), possible_ids()])


class WithdrawForm(FlaskForm):
    """A household takes back its own opinion, support or comment: the box says it means it."""

    confirm = BooleanField(_l("Yes, withdraw it"), validators=[DataRequired(
        message=_l("Tick the box to confirm that you want to withdraw it."))])
