"""Forms of 二议: a comment or reply, and the committee's moderation."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from wtforms import HiddenField, TextAreaField

from consult.consultations.discussion import MAX_REASON, MAX_TEXT
from consult.core.forms import FlaskForm, max_length, required
from consult.core.models import MAX_ID


class CommentForm(FlaskForm):
    text = TextAreaField(_l("Your comment"), validators=[required(), max_length(MAX_TEXT)],
                         render_kw={"rows": 4, "maxlength": MAX_TEXT})
    parent_id = HiddenField()

    def parent(self) -> int | None:
        """The comment replied to, if any (anything but a possible id means none)."""
        value = (self.parent_id.data or "").strip()
        return int(value) if value.isdecimal() and int(value) <= MAX_ID else None


class ModerationForm(FlaskForm):
    reason = TextAreaField(_l("Reason, shown in place of the comment"),
                           validators=[required(), max_length(MAX_REASON)],
                           render_kw={"rows": 3, "maxlength": MAX_REASON})
