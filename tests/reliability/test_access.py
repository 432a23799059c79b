"""A household can only ever act for itself; sign-in resists guessing; sessions end; cookies
and headers are what a browser needs to keep residents safe.

These tests use the suite's app in a rolled-back transaction (``transactional.rolled_back``),
unlike the live-server tests beside them.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from PIL import Image
from werkzeug.datastructures import FileStorage

from consult.accounts import service as accounts
from consult.audit import service as audit
from consult.audit.models import AuditEvent
from consult.ballots import service as ballots
from consult.ballots.models import BallotChannel
from consult.consultations import discussion, opinions, service
from consult.consultations.states import Action
from consult.core.models import utcnow
from consult.extensions import db
from consult.notices import service as notices
from consult.notices.models import Notice, NoticeKind, PrintKind
from consult.process import printing, workflow
from consult.registry.models import Household, Resident
from consult.uploads import service as uploads
from consult.uploads.models import Visibility
from tests import factories
from tests.access import EXPECTED, build_world, load_expectations
from tests.conftest import CSRFClient, audit_actions
from tests.reliability.transactional import rolled_back

EN = {"Accept-Language": "en"}
NOT_VIEWS = {"static", "bootstrap.static"}
load_expectations()


@pytest.fixture(autouse=True)
def _isolation(app: Flask) -> Iterator[None]:
    with rolled_back(app):
        yield


def png(color: str = "red") -> FileStorage:
    buffer = io.BytesIO()
    Image.new("RGB", (40, 30), color).save(buffer, format="PNG")
    buffer.seek(0)
    return FileStorage(stream=buffer, filename="scan.png", content_type="image/png")


# --- (a) one household never reads or acts for another ----------------------------------------

# What identifies household B and must never reach household A's screen.
SECRETS = ("乙户业主", "13900004321", "139****4321", "OWNER-KEY-B", "乙户家属", "13700001234",
           "137****1234", "household-b")
# URL arguments that name something a household owns (or staff-only records about one).
OWNED = ("household_id", "resident_id", "user_id", "opinion_id", "comment_id", "objection_id",
         "attachment_id", "job_id", "seq", "notice_id", "scope_id")


@pytest.fixture
def two_households() -> dict[str, Any]:
    """Households A and B of one compound, B with something of every kind: an account, a
    family member, a proxy ballot with its scanned authorisation, an opinion, a comment, an
    objection, a print job of the compound, audit events."""
    compound = factories.make_compound_with_households(per_building=2)
    a = compound.buildings[0].households[0]
    b = compound.buildings[0].households[1]
    b.owner_name, b.phone, b.owner_key = "乙户业主", "13900004321", "OWNER-KEY-B"
    db.session.add(Resident(household=b, name="乙户家属", relation="family",
                            phone="13700001234"))
    user_b = factories.make_user("resident", household=b, username="household-b")
    committee = factories.make_user("committee", compound=compound)

    voting = factories.make_consultation(compound, items=0)
    service.add_item(None, voting, service.item_data(title="更换供水管", description="",
                                                     cost="1000"))
    factories.walk_to(voting, "discussing")
    voting.vote_deadline = utcnow() + timedelta(days=5)
    workflow.apply(voting, Action.OPEN_VOTE, None)
    scan = uploads.store(committee, png(), consultation=voting, visibility=Visibility.STAFF)
    ballots.cast(committee, voting, b, {item.id: "agree" for item in voting.items},
                 BallotChannel.PROXY, proxy=ballots.Proxy("乙户代理人", "ID-PROXY-B", scan))

    soliciting = factories.make_consultation(compound, stage="soliciting")
    opinion = opinions.submit(user_b, soliciting, b, opinions.opinion_data(
        category="pipes", text="乙户的意见：水管漏水"))
    discussing = factories.make_consultation(compound, stage="discussing")
    item = discussing.items[0]
    comment = discussion.comment_as_household(user_b, item, b, "乙户的评论")

    published = factories.make_consultation(compound, items=1)
    factories.walk_to(published, "resolution_public")
    notice = db.session.scalars(sa.select(Notice).where(
        Notice.consultation_id == published.id, Notice.kind == NoticeKind.RESOLUTION)).one()
    objection = notices.file_objection(user_b, notice, b, "乙户的异议")
    job = printing.request_job(committee, soliciting, PrintKind.SOLICITATION)
    event = audit.record(committee, "registry.household.updated", b, {})
    db.session.flush()
    return {
        "compound": compound, "a": a, "b": b, "user_b": user_b, "committee": committee,
        "voting": voting, "soliciting": soliciting, "discussing": discussing,
        "published": published, "notice": notice,
        "ids": {
            "household_id": b.id, "resident_id": b.residents[0].id, "user_id": user_b.id,
            "building_id": b.building_id, "compound_id": compound.id, "opinion_id": opinion.id,
            "comment_id": comment.id, "objection_id": objection.id, "attachment_id": scan.id,
            "job_id": job.id, "seq": event.seq, "notice_id": notice.id,
            "scope_id": committee.scopes[0].id, "number": 1, "kind": "solicitation",
            "code": notice.verify_code,
        },
        "items": {"soliciting": soliciting.items[0].id, "discussing": item.id,
                  "voting": voting.items[0].id},
    }


def _household_tables() -> list[sa.Table]:
    return [t for t in db.metadata.sorted_tables if "household_id" in t.c]


def footprint(household: Household) -> dict[str, list[tuple[Any, ...]]]:
    """Every stored row that belongs to the household, in a comparable form."""
    rows: dict[str, list[tuple[Any, ...]]] = {}
    for table in _household_tables():
        rows[table.name] = sorted(tuple(r) for r in db.session.execute(
            sa.select(table).where(table.c.household_id == household.id)))
    rows["household"] = [tuple(r) for r in db.session.execute(
        sa.select(Household.__table__).where(Household.id == household.id))]
    ballot, choice = db.metadata.tables["ballot"], db.metadata.tables["ballot_choice"]
    rows["ballot_choice"] = sorted(tuple(r) for r in db.session.execute(
        sa.select(choice).join(ballot, ballot.c.id == choice.c.ballot_id)
        .where(ballot.c.household_id == household.id)))
    return rows


def _consultation_for(world: dict[str, Any], args: set[str]) -> Any:
    if "opinion_id" in args:
        return world["soliciting"]
    if "comment_id" in args or "item_id" in args:
        return world["discussing"]
    return world["voting"]


def guesses(app: Flask, world: dict[str, Any]) -> Iterator[tuple[str, str, str]]:
    """(endpoint, method, url) for every route that names something a household owns: with
    household B's real ids, and with the ids just below and above them."""
    for rule in app.url_map.iter_rules():
        if rule.endpoint in NOT_VIEWS or not set(rule.arguments) & set(OWNED):
            continue
        consultation = _consultation_for(world, set(rule.arguments))
        base = {**world["ids"], "consultation_id": consultation.id}
        if "item_id" in rule.arguments:
            base["item_id"] = (world["items"]["discussing"] if consultation is world["discussing"]
                               else world["items"]["voting"])
        values = {arg: base[arg] for arg in rule.arguments}
        variants = [values]
        for arg in set(rule.arguments) & set(OWNED):
            if isinstance(values[arg], int):
                variants += [{**values, arg: values[arg] + d} for d in (-2, -1, 1, 2)
                             if values[arg] + d > 0]
        for method in sorted(rule.methods & {"GET", "POST"}):
            for variant in variants:
                yield rule.endpoint, method, rule.build(variant)[1]


def test_a_household_cannot_read_or_act_for_another_by_guessing_ids(
        app, client, login_as, two_households):
    world = two_households
    a, b = world["a"], world["b"]
    before = footprint(b)
    last_seq = db.session.scalar(sa.select(sa.func.max(AuditEvent.seq))) or 0
    user_a = login_as("resident", household=a)
    tried: dict[int, int] = {}
    for endpoint, method, url in guesses(app, world):
        response = client.open(url, method=method, data={"household_id": b.id} if method ==
                               "POST" else None, headers=EN)
        status = response.status_code
        tried[status] = tried.get(status, 0) + 1
        assert status != 500, (method, url)
        body = response.get_data()  # bytes: PDFs and photos too
        leaked = [s for s in SECRETS if s.encode() in body]
        assert not leaked, (method, url, leaked)
        if url.startswith("/api/"):
            # The API reads no cookie: signed in on the web, the household is nobody there,
            # and only what is public answers.
            if "anonymous" not in EXPECTED[endpoint][1]:
                assert status in (401, 404, 405), (method, url, status)
        elif "resident" not in EXPECTED[endpoint][1]:
            assert status in (403, 404, 405), (method, url, status)
    assert tried.get(403, 0) + tried.get(404, 0) > 80, tried  # really refused, not crashing
    # Public pages may show B's opinion or comment (by building and room only); B's proxy
    # authorisation, a scan kept for the committee, is not among them.
    assert client.get(f"/files/{world['ids']['attachment_id']}").status_code == 403
    assert footprint(b) == before
    # Every event those requests wrote was the resident's own doing, for their own household.
    for event in db.session.scalars(sa.select(AuditEvent).where(AuditEvent.seq > last_seq)):
        assert event.actor_id in (user_a.id, None), event.action
        assert (event.object_type, event.object_id) not in (
            ("household", str(b.id)), ("user_account", str(world["user_b"].id))), event.action
        assert f'"household_id":{b.id}' not in event.payload.replace(" ", ""), event.action


def test_a_household_naming_another_in_its_forms_still_acts_only_for_itself(
        client, login_as, two_households):
    world = two_households
    a, b = world["a"], world["b"]
    before = footprint(b)
    login_as("resident", household=a)
    smuggled = {"household_id": b.id, "household": b.id, "user_id": world["user_b"].id,
                "building_id": b.building_id, "unit": b.unit, "room": b.room}
    voting, item = world["voting"], world["items"]["voting"]
    review = client.post(f"/consultations/{voting.id}/vote",
                         data={**smuggled, f"item_{item}": "disagree"}, headers=EN)
    assert review.status_code == 200 and b.label not in review.text
    token = re.search(r'name="submission" type="hidden" value="([^"]+)"', review.text)
    assert token
    r = client.post(f"/consultations/{voting.id}/vote/confirm",
                    data={**smuggled, f"item_{item}": "disagree", "submission": token.group(1)})
    assert r.status_code == 302
    assert ballots.ballot_of(voting, a.id).choices[0].choice == "disagree"
    assert ballots.ballot_of(voting, b.id).choices[0].choice == "agree"

    soliciting = world["soliciting"]
    r = client.post(f"/consultations/{soliciting.id}/opinions/new",
                    data={**smuggled, "category": "roads", "text": "甲户的意见"})
    assert r.status_code == 302
    opinion_id = world["ids"]["opinion_id"]
    client.post(f"/consultations/{soliciting.id}/opinions/{opinion_id}/support", data=smuggled)
    discussing = world["discussing"]
    r = client.post(f"/consultations/{discussing.id}/items/{world['items']['discussing']}"
                    "/comments", data={**smuggled, "text": "甲户的回复",
                                       "parent_id": world["ids"]["comment_id"]})
    assert r.status_code == 302
    r = client.post(f"/notices/{world['notice'].id}/objections",
                    data={**smuggled, "text": "甲户的异议"})
    assert r.status_code == 302
    client.post("/account", data={**smuggled, "password": "a new password",
                                  "confirm": "a new password"})
    assert footprint(b) == before  # nothing of B's changed, and nothing new is B's
    # What was written, was written for household A.
    for name in ("opinion", "opinion_support", "comment", "objection"):
        table = db.metadata.tables[name]
        assert db.session.scalar(sa.select(sa.func.count()).select_from(table).where(
            table.c.household_id == a.id)) == 1, name
    assert world["user_b"].check_password(factories.PASSWORD)


# --- (b) lockout after repeated failures --------------------------------------------------------


def _login(client: CSRFClient, username: str, password: str) -> Any:
    return client.post("/login", data={"username": username, "password": password}, headers=EN)


def test_wrong_passwords_lock_the_account_for_a_while_and_say_how_long(app, client, clock):
    user = factories.make_user("committee", username="li")
    threshold = app.config["LOGIN_LOCKOUT_THRESHOLD"]
    minutes = app.config["LOGIN_LOCKOUT_MINUTES"]
    for _ in range(threshold - 1):
        r = _login(client, "li", "wrong password")
        assert "Wrong username or password" in r.text and user.locked_until is None
    r = _login(client, "li", "wrong password")
    assert "this account is locked until " in r.text and f"(in {minutes} minutes)" in r.text
    assert user.locked_until is not None
    locked = audit_actions()[-1]
    assert locked == "accounts.user.locked"
    # The right password does not help while the lock lasts…
    r = _login(client, "li", factories.PASSWORD)
    assert r.status_code == 200 and "locked" in r.text and "/login" in r.request.path
    assert client.get("/account").status_code == 302
    clock.advance(minutes=minutes - 1)
    assert "(in 1 minute)" in _login(client, "li", factories.PASSWORD).text
    # …and works again once it is over, starting a fresh count.
    clock.advance(minutes=1, seconds=1)
    assert _login(client, "li", factories.PASSWORD).status_code == 302
    assert user.failed_logins == 0 and user.locked_until is None
    event = db.session.scalars(sa.select(AuditEvent).where(
        AuditEvent.action == "accounts.user.locked")).one()
    assert event.object_id == str(user.id) and f'"failures":{threshold}' in event.payload


def test_an_unknown_username_or_a_passwordless_account_is_never_locked(app, client):
    threshold = app.config["LOGIN_LOCKOUT_THRESHOLD"]
    household = factories.make_compound_with_households(1).buildings[0].households[0]
    resident = factories.make_user("resident", household=household, username="coded",
                                   password=None)
    for _ in range(threshold + 1):
        _login(client, "nobody-here", "x")
        _login(client, "coded", "x")
    assert resident.locked_until is None
    assert "accounts.user.locked" not in audit_actions()


def test_a_committee_member_unlocks_a_households_account_from_its_page(client, login_as,
                                                                       clock):
    compound = factories.make_compound_with_households(1)
    household = compound.buildings[0].households[0]
    resident = factories.make_user("resident", household=household, username="wangjia")
    resident.locked_until = utcnow() + timedelta(minutes=10)
    other = factories.make_compound("别的小区")
    login_as("committee", compound=other)
    assert client.post(f"/accounts/{resident.id}/unlock").status_code == 403
    member = login_as("committee", compound=compound)
    page = client.get(f"/registry/households/{household.id}", headers=EN).text
    assert "Locked after too many wrong passwords" in page and "/unlock" in page
    r = client.post(f"/accounts/{resident.id}/unlock", headers=EN)
    assert r.status_code == 302 and r.headers["Location"].endswith(
        f"/registry/households/{household.id}")
    assert resident.locked_until is None
    event = db.session.scalars(sa.select(AuditEvent).where(
        AuditEvent.action == "accounts.user.unlocked")).one()
    assert event.actor_id == member.id and event.object_id == str(resident.id)
    assert "Locked after" not in client.get(f"/registry/households/{household.id}",
                                            headers=EN).text
    client.post("/logout")
    assert _login(client, "wangjia", factories.PASSWORD).status_code == 302


def test_only_an_administrator_unlocks_a_staff_account(client, login_as):
    compound = factories.make_compound()
    colleague = factories.make_user("committee", compound=compound, username="colleague")
    colleague.locked_until = utcnow() + timedelta(minutes=10)
    login_as("committee", compound=compound)
    assert client.post(f"/accounts/{colleague.id}/unlock").status_code == 403
    assert colleague.locked_until is not None
    login_as("admin")
    page = client.get(f"/admin/users/{colleague.id}", headers=EN).text
    assert "Locked after too many wrong passwords" in page
    r = client.post(f"/accounts/{colleague.id}/unlock?back=account", headers=EN)
    assert r.headers["Location"].endswith(f"/admin/users/{colleague.id}")
    assert colleague.locked_until is None and audit_actions() == ["accounts.user.unlocked"]


def _code(client: CSRFClient, code: str, address: str = "203.0.113.7", base_url: str = "",
          **headers: str) -> Any:
    return client.post("/code", data={"code": code}, headers={**EN, **headers},
                       environ_base={"REMOTE_ADDR": address},
                       **({"base_url": base_url} if base_url else {}))


# As a browser reaches production: HTTPS through the proxy, same-origin Referer (Flask-WTF
# checks it on HTTPS, and the Referrer-Policy lets the browser send it).
HTTPS = "https://localhost"
PROXIED = {"X-Forwarded-Proto": "https", "Referer": f"{HTTPS}/"}


def _miss(n: int, *codes: str) -> str:
    """A wrong code whose first five digits (its selector) name none of ``codes``."""
    taken, s = {c[:5] for c in codes}, n
    while f"{s % 10 ** 5:05d}" in taken:
        s += 1
    return f"{s % 10 ** 5:05d}{n % 10 ** 7:07d}"


def test_wrong_access_codes_pause_guessing_from_that_address(app, client, clock, monkeypatch):
    monkeypatch.setitem(app.config, "ACCESS_CODE_RATE_LIMIT", "1000 per minute")
    threshold = app.config["ACCESS_CODE_LOCKOUT_THRESHOLD"]
    pause = app.config["ACCESS_CODE_LOCKOUT_MINUTES"]
    compound = factories.make_compound_with_households(2)
    mine, neighbours = compound.buildings[0].households[:2]
    code = accounts.issue_access_code(None, mine)
    older = factories.make_older_access_code(neighbours)
    for n in range(threshold - 1):
        r = _code(client, _miss(n, code))
        assert "not valid" in r.text
    assert "1 more wrong code and signing in with a code will be paused" in r.text
    r = _code(client, _miss(999, code))
    assert "paused until" in r.text and f"(in {pause} minutes)" in r.text
    assert audit_actions()[-1] == "accounts.client.locked"
    # Paused: guesses are not tried, nor is a code of the older kind, which only this count
    # protects (it stays usable)…
    r = _code(client, older)
    assert r.status_code == 200 and "paused until" in r.text
    assert accounts.open_access_code(neighbours) is not None
    # …and X-Forwarded-For is not believed without a proxy. Another address is not affected.
    assert "paused" in _code(client, older, **{"X-Forwarded-For": "198.51.100.1"}).text
    assert _code(client, older, address="203.0.113.99").status_code == 302
    client.post("/logout")
    # A right code of the current kind is let through: the code's own count protects it, and
    # an address shared by many phones must not keep every household out.
    assert _code(client, code).status_code == 302
    locked = db.session.scalars(sa.select(AuditEvent).where(
        AuditEvent.action == "accounts.client.locked")).one()
    assert "203.0.113.7" not in locked.payload  # the address itself is not kept


def test_wrong_codes_are_counted_within_a_window(app, client, clock, monkeypatch):
    monkeypatch.setitem(app.config, "ACCESS_CODE_RATE_LIMIT", "1000 per minute")
    threshold = app.config["ACCESS_CODE_LOCKOUT_THRESHOLD"]
    for n in range(threshold - 1):
        _code(client, _miss(n))
    clock.advance(minutes=app.config["ACCESS_CODE_LOCKOUT_WINDOW_MINUTES"], seconds=1)
    r = _code(client, "999999999999")
    assert "paused" not in r.text and "accounts.client.locked" not in audit_actions()


# --- (c) sessions expire -------------------------------------------------------------------------


def test_a_staff_session_ends_after_idle_minutes(app, client, clock):
    factories.make_user("committee", username="li", compound=factories.make_compound())
    idle = app.config["SESSION_IDLE_MINUTES"]
    r = client.post("/login", data={"username": "li", "password": factories.PASSWORD,
                                    "remember": "y"})
    assert r.status_code == 302
    assert "Expires" not in r.headers["Set-Cookie"]  # staff are never kept signed in
    clock.advance(minutes=idle - 1)
    assert client.get("/registry/").status_code == 200  # activity keeps it alive
    clock.advance(minutes=idle - 1)
    assert client.get("/registry/").status_code == 200
    clock.advance(minutes=idle, seconds=1)
    r = client.get("/registry/", headers=EN)
    assert r.status_code == 302 and "/login" in r.headers["Location"]
    page = client.get(r.headers["Location"], headers=EN).text
    assert f"You were signed out after {idle} minutes without activity" in page


def test_a_residents_remembered_phone_stays_signed_in_as_configured(app, client, clock):
    household = factories.make_compound_with_households(1).buildings[0].households[0]
    days = app.config["PERMANENT_SESSION_LIFETIME"].days
    r = client.post("/code", data={"code": accounts.issue_access_code(None, household)})
    assert r.status_code == 302
    cookie = r.headers["Set-Cookie"]
    assert "Expires=" in cookie and "HttpOnly" in cookie and "SameSite=Lax" in cookie
    clock.advance(days=days - 1)
    assert client.get("/account").status_code == 200  # far longer than a staff session
    clock.advance(days=days - 1)
    assert client.get("/account").status_code == 200  # kept alive by use
    clock.advance(days=days, seconds=1)
    r = client.get("/account", headers=EN)
    assert r.status_code == 302 and "/login" in r.headers["Location"]
    page = client.get("/", headers=EN).text
    assert f"not used for {days} days" in page


def test_a_resident_who_did_not_ask_to_be_remembered_idles_out_like_staff(app, client, clock):
    household = factories.make_compound_with_households(1).buildings[0].households[0]
    factories.make_user("resident", household=household, username="zhao")
    r = client.post("/login", data={"username": "zhao", "password": factories.PASSWORD})
    assert r.status_code == 302 and "Expires" not in r.headers["Set-Cookie"]
    clock.advance(minutes=app.config["SESSION_IDLE_MINUTES"], seconds=1)
    assert client.get("/account").status_code == 302


# --- (d) cookies in production, (e) security headers ------------------------------------------


def _cookie(response: Any, name: str) -> str:
    found = [c for c in response.headers.getlist("Set-Cookie") if c.startswith(f"{name}=")]
    assert found, f"no {name} cookie"
    return found[0]


def test_production_cookies_are_secure_httponly_and_samesite(production_app):
    client = production_app.test_client()
    with production_app.app_context():
        household = factories.make_compound_with_households(1).buildings[0].households[0]
        code = accounts.issue_access_code(None, household)
        db.session.commit()  # into the test's transaction, which is still rolled back at the end
    https = {"base_url": HTTPS, "headers": PROXIED}
    r = client.post("/code", data={"code": code}, **https)
    assert r.status_code == 302, re.findall(r'invalid-feedback[^>]*>([^<]*)', r.text)
    for name in ("session", "device"):
        cookie = _cookie(r, name)
        assert "Secure" in cookie and "HttpOnly" in cookie and "SameSite=Lax" in cookie
        assert "Expires=" in cookie  # the resident's phone is remembered
    r = client.post("/language", data={"lang": "en"}, **https)
    cookie = _cookie(r, "lang")
    assert "Secure" in cookie and "HttpOnly" in cookie and "SameSite=Lax" in cookie
    r = client.post("/text-size", data={"size": "large"}, **https)
    cookie = _cookie(r, "text")
    assert "Secure" in cookie and "HttpOnly" in cookie and "SameSite=Lax" in cookie


def test_in_production_https_is_required_from_then_on(production_app, app):
    https = production_app.test_client().get("/", base_url=HTTPS, headers=PROXIED)
    assert https.headers["Strict-Transport-Security"] == "max-age=31536000"
    # Not on plain HTTP, where browsers ignore it, nor outside production.
    plain = production_app.test_client().get("/", base_url="http://localhost")
    assert "Strict-Transport-Security" not in plain.headers
    assert "Strict-Transport-Security" not in app.test_client().get("/", base_url=HTTPS).headers


def test_in_production_the_proxys_client_address_counts(production_app, monkeypatch):
    monkeypatch.setitem(production_app.config, "ACCESS_CODE_RATE_LIMIT", "1000 per minute")
    client = production_app.test_client()
    threshold = production_app.config["ACCESS_CODE_LOCKOUT_THRESHOLD"]

    def attempt(code: str, client_address: str) -> Any:
        return _code(client, code, address="127.0.0.1", base_url=HTTPS,
                     **{**PROXIED, "X-Forwarded-For": client_address})

    for n in range(threshold):
        attempt(f"{n:012d}", "198.51.100.20")
    assert "paused" in attempt("0" * 12, "198.51.100.20").text
    # Another resident behind the same proxy is not locked out with the first.
    r = attempt("1" * 12, "198.51.100.21")
    assert r.status_code == 200 and "paused" not in r.text and "not valid" in r.text


def _check_headers(response: Any, what: str) -> None:
    csp = response.headers.get("Content-Security-Policy", "")
    directives = dict([*d.strip().split(" ", 1), ""][:2] for d in csp.split(";") if d.strip())
    if directives.get("default-src") == "'none'":  # an uploaded file: nothing in it may run
        assert "sandbox" in directives and not directives.keys() & {"script-src", "object-src"}
    else:
        assert "'unsafe-inline'" not in directives.get("script-src", "x"), what
        assert directives.get("script-src") == "'self'", what
        assert directives.get("object-src") == "'none'", what
    assert directives.get("frame-ancestors") == "'none'", what
    assert response.headers.get("X-Content-Type-Options") == "nosniff", what
    assert response.headers.get("Referrer-Policy") in ("same-origin", "no-referrer",
                                                       "strict-origin-when-cross-origin"), what
    assert response.headers.get("X-Frame-Options") == "DENY", what
    assert response.headers.get("X-Request-ID"), what


def test_every_page_carries_the_security_headers(app, client, login_as, monkeypatch):
    world = build_world()
    checked = 0
    # Anonymous visitors mostly meet redirects to sign in; those are checked below.
    for role in ("resident", "admin"):
        if role == "resident":
            login_as("resident", household=world["household"])
        elif role == "admin":
            login_as("admin")
        for endpoint, (method, _roles) in sorted(EXPECTED.items()):
            if method != "GET":
                continue
            rule = next(r for r in app.url_map.iter_rules() if r.endpoint == endpoint)
            url = rule.build({arg: world[arg] for arg in rule.arguments})[1]
            _check_headers(client.get(url), f"{role} {url}")
            checked += 1
    client.post("/logout")
    for url in ("/no/such/page", "/static/css/consult.css", "/healthz", "/registry/",
                "/bootstrap/static/css/bootstrap.min.css"):
        _check_headers(client.get(url), url)
    _check_headers(client.post("/language", data={"lang": "en"}), "POST /language")
    _check_headers(client.post("/registry/communities/new", data={}, csrf=False), "CSRF 400")
    _check_headers(client.delete("/"), "405")
    from consult.registry import service as registry

    monkeypatch.setattr(registry, "compounds_in_scope", lambda *a, **k: 1 / 0)
    _check_headers(client.get("/registry/"), "500")
    assert checked > 100


# What no browser or proxy may keep, named here independently of the policy table: whole
# blueprints (so that a new registry or account page is covered by itself), the audit trail's
# pages, and every page with a household's ballot or the committee's ballot lists and forms.
NEVER_STORED_BLUEPRINTS = ("registry.", "accounts.")
NEVER_STORED = {"audit.index", "audit.event", "ballots.vote", "ballots.confirm",
                "ballots.receipt", "ballots.index", "ballots.enter", "ballots.export_roll"}


def test_private_pages_are_never_stored(app, client):
    """Every route of the registry and the accounts, the audit pages and every ballot page,
    in every method it answers, as a role allowed there: Cache-Control: no-store, also on
    the refusals and redirects a submission may get."""
    world = build_world()
    users = {"resident": factories.make_user("resident", household=world["household"]),
             **{role: factories.make_user(role, compound=world["compound"])
                for role in ("committee", "supervisor", "admin")}}
    checked, failures = [], []
    for rule in sorted(app.url_map.iter_rules(), key=lambda r: r.endpoint):
        endpoint = rule.endpoint
        if not (endpoint.startswith(NEVER_STORED_BLUEPRINTS) or endpoint in NEVER_STORED):
            continue
        url = rule.build({arg: world[arg] for arg in rule.arguments})[1]
        allowed = EXPECTED[endpoint][1]
        role = next(r for r in (*users, "anonymous") if r in allowed)
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            if role in users:
                factories.sign_in(client, users[role])
            else:
                with client.session_transaction() as sess:
                    sess.clear()
            response = client.open(url, method=method, data={} if method == "POST" else None)
            checked.append(f"{method} {endpoint}")
            if method == "GET" and role in users and response.status_code in (301, 302):
                # A page the role may open must be the page itself, not a way to sign in.
                assert "/login" not in response.headers.get("Location", ""), (url, role)
            if response.headers.get("Cache-Control") != "no-store":
                failures.append(f"{method} {url} as {role}: {response.status_code}, "
                                f"Cache-Control {response.headers.get('Cache-Control')!r}")
    assert len(checked) > 40, checked
    assert not failures, "\n".join(failures)


def test_a_households_own_pages_are_never_stored_and_public_pages_may_be(client, login_as):
    """The review screen (the household's answers before sending), the receipt, and the home
    and consultation pages showing its receipt code; the same public pages for a visitor
    carry no such header."""
    world = build_world()
    consultation_id = world["consultation_id"]
    for url in ("/", f"/consultations/{consultation_id}", f"/notices/{world['notice_id']}"):
        assert "no-store" not in client.get(url).headers.get("Cache-Control", ""), url
    login_as("resident", household=world["household"])
    item = world["item_id"]
    review = client.post(f"/consultations/{consultation_id}/vote",
                         data={f"item_{item}": "agree"}, headers=EN)
    assert "Send my vote" in review.text and review.headers["Cache-Control"] == "no-store"
    token = re.search(r'name="submission" type="hidden" value="([^"]+)"', review.text)[1]
    r = client.post(f"/consultations/{consultation_id}/vote/confirm",
                    data={f"item_{item}": "agree", "submission": token})
    assert r.status_code == 302 and r.headers["Cache-Control"] == "no-store"
    for url in (r.headers["Location"], "/", f"/consultations/{consultation_id}"):
        page = client.get(url, headers=EN)
        assert page.status_code == 200 and page.headers["Cache-Control"] == "no-store", url
    assert "receipt" in client.get("/", headers=EN).text.lower()


def test_the_policy_forbids_inline_scripts_everywhere(client):
    # A page can only run scripts served by the app itself: no inline, no eval, no CDN.
    csp = client.get("/").headers["Content-Security-Policy"]
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp and "http" not in csp
