"""Forms for entering ballots on behalf of households, and for downloading the roll."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf.file import FileField
from wtforms import HiddenField, SelectField, StringField

from consult.ballots.models import BALLOT_CHANNEL_LABELS, BallotChannel
from consult.core.forms import FlaskForm, max_length, options


class EntryForm(FlaskForm):
    """A paper, door-to-door or proxy ballot typed in by a committee member."""

    channel = SelectField(_l("How the ballot came in"), choices=[])
    serial = StringField(_l("Paper ballot number (编号)"), validators=[max_length(40)])
    proxy_name = StringField(_l("Proxy: name of the person holding the written authorisation"),
                             validators=[max_length(100)])
    proxy_document = FileField(_l("Proxy: the written authorisation (委托书), photo or PDF"))

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.channel.choices = options(
            (c.value, BALLOT_CHANNEL_LABELS[c]) for c in BallotChannel if c != BallotChannel.ONLINE)


class ConfirmVoteForm(FlaskForm):
    submission = HiddenField()


class RollExportForm(FlaskForm):
    fmt = SelectField(_l("Format"), choices=options([("xlsx", "Excel (XLSX)"), ("csv", "CSV")]))
