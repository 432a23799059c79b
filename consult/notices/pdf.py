"""Turning print templates into PDF with WeasyPrint.

Print templates (``templates/pdf/``) are ordinary Jinja pages that reuse the web's partials
(the tally macros, the result body). They are rendered in the document's own language, and
WeasyPrint reads their stylesheet, pictures and uploads from disk: it never goes to the network.
Without a Chinese font WeasyPrint would silently print empty boxes, so rendering refuses then.
"""

from __future__ import annotations

import gc
import io
import logging
import mimetypes
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import segno
from flask import current_app, render_template
from flask_babel import force_locale
from flask_babel import gettext as _
from markupsafe import Markup

from config import BASE_DIR
from consult.core.errors import DomainError
from consult.extensions import db
from consult.notices import pdf_cache, render_slots
from consult.notices.pdf_cache import Stored

log = logging.getLogger(__name__)
STATIC = BASE_DIR / "static"
CHUNK = 50  # households per rendering pass: progress is reported after each


class PrintingUnavailable(DomainError):
    """Printing cannot work on this server (e.g. no Chinese font)."""

    status_code = 503


class _MissingGlyphs(logging.Handler):
    """Catches WeasyPrint's only sign of a character no installed font can draw."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if ".notdef" in message or "No glyph" in message:
            self.messages.append(message)


def check_fonts() -> None:
    """Refuse to print when no CJK font is installed (WeasyPrint would print boxes)."""
    if not current_app.config.get("CJK_FONT_AVAILABLE", False):
        raise PrintingUnavailable(_(
            "Printing is not available: the server has no Chinese font installed "
            "(Debian package fonts-noto-cjk). Please tell the administrator."))


def qr_svg(data: str, scale: int = 3) -> Markup:
    """A QR code as inline SVG (error correction M: a crumpled notice still scans)."""
    return Markup(segno.make(data, error="m").svg_inline(scale=scale, border=2))  # noqa: S704


def _local_resource(url: str) -> tuple[bytes, str]:
    """What a print template refers to, from disk: static files and public uploads."""
    path = urlsplit(url).path
    if path.startswith("/static/"):
        file = (STATIC / path.removeprefix("/static/")).resolve()
        if STATIC.resolve() in file.parents and file.is_file():
            return file.read_bytes(), mimetypes.guess_type(file.name)[0] or "text/plain"
    if path.startswith("/files/"):
        from consult.uploads import service as uploads
        from consult.uploads.models import Attachment, Visibility

        attachment_id = path.removeprefix("/files/").split("/")[0]
        attachment = (db.session.get(Attachment, int(attachment_id))
                      if attachment_id.isdigit() else None)
        if attachment is not None and attachment.visibility == Visibility.PUBLIC:
            return uploads.read(attachment), attachment.mimetype
    raise ValueError(f"not available to printing: {url}")


def _fetcher() -> Any:
    """A WeasyPrint fetcher that never goes to the network."""
    from weasyprint.urls import URLFetcher, URLFetcherResponse

    class LocalFetcher(URLFetcher):
        def fetch(self, url: str, headers: Any = None) -> URLFetcherResponse:
            body, mimetype = _local_resource(url)
            return URLFetcherResponse(url, body, {"Content-Type": mimetype})

    return LocalFetcher()


@contextmanager
def _watching(strict: bool) -> Iterator[None]:
    """Watch WeasyPrint for characters printed as boxes, through layout and writing.

    Notices are strict: an official notice never prints a box, so it is refused. A batch of
    forms only logs it (one owner's rare name character must not stop a compound's ballots).
    """
    watcher = _MissingGlyphs()
    weasy = logging.getLogger("weasyprint")
    weasy.addHandler(watcher)
    try:
        yield
    finally:
        weasy.removeHandler(watcher)
    if watcher.messages:
        log.error("characters without a glyph while printing: %s", watcher.messages[:3])
        if strict:
            raise PrintingUnavailable(_("Some characters cannot be printed with the installed "
                                        "fonts. Please tell the administrator."))


def _layout(html: str) -> Any:
    from weasyprint import HTML

    return HTML(string=html, base_url="http://consult.local/", url_fetcher=_fetcher()).render()


def _write(html: str) -> bytes:
    """Lay out and write one PDF, then free what it used at once.

    Writing loads each font file (tens of MB for the CJK ones) into objects caught in reference
    cycles; left to the cyclic collector's own schedule they pile up to gigabytes within a few
    dozen documents (bench/pdf.py measures it). Collecting right away keeps a process flat.
    """
    try:
        return _layout(html).write_pdf()
    finally:
        gc.collect()


def render(template: str, locale: str, **context: Any) -> bytes:
    """One print template → PDF bytes, in ``locale``."""
    check_fonts()
    with force_locale(locale):
        html = render_template(template, print_locale=locale, **context)
    with _watching(strict=True):
        return _write(html)


def render_stored(name: str, template: str, locale: str, **context: Any) -> Stored:
    """One print template → a stored PDF, laid out only if no copy of this very content is
    kept yet (``pdf_cache``), and then within one of the host's layout slots
    (``render_slots``). A layout refused for a missing glyph raises and keeps nothing."""
    with force_locale(locale):
        html = render_template(template, print_locale=locale, **context)
    content_key = pdf_cache.key(html)
    found = pdf_cache.find(name, content_key)
    if found is not None:
        return found
    check_fonts()
    with render_slots.layout_slot():
        found = pdf_cache.find(name, content_key)  # laid out while this request waited
        if found is not None:
            return found
        with _watching(strict=True):
            data = _write(html)
    return pdf_cache.store(name, content_key, data)


def render_batch(template: str, locale: str, rows: list[Any],
                 context: Callable[[list[Any]], dict[str, Any]],
                 progress: Callable[[int, int], None] | None = None,
                 release: Callable[[], None] | None = None) -> bytes:
    """One page (or more) per row, laid out and written ``CHUNK`` rows at a time, so progress
    can be told and memory stays that of one chunk; the chunks' PDFs are joined at the end.

    ``release`` is called once a chunk's page is written out as HTML, before the slow layout:
    the caller ends its transaction there, so no database lock is held while laying out.
    """
    check_fonts()
    parts: list[bytes] = []
    with _watching(strict=False):
        for start in range(0, len(rows), CHUNK):
            chunk = rows[start:start + CHUNK]
            with force_locale(locale):
                html = render_template(template, print_locale=locale, **context(chunk))
            if release:
                release()
            parts.append(_write(html))
            if progress:
                progress(min(start + CHUNK, len(rows)), len(rows))
    return join_pdfs(parts)


def join_pdfs(parts: list[bytes]) -> bytes:
    """Several PDFs as one, pages in order, with the first one's title and metadata."""
    from pypdf import PdfReader, PdfWriter

    if len(parts) <= 1:
        return parts[0] if parts else b""
    writer = PdfWriter()
    for part in parts:
        writer.append(PdfReader(io.BytesIO(part)))
    metadata = PdfReader(io.BytesIO(parts[0])).metadata
    if metadata:
        writer.add_metadata(dict(metadata))
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def job_path(job_id: int) -> Path:
    """Where a print job's PDF is kept (next to the uploads, so every host sees it)."""
    from consult.uploads.service import upload_root

    return upload_root() / "print" / f"job-{job_id}.pdf"
