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
from tests.access import EXPECTED, REFUSED_AS, ROLES, build_world, load_expectations

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


def user_for(role: str, world: dict[str, Any]) -> Any:
    """A new account of ``role`` (None for anonymous), scoped as the matrix expects."""
    if role == "anonymous":
        return None
    if role == "committee_elsewhere":
        return factories.make_user("committee", compound=factories.make_compound("别的小区"))
    if role == "resident":
        return factories.make_user("resident", household=world["household"])
    return factories.make_user(role, compound=world["compound"])


def is_api(url: str) -> bool:
    return url.startswith("/api/")


def api_headers(user: Any) -> dict[str, str]:
    """A bearer token of ``user`` from a fresh API sign-in (none for anonymous)."""
    from consult.accounts import tokens

    if user is None:
        return {}
    return {"Authorization": f"Bearer {tokens.issue(user, tokens.API_PASSWORD).access_token}"}


def url_of(app: Flask, endpoint: str, world: dict[str, Any]) -> str:
    rule = next(r for r in app.url_map.iter_rules() if r.endpoint == endpoint)
    return rule.build({arg: world[arg] for arg in rule.arguments})[1]


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("endpoint", sorted(EXPECTED))
def test_access(app, client, world, endpoint, role):
    """Pages with the browser's cookie; the JSON API with a bearer token, where anonymous is
    answered 401 instead of being sent to the sign-in page."""
    method, allowed = EXPECTED[endpoint]
    url = url_of(app, endpoint, world)
    user = user_for(role, world)
    if is_api(url):
        from tests.access.api import API_BODIES

        body = API_BODIES.get(endpoint, {}) if method in ("POST", "PUT") else None
        response = client.open(url, method=method, headers=api_headers(user), json=body)
        sent_to_login = response.status_code == 401
    else:
        if user is not None:
            factories.sign_in(client, user)
        response = client.open(url, method=method, data={} if method == "POST" else None)
        sent_to_login = response.status_code == 302 and "/login" in response.headers["Location"]
    if role in allowed:
        assert response.status_code not in (401, 403, 404) and not sent_to_login, (
            f"{role} should reach {endpoint}: {response.status_code}")
    elif role == "anonymous":
        assert sent_to_login, f"anonymous should be sent to sign in at {endpoint}"
    else:
        refused = REFUSED_AS.get(endpoint, 403)
        assert response.status_code == refused, f"{role} must be refused at {endpoint}"


API_CHANGES = sorted(e for e, (method, allowed) in EXPECTED.items()
                     if e.startswith("api_") and method in ("POST", "PUT", "DELETE")
                     and allowed != frozenset(ROLES))


@pytest.mark.parametrize("role", [r for r in ROLES if r != "anonymous"])
@pytest.mark.parametrize("endpoint", API_CHANGES)
def test_api_changes_ignore_the_browser_cookie(app, client, world, endpoint, role):
    """A signed-in browser is nobody to the API: its cookie (which another site's page could
    make it send) opens no change there, so the API needs no CSRF token."""
    method, _allowed = EXPECTED[endpoint]
    factories.sign_in(client, user_for(role, world))
    response = client.open(url_of(app, endpoint, world), method=method, json={})
    assert response.status_code == 401
