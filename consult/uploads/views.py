"""Serving uploaded files to those allowed to see them."""

from __future__ import annotations

from flask import Blueprint, Response
from flask_babel import gettext as _
from flask_login import current_user

from consult.consultations.states import Stage
from consult.core.errors import NotFound
from consult.core.policy import authorize, can, require
from consult.extensions import db
from consult.uploads import service as uploads
from consult.uploads.models import Attachment, Visibility

bp = Blueprint("uploads", __name__)


@bp.get("/files/<int:attachment_id>")
@require("consultation.view")
def file(attachment_id: int) -> Response:
    attachment = db.session.get(Attachment, attachment_id)
    if attachment is None:
        raise NotFound(_("No such file."))
    if attachment.consultation.stage == Stage.DRAFT and not can(
            current_user, "consultation.manage", attachment.consultation):
        raise NotFound(_("No such file."))
    if attachment.visibility != Visibility.PUBLIC:
        authorize(current_user, "attachment.view_staff", attachment)
    try:
        data = uploads.read(attachment)
    except FileNotFoundError:
        raise NotFound(_("The file is missing from the storage.")) from None
    disposition = "inline" if attachment.is_image or attachment.mimetype == uploads.PDF_TYPE \
        else "attachment"
    return Response(data, mimetype=attachment.mimetype, headers={
        "Content-Disposition": f'{disposition}; filename="file-{attachment.id}"',
        "Cache-Control": "private, max-age=3600",
        "X-Content-Type-Options": "nosniff"})
