"""Dates and times as people read them, in each language."""

from datetime import UTC, date, datetime

import pytest
from flask import render_template_string
from flask_babel import force_locale

from consult.core.times import format_date, format_datetime

MOMENT = datetime(2026, 12, 3, 17, 18, tzinfo=UTC)  # 4 December, 01:18 in Beijing


@pytest.mark.parametrize(("locale", "moment", "day"), [
    ("en", "4 Dec 2026, 01:18", "4 Dec 2026"),  # never 12/4/26: which is the month?
    # Chinese puts the year first, and its time of day is Babel's (凌晨1:18).
    ("zh_Hans", "2026/12/4", "2026/12/4"),
    ("zh_Hant", "2026/12/4", "2026/12/4"),
])
def test_short_forms_say_which_is_the_day_and_the_month(app, locale, moment, day):
    with app.test_request_context(), force_locale(locale):
        assert format_datetime(MOMENT, "short").startswith(moment)
        assert format_date(date(2026, 12, 4), "short") == day
        # Templates use the same forms.
        assert render_template_string("{{ format_datetime(t, 'short') }}",
                                      t=MOMENT).startswith(moment)
        assert render_template_string("{{ format_date(d, 'short') }}",
                                      d=date(2026, 12, 4)) == day


def test_longer_forms_stay_as_babel_writes_them(app):
    with app.test_request_context(), force_locale("en"):
        assert format_date(date(2026, 12, 4), "long") == "December 4, 2026"
        assert format_datetime(MOMENT, "HH:mm") == "01:18"
