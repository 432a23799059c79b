"""Form fields for adding files to a record and taking some off, shared by every form that
keeps attachments (meetings, the proposal and its items)."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf.file import MultipleFileField
from wtforms import SelectMultipleField
from wtforms.validators import Optional

from consult.core.forms import possible_ids


class AttachmentFields:
    """Mix into a FlaskForm: ``files`` to add (checked by ``consult.uploads``) and ``remove``
    (the ids of attachments to take off; the view sets its choices)."""

    files = MultipleFileField(_l("Photos or PDFs (public)"),
                              render_kw={"accept": "image/jpeg,image/png,image/webp,"
                                                   "application/pdf"})
    remove = SelectMultipleField(_l("Remove attachments"), coerce=int, choices=[],
                                 validate_choice=False, validators=[Optional(), possible_ids()])
