"""Redirect targets that cannot send a user to another site, links to the current page
with some of its query arguments changed, and the integers an address may hold."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from werkzeug.routing import IntegerConverter, Map

from consult.core.models import MAX_ID


class BoundedIntConverter(IntegerConverter):
    """``<int:…>`` in every route, at most MAX_ID unless the rule says otherwise: the databases
    cannot compare a larger number with an id column (SQLite overflows past 2**63 - 1,
    PostgreSQL past 2**31 - 1), so an address holding one matches no route: a 404."""

    def __init__(self, map: Map, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("max", MAX_ID)
        super().__init__(map, *args, **kwargs)


def safe_next(target: str | None) -> str | None:
    """Return ``target`` if it is a path on this site, else None."""
    if not target:
        return None
    target = target.strip()
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return None
    if "\\" in target or any(ord(ch) < 32 for ch in target):
        return None
    return target


# The keyword arguments url_for takes for itself rather than as values of the URL.
_URL_FOR_OPTIONS = frozenset({"_anchor", "_method", "_scheme", "_external"})


def url_with(**changes: str | int | None) -> str:
    """The current page's URL with some query arguments replaced (None removes one), keeping
    the others: filters survive paging and sorting."""
    from flask import request, url_for

    args = request.args.to_dict()
    for name, value in changes.items():
        if value is None:
            args.pop(name, None)
        else:
            args[name] = str(value)
    # The path's own arguments win over query arguments of the same name (which url_for could
    # not put in the query string anyway), and a query argument never sets url_for's options.
    values: dict[str, Any] = {name: value for name, value in args.items()
                              if name not in _URL_FOR_OPTIONS}
    values.update(request.view_args or {})
    return url_for(request.endpoint or "main.index", **values)


def url_for_page(page: int) -> str:
    """The current page's URL showing page ``page`` of its list."""
    return url_with(page=page)
