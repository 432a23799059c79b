"""Every URL rule × every role: who gets in, who is refused, who is sent to sign in.

The expectations live in ``tests/access/`` (one module per domain). A route missing from them
fails ``test_every_route_has_an_expected_access_entry``: adding a page means deciding there who
may open it.
"""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask

from tests import factories
from tests.access import EXPECTED, ROLES, build_world, load_expectations

load_expectations()

NOT_VIEWS = {"static", "bootstrap.static"}


def app_endpoints(app: Flask) -> set[str]:
    return {rule.endpoint for rule in app.url_map.iter_rules()} - NOT_VIEWS


def test_every_route_has_an_expected_access_entry(app):
    assert app_endpoints(app) == set(EXPECTED)


def test_every_view_declares_its_policy_action(app):
    missing = [e for e in app_endpoints(app) if not hasattr(app.view_functions[e], "policy_action")]
    assert missing == []


@pytest.fixture
def world() -> dict[str, Any]:
    return build_world()


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
