"""Forms of the notification centre: marking read, and a person's preferences."""

from __future__ import annotations

from typing import Any

from flask_babel import lazy_gettext as _l
from wtforms import BooleanField, HiddenField, IntegerField, StringField
from wtforms.validators import InputRequired, Optional

from consult.core.forms import FlaskForm, max_length, possible_ids
from consult.notifications import events
from consult.notifications.models import Channel


class MarkReadForm(FlaskForm):
    notification_id = IntegerField(validators=[InputRequired(), possible_ids()],
                                   widget=HiddenField.widget)


class MarkAllReadForm(FlaskForm):
    """Only its CSRF token."""


class PreferencesForm(FlaskForm):
    """Email address and quiet hours; the event × channel boxes are added per person
    (``preferences_form``), named ``<channel>__<event>``."""

    email = StringField(_l("Email address (optional)"), validators=[Optional(), max_length(254)],
                        render_kw={"autocomplete": "email", "inputmode": "email"},
                        description=_l("Reminders by email go here. Leave it empty for none."))
    quiet_start = StringField(_l("Quiet hours from"), validators=[Optional(), max_length(5)],
                              render_kw={"inputmode": "numeric"},
                              description=_l("Local time, hours and minutes, e.g. 22:00. No "
                                             "email or SMS is sent in the quiet hours; they "
                                             "wait until the quiet hours end."))
    quiet_end = StringField(_l("Quiet hours until"), validators=[Optional(), max_length(5)],
                            render_kw={"inputmode": "numeric"})


def box_name(channel: Channel, event: str) -> str:
    return f"{channel.value}__{event}"


def preferences_form(event_codes: tuple[str, ...], **kwargs: Any) -> PreferencesForm:
    """The preferences form with a box per outbound channel and event the person receives."""
    fields = {box_name(channel, event): BooleanField(events.EVENT_LABELS[event])
              for event in event_codes for channel in Channel}
    form_class = type("PersonPreferencesForm", (PreferencesForm,), fields)
    return form_class(**kwargs)
