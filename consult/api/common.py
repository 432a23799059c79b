"""What every part of the API shares: its blueprint class, the error document, cursor pages
and conditional GETs (ETag / If-None-Match)."""

from __future__ import annotations

import http
from collections.abc import Callable, Sequence
from functools import wraps
from typing import Any, TypeVar

import flask_smorest  # type: ignore[import-untyped]  # no type information shipped
from flask import current_app, request
from flask_babel import gettext as _
from itsdangerous import BadSignature, URLSafeSerializer
from marshmallow import Schema, fields, validate
from sqlalchemy import Select
from webargs.flaskparser import FlaskParser
from werkzeug.wrappers import Response

from consult.core.errors import ValidationFailed
from consult.core.models import MAX_ID
from consult.extensions import db

F = TypeVar("F", bound=Callable[..., Any])


class Parser(FlaskParser):
    """Request parsing: a body or parameter that does not pass is a 400 with field errors,
    like every other refused input (``validation_failed``)."""

    DEFAULT_VALIDATION_STATUS = 400


class Blueprint(flask_smorest.Blueprint):
    """A part of the API: its operations go into the OpenAPI document."""

    ARGUMENTS_PARSER = Parser()

    def errors(self, *statuses: int) -> Callable[[F], F]:
        """Document the error answers an operation may give (the error document)."""

        def decorator(view: F) -> F:
            for status in statuses:
                view = self.alt_response(status, response=http.HTTPStatus(status).name)(view)
            return view

        return decorator


class Id(fields.Integer):
    """A record's id sent in a body or query: a whole number from 1 to MAX_ID. Beyond that no
    record can match and the databases cannot even compare the number, so it is refused with
    the field's message instead of reaching a query."""

    def __init__(self, *, strict: bool = True, **kwargs: Any) -> None:
        # A query string's values are text: there the field converts (strict=False).
        super().__init__(strict=strict, validate=validate.Range(min=1, max=MAX_ID), **kwargs)


class ErrorBody(Schema):
    status = fields.Integer(required=True, metadata={"example": 404})
    code = fields.String(required=True, metadata={
        "description": "Stable identifier: not_found, forbidden, validation_failed, conflict, "
                       "vote_closed, unauthenticated, token_expired, rate_limited, locked, …",
        "example": "not_found"})
    title = fields.String(required=True, metadata={"example": "未找到"})
    message = fields.String(required=True, metadata={
        "description": "For people, in the language of Accept-Language (Simplified Chinese "
                       "by default).", "example": "没有这个议题。"})
    errors = fields.Dict(keys=fields.String(), values=fields.List(fields.String()), metadata={
        "description": "Field name → messages (refused input only).",
        "example": {"choices": ["此项为必填项。"]}})


class ErrorEnvelope(Schema):
    """Every error answer of the API."""

    error = fields.Nested(ErrorBody, required=True)


# --- conditional GETs ---------------------------------------------------------------------------

IF_NONE_MATCH = {"in": "header", "name": "If-None-Match", "required": False,
                 "schema": {"type": "string"},
                 "description": "The ETag of the copy the client holds: 304 if unchanged."}


def conditional(view: F) -> F:
    """A GET answered with an ``ETag`` (of its body) and 304 Not Modified when the client's
    ``If-None-Match`` names it. Goes above the operation's ``response`` decorator."""

    @wraps(view)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        response = view(*args, **kwargs)
        if (isinstance(response, Response) and request.method in ("GET", "HEAD")
                and response.status_code == 200):
            response.add_etag()
            response.make_conditional(request)
        return response

    return wrapped  # type: ignore[return-value]


# --- cursor pages ---------------------------------------------------------------------------------

_CURSOR_SALT = "api-cursor"


class PageArgs(Schema):
    cursor = fields.String(load_default=None, validate=validate.Length(max=200), metadata={
        "description": "next_cursor of the previous page (opaque); none for the first page."})
    limit = fields.Integer(load_default=20, validate=validate.Range(min=1, max=100),
                           metadata={"description": "Rows per page, 1–100.", "example": 20})


class PageOf(Schema):
    next_cursor = fields.String(required=True, allow_none=True, metadata={
        "description": "Pass as ?cursor= for the next page; null on the last page.",
        "example": None})


def _serializer() -> URLSafeSerializer:
    return URLSafeSerializer(current_app.config["SECRET_KEY"], salt=_CURSOR_SALT)


def encode_cursor(last_id: int) -> str:
    """An opaque, signed cursor: the page goes on after ``last_id``."""
    return str(_serializer().dumps({"after": last_id}))


def decode_cursor(text: str) -> int:
    """The id a cursor goes on after; ValidationFailed for anything else."""
    try:
        data = _serializer().loads(text)
    except BadSignature:
        data = None
    after = data.get("after") if isinstance(data, dict) else None
    if not isinstance(after, int) or isinstance(after, bool):
        message = _("This cursor is not valid; start again from the first page.")
        raise ValidationFailed(message, {"cursor": [message]})
    return after


def page(stmt: Select[Any], id_column: Any,
         args: dict[str, Any]) -> tuple[Sequence[Any], str | None]:
    """One page of ``stmt`` (ordered by ``id_column`` descending): its rows and the cursor of
    the next page (None on the last)."""
    limit = min(int(args.get("limit") or 20), int(current_app.config["API_PAGE_LIMIT"]))
    if args.get("cursor"):
        stmt = stmt.where(id_column < decode_cursor(args["cursor"]))
    rows = list(db.session.scalars(stmt.limit(limit + 1)))
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, encode_cursor(rows[-1].id) if more and rows else None


# --- pages of a computed list -----------------------------------------------------------------


def encode_offset(offset: int, view: str) -> str:
    """An opaque, signed cursor into a list computed whole (the dashboard's rows): the page
    goes on at ``offset`` of the list asked for as ``view`` (its order and filters)."""
    return str(_serializer().dumps({"offset": offset, "view": view}))


def decode_offset(text: str, view: str) -> int:
    """The offset a cursor goes on at, if it was given for the same ``view``;
    ValidationFailed for anything else."""
    try:
        data = _serializer().loads(text)
    except BadSignature:
        data = None
    offset = data.get("offset") if isinstance(data, dict) else None
    if (not isinstance(offset, int) or isinstance(offset, bool) or offset < 0
            or not isinstance(data, dict) or data.get("view") != view):
        message = _("This cursor is not valid; start again from the first page.")
        raise ValidationFailed(message, {"cursor": [message]})
    return offset


def page_of_list(rows: Sequence[Any], args: dict[str, Any],
                 view: str) -> tuple[Sequence[Any], str | None]:
    """One page of an ordered list computed whole, and the cursor of the next page (None on
    the last)."""
    limit = min(int(args.get("limit") or 20), int(current_app.config["API_PAGE_LIMIT"]))
    start = decode_offset(args["cursor"], view) if args.get("cursor") else 0
    end = start + limit
    return rows[start:end], encode_offset(end, view) if end < len(rows) else None
