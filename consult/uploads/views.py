"""Serving uploaded files to those allowed to see them."""

from __future__ import annotations

from urllib.parse import quote

from flask import Blueprint, Response
from flask_babel import gettext as _
from flask_login import current_user

from consult.consultations.states import Stage
from consult.core.errors import NotFound
from consult.core.policy import authorize, can, load, require
from consult.uploads import service as uploads
from consult.uploads.models import Attachment, Visibility

bp = Blueprint("uploads", __name__)


@bp.get("/files/<int:attachment_id>")
@require("consultation.view")
def file(attachment_id: int) -> Response:
    attachment = load(uploads.get_or_404, attachment_id)
    if attachment.consultation.stage == Stage.DRAFT and not can(
            current_user, "consultation.manage", attachment.consultation):
        raise NotFound(_("No such file."))
    if attachment.visibility != Visibility.PUBLIC:
        authorize(current_user, "attachment.view_staff", attachment)
    try:
        data = uploads.read(attachment)
    except FileNotFoundError:
        raise NotFound(_("The file is missing from the storage.")) from None
    return Response(data, mimetype=attachment.mimetype, headers=file_headers(attachment))


# A stored file is never a page of ours: no script, no plugin, no form, no frame may run in it,
# even if a browser opens it (e.g. its own PDF viewer, or an image opened in a tab).
FILE_CSP = "default-src 'none'; sandbox; frame-ancestors 'none'"


def file_headers(attachment: Attachment) -> dict[str, str]:
    """How an uploaded file is served. Photos are shown in pages (inline); everything else
    (PDFs) is a download, so that a crafted PDF never opens in the browser on our origin. Files
    for staff only (a proxy's written authorisation) are kept out of every cache."""
    fallback = f"file-{attachment.id}{_extension(attachment.mimetype)}"
    name = quote(attachment.filename or fallback, safe="")  # RFC 5987: Chinese names too
    disposition = "inline" if attachment.is_image else "attachment"
    return {
        "Content-Disposition": f"{disposition}; filename=\"{fallback}\"; "
                               f"filename*=UTF-8''{name}",
        "Content-Security-Policy": FILE_CSP,
        "X-Content-Type-Options": "nosniff",
        "Cache-Control": ("private, max-age=3600" if attachment.visibility == Visibility.PUBLIC
                          else "no-store"),
    }


def _extension(mimetype: str) -> str:
    return {"application/pdf": ".pdf", "image/jpeg": ".jpg", "image/png": ".png",
            "image/webp": ".webp"}.get(mimetype, "")
