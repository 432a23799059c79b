"""Locale choice: ``?lang=`` in the address, the user's setting, the ``lang`` cookie, then
Accept-Language, then Simplified Chinese. Anything unknown is skipped, never shown raw."""

from __future__ import annotations

import os
from functools import lru_cache
from typing import Any

from babel import Locale, UnknownLocaleError
from flask import Flask, current_app, g, has_request_context, request
from flask_babel import get_locale, get_translations
from flask_login import current_user
from werkzeug.wrappers import Response

SUPPORTED_LOCALES = ("zh_Hans", "zh_Hant", "en")
DEFAULT_LOCALE = "zh_Hans"
LANG_COOKIE = "lang"
LANG_COOKIE_MAX_AGE = 365 * 24 * 3600
_TRADITIONAL_TERRITORIES = frozenset({"TW", "HK", "MO"})
# POSIX locale names that say nothing about the language ("C.UTF-8", "POSIX").
_NO_LANGUAGE = frozenset({"C", "POSIX"})


@lru_cache(maxsize=512)  # Babel's parse scans its whole locale list: ~1 ms per request
def normalize_locale(value: str | None) -> str | None:
    """Map a language tag (``zh-TW``, ``zh_CN``, ``en-US``, ``zh_Hant`` …) to a supported locale.

    Returns None for anything we do not serve, and for the POSIX locale ``C``/``POSIX``
    (Debian's default ``LANG=C.UTF-8``), which names no language at all: Babel 2.19 parses it
    as ``en_US_POSIX`` and earlier versions refuse it, so it is decided here, not by Babel.
    """
    if not value:
        return None
    value = value.strip().split(".")[0].split("@")[0]  # POSIX "zh_CN.UTF-8"
    if value in SUPPORTED_LOCALES:
        return value
    if value.upper() in _NO_LANGUAGE:
        return None
    try:
        locale = Locale.parse(value, sep="-" if "-" in value else "_")
    except (ValueError, UnknownLocaleError, TypeError):
        return None
    if (locale.variant or "").upper() == "POSIX":
        return None
    if locale.language == "en":
        return "en"
    if locale.language == "zh":
        if locale.script == "Hant" or locale.territory in _TRADITIONAL_TERRITORIES:
            return "zh_Hant"
        return "zh_Hans"
    return None


def cli_locale() -> str:
    """The locale for command-line output (and for whatever a command freezes, such as the
    demo's notices): ``CONSULT_LANG`` when it names a language we serve, else the first of
    ``LC_ALL``, ``LC_MESSAGES`` and ``LANG`` that is set, as POSIX reads them. ``C``,
    ``POSIX``, a language we do not serve or nothing at all give the default language."""
    chosen = normalize_locale(os.environ.get("CONSULT_LANG"))
    if chosen:
        return chosen
    for name in ("LC_ALL", "LC_MESSAGES", "LANG"):
        value = os.environ.get(name)
        if value:  # POSIX: the first one set decides, even when it is "C"
            return normalize_locale(value) or DEFAULT_LOCALE
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


def _catalog() -> Any:
    """The catalog of the language being written in, found once per request and language.

    Flask-Babel finds it again for every message (several context lookups and a cache key
    built from the locale each time): a page of twelve ballot items spends more time there
    than in rendering. ``force_locale`` (a notice in its consultation's language) sets a new
    locale object, so the catalog is found again for it.
    """
    if not g:
        return get_translations()
    cached = g.get("_consult_catalog")
    # Flask-Babel keeps the request's locale object on this namespace; should it ever keep
    # it elsewhere, every message takes the long way, still correctly.
    babel_state = g.get("_flask_babel")
    if cached is not None and cached[0] is getattr(babel_state, "babel_locale", None):
        return cached[1]
    translations = get_translations()
    g._consult_catalog = (get_locale(), translations)
    return translations


def install_template_gettext(app: Flask) -> None:
    """Templates translate through ``_catalog`` (in place of Flask-Babel's callables)."""
    # jinja2's i18n extension (which Flask-Babel loads) adds this method to the environment at
    # run time; the Environment class does not declare it.
    app.jinja_env.install_gettext_callables(  # type: ignore[attr-defined]
        gettext=lambda s: _catalog().ugettext(s),
        ngettext=lambda s, p, n: _catalog().ungettext(s, p, n),
        pgettext=lambda c, s: _catalog().upgettext(c, s),
        npgettext=lambda c, s, p, n: _catalog().unpgettext(c, s, p, n),
        newstyle=True,
    )
