"""Every URL rule × every role: who gets in, who is refused, who is sent to sign in.

A route missing from EXPECTED fails ``test_every_route_has_an_expected_access_entry``: adding a
page means deciding here who may open it.
"""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask

from consult.accounts.models import UserScope
from consult.audit import service as audit
from consult.extensions import db
from consult.registry.models import Resident
from tests import factories

ROLES = ("anonymous", "resident", "committee", "committee_elsewhere", "supervisor", "admin")
EVERYONE = frozenset(ROLES)
SIGNED_IN = EVERYONE - {"anonymous"}
STAFF_ROLE = frozenset({"committee", "committee_elsewhere", "supervisor", "admin"})
READERS = frozenset({"committee", "supervisor", "admin"})  # in scope of the test compound
EDITORS = frozenset({"committee", "admin"})
ADMIN = frozenset({"admin"})

# endpoint → (method, roles that get in)
EXPECTED: dict[str, tuple[str, frozenset[str]]] = {
    "main.index": ("GET", EVERYONE),
    "main.healthz": ("GET", EVERYONE),
    "main.set_language": ("POST", EVERYONE),
    "accounts.login": ("GET", EVERYONE),
    "accounts.code_login": ("GET", EVERYONE),
    "accounts.logout": ("POST", SIGNED_IN),
    "accounts.activate": ("GET", SIGNED_IN),
    "accounts.profile": ("GET", SIGNED_IN),
    "accounts.users": ("GET", ADMIN),
    "accounts.user_new": ("GET", ADMIN),
    "accounts.user_edit": ("GET", ADMIN),
    "accounts.user_password": ("POST", ADMIN),
    "accounts.scope_add": ("POST", ADMIN),
    "accounts.scope_remove": ("POST", ADMIN),
    "registry.index": ("GET", STAFF_ROLE),
    "registry.community_new": ("GET", ADMIN),
    "registry.compound_new": ("GET", ADMIN),
    "registry.compound": ("GET", READERS),
    "registry.building_new": ("GET", EDITORS),
    "registry.building_edit": ("GET", EDITORS),
    "registry.household_new": ("GET", EDITORS),
    "registry.household": ("GET", READERS),
    "registry.household_edit": ("GET", EDITORS),
    "registry.resident_new": ("GET", EDITORS),
    "registry.resident_edit": ("GET", EDITORS),
    "registry.resident_delete": ("POST", EDITORS),
    "registry.access_code_issue": ("POST", EDITORS),
    "registry.access_code_revoke": ("POST", EDITORS),
    "registry.import_households": ("GET", EDITORS),
    "registry.export_households": ("POST", READERS),
    "audit.index": ("GET", STAFF_ROLE),
    "audit.event": ("GET", READERS),
}
NOT_VIEWS = {"static", "bootstrap.static"}


def app_endpoints(app: Flask) -> set[str]:
    return {rule.endpoint for rule in app.url_map.iter_rules()} - NOT_VIEWS


def test_every_route_has_an_expected_access_entry(app):
    assert app_endpoints(app) == set(EXPECTED)


def test_every_view_declares_its_policy_action(app):
    missing = [e for e in app_endpoints(app) if not hasattr(app.view_functions[e], "policy_action")]
    assert missing == []


def test_every_post_route_requires_a_csrf_token(app, client, login_as):
    login_as("admin")
    for rule in app.url_map.iter_rules():
        if "POST" in rule.methods and rule.endpoint not in NOT_VIEWS:
            url = rule.build({arg: 1 for arg in rule.arguments})[1]
            assert client.post(url, data={}, csrf=False).status_code == 400, rule.endpoint


@pytest.fixture
def world() -> dict[str, Any]:
    compound = factories.make_compound_with_households(per_building=2)
    household = compound.buildings[0].households[0]
    resident = Resident(household=household, name="甲", relation="owner")
    db.session.add(resident)
    staff = factories.make_user("committee", compound=compound)
    db.session.flush()
    scope = db.session.scalars(db.select(UserScope).where(UserScope.user_id == staff.id)).one()
    event = audit.record(None, "registry.household.updated", household, {})
    return {
        "compound": compound, "compound_id": compound.id,
        "building_id": compound.buildings[0].id, "household_id": household.id,
        "resident_id": resident.id, "user_id": staff.id, "scope_id": scope.id,
        "seq": event.seq,
    }


def sign_in(login_as: Any, role: str, world: dict[str, Any]) -> None:
    if role == "anonymous":
        return
    if role == "committee_elsewhere":
        login_as("committee", compound=factories.make_compound("别的小区"))
    elif role == "resident":
        login_as("resident", household=world["compound"].buildings[1].households[0])
    else:
        login_as(role, compound=world["compound"])


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("endpoint", sorted(EXPECTED))
def test_access(app, client, login_as, world, endpoint, role):
    method, allowed = EXPECTED[endpoint]
    rule = next(r for r in app.url_map.iter_rules() if r.endpoint == endpoint)
    url = rule.build({arg: world[arg] for arg in rule.arguments})[1]
    sign_in(login_as, role, world)
    response = client.open(url, method=method, data={} if method == "POST" else None)
    sent_to_login = response.status_code == 302 and "/login" in response.headers["Location"]
    if role in allowed:
        assert response.status_code not in (401, 403, 404) and not sent_to_login, (
            f"{role} should reach {endpoint}: {response.status_code}")
    elif role == "anonymous":
        assert sent_to_login, f"anonymous should be sent to sign in at {endpoint}"
    else:
        assert response.status_code == 403, f"{role} must be refused at {endpoint}"
