"""Every URL rule × every role: who gets in, who is refused, who is sent to sign in.

The expectations live in ``tests/access/`` (one module per domain). A route missing from them
fails ``test_every_route_has_an_expected_access_entry``: adding a page means deciding there who
may open it.
"""

from __future__ import annotations

import importlib
import pkgutil
from typing import Any

import pytest
from flask import Flask

import tests.access
from consult.accounts.models import UserScope
from consult.audit import service as audit
from consult.extensions import db
from consult.registry.models import Resident
from tests import factories
from tests.access import EXPECTED, ROLES, WORLD_BUILDERS

for module in pkgutil.iter_modules(tests.access.__path__):
    importlib.import_module(f"tests.access.{module.name}")

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
    world: dict[str, Any] = {
        "compound": compound, "compound_id": compound.id,
        "building_id": compound.buildings[0].id, "household_id": household.id,
        "resident_id": resident.id, "user_id": staff.id, "scope_id": scope.id,
        "seq": event.seq,
        # The signed-in resident's own household.
        "household": compound.buildings[1].households[0],
    }
    for build in WORLD_BUILDERS:
        build(world)
    return world


def sign_in(login_as: Any, role: str, world: dict[str, Any]) -> None:
    if role == "anonymous":
        return
    if role == "committee_elsewhere":
        login_as("committee", compound=factories.make_compound("别的小区"))
    elif role == "resident":
        login_as("resident", household=world["household"])
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
