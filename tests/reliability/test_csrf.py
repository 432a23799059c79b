"""No state-changing request is accepted without the session's own CSRF token.

For every rule of the URL map with a method other than GET/HEAD/OPTIONS, the test signs in as a
role the access matrix lets use it, in a world where the route's consultation is in the stage
its form needs, and sends the values a careful user would enter in its form:

- without a token, with a token of another session (well-formed and signed by this site), and
  with a token signed by another key: each is refused with 400 and the site's "form has
  expired" page in the user's language, and no row of any table (the audit trail included)
  has changed;
- with the session's token: the same request is not refused for its token, so the refusals
  above are the token's doing.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator

import pytest
from flask import Flask
from flask_babel import force_locale, gettext
from itsdangerous import URLSafeTimedSerializer

from tests.reliability import hostile as h

CSRF_MESSAGE = ("The form has expired or was not sent from this site. Please reload the page "
                "and submit it again.")


@pytest.fixture(autouse=True)
def _isolation(request: pytest.FixtureRequest, app: Flask) -> Iterator[None]:
    """Each test in a rolled-back transaction, as in the rest of the suite."""
    yield from h.suite_isolation(request, app)


def token(secret: str, raw: str) -> str:
    """A CSRF token as Flask-WTF makes it, for the raw session value ``raw``."""
    return URLSafeTimedSerializer(secret, salt="wtf-csrf-token").dumps(raw)


def refused_for_token(response, message: str) -> bool:
    if response.status_code != 400:
        return False
    if response.is_json:
        return response.get_json()["error"]["message"] == message
    return message in response.get_data(as_text=True)


def test_every_state_changing_route_refuses_a_missing_or_wrong_token(app, client):
    site = h.Site(app, client, h.build_world())
    with app.test_request_context(), force_locale("zh_Hant"):
        message = gettext(CSRF_MESSAGE)
    other_session = token(app.secret_key, hashlib.sha256(b"another session").hexdigest())
    other_key = token("not-this-site", hashlib.sha256(b"this session?").hexdigest())
    wrong = {"no token": None, "another session's token": other_session,
             "a token signed by another key": other_key, "garbage": "x" * 40}
    checked: list[str] = []
    failures: list[str] = []
    for rule in h.view_rules(app):
        for method in h.unsafe_methods(rule):
            route = f"{method} {rule.endpoint}"
            role = h.role_for(app, rule.endpoint)
            args = site.world.args(rule.endpoint)
            url = h.build_url(rule, args)
            form = site.find_form(rule, method, role, args)
            pairs = [] if form is None else [
                (n, v) for n, vs in h.baselines(form, args, rule.endpoint).items() for v in vs]
            multipart = form is not None and form.multipart
            with site.rolled_back():
                site.browser(role, "zh_Hant")
                before = h.snapshot()
                for what, value in wrong.items():
                    response = site.send(url, method, pairs, multipart, token=value)
                    if not refused_for_token(response, message):
                        failures.append(f"{route} with {what}: {response.status_code}")
                    elif '<html lang="zh-Hant"' not in response.get_data(as_text=True):
                        failures.append(f"{route} with {what}: not in the user's language")
                if h.snapshot() != before:
                    failures.append(f"{route}: a refused request changed the database")
                response = site.send(url, method, pairs, multipart)
                if refused_for_token(response, message):
                    failures.append(f"{route}: refused even with the session's own token")
            checked.append(route)
    assert not failures, "\n".join(failures)
    assert len(checked) == sum(len(h.unsafe_methods(r)) for r in h.view_rules(app)) > 0
