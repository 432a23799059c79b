"""One live server for the API's end-to-end tests: gunicorn on a fresh database with an open
vote (``live.seed_votes``), and a household's access code."""

from __future__ import annotations

import json
import urllib.request
from typing import Any

from tests import live

ISSUE_CODE = """
from sqlalchemy import select
from consult.accounts import service as accounts
from consult.accounts.models import User
from consult.registry.models import Household
household = db.session.scalars(select(Household).order_by(Household.id.desc())).first()
result = {"code": accounts.issue_access_code(None, household), "household": household.id}
db.session.commit()
"""


def issue_code(server: live.LiveServer) -> dict[str, Any]:
    """A new access code of the seeded compound's last household (whose account h… is
    otherwise unused by the tests)."""
    return server.python(ISSUE_CODE)


def call(server: live.LiveServer, method: str, path: str, body: Any = None,
         headers: dict[str, str] | None = None) -> tuple[int, Any]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(f"{server.url}{path}", data=data, method=method, headers={
        "Content-Type": "application/json", **(headers or {})})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            raw = response.read()
            return response.status, json.loads(raw) if raw else None
    except urllib.error.HTTPError as exc:
        raw = exc.read()
        return exc.code, json.loads(raw) if raw else None


def token_for(server: live.LiveServer, username: str, password: str = live.PASSWORD) -> str:
    status, body = call(server, "POST", "/api/v1/auth/password",
                        {"username": username, "password": password})
    assert status == 200, body
    return str(body["access_token"])
