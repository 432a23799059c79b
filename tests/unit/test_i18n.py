import pytest

from consult.core.i18n import cli_locale, html_lang, normalize_locale


@pytest.mark.parametrize(("tag", "expected"), [
    ("zh-CN", "zh_Hans"), ("zh", "zh_Hans"), ("zh-Hans", "zh_Hans"), ("zh_Hans", "zh_Hans"),
    ("zh-SG", "zh_Hans"), ("zh-TW", "zh_Hant"), ("zh-HK", "zh_Hant"), ("zh-MO", "zh_Hant"),
    ("zh-Hant", "zh_Hant"), ("zh_Hant_TW", "zh_Hant"), ("en-US", "en"), ("en", "en"),
    ("zh_CN.UTF-8", "zh_Hans"), ("en_GB.UTF-8", "en"),
    ("fr", None), ("xx-??", None), ("", None), (None, None), ("C.UTF-8", None),
    ("C", None), ("POSIX", None), ("c.utf8", None), ("en_US_POSIX", None),
    ("../../etc/passwd", None),
])
def test_normalize_locale(tag, expected):
    assert normalize_locale(tag) == expected


def test_cli_locale_prefers_consult_lang_then_posix(monkeypatch):
    for name in ("CONSULT_LANG", "LC_ALL", "LC_MESSAGES", "LANG"):
        monkeypatch.delenv(name, raising=False)
    assert cli_locale() == "zh_Hans"
    monkeypatch.setenv("LANG", "en_US.UTF-8")
    assert cli_locale() == "en"
    monkeypatch.setenv("CONSULT_LANG", "zh_Hant")
    assert cli_locale() == "zh_Hant"


POSIX_VARIABLES = ("CONSULT_LANG", "LC_ALL", "LC_MESSAGES", "LANG")


@pytest.mark.parametrize("lang", [None, "C", "C.UTF-8", "POSIX", "tlh_QO.UTF-8", "%%garbage",
                                  "fr_FR.UTF-8", ""])
def test_cli_locale_falls_back_to_simplified_chinese(monkeypatch, lang):
    """The POSIX locale names no language; Babel 2.19 reads C as en_US_POSIX (earlier versions
    refused it): neither may turn commands into English."""
    for name in POSIX_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    if lang is not None:
        monkeypatch.setenv("LANG", lang)
    assert cli_locale() == "zh_Hans"


def test_cli_locale_reads_posix_precedence(monkeypatch):
    for name in POSIX_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("LANG", "en_US.UTF-8")
    monkeypatch.setenv("LC_ALL", "C.UTF-8")  # LC_ALL overrides LANG, even when it is C
    assert cli_locale() == "zh_Hans"
    monkeypatch.setenv("LC_ALL", "")
    monkeypatch.setenv("LC_MESSAGES", "zh_TW.UTF-8")
    assert cli_locale() == "zh_Hant"
    monkeypatch.setenv("CONSULT_LANG", "xx")  # not a language we serve: the variables decide
    assert cli_locale() == "zh_Hant"


def test_the_c_locale_is_decided_before_babel_parses_it(monkeypatch):
    """Whatever a Babel version makes of "C", the answer is the default language."""
    import babel

    from consult.core import i18n

    def english(*_args, **_kwargs):
        return babel.Locale("en", "US", variant="POSIX")

    normalize_locale.cache_clear()
    monkeypatch.setattr(i18n.Locale, "parse", english)
    try:
        for name in POSIX_VARIABLES:
            monkeypatch.delenv(name, raising=False)
        for value in ("C.UTF-8", "POSIX", "C"):
            monkeypatch.setenv("LANG", value)
            assert cli_locale() == "zh_Hans"
    finally:
        normalize_locale.cache_clear()


def test_html_lang_tags():
    assert html_lang("zh_Hans") == "zh-Hans"
    assert html_lang("zh_Hant") == "zh-Hant"
    assert html_lang("en") == "en"
