"""The one secret key that the server and every command share.

Sessions are signed with it and access codes are stored as hashes keyed by it, so a command
(``flask accounts issue-access-codes``) and the server must use the same key, or the codes a command
prints are refused by the server. The key comes from ``SECRET_KEY`` in the environment, else
from the file ``secret_key`` in the instance folder; a development set-up without either gets
that file made once, with a random key, and every later process reads it. Production never
makes one: it needs a key chosen by its operator (environment or file).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import tempfile
from pathlib import Path

from config import DEFAULT_SECRET_KEY, SECRET_KEY_FILE

MIN_LENGTH = 32


def read_key_file(instance_path: str | Path) -> str | None:
    """The key kept in the instance folder, or None when there is none."""
    try:
        text = (Path(instance_path) / SECRET_KEY_FILE).read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return None
    return text or None


def make_key_file(instance_path: str | Path) -> str:
    """Create the instance folder's key file with a random key, unless a process got there
    first; returns the key in the file either way.

    The file appears whole or not at all (written aside, then hard-linked into place, which
    fails if it exists), so gunicorn workers starting together all end up with one key.
    """
    folder = Path(instance_path)
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / SECRET_KEY_FILE
    fd, temporary = tempfile.mkstemp(dir=folder, prefix=".secret_key-")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(secrets.token_hex(32) + "\n")
        with contextlib.suppress(FileExistsError):
            os.link(temporary, target)
    finally:
        os.unlink(temporary)
    key = read_key_file(folder)
    assert key is not None
    return key


def resolve(configured: str | None, instance_path: str | Path, *, create: bool) -> str | None:
    """The key to use: ``configured`` (from the environment or the config class) unless it is
    the public placeholder, else the instance folder's file, made first when ``create``.
    None when there is no real key."""
    if configured and configured != DEFAULT_SECRET_KEY:
        return configured
    key = read_key_file(instance_path)
    if key is None and create:
        key = make_key_file(instance_path)
    return key


def is_placeholder(key: str | None) -> bool:
    """Whether ``key`` is missing or the public placeholder (nothing may be signed with it)."""
    return not key or key == DEFAULT_SECRET_KEY
