"""Forms of meeting records."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from wtforms import StringField, TextAreaField

from consult.consultations.meetings import (
    ATTENDEE_LABELS,
    MAX_ATTENDEES,
    MAX_MARKDOWN,
    MAX_PLACE,
)
from consult.core.forms import (
    FlaskForm,
    LocalDateTimeField,
    max_length,
    required,
)
from consult.uploads.forms import AttachmentFields


class MeetingForm(AttachmentFields, FlaskForm):
    held_at = LocalDateTimeField(_l("Date and time (Beijing time)"), validators=[required()])
    place = StringField(_l("Place"), validators=[required(), max_length(MAX_PLACE)])
    community = TextAreaField(ATTENDEE_LABELS["community"],
                              validators=[max_length(MAX_ATTENDEES)], render_kw={"rows": 2})
    committee = TextAreaField(ATTENDEE_LABELS["committee"],
                              validators=[max_length(MAX_ATTENDEES)], render_kw={"rows": 2})
    representatives = TextAreaField(ATTENDEE_LABELS["representatives"],
                                    validators=[max_length(MAX_ATTENDEES)],
                                    render_kw={"rows": 2})
    contractors = TextAreaField(ATTENDEE_LABELS["contractors"],
                                validators=[max_length(MAX_ATTENDEES)], render_kw={"rows": 2})
    others = TextAreaField(ATTENDEE_LABELS["others"],
                           validators=[max_length(MAX_ATTENDEES)], render_kw={"rows": 2})
    minutes = TextAreaField(_l("Minutes (Markdown)"), validators=[max_length(MAX_MARKDOWN)],
                            render_kw={"rows": 10})
    decisions = TextAreaField(_l("Decisions (Markdown)"), validators=[max_length(MAX_MARKDOWN)],
                              render_kw={"rows": 5})

    def attendees(self) -> dict[str, str | None]:
        return {role: getattr(self, role).data for role in ATTENDEE_LABELS}
