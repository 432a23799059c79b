"""Templates translate through a catalog kept for the request, which still follows a language
switched within the request (a notice rendered in its consultation's language)."""

from __future__ import annotations

from flask import render_template_string
from flask_babel import force_locale

PAGE = ("{{ _('Sign in') }}|{{ ngettext('until %(time)s (in %(num)d minute)', "
        "'until %(time)s (in %(num)d minutes)', 2, time='9:00') }}")
ENGLISH = "Sign in|until 9:00 (in 2 minutes)"


def test_a_language_forced_within_a_request_is_followed_and_then_left(app):
    with app.app_context(), app.test_request_context("/", headers={"Accept-Language": "zh-CN"}):
        before = render_template_string(PAGE)
        with force_locale("en"):
            english = render_template_string(PAGE)
            with force_locale("zh_Hant"):
                traditional = render_template_string(PAGE)
        after = render_template_string(PAGE)
    assert english == ENGLISH
    assert before == after == "登录|至 9:00（还有 2 分钟）"
    assert traditional.startswith("登入|")


def test_each_request_has_its_own_language(app):
    # A context of its own for each request, as under a server (the suite's is shared).
    with app.app_context(), app.test_request_context("/?lang=en"):
        assert render_template_string(PAGE) == ENGLISH
    with app.app_context(), app.test_request_context("/?lang=zh_Hant"):
        assert render_template_string(PAGE).startswith("登入|")
