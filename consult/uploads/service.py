"""Storing uploads: content is sniffed (never trusted from the name or the browser), images are
re-encoded to drop their metadata (phone photos carry GPS positions), and files are kept under
UPLOAD_PATH by their SHA-256."""

from __future__ import annotations

import hashlib
import io
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flask import current_app
from flask_babel import gettext as _
from werkzeug.datastructures import FileStorage

from consult.core.errors import NotFound, ValidationFailed
from consult.extensions import db
from consult.uploads.models import Attachment, Visibility

IMAGE_TYPES = {"image/jpeg", "image/png", "image/webp"}
PDF_TYPE = "application/pdf"
_MAX_PIXELS = 40_000_000  # refuse decompression bombs
_LONG_EDGE = 2400          # photos are scaled down to this on their long edge
MAX_FILES = 10             # files sent with one form


def sniff(data: bytes) -> str | None:
    """The real type of the bytes, or None if it is not one we accept."""
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    if data.startswith(b"%PDF-"):
        return PDF_TYPE
    return None


def _clean_image(data: bytes, mimetype: str) -> tuple[bytes, str]:
    from PIL import Image, UnidentifiedImageError

    Image.MAX_IMAGE_PIXELS = _MAX_PIXELS
    try:
        with Image.open(io.BytesIO(data)) as opened:
            opened.load()
            image = opened.convert("RGB") if opened.mode not in ("RGB", "L") else opened
            image.thumbnail((_LONG_EDGE, _LONG_EDGE))
            out = io.BytesIO()
            image.save(out, format="JPEG", quality=85, optimize=True)  # no EXIF written
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError) as exc:
        raise ValidationFailed(_("The picture could not be read.")) from exc
    return out.getvalue(), "image/jpeg"


def _check_pdf(data: bytes) -> None:
    """A PDF must open and have a page: its five-byte header can stand in front of anything,
    a ZIP archive or a web page."""
    from pypdf import PdfReader

    try:
        pages = len(PdfReader(io.BytesIO(data)).pages)
    except Exception as exc:  # a damaged file can fail anywhere in the parser
        raise ValidationFailed(_("Upload a photo (JPEG, PNG or WebP) or a PDF.")) from exc
    if pages < 1:
        raise ValidationFailed(_("Upload a photo (JPEG, PNG or WebP) or a PDF."))


def _own_name(filename: str | None) -> str:
    """The file's name as shown on pages: no folders, no control characters (PostgreSQL
    cannot store NUL) and no direction overrides (which make "gnp.exe" look like "exe.png")."""
    name = "".join(ch for ch in Path(filename or "").name
                   if unicodedata.category(ch) not in ("Cc", "Cf"))
    return name.strip()[:150] or "upload"


def upload_root() -> Path:
    configured = current_app.config.get("UPLOAD_PATH")
    return Path(configured) if configured else Path(current_app.instance_path) / "uploads"


@dataclass(frozen=True)
class Checked:
    """An upload that passed the checks, cleaned, not yet written anywhere."""

    data: bytes
    mimetype: str
    name: str


def check(upload: FileStorage, *, images_only: bool = False) -> Checked:
    """Check and clean an uploaded file without storing it.

    Raises ValidationFailed for an empty, oversized or unsupported file.
    """
    limit = int(current_app.config["UPLOAD_MAX_BYTES"])
    data = upload.read(limit + 1)
    if not data:
        raise ValidationFailed(_("The file is empty."))
    if len(data) > limit:
        raise ValidationFailed(_("The file is larger than %(mb)s MB.", mb=limit // (1024 * 1024)))
    mimetype = sniff(data)
    allowed = IMAGE_TYPES if images_only else IMAGE_TYPES | {PDF_TYPE}
    if mimetype not in allowed:
        raise ValidationFailed(_("Upload a photo (JPEG, PNG or WebP).") if images_only
                               else _("Upload a photo (JPEG, PNG or WebP) or a PDF."))
    if mimetype in IMAGE_TYPES:
        data, mimetype = _clean_image(data, mimetype)
    else:
        _check_pdf(data)
    name = _own_name(upload.filename)
    if mimetype == "image/jpeg" and not name.lower().endswith((".jpg", ".jpeg")):
        name = f"{Path(name).stem or 'photo'}.jpg"
    return Checked(data, mimetype, name)


def save(actor: Any, checked: Checked, *, consultation: Any,
         visibility: Visibility = Visibility.PUBLIC) -> Attachment:
    """Write a checked file under UPLOAD_PATH and return its (flushed) Attachment.

    Check every file of a form before saving any, so that a bad one leaves nothing behind.
    """
    digest = hashlib.sha256(checked.data).hexdigest()
    path = upload_root() / digest[:2] / digest
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".part")
        tmp.write_bytes(checked.data)
        tmp.replace(path)  # a file appears whole or not at all
    attachment = Attachment(sha256=digest, filename=checked.name, mimetype=checked.mimetype,
                            size=len(checked.data), consultation_id=consultation.id,
                            visibility=visibility.value,
                            uploaded_by_id=getattr(actor, "id", None))
    db.session.add(attachment)
    db.session.flush()
    return attachment


def store(actor: Any, upload: FileStorage, *, consultation: Any, images_only: bool = False,
          visibility: Visibility = Visibility.PUBLIC) -> Attachment:
    """Check, clean and store one uploaded file; returns its (flushed) Attachment.

    Raises ValidationFailed for an empty, oversized or unsupported file.
    """
    return save(actor, check(upload, images_only=images_only), consultation=consultation,
                visibility=visibility)


def chosen(files: Sequence[FileStorage | None] | None, field: str = "files"
           ) -> list[FileStorage]:
    """The files actually sent in a multiple-file field (browsers send an empty part when
    none was chosen). Raises ValidationFailed, at ``field``, beyond MAX_FILES."""
    picked = [f for f in files or () if f is not None and f.filename]
    if len(picked) > MAX_FILES:
        message = _("Attach at most %(n)s files at a time.", n=MAX_FILES)
        raise ValidationFailed(message, {field: [message]})
    return picked


def store_all(actor: Any, files: Sequence[FileStorage], *, consultation: Any,
              field: str = "files") -> list[Attachment]:
    """Check every file, then store them all (public): one bad file stores none and is named
    in the error at ``field``."""
    checked = []
    for upload in files:
        try:
            checked.append(check(upload))
        except ValidationFailed as exc:
            message = f"{upload.filename}: {exc.message}"
            raise ValidationFailed(message, {field: [message]}) from exc
    return [save(actor, c, consultation=consultation, visibility=Visibility.PUBLIC)
            for c in checked]


def get_or_404(attachment_id: int) -> Attachment:
    attachment = db.session.get(Attachment, attachment_id)
    if attachment is None:
        raise NotFound(_("No such file."))
    return attachment


def read(attachment: Attachment) -> bytes:
    return (upload_root() / attachment.sha256[:2] / attachment.sha256).read_bytes()
