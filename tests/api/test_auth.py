"""Signing in to the API: access codes and passwords with the web's checks, token lifetimes,
refresh rotation, and every way a session ends ending the tokens too."""

from sqlalchemy import select

from consult.accounts import service as accounts
from consult.accounts import sessions, tokens
from consult.accounts.models import ApiToken, User
from consult.extensions import db
from tests import factories
from tests.api.conftest import EN, bearer
from tests.conftest import audit_actions


def code_for(compound):
    household = compound.buildings[0].households[0]
    return household, accounts.issue_access_code(None, household)


def test_access_code_gives_tokens_that_open_me(client, compound):
    household, code = code_for(compound)
    r = client.post("/api/v1/auth/code", json={"code": code}, headers=EN)
    assert r.status_code == 200, r.json
    body = r.json
    assert body["token_type"] == "Bearer" and body["expires_in"] == 15 * 60
    assert body["role"] == "resident"
    me = client.get("/api/v1/me", headers={"Authorization": f"Bearer {body['access_token']}"})
    assert me.status_code == 200 and me.json["household"]["id"] == household.id
    # Only hashes are stored.
    stored = set(db.session.scalars(select(ApiToken.token_hash)))
    assert body["access_token"] not in stored and tokens.token_hash(body["access_token"]) in stored
    assert "accounts.access_code.redeemed" in audit_actions()
    assert r.headers.get("Set-Cookie") is None  # no cookie for a program


def test_used_code_is_refused_except_in_grace_from_the_same_device(client, compound):
    _household, code = code_for(compound)
    device = "d" * 24
    first = client.post("/api/v1/auth/code", json={"code": code, "device": device})
    assert first.status_code == 200
    again = client.post("/api/v1/auth/code", json={"code": code, "device": device})
    assert again.status_code == 200  # the first answer may have been lost
    other = client.post("/api/v1/auth/code", json={"code": code, "device": "e" * 24},
                        headers=EN)
    assert other.status_code == 404 and other.json["error"]["code"] == "invalid_code"
    none = client.post("/api/v1/auth/code", json={"code": code}, headers=EN)
    assert none.status_code == 404


def test_wrong_codes_pause_the_code_like_the_web(app, client, compound):
    _household, code = code_for(compound)
    wrong = code[:accounts.SELECTOR_DIGITS] + "".join(
        "1" if d == "0" else "0" for d in code[accounts.SELECTOR_DIGITS:])
    threshold = int(app.config["ACCESS_CODE_PER_CODE_THRESHOLD"])
    answers = [client.post("/api/v1/auth/code", json={"code": wrong}, headers=EN)
               for _ in range(threshold)]
    assert answers[0].status_code == 404 and answers[0].json["error"]["code"] == "invalid_code"
    assert answers[-1].status_code == 429 and answers[-1].json["error"]["code"] == "locked"
    right = client.post("/api/v1/auth/code", json={"code": code}, headers=EN)
    assert right.status_code == 429  # the code is paused, whoever sends it


def test_the_web_rate_limit_applies(app, client):
    limit = int(str(app.config["ACCESS_CODE_RATE_LIMIT"]).split()[0])
    answers = [client.post("/api/v1/auth/code", json={"code": f"9{n:011d}"}, headers=EN)
               for n in range(limit + 1)]
    assert answers[-1].status_code == 429
    assert answers[-1].json["error"]["code"] == "rate_limited"


def test_bad_input_is_validation_failed_with_field_errors_in_the_reader_language(client):
    r = client.post("/api/v1/auth/code", json={}, headers={"Accept-Language": "en"})
    assert r.status_code == 400
    error = r.json["error"]
    assert error["code"] == "validation_failed"
    assert error["errors"] == {"code": ["This field is required."]}
    zh = client.post("/api/v1/auth/code", json={})
    assert zh.json["error"]["errors"]["code"] != ["This field is required."]  # Chinese default


def test_password_sign_in_and_lockout(app, client):
    user = factories.make_user("committee", username="clerk")
    ok = client.post("/api/v1/auth/password",
                     json={"username": "clerk", "password": factories.PASSWORD})
    assert ok.status_code == 200 and ok.json["role"] == "committee"
    wrong = client.post("/api/v1/auth/password", json={"username": "clerk", "password": "x"},
                        headers=EN)
    assert wrong.status_code == 401 and wrong.json["error"]["code"] == "unauthenticated"
    threshold = int(app.config["LOGIN_LOCKOUT_THRESHOLD"])
    for _ in range(threshold):
        last = client.post("/api/v1/auth/password",
                           json={"username": "clerk", "password": "x"}, headers=EN)
    assert last.status_code == 429 and last.json["error"]["code"] == "locked"
    locked = client.post("/api/v1/auth/password",
                         json={"username": "clerk", "password": factories.PASSWORD})
    assert locked.status_code == 429  # even the right password, while locked
    db.session.refresh(user)
    assert user.locked_until is not None


def test_refresh_rotates_and_a_reused_refresh_token_ends_the_sign_in(client, resident):
    pair = tokens.issue(resident, tokens.API_CODE)
    r = client.post("/api/v1/auth/refresh", json={"refresh_token": pair.refresh_token})
    assert r.status_code == 200
    new = r.json
    old_access = client.get("/api/v1/me",
                            headers={"Authorization": f"Bearer {pair.access_token}"})
    assert old_access.status_code == 401  # the earlier access token ended with the refresh
    assert client.get("/api/v1/me", headers={
        "Authorization": f"Bearer {new['access_token']}"}).status_code == 200
    reused = client.post("/api/v1/auth/refresh", json={"refresh_token": pair.refresh_token},
                         headers=EN)
    assert reused.status_code == 401 and reused.json["error"]["code"] == "token_reused"
    # Both copies must sign in again: the new tokens ended with the session.
    assert client.get("/api/v1/me", headers={
        "Authorization": f"Bearer {new['access_token']}"}).status_code == 401
    assert client.post("/api/v1/auth/refresh",
                       json={"refresh_token": new["refresh_token"]}).status_code == 401
    assert "accounts.api.refresh_reused" in audit_actions()


def test_access_tokens_expire(client, resident, clock):
    pair = tokens.issue(resident, tokens.API_CODE, now=clock.now())
    clock.advance(minutes=16)
    r = client.get("/api/v1/me", headers={"Authorization": f"Bearer {pair.access_token}",
                                          **EN})
    assert r.status_code == 401 and r.json["error"]["code"] == "token_expired"
    assert r.headers["WWW-Authenticate"] == "Bearer"
    refreshed = client.post("/api/v1/auth/refresh", json={"refresh_token": pair.refresh_token})
    assert refreshed.status_code == 200


def test_logout_ends_only_this_sign_in(client, resident):
    here, there = bearer(resident), bearer(resident)
    assert client.post("/api/v1/auth/logout", headers=here).status_code == 204
    assert client.get("/api/v1/me", headers=here).status_code == 401
    assert client.get("/api/v1/me", headers=there).status_code == 200


def test_every_end_of_the_account_sessions_ends_the_tokens(client, resident):
    admin = factories.make_user("admin")
    headers = bearer(resident)
    sessions.sign_out_everywhere(resident)
    assert client.get("/api/v1/me", headers=headers).status_code == 401
    headers = bearer(resident)
    accounts.set_password(admin, resident, "a new long passphrase 42")
    assert client.get("/api/v1/me", headers=headers).status_code == 401
    headers = bearer(resident)
    accounts.update_user(admin, resident, display_name="x", role="resident", active=False)
    r = client.get("/api/v1/me", headers=headers)
    assert r.status_code == 401


def test_staff_role_change_ends_tokens(client, compound):
    admin = factories.make_user("admin")
    member = factories.make_user("committee", compound=compound)
    headers = bearer(member)
    accounts.update_user(admin, member, display_name="m", role="supervisor", active=True)
    assert client.get("/api/v1/me", headers=headers).status_code == 401


def test_a_browser_session_cannot_use_the_api(client, login_as, voting, compound):
    """The cookie is not read under /api/: a signed-in browser is nobody there, so another
    site's page cannot make it vote (no CSRF through the API)."""
    login_as("resident", household=compound.buildings[0].households[0])
    assert client.get("/").status_code == 200
    me = client.get("/api/v1/me", headers=EN)
    assert me.status_code == 401 and me.json["error"]["code"] == "unauthenticated"
    item = voting.items[0]
    put = client.put(f"/api/v1/consultations/{voting.id}/ballot",
                     json={"choices": [{"item_id": item.id, "choice": "agree"}]},
                     headers={"Idempotency-Key": "k" * 20})
    assert put.status_code == 401
    out = client.post("/api/v1/auth/logout")
    assert out.status_code == 401


def test_malformed_or_unknown_tokens_are_refused(client):
    for header in ("Basic abc", "Bearer", "Bearer nonsense"):
        r = client.get("/api/v1/me", headers={"Authorization": header})
        assert r.status_code == 401 and r.json["error"]["code"] == "unauthenticated"


def test_switched_off_account_cannot_sign_in_with_its_code(client, compound):
    household, code = code_for(compound)
    client.post("/api/v1/auth/code", json={"code": code})
    user = db.session.scalar(select(User).where(User.household_id == household.id))
    user.active = False
    db.session.flush()
    code2 = accounts.issue_access_code(None, household)
    r = client.post("/api/v1/auth/code", json={"code": code2}, headers=EN)
    assert r.status_code == 404
