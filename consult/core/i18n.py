"""Locale choice: ``?lang=`` in the address, the user's setting, the ``lang`` cookie, then
Accept-Language, then Simplified Chinese. Anything unknown is skipped, never shown raw."""

from __future__ import annotations

import os

from babel import Locale, UnknownLocaleError
from flask import current_app, has_request_context, request
from flask_login import current_user
from werkzeug.wrappers import Response

SUPPORTED_LOCALES = ("zh_Hans", "zh_Hant", "en")
DEFAULT_LOCALE = "zh_Hans"
LANG_COOKIE = "lang"
LANG_COOKIE_MAX_AGE = 365 * 24 * 3600
_TRADITIONAL_TERRITORIES = frozenset({"TW", "HK", "MO"})


def normalize_locale(value: str | None) -> str | None:
    """Map a language tag (``zh-TW``, ``zh_CN``, ``en-US``, ``zh_Hant`` …) to a supported locale.

    Returns None for anything we do not serve.
    """
    if not value:
        return None
    value = value.strip().split(".")[0].split("@")[0]  # POSIX "zh_CN.UTF-8"
    if value in SUPPORTED_LOCALES:
        return value
    try:
        locale = Locale.parse(value, sep="-" if "-" in value else "_")
    except (ValueError, UnknownLocaleError, TypeError):
        return None
    if locale.language == "en":
        return "en"
    if locale.language == "zh":
        if locale.script == "Hant" or locale.territory in _TRADITIONAL_TERRITORIES:
            return "zh_Hant"
        return "zh_Hans"
    return None


def cli_locale() -> str:
    """The locale for command-line output: CONSULT_LANG, then the POSIX locale variables."""
    for name in ("CONSULT_LANG", "LC_ALL", "LC_MESSAGES", "LANG"):
        chosen = normalize_locale(os.environ.get(name))
        if chosen:
            return chosen
    return DEFAULT_LOCALE


def select_locale() -> str:
    """Flask-Babel locale selector."""
    if not has_request_context():
        return cli_locale()
    # A link that names its language (a QR code on a Traditional-Chinese notice, a link sent
    # to an English-speaking partner) wins over everything for that page.
    chosen = normalize_locale(request.args.get("lang"))
    if chosen:
        return chosen
    if current_user and current_user.is_authenticated:
        chosen = normalize_locale(getattr(current_user, "locale", None))
        if chosen:
            return chosen
    chosen = normalize_locale(request.cookies.get(LANG_COOKIE))
    if chosen:
        return chosen
    for tag in request.accept_languages.values():
        chosen = normalize_locale(tag)
        if chosen:
            return chosen
    return current_app.config.get("BABEL_DEFAULT_LOCALE", DEFAULT_LOCALE)


def html_lang(locale: str) -> str:
    """The BCP 47 tag for ``<html lang>``."""
    return {"zh_Hans": "zh-Hans", "zh_Hant": "zh-Hant", "en": "en"}.get(locale, "zh-Hans")


def set_lang_cookie(response: Response, locale: str) -> None:
    """Remember ``locale`` in this browser for a year."""
    response.set_cookie(LANG_COOKIE, locale, max_age=LANG_COOKIE_MAX_AGE, samesite="Lax",
                        httponly=True,
                        secure=current_app.config.get("SESSION_COOKIE_SECURE", False))


def remember_requested_locale(response: Response) -> Response:
    """After a page opened with a valid ``?lang=``, keep that language for the next pages."""
    chosen = normalize_locale(request.args.get("lang"))
    if chosen and request.cookies.get(LANG_COOKIE) != chosen:
        set_lang_cookie(response, chosen)
    return response
