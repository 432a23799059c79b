"""Turning print templates into PDF with WeasyPrint.

Print templates (``templates/pdf/``) are ordinary Jinja pages that reuse the web's partials
(the tally macros, the result body). They are rendered in the document's own language, and
WeasyPrint reads their stylesheet, pictures and uploads from disk: it never goes to the network.
Without a Chinese font WeasyPrint would silently print empty boxes, so rendering refuses then.
Emoji print in colour from Noto Color Emoji; a character no installed font can draw (a private-use
character, a rare ideograph) is printed as its Unicode name, e.g. "[CJK UNIFIED IDEOGRAPH-2A700]",
so that a document never shows an empty box and is never refused for one character.
"""

from __future__ import annotations

import gc
import io
import logging
import mimetypes
import re
import threading
import unicodedata
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
    code = "unavailable"


class _MissingGlyphs(logging.Handler):
    """Catches WeasyPrint's only sign of a character no installed font can draw: a warning
    naming it ('.notdef glyph rendered for … "x" (U+2A700)'), from this thread only."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.thread = threading.get_ident()
        self.messages: list[str] = []
        self.characters: set[str] = set()

    def emit(self, record: logging.LogRecord) -> None:
        if record.thread != self.thread:
            return  # another request or job printing at the same time
        message = record.getMessage()
        if ".notdef" in message or "No glyph" in message:
            self.messages.append(message)
            self.characters.update(chr(int(code, 16))
                                   for code in re.findall(r"U\+([0-9A-Fa-f]{4,6})", message))


# Characters found without a glyph while printing: the next documents spell them out at once,
# instead of being laid out twice. A new process (e.g. after installing a font) starts afresh.
_UNPRINTABLE: set[str] = set()


def character_name(char: str) -> str:
    """What is printed in place of a character no font can draw: its Unicode name in brackets,
    or its code point (private-use characters have no name)."""
    try:
        return f"[{unicodedata.name(char)}]"
    except ValueError:
        return f"[U+{ord(char):04X}]"


def spell_out(html: str, characters: set[str]) -> str:
    """``html`` with each of ``characters`` replaced by its name. The names are plain ASCII
    letters, digits, spaces and hyphens, safe in text, attributes and CSS strings alike; and
    no such character can be part of the markup itself, which is all ASCII."""
    characters = {c for c in characters if not c.isascii()}
    if not characters:
        return html
    pattern = re.compile("|".join(re.escape(c) for c in sorted(characters)))
    return pattern.sub(lambda m: character_name(m.group()), html)


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
def _watching() -> Iterator[_MissingGlyphs]:
    """Watch WeasyPrint for characters printed as boxes, through layout and writing."""
    watcher = _MissingGlyphs()
    weasy = logging.getLogger("weasyprint")
    weasy.addHandler(watcher)
    try:
        yield watcher
    finally:
        weasy.removeHandler(watcher)


def _write_printable(html: str, *, strict: bool) -> bytes:
    """Lay out and write one PDF without a single empty box.

    Characters already known to have no glyph are spelled out before the layout. If WeasyPrint
    still meets one (new to this process), the document is laid out once more with those spelled
    out too. Only if boxes remained even then (the names are plain ASCII, so they cannot), or
    WeasyPrint did not say which characters it missed, would a notice (``strict``) be refused;
    a batch of forms would only log it.
    """
    html = spell_out(html, _UNPRINTABLE)
    with _watching() as watcher:
        data = _write(html)
    new = {c for c in watcher.characters if not c.isascii()}  # never markup's own characters
    if new:
        log.warning("characters without a glyph, printed as their names: %s",
                    ", ".join(f"U+{ord(c):04X}" for c in sorted(new)))
        _UNPRINTABLE.update(new)
        with _watching() as watcher:
            data = _write(spell_out(html, new))
    if watcher.messages:
        log.error("characters without a glyph while printing: %s", watcher.messages[:3])
        if strict:
            raise PrintingUnavailable(_("Some characters cannot be printed with the installed "
                                        "fonts. Please tell the administrator."))
    return data


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


def page_html(template: str, locale: str, **context: Any) -> str:
    """One print template → the HTML of a document, every word of the template in ``locale``
    (the words in ``context`` are the caller's to make in it too)."""
    with force_locale(locale):
        return render_template(template, print_locale=locale, **context)


def render(template: str, locale: str, **context: Any) -> bytes:
    """One print template → PDF bytes, in ``locale``."""
    check_fonts()
    return _write_printable(page_html(template, locale, **context), strict=True)


def render_stored(name: str, html: str) -> Stored:
    """A document's HTML (``page_html``) → a stored PDF, laid out only if no copy of this
    very content is kept yet (``pdf_cache``), and then within one of the host's layout slots
    (``render_slots``). A layout refused (boxes that could not be spelled out) raises and
    keeps nothing; its reasons, and a wait for a slot, are told in the language of whoever
    prints, so this is called outside the document's language."""
    content_key = pdf_cache.key(html)
    found = pdf_cache.find(name, content_key)
    if found is not None:
        return found
    check_fonts()
    with render_slots.layout_slot():
        found = pdf_cache.find(name, content_key)  # laid out while this request waited
        if found is not None:
            return found
        data = _write_printable(html, strict=True)
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
    for start in range(0, len(rows), CHUNK):
        chunk = rows[start:start + CHUNK]
        with force_locale(locale):  # the chunk's words, those of ``context`` too
            html = page_html(template, locale, **context(chunk))
        if release:
            release()
        parts.append(_write_printable(html, strict=False))
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
