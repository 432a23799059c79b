"""Printed notices and minutes kept as files, named by the HTML they are laid out from.

Filling a print template with Jinja takes milliseconds; laying the page out with WeasyPrint
takes 0.3–1 s of CPU. A notice is frozen, so its HTML stays the same and so does its PDF:
it is laid out once and afterwards served from a file. The file is named by the SHA-256 of
that HTML (with the stylesheets and uploads it shows, and the WeasyPrint version), so
whatever changes what is printed makes a new file by itself: a household's rating on a result
notice, a meeting recorded or edited in the minutes, another ``PUBLIC_URL`` in the QR codes,
a new print.css. Nothing is ever invalidated by hand. The document's language is part of
that HTML (its ``lang`` and every word) and never the reader's, so one file serves everyone.

The files live under ``UPLOAD_PATH/print/cache/``, the storage every app host shares, so a
notice laid out on one host is served by all. Each is written to a temporary file in the same
folder and renamed into place, so a reader sees the whole file or none. When a document gets
a new version, the versions it replaces are deleted once a newer one is a minute old (a reader
may still be sending them), so the folder holds one or two files per notice and per
consultation's minutes.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import tempfile
import time
from dataclasses import dataclass
from functools import cache, lru_cache
from pathlib import Path

from config import BASE_DIR

log = logging.getLogger(__name__)
STATIC = BASE_DIR / "static"
_STATIC_REF = re.compile(r"/static/[\w./-]+")
_FILE_REF = re.compile(r"/files/(\d+)")
# A superseded version is kept this long, so a response already sending it can finish.
SUPERSEDED_GRACE_S = 60
# A temporary file this old was left by a process that died while writing it.
ABANDONED_S = 3600


@dataclass(frozen=True)
class Stored:
    """A printed document: its file (``None`` if it could not be stored), and its bytes when
    they are at hand. ``key`` names its content (the SHA-256 of what was laid out)."""

    key: str
    path: Path | None = None
    data: bytes | None = None

    def read(self) -> bytes:
        """The PDF's bytes."""
        if self.data is not None:
            return self.data
        assert self.path is not None
        return self.path.read_bytes()


def folder() -> Path:
    """Where printed notices and minutes are kept (shared by every app host)."""
    from consult.uploads.service import upload_root

    return upload_root() / "print" / "cache"


@cache
def _engine() -> str:
    from importlib.metadata import version

    return f"weasyprint {version('weasyprint')} pydyf {version('pydyf')}"


@lru_cache(maxsize=64)
def _file_digest(path: str, mtime_ns: int, size: int) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _static_digest(reference: str) -> str:
    """What a ``/static/…`` address in the HTML holds (its stylesheet changes the layout)."""
    file = (STATIC / reference.removeprefix("/static/")).resolve()
    if STATIC.resolve() not in file.parents or not file.is_file():
        return "-"
    stat = file.stat()
    return _file_digest(str(file), stat.st_mtime_ns, stat.st_size)


def _attachments(html: str) -> list[tuple[int, str, str]]:
    """The uploads the HTML shows (progress photos): id, SHA-256 and visibility of each. An id
    names the same bytes for good, unless a database restored from a backup hands it out
    again; naming the bytes themselves keeps such a page from matching an older copy."""
    # A notice shows a dozen photos at most; typed text that merely looks like an address
    # must not make the query long.
    ids = sorted({int(found) for found in _FILE_REF.findall(html)})[:100]
    if not ids:
        return []
    from sqlalchemy import select

    from consult.extensions import db
    from consult.uploads.models import Attachment

    rows = db.session.execute(select(Attachment.id, Attachment.sha256, Attachment.visibility)
                              .where(Attachment.id.in_(ids)).order_by(Attachment.id))
    return [(row.id, row.sha256, row.visibility) for row in rows]


def key(html: str) -> str:
    """The name of a document's content: SHA-256 over the HTML handed to WeasyPrint, the
    static files it links to, the uploads it shows and the WeasyPrint version."""
    digest = hashlib.sha256(_engine().encode())
    for reference in sorted(set(_STATIC_REF.findall(html))):
        digest.update(f"\0{reference}\0{_static_digest(reference)}".encode())
    for attachment in _attachments(html):
        digest.update(f"\0/files/{attachment}".encode())
    digest.update(b"\0\0")
    digest.update(html.encode())
    return digest.hexdigest()


def _path(name: str, content_key: str) -> Path:
    return folder() / f"{name}-{content_key}.pdf"


def find(name: str, content_key: str) -> Stored | None:
    """The stored file of document ``name`` (e.g. ``notice-12``) with this content, if any."""
    path = _path(name, content_key)
    return Stored(content_key, path) if path.is_file() else None


def store(name: str, content_key: str, data: bytes) -> Stored:
    """Keep a freshly laid out document, whole or not at all (temporary file, then rename).

    A file that cannot be written (a full disk, say) is logged and the bytes are served all
    the same: printing must not fail because the copy could not be kept.
    """
    path = _path(name, content_key)
    temporary: str | None = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part",
                                             dir=path.parent)
        with os.fdopen(handle, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())  # the rename must not reach the disk before the bytes
        os.replace(temporary, path)
        temporary = None
    except OSError:
        log.exception("could not keep the printed %s", path.name)
        return Stored(content_key, data=data)
    finally:
        if temporary is not None:
            Path(temporary).unlink(missing_ok=True)
    _tidy(name, keep=path)
    return Stored(content_key, path, data)


def _tidy(name: str, keep: Path) -> None:
    """Delete the versions of ``name`` superseded by one that is itself a minute old (no
    response can still be sending them), and temporary files left by a process that died
    while writing."""
    now = time.time()
    versions = []
    for path in keep.parent.glob(f"{name}-{'[0-9a-f]' * 64}.pdf"):
        try:
            versions.append((path.stat().st_mtime, path))
        except FileNotFoundError:
            continue  # another process tidied it first
    settled = [mtime for mtime, path in versions if now - mtime > SUPERSEDED_GRACE_S]
    stale = [path for mtime, path in versions
             if path != keep and settled and mtime < max(settled)]
    for path in keep.parent.glob(".*.part"):
        try:
            if now - path.stat().st_mtime > ABANDONED_S:
                stale.append(path)
        except FileNotFoundError:
            continue
    for path in stale:
        path.unlink(missing_ok=True)
