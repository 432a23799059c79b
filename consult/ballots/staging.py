"""Ballot files between their preview and their confirmation.

A file uploaded on the web is checked and shown row by row before anything is written; the
member then confirms it. In between, the file waits under ``UPLOAD_PATH/imports/ballots/``
(the storage every app host shares), named by its consultation, its uploader and its SHA-256,
so that only the member who saw the preview can confirm it, and only that very file. Nothing
reaches the database before the confirmation. Files left unconfirmed are removed after a day.
"""

from __future__ import annotations

import hashlib
import re
import time
from pathlib import Path
from typing import Any

from consult.ballots import service as ballots
from consult.consultations.models import Consultation
from consult.uploads.service import upload_root

KEEP_SECONDS = 24 * 3600
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


def _folder() -> Path:
    return upload_root() / "imports" / "ballots"


def _path(consultation_id: int, actor: Any, sha256: str) -> Path:
    return _folder() / f"{consultation_id}-{getattr(actor, 'id', 0)}-{sha256}"


def preview(actor: Any, consultation: Consultation, data: bytes,
            filename: str) -> ballots.BallotFile:
    """Check an uploaded ballot file row by row (``check_ballot_file``: nothing is written)
    and keep it for its uploader to confirm. Raises ImportRejected for a file that is no
    ballot table at all."""
    checked = ballots.check_ballot_file(actor, consultation, data, filename)
    keep(consultation.id, actor, data)
    return checked


def keep(consultation_id: int, actor: Any, data: bytes) -> str:
    """Keep a previewed file for its uploader; returns its SHA-256."""
    folder = _folder()
    folder.mkdir(parents=True, exist_ok=True)
    _forget_stale(folder)
    digest = hashlib.sha256(data).hexdigest()
    path = _path(consultation_id, actor, digest)
    tmp = path.with_suffix(".part")
    tmp.write_bytes(data)
    tmp.replace(path)  # whole or not at all
    return digest


def kept(consultation_id: int, actor: Any, sha256: str) -> bytes | None:
    """The previewed file, if this member previewed it (and it is still kept)."""
    if not _SHA256.match(sha256 or ""):
        return None
    path = _path(consultation_id, actor, sha256)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    return data if hashlib.sha256(data).hexdigest() == sha256 else None


def drop(consultation_id: int, actor: Any, sha256: str) -> None:
    if _SHA256.match(sha256 or ""):
        _path(consultation_id, actor, sha256).unlink(missing_ok=True)


def _forget_stale(folder: Path) -> None:
    limit = time.time() - KEEP_SECONDS
    for path in folder.iterdir():
        try:
            if path.stat().st_mtime < limit:
                path.unlink(missing_ok=True)
        except FileNotFoundError:
            continue
