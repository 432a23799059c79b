"""Slow work (printing hundreds of pages) done after the request has answered.

Jobs run on a small thread pool inside the app process, each in its own app context and
database session; their progress lives in the database, so any process can show it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from flask import Flask, current_app

from consult.extensions import db

log = logging.getLogger(__name__)
_pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="consult-job")


def _run(app: Flask, function: Callable[..., Any], args: tuple[Any, ...]) -> None:
    with app.app_context():
        try:
            function(*args)
        except Exception:
            log.exception("job %s failed", getattr(function, "__name__", function))
        finally:
            db.session.remove()


def submit(function: Callable[..., Any], *args: Any) -> None:
    """Run ``function(*args)`` after the caller's commit; call it once the commit is done."""
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    if app.config.get("JOBS_INLINE"):
        function(*args)
        return
    _pool.submit(_run, app, function, args)
