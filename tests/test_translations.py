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
