"""Forms of the questionnaire: its heading, a question, the answers' page, a paper entry
and taking a free answer up as an opinion. The answers themselves are one field per
question, named by the service (``questionnaires.field_name``) and read from the request."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from wtforms import BooleanField, SelectField, StringField, TextAreaField

from consult.consultations.models import CATEGORY_LABELS
from consult.consultations.questionnaire_models import QUESTION_KIND_LABELS
from consult.consultations.questionnaires import MAX_INTRO, MAX_QUESTION, MAX_REASON
from consult.core.forms import FlaskForm, max_length, options, required


class HeadingForm(FlaskForm):
    title = StringField(_l("Title of the questionnaire"),
                        validators=[required(), max_length(200)])
    intro = TextAreaField(_l("Introduction (optional): why you ask and what happens next"),
                          validators=[max_length(MAX_INTRO)], render_kw={"rows": 3})


class QuestionForm(FlaskForm):
    kind = SelectField(_l("Kind of question"), choices=[], validators=[required()])
    text = StringField(_l("Question"), validators=[required(), max_length(MAX_QUESTION)])
    required_answer = BooleanField(_l("An answer is required"))
    choices = TextAreaField(_l("Choices, one a line (single and multiple choice only)"),
                            validators=[max_length(2200)], render_kw={"rows": 5})

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.kind.choices = options((k.value, label) for k, label in QUESTION_KIND_LABELS.items())


class AnswersForm(FlaskForm):
    """The answers' page: its CSRF token; one field per question comes with the request."""


class PaperForm(FlaskForm):
    """A paper sheet typed in by staff; a household's online answers are replaced only with
    the box ticked and a reason."""

    confirm_replace = BooleanField(_l("Replace the answers this household gave online"))
    reason = StringField(_l("Why the paper sheet replaces them"),
                         validators=[max_length(MAX_REASON)])


class TakeUpForm(FlaskForm):
    # "Other" until someone files it: the opinions' own sorting takes it from there.
    category = SelectField(_l("Category"), choices=[], default="other")

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.category.choices = options((c.value, label) for c, label in CATEGORY_LABELS.items())
