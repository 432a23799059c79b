"""Redirect targets that cannot send a user to another site."""

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


def url_for_page(page: int) -> str:
    """The current page's URL with ``page`` replaced, keeping the other query arguments."""
    from flask import request, url_for

    args = request.args.to_dict()
    args["page"] = str(page)
    return url_for(request.endpoint or "main.index", **(request.view_args or {}), **args)
