import pytest

from config import DEFAULT_SECRET_KEY, ProductionConfig
from consult import create_app
from tests import factories
from tests.conftest import audit_actions


def test_production_refuses_the_default_or_a_short_secret(monkeypatch, tmp_path):
    monkeypatch.setattr(ProductionConfig, "INSTANCE_DIR", str(tmp_path))  # no key file there
    for key in (DEFAULT_SECRET_KEY, "short", ""):
        monkeypatch.setattr(ProductionConfig, "SECRET_KEY", key)
        with pytest.raises(RuntimeError, match="SECRET_KEY"):
            create_app(ProductionConfig)


def test_healthz_answers_ok_with_the_database(client):
    r = client.get("/healthz")
    assert r.status_code == 200 and r.get_json() == {"status": "ok"}


def test_unknown_page_is_404_in_the_users_language(client):
    r = client.get("/no/such/page", headers={"Accept-Language": "en"})
    assert r.status_code == 404 and "Not found" in r.text
    r = client.get("/no/such/page", headers={"Accept-Language": "zh-CN"})
    assert r.status_code == 404 and "找不到" in r.text
    r = client.get("/no/such/page", headers={"Accept-Language": "zh-TW"})
    assert r.status_code == 404 and "找不到" in r.text and 'lang="zh-Hant"' in r.text


def test_errors_come_as_json_when_asked(client):
    r = client.get("/no/such/page", headers={"Accept": "application/json"})
    assert r.status_code == 404 and r.get_json()["error"]["status"] == 404


def test_default_language_is_simplified_chinese(client):
    r = client.get("/")
    assert 'lang="zh-Hans"' in r.text and "议事厅" in r.text


def test_security_headers_on_every_page(client):
    r = client.get("/")
    csp = r.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert "unsafe-inline" not in csp
    assert r.headers["X-Content-Type-Options"] == "nosniff"
    assert r.headers["Referrer-Policy"] == "same-origin"


def test_pages_have_no_inline_scripts_or_styles(client, login_as, compound):
    login_as("admin")
    for url in ("/", "/registry/", f"/registry/compounds/{compound.id}", "/audit/",
                "/admin/users", "/login"):
        html = client.get(url).text
        assert "<script>" not in html and "style=" not in html, url


def test_bootstrap_is_served_locally(client):
    html = client.get("/").text
    assert "cdn.jsdelivr" not in html and "/bootstrap/static/css/bootstrap.min.css" in html
    assert client.get("/bootstrap/static/css/bootstrap.min.css").status_code == 200


def test_form_without_csrf_token_is_400_and_changes_nothing(client, login_as, compound):
    login_as("admin")
    r = client.post("/registry/communities/new", data={"name": "新社区"}, csrf=False,
                    headers={"Accept-Language": "en"})
    assert r.status_code == 400 and "reload the page" in r.text
    assert audit_actions() == []


def test_language_switch_sets_a_cookie_and_redirects_back(client):
    r = client.post("/language", data={"lang": "en", "next": "/login"})
    assert r.status_code == 302 and r.headers["Location"] == "/login"
    assert "lang=en" in r.headers["Set-Cookie"]
    assert 'lang="en"' in client.get("/").text


def test_language_switch_refuses_foreign_redirects_and_unknown_languages(client):
    r = client.post("/language", data={"lang": "xx", "next": "https://evil.example/"})
    assert r.headers["Location"] == "/" and "lang=" not in r.headers.get("Set-Cookie", "")
    client.set_cookie("lang", "klingon")
    assert 'lang="zh-Hans"' in client.get("/").text


def test_signed_in_users_language_is_remembered_and_audited(client, login_as):
    user = login_as("committee")
    client.post("/language", data={"lang": "zh_Hant"})
    assert user.locale == "zh_Hant"
    assert audit_actions() == ["accounts.user.locale_set"]
    client.delete_cookie("lang")
    assert 'lang="zh-Hant"' in client.get("/", headers={"Accept-Language": "en"}).text


def test_unexpected_error_is_a_500_page_in_the_users_language(client, login_as, monkeypatch):
    from consult.registry import service as registry

    def explode(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(registry, "compounds_in_scope", explode)
    login_as("admin")
    r = client.get("/registry/", headers={"Accept-Language": "zh-CN"})
    assert r.status_code == 500 and "boom" not in r.text
    assert "出错" in r.text or "错误" in r.text
    r = client.get("/registry/", headers={"Accept": "application/json"})
    assert r.status_code == 500 and r.get_json()["error"]["status"] == 500


def test_oversized_requests_are_refused_before_anything_is_stored(client, login_as, compound,
                                                                 app):
    import io

    from sqlalchemy import func, select

    from consult.extensions import db
    from consult.uploads.models import Attachment

    c = factories.make_consultation(compound, stage="soliciting")
    login_as("resident", household=compound.buildings[0].households[0])
    big = io.BytesIO(b"\xff\xd8\xff" + b"0" * (app.config["MAX_CONTENT_LENGTH"] + 1))
    r = client.post(f"/consultations/{c.id}/opinions/new",
                    data={"category": "pipes", "text": "x", "photo": (big, "huge.jpg")},
                    content_type="multipart/form-data", headers={"Accept-Language": "en"})
    assert r.status_code == 413 and "too large" in r.text
    assert db.session.scalar(select(func.count(Attachment.id))) == 0


def test_a_language_in_the_address_wins_and_is_remembered(client):
    r = client.get("/?lang=zh-TW", headers={"Accept-Language": "en"})
    assert 'lang="zh-Hant"' in r.text and "lang=zh_Hant" in r.headers["Set-Cookie"]
    assert 'lang="zh-Hant"' in client.get("/", headers={"Accept-Language": "en"}).text
    assert 'lang="en"' in client.get("/?lang=en").text


def test_an_unknown_language_in_the_address_or_cookie_falls_back(client):
    r = client.get("/?lang=klingon")
    assert 'lang="zh-Hans"' in r.text and "lang=" not in r.headers.get("Set-Cookie", "")
    assert 'lang="en"' in client.get("/?lang=../etc", headers={"Accept-Language": "en"}).text
    client.set_cookie("lang", "<script>")
    assert 'lang="zh-Hans"' in client.get("/?lang=").text


def test_larger_text_is_chosen_per_browser_and_switched_back(client):
    assert 'class="text-large"' not in client.get("/").text
    r = client.post("/text-size", data={"size": "large", "next": "/consultations/"})
    assert r.headers["Location"] == "/consultations/" and "text=large" in r.headers["Set-Cookie"]
    page = client.get("/consultations/", headers={"Accept-Language": "en"}).text
    assert '<html lang="en" class="text-large">' in page
    assert "Larger text is on." in page and "Standard text size" in page  # and the way back
    r = client.post("/text-size", data={"size": "normal"})
    assert r.headers["Location"] == "/" and "text=;" in r.headers["Set-Cookie"]  # deleted
    assert 'class="text-large"' not in client.get("/").text


def test_an_unknown_text_size_changes_nothing(client):
    r = client.post("/text-size", data={"size": "huge", "next": "https://evil.example/"})
    assert r.headers["Location"] == "/" and "text=" not in r.headers.get("Set-Cookie", "")
    client.set_cookie("text", "gigantic")
    assert 'class="text-large"' not in client.get("/").text
