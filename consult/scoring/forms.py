"""Forms of scoring rounds: opening or changing a round, and one sheet of scores."""

from __future__ import annotations

from typing import Any

from flask_babel import lazy_gettext as _l
from wtforms import (
    IntegerField,
    SelectField,
    SelectMultipleField,
    StringField,
    TextAreaField,
    widgets,
)
from wtforms.validators import InputRequired, NumberRange

from consult.core.forms import FlaskForm, LocalDateField, max_length, options, required


class CheckboxesField(SelectMultipleField):
    """A list of checkboxes (no JavaScript, usable on a phone)."""

    widget = widgets.ListWidget(prefix_label=False)
    option_widget = widgets.CheckboxInput()


class RoundForm(FlaskForm):
    name = StringField(_l("Name of the round"), validators=[required(), max_length(100)])
    period_start = LocalDateField(_l("Period from"), validators=[InputRequired()])
    period_end = LocalDateField(_l("Period to"), validators=[InputRequired()])
    compound_ids = CheckboxesField(_l("Compounds taking part (at least 3)"), coerce=int,
                                   choices=[])
    criteria = TextAreaField(
        _l("Scoring sheet: one criterion a line, “name | weight | most points”"),
        validators=[required(), max_length(5000)], render_kw={"rows": 6})
    inspector_weight_pct = IntegerField(
        _l("Weight of the street office's inspectors (percent of the score; 0 for none)"),
        default=0, validators=[InputRequired(), NumberRange(0, 100)])
    decimals = SelectField(_l("Decimal places a score may have"), coerce=int,
                           choices=options([(0, "0"), (1, "1"), (2, "2")]), default=1)
    honour_count = IntegerField(
        _l("How many of the top places are named red-flag compounds"), default=3,
        validators=[InputRequired(), NumberRange(0, 100)])
    outlier_points = IntegerField(
        _l("Flag a scorer whose total is this many points (of 100) from the median"),
        default=15, validators=[InputRequired(), NumberRange(1, 100)])


class ScoreForm(FlaskForm):
    """Fields ``c<criterion id>`` are added per sheet (``score_form``)."""

    inspector = StringField(_l("Inspector"), validators=[max_length(50)])


def score_form(criteria: list[Any], decimals: int, with_inspector: bool,
               **kwargs: Any) -> ScoreForm:
    """A form with one field per criterion of the sheet (and the inspector's name)."""

    class SheetForm(ScoreForm):
        pass

    for criterion in criteria:
        setattr(SheetForm, f"c{criterion.id}", StringField(
            _l("%(name)s (0 to %(max)s)", name=criterion.name, max=criterion.max_points),
            validators=[required(), max_length(10)],
            render_kw={"inputmode": "decimal" if decimals else "numeric",
                       "autocomplete": "off"}))
    form = SheetForm(**kwargs)
    if not with_inspector:
        del form.inspector
    return form
