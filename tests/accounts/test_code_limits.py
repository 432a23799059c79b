"""Guessing access codes is limited per code (and so per household), per client address and
over all addresses, in the database; a used code signs in again for a short while from the
same phone only.

A code's first five digits (its selector) name an open code; a wrong code with a real
selector counts against that code whoever sends it. ``real`` below is a code's selector with
a wrong rest; ``miss`` a code whose selector names nothing."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask

from consult.accounts import lockout
from consult.accounts import service as accounts
from consult.accounts.models import AccessCode, ClientLock
from consult.audit.models import AuditEvent
from consult.core.proxies import is_trusted, parse_networks
from consult.extensions import db
from tests import factories
from tests.conftest import CSRFClient, audit_actions

EN = {"Accept-Language": "en"}
NAT = "198.51.100.77"  # one carrier address, shared by many phones
INVALID = "This access code is not valid."
CODE_PAUSED = "The code of this letter was entered wrongly too many times"
CLIENT_PAUSED = "Too many wrong access codes came from this network"


@pytest.fixture(autouse=True)
def _no_flood_guard(app: Flask, monkeypatch: pytest.MonkeyPatch) -> None:
    """The per-process rate limit is tested elsewhere; here the database counts decide."""
    monkeypatch.setitem(app.config, "ACCESS_CODE_RATE_LIMIT", "100000 per minute")


@pytest.fixture
def households(compound: Any) -> list[Any]:
    return [h for b in compound.buildings for h in b.households]


def real(code: str, n: int = 1) -> str:
    """The code's selector with a wrong verifier."""
    return code[:5] + f"{(int(code[5:]) + n) % 10 ** 7:07d}"


def miss(n: int, *codes: str) -> str:
    """A code whose selector is none of ``codes``'s."""
    taken, s = {c[:5] for c in codes}, n
    while f"{s % 10 ** 5:05d}" in taken:
        s += 1
    return f"{s % 10 ** 5:05d}{n % 10 ** 7:07d}"


def attempt(client: CSRFClient, code: str, address: str = NAT, **headers: str) -> Any:
    return client.post("/code", data={"code": code}, headers={**EN, **headers},
                       environ_base={"REMOTE_ADDR": address})


def phone(app: Flask) -> CSRFClient:
    """A browser that opened the code form (and so holds its device cookie)."""
    client = app.test_client()
    client.get("/code")
    return client


# --- codes and their selectors ------------------------------------------------------------


def test_each_new_code_stores_a_selector_hash_unique_among_open_codes(households):
    codes = [accounts.issue_access_code(None, h) for h in households]
    stored = db.session.scalars(sa.select(AccessCode).order_by(AccessCode.id)).all()
    selectors = [c.selector_hash for c in stored]
    assert None not in selectors and len(set(selectors)) == len(codes)
    for code, selector in zip(codes, selectors, strict=True):
        assert code[:5] not in selector and code not in selector
    # A used or revoked code gives its selector back.
    accounts.redeem_access_code(codes[0])
    accounts.issue_access_code(None, households[1])
    db.session.expire_all()
    assert stored[0].selector_hash is None and stored[1].selector_hash is None


def test_a_selector_already_open_is_never_issued_twice(households, monkeypatch):
    first = accounts.issue_access_code(None, households[0])
    clash = int(first[:5] + "0000000")  # same selector, another verifier
    fresh = 123456789012 if first[:5] != "12345" else 987654321098
    draws = iter([clash, fresh])
    monkeypatch.setattr(accounts.secrets, "randbelow", lambda _n: next(draws))
    assert accounts.issue_access_code(None, households[1]) == f"{fresh:012d}"


def test_the_right_code_of_a_switched_off_account_says_so_on_the_form(app, client, households):
    factories.make_user("resident", household=households[0], active=False)
    r = attempt(client, accounts.issue_access_code(None, households[0]))
    assert r.status_code == 200 and "account is switched off" in r.text
    assert accounts.open_access_code(households[0]) is not None  # not used up


# --- per code -------------------------------------------------------------------------------


def test_wrong_codes_aimed_at_a_code_pause_it_whoever_sends_them(app, client, households):
    threshold = app.config["ACCESS_CODE_PER_CODE_THRESHOLD"]
    minutes = app.config["ACCESS_CODE_PER_CODE_PAUSE_MINUTES"]
    code = accounts.issue_access_code(None, households[0])
    for n in range(1, threshold):
        r = attempt(client, real(code, n), address=f"203.0.113.{n}")
        assert r.status_code == 200 and INVALID in r.text
    r = attempt(client, real(code, threshold), address="203.0.113.200")
    assert CODE_PAUSED in r.text and f"(in {minutes} minutes)" in r.text
    event = db.session.scalars(sa.select(AuditEvent).where(
        AuditEvent.action == "accounts.access_code.paused")).one()
    assert event.object_type == "household" and event.object_id == str(households[0].id)
    # Paused: right and wrong get the same answer (a pause tells nothing about a guess), and
    # guesses meanwhile are not counted.
    right, wrong = attempt(client, code, "192.0.2.1"), attempt(client, real(code, 99), "192.0.2.2")
    assert right.status_code == wrong.status_code == 200
    assert CODE_PAUSED in right.text and CODE_PAUSED in wrong.text
    access = accounts.open_access_code(households[0])
    assert (access.failures, access.pauses) == (0, 1)
    # None of these addresses was counted: the code carries the count.
    assert db.session.scalar(sa.select(sa.func.count(ClientLock.id)).where(
        ClientLock.client_key != "*")) == 0


def test_each_further_pause_lasts_twice_as_long(app, client, clock, households):
    threshold = app.config["ACCESS_CODE_PER_CODE_THRESHOLD"]
    minutes = app.config["ACCESS_CODE_PER_CODE_PAUSE_MINUTES"]
    code = accounts.issue_access_code(None, households[0])
    for pause in (1, 2, 3):
        for n in range(threshold):
            r = attempt(client, real(code, n + 1))
        assert f"(in {minutes * 2 ** (pause - 1)} minutes)" in r.text
        clock.advance(minutes=minutes * 2 ** (pause - 1), seconds=1)
    assert attempt(client, code).status_code == 302  # the right code works between pauses


def test_the_committee_sees_the_pause_and_lifts_it(app, client, login_as, households):
    threshold = app.config["ACCESS_CODE_PER_CODE_THRESHOLD"]
    household = households[0]
    code = accounts.issue_access_code(None, household)
    for n in range(threshold):
        attempt(client, real(code, n + 1))
    compound = household.building.compound
    login_as("committee", compound=factories.make_compound("别的小区"))
    assert client.post(f"/accounts/households/{household.id}/access-code/resume"
                       ).status_code == 403
    member = login_as("committee", compound=compound)
    page = client.get(f"/registry/households/{household.id}", headers=EN).text
    assert "Signing in with this code is paused until" in page and "Lift the pause" in page
    r = client.post(f"/accounts/households/{household.id}/access-code/resume", headers=EN)
    assert r.headers["Location"].endswith(f"/registry/households/{household.id}")
    event = db.session.scalars(sa.select(AuditEvent).where(
        AuditEvent.action == "accounts.access_code.resumed")).one()
    assert event.actor_id == member.id
    assert "paused until" not in client.get(f"/registry/households/{household.id}",
                                            headers=EN).text
    client.post("/logout")
    assert attempt(client, code).status_code == 302


def test_a_new_letter_replaces_a_paused_code(app, client, households):
    threshold = app.config["ACCESS_CODE_PER_CODE_THRESHOLD"]
    old = accounts.issue_access_code(None, households[0])
    for n in range(threshold):
        attempt(client, real(old, n + 1))
    new = accounts.issue_access_code(None, households[0])
    assert attempt(client, new).status_code == 302


# --- per client address (a carrier's NAT) ----------------------------------------------------


def test_one_guesser_behind_a_nat_does_not_keep_another_household_out(app, households):
    threshold = app.config["ACCESS_CODE_LOCKOUT_THRESHOLD"]
    mine = accounts.issue_access_code(None, households[0])
    neighbours = accounts.issue_access_code(None, households[1])
    guesser = phone(app)
    for n in range(threshold):
        r = attempt(guesser, miss(n, mine, neighbours))
    assert CLIENT_PAUSED in r.text and audit_actions()[-1] == "accounts.client.locked"
    assert CLIENT_PAUSED in attempt(guesser, miss(999, mine, neighbours)).text
    # The guesser's wrong tries at a real code get the same answer as any other, and count
    # against that code…
    assert CLIENT_PAUSED in attempt(guesser, real(neighbours)).text
    assert accounts.open_access_code(households[1]).failures == 1
    # …and a household's right code from the same address signs in.
    other_phone = phone(app)
    assert attempt(other_phone, mine).status_code == 302
    assert other_phone.get("/account").status_code == 200


def test_a_few_mistakes_on_a_shared_address_pause_nobody(app, households):
    code = accounts.issue_access_code(None, households[0])
    for n in range(10):  # ten families each mistype once
        attempt(phone(app), miss(n, code))
    assert attempt(phone(app), miss(42, code)).text.count(CLIENT_PAUSED) == 0


def test_codes_of_the_older_kind_keep_working_behind_the_address_pause(app, households):
    threshold = app.config["ACCESS_CODE_LOCKOUT_THRESHOLD"]
    old = factories.make_older_access_code(households[0])
    guesser = phone(app)
    for n in range(threshold):
        attempt(guesser, miss(n, old))
    # Only the address's count protects an older code: it waits for the pause…
    assert CLIENT_PAUSED in attempt(phone(app), old).text
    assert accounts.open_access_code(households[0]) is not None
    # …from that address; elsewhere, or afterwards, it works.
    assert attempt(phone(app), old, address="192.0.2.50").status_code == 302


def test_an_older_code_works_after_the_pause(app, clock, households):
    threshold = app.config["ACCESS_CODE_LOCKOUT_THRESHOLD"]
    old = factories.make_older_access_code(households[0])
    for n in range(threshold):
        attempt(phone(app), miss(n, old))
    clock.advance(minutes=app.config["ACCESS_CODE_LOCKOUT_MINUTES"], seconds=1)
    assert attempt(phone(app), old).status_code == 302


def test_x_forwarded_for_is_not_believed_without_a_trusted_proxy(app, households):
    assert app.config["TRUSTED_PROXIES"] == 0
    threshold = app.config["ACCESS_CODE_LOCKOUT_THRESHOLD"]
    old = factories.make_older_access_code(households[0])
    guesser = phone(app)
    for n in range(threshold):  # every try claims another address
        r = attempt(guesser, miss(n, old), **{"X-Forwarded-For": f"192.0.2.{n}"})
    assert CLIENT_PAUSED in r.text  # all counted against the one real address
    assert CLIENT_PAUSED in attempt(phone(app), old, **{"X-Forwarded-For": "192.0.2.250"}).text


def test_in_production_only_the_proxy_may_name_the_client(production_app):
    """The production default trusts one proxy, and only from the proxy's own address: a
    client talking to gunicorn directly cannot spread its guesses over invented addresses."""
    https = {"X-Forwarded-Proto": "https", "Referer": "https://localhost/"}
    threshold = production_app.config["ACCESS_CODE_LOCKOUT_THRESHOLD"]
    with production_app.app_context():
        household = factories.make_compound_with_households(1).buildings[0].households[0]
        old = factories.make_older_access_code(household)
        db.session.commit()  # into the test's transaction, which is still rolled back
    client = production_app.test_client()

    def direct(code: str, claimed: str) -> Any:
        return client.post("/code", data={"code": code}, base_url="https://localhost",
                           headers={**EN, **https, "X-Forwarded-For": claimed},
                           environ_base={"REMOTE_ADDR": "203.0.113.9"})

    for n in range(threshold):
        r = direct(miss(n, old), f"192.0.2.{n}")
    assert CLIENT_PAUSED in r.text
    assert CLIENT_PAUSED in direct(old, "192.0.2.251").text


def test_trusted_proxy_addresses():
    networks = parse_networks("127.0.0.1, ::1, 10.0.0.0/24")
    assert is_trusted("127.0.0.1", networks) and is_trusted("::1", networks)
    assert is_trusted("10.0.0.17", networks) and is_trusted("", networks)  # a Unix socket
    assert not is_trusted("10.0.1.1", networks) and not is_trusted("203.0.113.9", networks)
    assert not is_trusted("not an address", networks)
    with pytest.raises(ValueError):
        parse_networks("localhost")


# --- over all addresses -----------------------------------------------------------------------


def test_many_wrong_codes_from_everywhere_raise_the_alarm_once_per_window(
        app, clock, households, monkeypatch, caplog):
    monkeypatch.setitem(app.config, "ACCESS_CODE_ALARM_THRESHOLD", 6)
    code = accounts.issue_access_code(None, households[0])
    for n in range(5):
        attempt(phone(app), miss(n, code), address=f"192.0.2.{n}")
    assert "accounts.access_code.alarm" not in audit_actions()
    attempt(phone(app), real(code), address="192.0.2.100")  # aimed at a code: counts too
    for n in range(5, 12):
        attempt(phone(app), miss(n, code), address=f"192.0.2.{n}")
    assert audit_actions().count("accounts.access_code.alarm") == 1
    assert "Access-code alarm" in caplog.text
    clock.advance(minutes=app.config["ACCESS_CODE_ALARM_WINDOW_MINUTES"], seconds=1)
    for n in range(20, 26):
        attempt(phone(app), miss(n, code), address=f"192.0.2.{n}")
    assert audit_actions().count("accounts.access_code.alarm") == 2


# --- the grace period of a used code ------------------------------------------------------------


def _lost_answer(app: Flask, first: CSRFClient) -> CSRFClient:
    """The same phone after the answer to its sign-in was lost: its device cookie, but not
    the session the answer carried."""
    assert first.get_cookie("device") is not None
    again = app.test_client()
    again.set_cookie("device", first.get_cookie("device").value)
    return again


def test_a_used_code_signs_in_again_from_the_same_phone_within_the_grace_period(
        app, clock, households):
    code = accounts.issue_access_code(None, households[0])
    first = phone(app)
    assert attempt(first, code).status_code == 302
    clock.advance(minutes=app.config["ACCESS_CODE_GRACE_MINUTES"] - 1)
    again = _lost_answer(app, first)
    r = attempt(again, code)
    assert r.status_code == 302 and r.headers["Location"] == "/welcome"
    assert again.get("/welcome").status_code == 200  # the password may still be chosen
    event = db.session.scalars(sa.select(AuditEvent).where(
        AuditEvent.action == "accounts.access_code.redeemed_again")).one()
    assert event.object_id == str(households[0].id) and '"seconds_after":' in event.payload


def test_the_grace_period_does_not_reach_another_client(app, clock, households):
    code = accounts.issue_access_code(None, households[0])
    first = phone(app)
    attempt(first, code)
    # Another address with the phone's device cookie, the same address with another browser,
    # and the same phone after the grace period: refused like any used code.
    assert INVALID in attempt(_lost_answer(app, first), code, address="192.0.2.9").text
    assert INVALID in attempt(phone(app), code).text
    clock.advance(minutes=app.config["ACCESS_CODE_GRACE_MINUTES"], seconds=1)
    assert INVALID in attempt(_lost_answer(app, first), code).text
    assert "accounts.access_code.redeemed_again" not in audit_actions()


def test_a_browser_without_the_device_cookie_gets_no_grace(app, households):
    code = accounts.issue_access_code(None, households[0])
    bare = app.test_client()  # never opened the form: no device cookie
    assert attempt(bare, code).status_code == 302
    assert INVALID in attempt(app.test_client(), code).text
    assert accounts.open_access_code(households[0]) is None
    used = db.session.scalars(sa.select(AccessCode)).one()
    assert used.used_by_client is None


def test_after_choosing_a_password_the_grace_sign_in_cannot_choose_again(app, households):
    code = accounts.issue_access_code(None, households[0])
    first = phone(app)
    attempt(first, code)
    first.post("/welcome", data={"username": "zhao-family", "password": "our new pass",
                                 "confirm": "our new pass"})
    again = _lost_answer(app, first)
    assert attempt(again, code).status_code == 302
    assert again.get("/welcome").headers["Location"] == "/account"
    assert accounts.resident_account_for(households[0]).check_password("our new pass")


def test_the_grace_period_ends_with_a_new_letter(app, households):
    code = accounts.issue_access_code(None, households[0])
    first = phone(app)
    attempt(first, code)
    accounts.issue_access_code(None, households[0])
    assert INVALID in attempt(_lost_answer(app, first), code).text


def test_messages_for_a_paused_code_are_translated(app, client, households):
    threshold = app.config["ACCESS_CODE_PER_CODE_THRESHOLD"]
    code = accounts.issue_access_code(None, households[0])
    for n in range(threshold):
        r = client.post("/code", data={"code": real(code, n + 1)},
                        headers={"Accept-Language": "zh-CN"})
    assert CODE_PAUSED not in r.text and "暂停" in r.text


def test_lockout_pause_lengths_are_capped(app, monkeypatch):
    monkeypatch.setitem(app.config, "ACCESS_CODE_PER_CODE_PAUSE_MINUTES", 60)
    monkeypatch.setitem(app.config, "ACCESS_CODE_PER_CODE_PAUSE_MAX_HOURS", 168)
    assert [lockout.code_pause_minutes(n) for n in (1, 2, 3, 8, 9, 40)] == [
        60, 120, 240, 7680, 10080, 10080]
    assert timedelta(minutes=lockout.code_pause_minutes(100)) == timedelta(days=7)
