"""Sessions can be ended: a copied cookie stops working after sign-out, after a password change
(own or reset by an administrator), after a change of role or scope and after the account is
switched off; "sign out everywhere" ends them all; staff sessions have an absolute limit.

A copied cookie is the ``Cookie`` header of one test client, replayed from another."""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask

from consult.accounts import service as accounts
from consult.accounts import sessions
from consult.accounts.models import User
from consult.audit.models import AuditEvent
from consult.core.models import utcnow
from consult.extensions import db
from tests import factories
from tests.conftest import audit_actions

EN = {"Accept-Language": "en"}
SIGNED_OUT = "This sign-in was ended by signing out."
CHANGED = ("You were signed out because the password, the role or the access of this account "
           "changed, or because it was signed out everywhere.")


def browser(app: Flask) -> Any:
    return app.test_client()


def sign_in(app: Flask, username: str, password: str = factories.PASSWORD) -> Any:
    """A new browser, signed in through the sign-in form."""
    b = browser(app)
    r = b.post("/login", data={"username": username, "password": password})
    assert r.status_code == 302, r.text[:300]
    return b


def cookie_of(client: Any) -> str:
    """The session cookie a browser holds, as it would go into a Cookie header."""
    return client.get_cookie("session").value


def _set_cookie(response: Any) -> str | None:
    for header in response.headers.getlist("Set-Cookie"):
        if header.startswith("session="):
            return header.split(";", 1)[0].split("=", 1)[1]
    return None


def replay(app: Flask, cookie: str, path: str = "/account") -> tuple[int, str]:
    """Send a copied cookie from another client; returns the status and, when sent to sign in,
    the messages on the sign-in page it is sent to."""
    thief = app.test_client(use_cookies=False)
    r = thief.get(path, headers={"Cookie": f"session={cookie}", **EN})
    if r.status_code != 302 or "/login" not in r.headers["Location"]:
        return r.status_code, ""
    left = _set_cookie(r) or cookie
    page = thief.get(r.headers["Location"], headers={"Cookie": f"session={left}", **EN})
    return r.status_code, page.text


def signed_in(app: Flask, cookie: str) -> bool:
    return replay(app, cookie)[0] == 200


def test_signing_out_ends_every_copy_but_not_the_households_other_phones(app, compound):
    household = compound.buildings[0].households[0]
    factories.make_user("resident", household=household, username="zhao")
    phone, other_phone = sign_in(app, "zhao"), sign_in(app, "zhao")
    copied = cookie_of(phone)
    assert signed_in(app, copied)
    assert phone.post("/logout").status_code == 302
    status, page = replay(app, copied)
    assert status == 302 and SIGNED_OUT in page
    assert other_phone.get("/account").status_code == 200  # the family's other phone


def test_the_own_password_change_keeps_this_browser_and_ends_every_other(app):
    user = factories.make_user("committee", username="li", compound=factories.make_compound())
    here, elsewhere = sign_in(app, "li"), sign_in(app, "li")
    copied = cookie_of(here)
    r = here.post("/account", data={"current": factories.PASSWORD, "password": "new password 1",
                                     "confirm": "new password 1"}, headers=EN)
    assert r.status_code == 302
    assert here.get("/account").status_code == 200  # the browser that changed it goes on
    status, page = replay(app, copied)  # a copy of its cookie from before does not
    assert status == 302 and CHANGED in page
    assert elsewhere.get("/account").status_code == 302
    assert user.check_password("new password 1")


def test_a_password_reset_by_an_administrator_ends_every_session(app):
    user = factories.make_user("committee", username="li", compound=factories.make_compound())
    factories.make_user("admin", username="boss")
    target = sign_in(app, "li")
    copied = cookie_of(target)
    admin = sign_in(app, "boss")
    admin.post(f"/admin/users/{user.id}/password", data={"password": "reset-pass-1"})
    assert user.check_password("reset-pass-1")
    status, page = replay(app, copied)
    assert status == 302 and CHANGED in page
    assert target.get("/account").status_code == 302
    assert admin.get("/account").status_code == 200  # the administrator is not signed out


@pytest.fixture
def member_and_admin(app, compound) -> tuple[User, Any, str]:
    member = factories.make_user("committee", username="li", compound=compound)
    factories.make_user("admin", username="boss")
    browser_of_member = sign_in(app, "li")
    return member, sign_in(app, "boss"), cookie_of(browser_of_member)


def test_a_role_change_ends_every_session(app, member_and_admin):
    member, admin, copied = member_and_admin
    admin.post(f"/admin/users/{member.id}", data={"display_name": member.display_name,
                                                   "role": "supervisor", "active": "y"})
    assert member.role == "supervisor"
    status, page = replay(app, copied)
    assert status == 302 and CHANGED in page


def test_a_scope_added_or_removed_ends_every_session(app, compound, member_and_admin):
    member, admin, copied = member_and_admin
    other = factories.make_compound("别的小区")
    admin.post(f"/admin/users/{member.id}/scopes", data={"target": f"compound:{other.id}"})
    assert len(member.scopes) == 2
    status, page = replay(app, copied)
    assert status == 302 and CHANGED in page
    again = cookie_of(sign_in(app, "li"))
    assert signed_in(app, again)
    admin.post(f"/admin/users/{member.id}/scopes/{member.scopes[1].id}/delete")
    db.session.refresh(member)
    assert [s.compound_id for s in member.scopes] == [compound.id]
    status, page = replay(app, again)
    assert status == 302 and CHANGED in page


def test_switching_the_account_off_ends_every_session_for_good(app, member_and_admin):
    member, admin, copied = member_and_admin
    admin.post(f"/admin/users/{member.id}", data={"display_name": member.display_name,
                                                   "role": "committee"})
    assert member.active is False
    status, page = replay(app, copied)
    assert status == 302 and "This account is switched off." in page
    # Switched on again, the old cookie stays ended.
    admin.post(f"/admin/users/{member.id}", data={"display_name": member.display_name,
                                                   "role": "committee", "active": "y"})
    assert member.active is True
    status, page = replay(app, copied)
    assert status == 302 and CHANGED in page


def test_renaming_an_account_does_not_sign_it_out(app, member_and_admin):
    member, admin, copied = member_and_admin
    admin.post(f"/admin/users/{member.id}", data={"display_name": "李红梅",
                                                   "role": "committee", "active": "y"})
    assert member.display_name == "李红梅" and signed_in(app, copied)


def test_sign_out_everywhere_ends_every_session_and_is_audited(app, compound):
    household = compound.buildings[0].households[0]
    user = factories.make_user("resident", household=household, username="zhao")
    phone, tablet = sign_in(app, "zhao"), sign_in(app, "zhao")
    copied = cookie_of(tablet)
    page = phone.get("/account", headers=EN).text
    assert "/account/sign-out-everywhere" in page
    r = phone.post("/account/sign-out-everywhere", headers=EN)
    assert r.status_code == 302
    assert phone.get("/account").status_code == 302
    assert tablet.get("/account").status_code == 302
    status, page = replay(app, copied)
    assert status == 302 and CHANGED in page
    event = db.session.scalars(sa.select(AuditEvent).where(
        AuditEvent.action == "accounts.sessions.ended")).one()
    assert event.actor_id == user.id and event.object_id == str(user.id)
    assert sign_in(app, "zhao").get("/account").status_code == 200  # signing in again works


def test_a_passwordless_household_is_warned_before_signing_out_everywhere(app, client,
                                                                          compound):
    household = compound.buildings[0].households[0]
    client.post("/code", data={"code": accounts.issue_access_code(None, household)})
    page = client.get("/account", headers=EN).text
    assert "you will need a new letter" in page


def test_a_staff_session_ends_after_its_maximum_however_busy(app, clock):
    factories.make_user("committee", username="li", compound=factories.make_compound())
    hours = app.config["STAFF_SESSION_MAX_HOURS"]
    b = sign_in(app, "li")
    for _ in range(hours * 3 - 1):  # a request every 20 minutes: never idle
        clock.advance(minutes=20)
        assert b.get("/registry/").status_code == 200
    clock.advance(minutes=20, seconds=1)
    r = b.get("/registry/", headers=EN)
    assert r.status_code == 302 and "/login" in r.headers["Location"]
    page = b.get(r.headers["Location"], headers=EN).text
    assert f"Staff sign-ins end {hours} hours after signing in." in page


def test_a_residents_phone_has_no_such_maximum(app, client, clock, compound):
    household = compound.buildings[0].households[0]
    client.post("/code", data={"code": accounts.issue_access_code(None, household)})
    for _ in range(10):
        clock.advance(days=20)
        assert client.get("/account").status_code == 200


def test_an_access_code_sign_in_on_a_second_phone_leaves_the_first_signed_in(app, compound):
    household = compound.buildings[0].households[0]
    first = browser(app)
    first.post("/code", data={"code": accounts.issue_access_code(None, household)})
    second = browser(app)
    second.post("/code", data={"code": accounts.issue_access_code(None, household)})
    assert first.get("/account").status_code == 200
    assert second.get("/account").status_code == 200


def test_only_the_hash_of_the_session_token_is_stored(app, compound):
    from consult.accounts.models import UserSession

    user = factories.make_user("committee", username="li", compound=compound)
    b = sign_in(app, "li")
    with b.session_transaction() as sess:
        token = sess[sessions.SID]
    stored = db.session.scalars(sa.select(UserSession).where(
        UserSession.user_id == user.id)).one()
    assert token not in stored.token_hash and stored.token_hash == sessions.token_hash(token)


def test_signing_in_forgets_the_accounts_ended_sessions(app, compound):
    from consult.accounts.models import UserSession

    user = factories.make_user("committee", username="li", compound=compound)
    for _ in range(3):
        sign_in(app, "li").post("/logout")
    sign_in(app, "li")
    rows = db.session.scalars(sa.select(UserSession).where(UserSession.user_id == user.id))
    assert [r.ended_at for r in rows] == [None]


# --- cookies from before session rows -------------------------------------------------------


def _legacy(client: Any, user: User) -> None:
    """A cookie as the app signed it before sessions had rows: the account id and the time."""
    with client.session_transaction() as sess:
        sess["_user_id"] = str(user.id)
        sess["_fresh"] = True
        sess[sessions.SEEN] = int(utcnow().timestamp())
        sess.permanent = True


def test_a_households_old_cookie_still_works_until_it_is_ended(app, compound):
    household = compound.buildings[0].households[0]
    user = factories.make_user("resident", household=household, username="zhao",
                               password=None)
    phone = browser(app)
    _legacy(phone, user)
    copied = cookie_of(phone)
    assert phone.get("/account").status_code == 200  # no new letter needed after an upgrade
    phone.post("/logout")
    # Copies of an old cookie cannot be told apart: signing out ends them all.
    status, page = replay(app, copied)
    assert status == 302 and CHANGED in page


def test_an_old_cookie_ends_with_a_password_change_and_staff_sign_in_again(app, compound):
    household = compound.buildings[0].households[0]
    user = factories.make_user("resident", household=household, username="zhao")
    phone = browser(app)
    _legacy(phone, user)
    copied = cookie_of(phone)
    r = phone.post("/account", data={"current": factories.PASSWORD,
                                     "password": "new password 1", "confirm": "new password 1"})
    assert r.status_code == 302
    assert phone.get("/account").status_code == 200  # now on a session row of its own
    assert not signed_in(app, copied)
    staff = factories.make_user("committee", username="li", compound=compound)
    desk = browser(app)
    _legacy(desk, staff)
    status, page = replay(app, cookie_of(desk))
    assert status == 302 and "Your sign-in has expired." in page


def test_the_password_change_and_the_sign_out_everywhere_are_in_the_trail(app, compound):
    factories.make_user("committee", username="li", compound=compound)
    here = sign_in(app, "li")
    here.post("/account", data={"current": factories.PASSWORD, "password": "new password 1",
                                "confirm": "new password 1"})
    here.post("/account/sign-out-everywhere")
    assert audit_actions()[-2:] == ["accounts.user.password_set", "accounts.sessions.ended"]
