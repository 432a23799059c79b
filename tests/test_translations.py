"""Every message in the code is translated in every catalog, with its placeholders intact."""

from consult.core import catalogs


def test_every_catalog_is_complete():
    problems = catalogs.check()
    assert problems == [], "\n".join(f"{p.locale} {p.reason}: {p.msgid}" for p in problems[:20])


def test_pages_show_no_english_msgids_in_chinese(client, login_as, compound):
    login_as("admin")
    for url in ("/", "/registry/", f"/registry/compounds/{compound.id}", "/audit/",
                "/admin/users", "/account"):
        for lang, word in (("zh-CN", "登记册"), ("zh-TW", "登記冊")):
            text = client.get(url, headers={"Accept-Language": lang}).text
            assert word in text, (url, lang)
            for english in ("Sign out", "Registry", "Audit trail", "Search", "Households"):
                assert f">{english}<" not in text, (url, lang, english)


def test_counts_read_right_in_every_language(app):
    from flask_babel import force_locale, ngettext

    with app.test_request_context():
        with force_locale("en"):
            assert ngettext("%(num)s account", "%(num)s accounts", 1) == "1 account"
            assert ngettext("%(num)s account", "%(num)s accounts", 2) == "2 accounts"
        # Chinese has one form, whatever the number.
        for locale, text in (("zh_Hans", "共 2 个账户"), ("zh_Hant", "共 1 個帳戶")):
            with force_locale(locale):
                n = int(text.split()[1])
                assert ngettext("%(num)s account", "%(num)s accounts", n) == text
