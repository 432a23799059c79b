"""Forms for a consultation's settings, scope, stage steps and proposal items."""

from __future__ import annotations

import json

from flask_babel import lazy_gettext as _l
from wtforms import (
    BooleanField,
    Form,
    FormField,
    HiddenField,
    IntegerField,
    SelectField,
    StringField,
    TextAreaField,
)
from wtforms.validators import Optional

from consult.ballots.explain import RULE_LABELS
from consult.ballots.tally import PRESETS, Base, Comparison, Count, Measure
from consult.consultations.models import SECRECY_LABELS
from consult.core.forms import (
    FieldList,
    FlaskForm,
    LocalDateTimeField,
    max_length,
    options,
    required,
)
from consult.uploads.forms import AttachmentFields

MEASURE_LABELS = {Measure.HOUSEHOLDS: _l("households"), Measure.OWNERS: _l("owners"),
                  Measure.AREA: _l("exclusive area")}
COUNT_LABELS = {Count.AGREEING: _l("agreeing"), Count.PARTICIPATING: _l("taking part"),
                Count.OBJECTING: _l("objecting")}
BASE_LABELS = {Base.PARTICIPATING: _l("of those taking part"), Base.ROLL: _l("of everyone")}
COMPARISON_LABELS = {Comparison.MORE_THAN: _l("more than"), Comparison.AT_LEAST: _l("at least"),
                     Comparison.AT_MOST: _l("at most"), Comparison.LESS_THAN: _l("less than")}
LOCALE_CHOICES = (("zh_Hans", "简体中文"), ("zh_Hant", "繁體中文"), ("en", "English"))
DOUBLE_ENTRY_CHOICES = (
    ("", _l("As the decision rule says: on for the Civil Code's rules (art. 278)")),
    ("on", _l("On: each paper ballot counts once two members entered it alike")),
    ("off", _l("Off: one member's entry counts")),
)


class ConditionForm(Form):
    """One condition of a local rule; a row without a fraction is ignored."""

    # Unused rows are left empty, so the choices are checked when the rule is read instead.
    count = SelectField(_l("Count"), choices=[], validate_choice=False)
    measure = SelectField(_l("Measure"), choices=[], validate_choice=False)
    comparison = SelectField(_l("Comparison"), choices=[], validate_choice=False)
    fraction = StringField(_l("Fraction, e.g. 2/3"), validators=[max_length(9)])
    base = SelectField(_l("Base"), choices=[], validate_choice=False)

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.count.choices = options((k.value, v) for k, v in COUNT_LABELS.items())
        self.measure.choices = options((k.value, v) for k, v in MEASURE_LABELS.items())
        self.comparison.choices = options((k.value, v) for k, v in COMPARISON_LABELS.items())
        self.base.choices = options((k.value, v) for k, v in BASE_LABELS.items())


class ConsultationForm(FlaskForm):
    compound_id = SelectField(_l("Compound"), coerce=int, choices=[])
    title = StringField(_l("Title"), validators=[required(), max_length(200)])
    summary = TextAreaField(_l("Summary (Markdown)"), validators=[max_length(20000)],
                            render_kw={"rows": 5})
    rule_code = SelectField(_l("Decision rule"), choices=[])
    conditions = FieldList(FormField(ConditionForm), min_entries=4, max_entries=6)
    secrecy = SelectField(_l("Ballot"), choices=[])
    locale = SelectField(_l("Language of the notices"), choices=options(LOCALE_CHOICES))
    solicitation_deadline = LocalDateTimeField(_l("Opinions close at (Beijing time)"),
                                               validators=[Optional()])
    vote_deadline = LocalDateTimeField(_l("Voting closes at (Beijing time)"),
                                       validators=[Optional()])
    # The service checks both ranges (WTForms' NumberRange fails on a number of 400 digits).
    publicity_days = IntegerField(_l("Publicity period of notices (days)"), default=7,
                                  validators=[required()])
    proxy_cap = IntegerField(_l("Most households one proxy may represent (empty: no limit)"),
                             validators=[Optional()])
    # Anything but "on" or "off" (a field left out too) follows the rule.
    double_entry = SelectField(_l("Double entry of paper ballots"), choices=[],
                               validate_choice=False)
    proxy_document_required = BooleanField(_l("A proxy ballot counts only with its written "
                                              "authorisation (委托书) attached"))

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.rule_code.choices = options(
            [(code, RULE_LABELS[code]) for code in PRESETS] + [("custom", RULE_LABELS["custom"])])
        self.secrecy.choices = options((k.value, v) for k, v in SECRECY_LABELS.items())
        self.double_entry.choices = options(DOUBLE_ENTRY_CHOICES)

    def double_entry_value(self) -> bool | None:
        """The choice as the service takes it: None follows the decision rule."""
        return {"on": True, "off": False}.get(self.double_entry.data or "")

    def show_double_entry(self, value: bool | None) -> None:
        self.double_entry.data = {True: "on", False: "off"}.get(value, "")  # type: ignore[arg-type]

    def rule_json(self) -> str:
        """The local rule's conditions as the JSON the service reads."""
        rows = [{"measure": row.measure.data, "count": row.count.data, "base": row.base.data,
                 "comparison": row.comparison.data, "fraction": (row.fraction.data or "").strip()}
                for row in self.conditions]
        return json.dumps({"code": "custom", "conditions": [r for r in rows if r["fraction"]]})


class ScopeForm(FlaskForm):
    """Ticked buildings or units; nothing ticked means the whole compound."""

    parts = HiddenField()  # filled from the checkboxes named "part"


class StageForm(FlaskForm):
    action = HiddenField(validators=[required()])
    reason = TextAreaField(_l("Reason (recorded in the audit trail)"),
                           validators=[max_length(500)], render_kw={"rows": 2})
    # Set by the confirmation page: only then is an irreversible step taken.
    confirmed = HiddenField()


class ItemForm(AttachmentFields, FlaskForm):
    title = StringField(_l("Title"), validators=[required(), max_length(200)])
    description = TextAreaField(_l("Description: scope of the works (Markdown)"),
                                validators=[max_length(20000)], render_kw={"rows": 8})
    cost = StringField(_l("Estimated cost (yuan)"), validators=[max_length(20)],
                       render_kw={"inputmode": "decimal"})
    cost_split_by_area = BooleanField(
        _l("Cost shared by the households in proportion to their floor area"))
    note = StringField(_l("What changed, for the revision history (optional)"),
                       validators=[max_length(300)])


class AttachmentsForm(AttachmentFields, FlaskForm):
    """The proposal's own papers: plans, drawings, quotes for the whole of it."""
