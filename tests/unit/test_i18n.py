import pytest

from consult.core.i18n import cli_locale, html_lang, normalize_locale


@pytest.mark.parametrize(("tag", "expected"), [
    ("zh-CN", "zh_Hans"), ("zh", "zh_Hans"), ("zh-Hans", "zh_Hans"), ("zh_Hans", "zh_Hans"),
    ("zh-SG", "zh_Hans"), ("zh-TW", "zh_Hant"), ("zh-HK", "zh_Hant"), ("zh-MO", "zh_Hant"),
    ("zh-Hant", "zh_Hant"), ("zh_Hant_TW", "zh_Hant"), ("en-US", "en"), ("en", "en"),
    ("zh_CN.UTF-8", "zh_Hans"), ("en_GB.UTF-8", "en"),
    ("fr", None), ("xx-??", None), ("", None), (None, None), ("C.UTF-8", None),
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


def test_html_lang_tags():
    assert html_lang("zh_Hans") == "zh-Hans"
    assert html_lang("zh_Hant") == "zh-Hant"
    assert html_lang("en") == "en"
