"""Redirect targets that cannot send a user to another site, and links to the current page
with some of its query arguments changed."""

from __future__ import annotations

from urllib.parse import urlsplit


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
    return url_for(request.endpoint or "main.index", **(request.view_args or {}), **args)


def url_for_page(page: int) -> str:
    """The current page's URL showing page ``page`` of its list."""
    return url_with(page=page)
