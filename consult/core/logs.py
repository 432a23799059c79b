"""Logs: one line per request, and every log line of the app tagged with its request's id.

``LOG_FORMAT=json`` writes one JSON object per line (for a log collector), ``plain`` readable
text; both go to standard error, where gunicorn or systemd pick them up. A request's id is taken
from an incoming ``X-Request-ID`` header when it looks like one (so a reverse proxy's id follows
the request through), otherwise made up; it is sent back in the ``X-Request-ID`` response header
and appears on every line logged while the request runs, error reports included.

Query strings are never logged: an access-code letter's QR code puts the code in one.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import time
import uuid
from datetime import UTC, datetime
from typing import Any, TextIO

from flask import Flask, g, has_request_context, request, session
from sqlalchemy import inspect as sa_inspect
from werkzeug.wrappers import Response

REQUEST_ID_HEADER = "X-Request-ID"
# Letters, digits and . _ : - only: an id is copied into logs and headers, so nothing that
# could start a new log line or forge a field gets through.
_SANE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:\-]{0,127}")
FORMATS = ("plain", "json")
REQUEST_LOGGER = "consult.request"
_PLAIN = "%(asctime)s %(levelname)s [%(request_id)s] %(name)s: %(message)s"
_IN_PLAIN_MESSAGE = frozenset({"request_id", "method", "path", "status"})


def request_id() -> str | None:
    """The current request's id (None outside a request)."""
    return g.get("request_id") if has_request_context() else None


def choose_request_id(incoming: str | None) -> str:
    """The incoming id if it is sane, else a new random one."""
    if incoming and _SANE_ID.fullmatch(incoming):
        return incoming
    return uuid.uuid4().hex


class RequestIdFilter(logging.Filter):
    """Adds ``request_id`` to every record ("-" outside a request)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not getattr(record, "request_id", None):
            record.request_id = request_id() or "-"
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time (UTC), level, logger, message, request id, the
    record's ``fields`` and any exception's traceback."""

    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(
                timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", None) or request_id(),
        }
        data.update(getattr(record, "fields", None) or {})
        if record.exc_info:
            data["exception"] = self.formatException(record.exc_info)
        return json.dumps(data, ensure_ascii=False, default=str)


class PlainFormatter(logging.Formatter):
    """Readable lines; a request line ends with its fields as key=value."""

    def __init__(self) -> None:
        super().__init__(_PLAIN)

    def format(self, record: logging.LogRecord) -> str:
        if not hasattr(record, "request_id"):
            record.request_id = request_id() or "-"
        line = super().format(record)
        fields = getattr(record, "fields", None)
        if fields:
            line += " " + " ".join(f"{key}={value}" for key, value in fields.items()
                                   if key not in _IN_PLAIN_MESSAGE)
        return line


def make_formatter(kind: str) -> logging.Formatter:
    """The formatter for LOG_FORMAT ``kind``."""
    kind = (kind or "plain").lower()
    if kind not in FORMATS:
        raise RuntimeError(f"LOG_FORMAT must be one of {', '.join(FORMATS)}, not {kind!r}")
    return JsonFormatter() if kind == "json" else PlainFormatter()


class StderrHandler(logging.StreamHandler[TextIO]):
    """Writes to whatever ``sys.stderr`` is at the time (test runners swap it)."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, value: TextIO) -> None:
        pass


def _current_user_id() -> int | None:
    # Only a user the request already loaded (or the id in its session): logging must not
    # cost a database query, e.g. for static files.
    user = g.get("_login_user")
    if user is not None:
        # The identity key, not ``user.id``: after a commit the attribute is expired, and
        # reading it would start a new transaction (on SQLite a write lock) just to log.
        state = sa_inspect(user, raiseerr=False)
        if state is not None:
            return state.identity[0] if state.identity else None
        return getattr(user, "id", None)  # the anonymous user: no id
    raw = session.get("_user_id") if not g.get("session_expired") else None
    return int(raw) if isinstance(raw, str) and raw.isdigit() else None


def _begin() -> None:
    g.request_id = choose_request_id(request.headers.get(REQUEST_ID_HEADER))
    g.request_started = time.perf_counter()


def _finish(response: Response) -> Response:
    rid = g.get("request_id") or choose_request_id(None)
    response.headers[REQUEST_ID_HEADER] = rid
    started = g.get("request_started")
    duration_ms = round((time.perf_counter() - started) * 1000, 1) if started else None
    fields = {"request_id": rid, "method": request.method, "path": request.path,
              "status": response.status_code, "duration_ms": duration_ms,
              "user_id": _current_user_id()}
    logging.getLogger(REQUEST_LOGGER).info(
        "%s %s %s", request.method, request.path, response.status_code,
        extra={"fields": fields, "request_id": rid})
    return response


def init_app(app: Flask) -> None:
    """Send the app's logs (logger ``consult``, Flask's ``app.logger`` included) to standard
    error in the configured format, and log every request."""
    formatter = make_formatter(str(app.config.get("LOG_FORMAT", "plain")))
    logger = logging.getLogger("consult")
    for handler in list(logger.handlers):  # another app made in this process configured it
        if getattr(handler, "consult_handler", False):
            logger.removeHandler(handler)
    handler = StderrHandler()
    handler.consult_handler = True  # type: ignore[attr-defined]
    handler.addFilter(RequestIdFilter())
    handler.setFormatter(formatter)
    logger.addHandler(handler)
    logger.setLevel(str(app.config.get("LOG_LEVEL", "INFO")).upper())
    logger.propagate = False  # one line per record, whatever the root logger does
    app.before_request(_begin)
    app.after_request(_finish)
