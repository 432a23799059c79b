"""/welcome lets a household choose a username and password without a current one only just
after it signed in with the code from its letter, and only once. Every other session (staff,
a password sign-in, a code sign-in that already chose or waited too long) is sent to /account,
where a password is changed with the current one."""

from datetime import timedelta

import pytest
import sqlalchemy as sa

from consult.accounts import service as accounts
from consult.accounts import sessions
from consult.audit.models import AuditEvent
from consult.core.models import utcnow
from consult.extensions import db
from tests import factories

EN = {"Accept-Language": "en"}
NEW = {"username": "taken-over", "password": "attacker pass 1", "confirm": "attacker pass 1"}


def _events() -> int:
    return db.session.scalar(sa.select(sa.func.count(AuditEvent.seq))) or 0


def _snapshot(user):
    db.session.refresh(user)
    return user.username, user.password_hash, getattr(user, "session_epoch", None)


@pytest.mark.parametrize("role", ["admin", "committee", "supervisor"])
def test_staff_can_never_use_welcome(client, role):
    user = factories.make_user(role, compound=factories.make_compound())
    r = client.post("/login", data={"username": user.username, "password": factories.PASSWORD})
    assert r.status_code == 302
    before, events = _snapshot(user), _events()
    r = client.post("/welcome", data=NEW)
    assert r.status_code == 302 and r.headers["Location"] == "/account"
    assert _snapshot(user) == before and _events() == events
    assert client.get("/welcome").headers["Location"] == "/account"
    assert user.check_password(factories.PASSWORD) and not user.check_password(NEW["password"])


def test_a_resident_signed_in_with_a_password_cannot_use_welcome(client, compound):
    household = compound.buildings[0].households[0]
    user = factories.make_user("resident", household=household, username="zhao")
    client.post("/login", data={"username": "zhao", "password": factories.PASSWORD})
    before, events = _snapshot(user), _events()
    r = client.post("/welcome", data=NEW)
    assert r.status_code == 302 and r.headers["Location"] == "/account"
    assert _snapshot(user) == before and _events() == events
    # /account asks for the current password.
    r = client.post("/account", data={"current": "wrong", "password": NEW["password"],
                                      "confirm": NEW["password"]}, headers=EN)
    assert "not right" in r.text and user.check_password(factories.PASSWORD)


def test_a_code_sign_in_chooses_a_password_once(client, compound):
    household = compound.buildings[0].households[0]
    r = client.post("/code", data={"code": accounts.issue_access_code(None, household)})
    assert r.headers["Location"] == "/welcome"
    assert client.get("/welcome", headers=EN).status_code == 200
    r = client.post("/welcome", data={"username": "zhao-family", "password": "our new pass",
                                      "confirm": "our new pass"})
    assert r.status_code == 302 and r.headers["Location"] == "/"
    user = accounts.resident_account_for(household)
    assert user.username == "zhao-family" and user.check_password("our new pass")
    # The phone stays signed in, but the page does not take a second choice.
    assert client.get("/account").status_code == 200
    before, events = _snapshot(user), _events()
    r = client.post("/welcome", data=NEW)
    assert r.status_code == 302 and r.headers["Location"] == "/account"
    assert _snapshot(user) == before and _events() == events


def test_a_code_session_may_choose_only_for_a_while(app, client, compound, monkeypatch):
    household = compound.buildings[0].households[0]
    client.post("/code", data={"code": accounts.issue_access_code(None, household)})
    later = utcnow() + timedelta(minutes=app.config["WELCOME_MINUTES"], seconds=1)
    monkeypatch.setattr(sessions, "utcnow", lambda: later)
    monkeypatch.setattr(accounts, "utcnow", lambda: later)
    user = accounts.resident_account_for(household)
    before = _snapshot(user)
    r = client.post("/welcome", data=NEW)
    assert r.headers["Location"] == "/account" and _snapshot(user) == before
    # An account made from a code has no password to confirm: /account sets the first one.
    r = client.post("/account", data={"password": "our new pass", "confirm": "our new pass"})
    assert r.status_code == 302 and user.check_password("our new pass")


def test_a_stolen_resident_cookie_cannot_take_the_account_over_through_welcome(
        client, compound):
    """A copy of a remembered phone's cookie, days later: no password change without the
    current password, and no username change at all."""
    household = compound.buildings[0].households[0]
    user = factories.make_user("resident", household=household, username="wang",
                               password=None)
    factories.sign_in(client, user, method="access_code")  # an old code session
    r = client.post("/welcome", data=NEW)
    assert r.headers["Location"] == "/account" and user.username == "wang"


def test_choosing_races_leave_one_choice(client, compound):
    """The service checks the session's permission under its row lock, so the same form sent
    twice at once chooses once (the second is refused in words)."""
    household = compound.buildings[0].households[0]
    client.post("/code", data={"code": accounts.issue_access_code(None, household)})
    user = accounts.resident_account_for(household)
    record = db.session.scalars(sa.select(sessions.UserSession).where(
        sessions.UserSession.user_id == user.id)).one()
    accounts.choose_first_password(user, record, "first-choice", "first pass 1")
    from consult.core.errors import Conflict

    with pytest.raises(Conflict):
        accounts.choose_first_password(user, record, "second-choice", "second pass 2")
    assert user.username == "first-choice" and user.check_password("first pass 1")
