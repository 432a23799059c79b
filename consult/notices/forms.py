"""Forms for objections and answers."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from wtforms import TextAreaField

from consult.core.forms import FlaskForm, max_length, required


class ObjectionForm(FlaskForm):
    text = TextAreaField(_l("Your objection"), validators=[required(), max_length(2000)],
                         render_kw={"rows": 4})


class AnswerForm(FlaskForm):
    text = TextAreaField(_l("Public answer"), validators=[required(), max_length(2000)],
                         render_kw={"rows": 3})
