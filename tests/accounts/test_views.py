import secrets

import pytest
import redis
from sqlalchemy import select

from config import TestingConfig
from consult import create_app
from consult.accounts import service as accounts
from consult.accounts.models import User
from consult.extensions import db
from tests import factories
from tests.conftest import audit_actions

EN = {"Accept-Language": "en"}


def test_login_with_password_then_logout(client):
    user = factories.make_user("committee", username="li")
    r = client.post("/login", data={"username": "li", "password": factories.PASSWORD,
                                    "next": "/registry/"})
    assert r.status_code == 302 and r.headers["Location"] == "/registry/"
    assert user.display_name in client.get("/").text
    r = client.post("/logout")
    assert r.status_code == 302
    assert client.get("/account").status_code == 302
    assert audit_actions() == ["accounts.login.succeeded"]


def test_wrong_password_says_so_and_is_recorded(client):
    factories.make_user("committee", username="li")
    r = client.post("/login", data={"username": "li", "password": "nope"}, headers=EN)
    assert r.status_code == 200 and "Wrong username or password" in r.text
    assert audit_actions() == ["accounts.login.failed"]


def test_login_never_redirects_off_site(client):
    factories.make_user("committee", username="li")
    for target in ("https://evil.example/", "//evil.example/x", "/\\evil.example"):
        r = client.post("/login", data={"username": "li", "password": factories.PASSWORD,
                                        "next": target})
        assert r.headers["Location"] == "/"


def test_login_is_rate_limited(client):
    factories.make_user("committee", username="li")
    codes = [client.post("/login", data={"username": "li", "password": "bad"}).status_code
             for _ in range(11)]
    assert codes[:10] == [200] * 10 and codes[10] == 429
    r = client.post("/login", data={"username": "li", "password": factories.PASSWORD},
                    headers=EN)
    assert r.status_code == 429 and "Too many attempts" in r.text


def test_access_code_sign_in_then_set_a_password(client, compound):
    household = compound.buildings[0].households[0]
    code = accounts.issue_access_code(None, household)
    page = client.get(f"/code?code={code}")
    assert code in page.text  # the QR on the letter fills the form in
    r = client.post("/code", data={"code": accounts.format_code(code)})
    assert r.status_code == 302 and r.headers["Location"] == "/welcome"
    welcome = client.get("/welcome", headers=EN)
    assert household.label in welcome.text
    r = client.post("/welcome", data={"username": "zhao-family", "password": "our new pass",
                                      "confirm": "our new pass"})
    assert r.status_code == 302
    user = db.session.scalars(select(User).where(User.household_id == household.id)).one()
    assert user.username == "zhao-family" and user.check_password("our new pass")
    client.post("/logout")
    r = client.post("/login", data={"username": "zhao-family", "password": "our new pass"})
    assert r.status_code == 302


def test_used_or_wrong_code_is_refused_with_a_message(client, compound):
    household = compound.buildings[0].households[0]
    code = accounts.issue_access_code(None, household)
    client.post("/code", data={"code": code})
    client.post("/logout")
    r = client.post("/code", data={"code": code}, headers=EN)
    assert r.status_code == 200 and "not valid" in r.text
    r = client.post("/code", data={"code": "<script>alert(1)</script>"}, headers=EN)
    assert "not valid" in r.text and "<script>alert" not in r.text


def test_access_codes_are_rate_limited(app, client):
    per_minute = int(app.config["ACCESS_CODE_RATE_LIMIT"].split(" per minute")[0])
    codes = [client.post("/code", data={"code": f"{n:012d}"}).status_code
             for n in range(per_minute + 1)]
    assert codes[:per_minute] == [200] * per_minute and codes[per_minute] == 429


def test_activation_form_reports_mismatch_and_taken_names(client, compound):
    household = compound.buildings[0].households[0]
    factories.make_user("committee", username="taken")
    client.post("/code", data={"code": accounts.issue_access_code(None, household)})
    r = client.post("/welcome", data={"username": "x1y2z3", "password": "aaaaaaaa",
                                      "confirm": "bbbbbbbb"}, headers=EN)
    assert "The two passwords differ" in r.text
    r = client.post("/welcome", data={"username": "taken", "password": "aaaaaaaa",
                                      "confirm": "aaaaaaaa"}, headers=EN)
    assert "taken" in r.text and 'aria-invalid="true"' in r.text


def test_change_own_password_needs_the_current_one(client, login_as):
    user = login_as("supervisor")
    r = client.post("/account", data={"current": "wrong", "password": "new password 1",
                                      "confirm": "new password 1"}, headers=EN)
    assert "not right" in r.text and user.check_password(factories.PASSWORD)
    r = client.post("/account", data={"current": factories.PASSWORD,
                                      "password": "new password 1", "confirm": "new password 1"})
    assert r.status_code == 302 and user.check_password("new password 1")


def test_admin_creates_a_committee_member_and_scopes_them(client, login_as, compound):
    login_as("admin")
    r = client.post("/admin/users/new", data={"username": "hong", "display_name": "李红梅",
                                              "role": "committee", "password": "initial-pass"})
    assert r.status_code == 302
    user = db.session.scalars(select(User).where(User.username == "hong")).one()
    page = client.get(f"/admin/users/{user.id}")
    assert "李红梅" in page.text and f"compound:{compound.id}" in page.text
    client.post(f"/admin/users/{user.id}/scopes", data={"target": f"compound:{compound.id}"})
    assert user.scoped_compound_ids() == {compound.id}
    client.post(f"/admin/users/{user.id}/scopes/{user.scopes[0].id}/delete")
    db.session.refresh(user)
    assert user.scopes == []
    client.post(f"/admin/users/{user.id}/password", data={"password": "reset-pass-1"})
    assert user.check_password("reset-pass-1")
    client.post(f"/admin/users/{user.id}", data={"display_name": "李红梅", "role": "supervisor"})
    assert (user.role, user.active) == ("supervisor", False)  # unchecked box = switched off
    assert audit_actions() == ["accounts.user.created", "accounts.scope.added",
                               "accounts.scope.removed", "accounts.user.password_set",
                               "accounts.user.updated"]


def test_admin_user_list_filters(client, login_as):
    login_as("admin", username="boss")
    factories.make_user("supervisor", username="watcher")
    text = client.get("/admin/users?role=supervisor").text
    assert "watcher" in text and "boss" not in text
    assert "boss" in client.get("/admin/users?q=bos").text
    assert client.get("/admin/users?role=bogus&page=-3").status_code == 200


def test_admin_form_errors_show_next_to_fields(client, login_as):
    login_as("admin")
    r = client.post("/admin/users/new", data={"username": "a", "display_name": "",
                                              "role": "committee", "password": "x"}, headers=EN)
    assert r.status_code == 200 and r.text.count('aria-invalid="true"') >= 2
    r = client.post("/admin/users/new", data={"username": "ok_name", "display_name": "x",
                                              "role": "emperor", "password": "long-enough"},
                    headers=EN)
    assert "Not a valid choice" in r.text or 'aria-invalid="true"' in r.text


def test_unknown_user_is_404(client, login_as):
    login_as("admin")
    assert client.get("/admin/users/999999").status_code == 404


@pytest.fixture(scope="module")
def redis_app(app):
    """A second app instance whose rate limits live in Redis, as in production."""
    try:
        redis.Redis(host="127.0.0.1", port=6379, socket_connect_timeout=1).ping()
    except redis.exceptions.ConnectionError:
        pytest.skip("Redis is not running on 127.0.0.1:6379")

    class RedisConfig(TestingConfig):
        SQLALCHEMY_DATABASE_URI = app.config["SQLALCHEMY_DATABASE_URI"]
        INSTANCE_DIR = app.config["INSTANCE_DIR"]
        RATELIMIT_STORAGE_URI = "redis://127.0.0.1:6379/15"
        # A window far longer than the test: "5 per minute" counts in fixed minutes, so six
        # requests straddling the turn of a minute would not all fall in one window.
        ACCESS_CODE_RATE_LIMIT = "5 per day"
        # Our own key prefix: other test runs may share this Redis.
        RATELIMIT_KEY_PREFIX = f"consult-test-{secrets.token_hex(4)}"
        WTF_CSRF_ENABLED = False

    redis_app = create_app(RedisConfig)
    yield redis_app
    store = redis.Redis(host="127.0.0.1", port=6379, db=15)
    for key in store.scan_iter(f"*{RedisConfig.RATELIMIT_KEY_PREFIX}*"):
        store.delete(key)


def test_rate_limits_are_kept_in_redis_when_configured(redis_app):
    store = redis.Redis(host="127.0.0.1", port=6379, db=15)
    prefix = redis_app.config["RATELIMIT_KEY_PREFIX"]
    client = redis_app.test_client()
    codes = [client.post("/code", data={"code": "1"}).status_code for _ in range(6)]
    assert codes[-1] == 429
    assert any(b"code" in key for key in store.scan_iter(f"*{prefix}*"))
    # A new client (another app worker would see the same) is still limited.
    assert redis_app.test_client().post("/code", data={"code": "1"}).status_code == 429
