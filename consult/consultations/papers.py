"""The proposal's papers: plans, drawings and quotes attached to the whole proposal or to one
of its items.

They change with the proposal and are fixed with it once voting starts. Files are checked and
stored by ``consult.uploads`` (public: whoever may see the consultation may see them; a draft's
are the committee's own). Every function flushes (never commits) and records an audit event per
file added or taken off.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from werkzeug.datastructures import FileStorage

from consult.audit import service as audit
from consult.audit.actions import describe
from consult.consultations.models import Consultation, Item
from consult.consultations.service import check_proposal_editable
from consult.core.errors import ValidationFailed
from consult.extensions import db
from consult.uploads import service as uploads
from consult.uploads.models import Attachment

describe({
    "consultation.attachment_added": _l("Attachment added to the proposal"),
    "consultation.attachment_removed": _l("Attachment removed from the proposal"),
}, kind="settings")


def _consultation(target: Consultation | Item) -> Consultation:
    return target if isinstance(target, Consultation) else target.consultation


def change(actor: Any, target: Consultation | Item,
           files: Sequence[FileStorage | None] | None = None,
           remove_ids: Sequence[int] = ()) -> list[Attachment]:
    """Attach files to the proposal (``target`` a consultation) or to one item, and take off
    those of ``remove_ids``; returns the files added.

    Raises Conflict once voting has started, ValidationFailed (at "files" or "remove") for a
    file refused by the uploads' checks, too many files, or an attachment not of ``target``.
    """
    consultation = _consultation(target)
    check_proposal_editable(consultation)
    chosen = uploads.chosen(files)
    current = {a.id: a for a in target.attachments}
    if set(remove_ids) - set(current):
        message = _("Choose among these attachments.")
        raise ValidationFailed(message, {"remove": [message]})
    added = uploads.store_all(actor, chosen, consultation=consultation)
    removed = [current[i] for i in dict.fromkeys(remove_ids)]
    for attachment in removed:
        target.attachments.remove(attachment)
    target.attachments.extend(added)
    db.session.flush()
    where = ({"item_id": target.id, "item_number": target.number}
             if isinstance(target, Item) else {})
    for action, attachments in (("consultation.attachment_added", added),
                                ("consultation.attachment_removed", removed)):
        for attachment in attachments:
            audit.record(actor, action, consultation, {
                **where, "attachment_id": attachment.id, "filename": attachment.filename,
                "size": attachment.size, "sha256": attachment.sha256})
    return added
