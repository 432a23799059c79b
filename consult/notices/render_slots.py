"""How many PDFs are laid out at once on one host.

A layout keeps a core busy for 0.3–1 s. gunicorn's sync workers serve one request each, so
without a limit a handful of clients asking for PDFs that are not stored yet could keep every
worker laying out while page views queue behind them. Layouts therefore take one of
``PDF_RENDER_SLOTS`` slots, shared by every process and thread of the app on this host; a
request that finds them all taken waits in one of ``PDF_RENDER_WAITING`` places for at most
``PDF_RENDER_WAIT_SECONDS``. Anyone beyond that, or still waiting at the end, is told at once
to come back shortly (503 with ``Retry-After``). So at most slots + waiting workers are ever
busy with PDFs, and the others keep serving pages.

Slots and places are ``flock`` locks on small files in a host-local folder (never on shared
storage: the limit is about this host's processors). The kernel frees the lock of a process
that dies, so a crashed worker never keeps a slot.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from flask import current_app
from flask_babel import gettext as _

from consult.core.errors import DomainError

# A waiting request looks for a free slot this often: a layout takes 300 ms or more, so
# looking more often would only cost CPU.
POLL_S = 0.05
RETRY_AFTER_S = 5


class PrintersBusy(DomainError):
    """Every layout slot on this host is taken: ask again in a few seconds."""

    status_code = 503
    code = "unavailable"
    retry_after = RETRY_AFTER_S


def lock_folder() -> Path:
    """The host-local folder of the slot files: ``PDF_RENDER_LOCK_DIR``, or one in the system's
    temporary folder named after the upload path, so that every process of one installation
    (and only those) shares it."""
    configured = current_app.config.get("PDF_RENDER_LOCK_DIR")
    if configured:
        return Path(configured)
    from consult.uploads.service import upload_root

    name = hashlib.sha256(str(upload_root().resolve()).encode()).hexdigest()[:16]
    return Path(tempfile.gettempdir()) / f"consult-render-{name}"


def _take_one(folder: Path, kind: str, count: int) -> int | None:
    """The descriptor of a free ``kind`` lock among ``count``, now locked; None if all taken.

    Each attempt opens the file anew: a lock belongs to its open file, so threads of one
    process exclude each other as processes do.
    """
    for number in range(count):
        handle = os.open(folder / f"{kind}-{number}.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(handle)
            continue
        except BaseException:
            os.close(handle)
            raise
        return handle
    return None


@contextmanager
def layout_slot() -> Iterator[None]:
    """Hold one of this host's layout slots for the duration of the block.

    Raises PrintersBusy when none is free within ``PDF_RENDER_WAIT_SECONDS``, or at once
    when the waiting places are taken too.
    """
    config = current_app.config
    slots = max(1, int(config.get("PDF_RENDER_SLOTS", 1)))
    places = max(0, int(config.get("PDF_RENDER_WAITING", 1)))
    wait = max(0.0, float(config.get("PDF_RENDER_WAIT_SECONDS", 5)))
    folder = lock_folder()
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    slot = _take_one(folder, "slot", slots)
    if slot is None:
        place = _take_one(folder, "waiting", places) if wait > 0 else None
        if place is None:
            raise PrintersBusy(_busy_message())
        try:
            deadline = time.monotonic() + wait
            while slot is None and time.monotonic() < deadline:
                time.sleep(POLL_S)
                slot = _take_one(folder, "slot", slots)
        finally:
            os.close(place)
        if slot is None:
            raise PrintersBusy(_busy_message())
    try:
        yield
    finally:
        os.close(slot)  # closing the file releases its lock


def _busy_message() -> str:
    return _("Many printed documents are being prepared right now. Please try again in a few "
             "seconds.")
