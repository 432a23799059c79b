"""Forms for entering ballots on behalf of households, settling entries, importing paper ballots,
downloading the roll and checking a receipt code."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf.file import FileField, FileRequired
from wtforms import (
    HiddenField,
    RadioField,
    SelectField,
    SelectMultipleField,
    StringField,
    TextAreaField,
    widgets,
)

from consult.ballots.entries import CORRECTION_CHANNELS, MAX_REASON
from consult.ballots.models import BALLOT_CHANNEL_LABELS, BallotChannel
from consult.core.forms import FlaskForm, max_length, options, required

# The channels a committee member enters, paper first: the form is for paper unless asked.
STAFF_CHANNELS = tuple(c for c in BallotChannel if c != BallotChannel.ONLINE)


class EntryForm(FlaskForm):
    """A paper, door-to-door or proxy ballot typed in by a committee member; over a ballot the
    household already has, a correction with its reason and evidence."""

    channel = SelectField(_l("How the ballot came in"), choices=[])
    serial = StringField(_l("Paper ballot number (编号)"), validators=[max_length(40)])
    proxy_name = StringField(_l("Proxy: name of the person holding the written authorisation"),
                             validators=[max_length(100)])
    proxy_document = FileField(_l("Proxy: the written authorisation (委托书), photo or PDF"))
    reason = TextAreaField(_l("Why the household's ballot is corrected"),
                           validators=[max_length(MAX_REASON)],
                           render_kw={"rows": 3, "maxlength": MAX_REASON})
    evidence = FileField(_l("Evidence: scan of the paper ballot the household signed, or the "
                            "proxy's written authorisation (photo or PDF)"))

    def __init__(self, *args: object, correcting: bool = False,
                 channels: tuple[BallotChannel, ...] | None = None, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        channels = channels or (CORRECTION_CHANNELS if correcting else STAFF_CHANNELS)
        self.channel.choices = options((c.value, BALLOT_CHANNEL_LABELS[c]) for c in channels)


class DecisionForm(FlaskForm):
    """A member who made neither entry settles a paper whose entries differ."""

    pick = RadioField(_l("Which reading of the paper ballot is right?"), choices=[],
                      validate_choice=False)
    note = TextAreaField(_l("Note for the record (optional)"),
                         validators=[max_length(MAX_REASON)],
                         render_kw={"rows": 2, "maxlength": MAX_REASON})
    # When the paper says something else than both entries: the paper as the member reads it.
    channel = SelectField(_l("How the ballot came in"), choices=[])
    serial = StringField(_l("Paper ballot number (编号)"), validators=[max_length(40)])
    proxy_name = StringField(_l("Proxy: name of the person holding the written authorisation"),
                             validators=[max_length(100)])

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.channel.choices = options((c.value, BALLOT_CHANNEL_LABELS[c])
                                       for c in STAFF_CHANNELS)


class AuthorisationForm(FlaskForm):
    document = FileField(_l("The written authorisation (委托书), photo or PDF"),
                         validators=[FileRequired(message=_l("Choose a file."))])


class BallotImportForm(FlaskForm):
    file = FileField(_l("Paper ballots file (CSV or XLSX)"),
                     validators=[FileRequired(message=_l("Choose a file."))])


class ImportConfirmForm(FlaskForm):
    """Enter the file just previewed: named by its SHA-256, kept for its uploader only."""

    sha256 = HiddenField()
    filename = HiddenField()


class ConfirmVoteForm(FlaskForm):
    submission = HiddenField()


class RollExportForm(FlaskForm):
    fmt = SelectField(_l("Format"), choices=options([("xlsx", "Excel (XLSX)"), ("csv", "CSV")]))


class ReceiptForm(FlaskForm):
    """The receipt code whose ballot the public proof page looks up."""

    receipt = StringField(
        _l("Receipt code (letters and digits, dashes do not matter)"),
        validators=[required(), max_length(40)],
        render_kw={"autocomplete": "off", "autocapitalize": "characters",
                   "spellcheck": "false"})


class VisitListForm(FlaskForm):
    """A follow-up visit list: which households, which building, which teams, how to split."""

    reasons = SelectMultipleField(_l("Households to visit"), choices=[],
                                  option_widget=widgets.CheckboxInput(),
                                  widget=widgets.ListWidget(prefix_label=False))
    building = SelectField(_l("Building"), choices=[])
    teams = TextAreaField(_l("Teams (入户小组), one per line: name: members"),
                          validators=[required(), max_length(4000)],
                          render_kw={"rows": 4, "placeholder": "第一组: 张三, 李四"})
    mode = RadioField(_l("Split"), choices=[], default="building")

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        # Labels made per request, in the reader's language.
        self.mode.choices = options([
            ("building", _l("By building (whole buildings per team)")),
            ("count", _l("By count (equal numbers)"))])


class VisitRecordForm(FlaskForm):
    """What a follow-up visit found."""

    outcome = RadioField(_l("Outcome of the visit"), choices=[], validators=[required()])
    note = TextAreaField(_l("Note (optional)"), validators=[max_length(500)],
                         render_kw={"rows": 2, "maxlength": 500})
