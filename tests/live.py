"""A real server for tests that need one: gunicorn on a free port, its own database.

Used by the concurrency tests (and, later, browser tests). The database is a fresh SQLite file,
or a fresh PostgreSQL database on the same server when the suite runs on PostgreSQL.
"""

from __future__ import annotations

import contextlib
import copy
import html
import http.cookiejar
import json
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent
# The password of every account seed_votes makes.
PASSWORD = "live-test-password"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def fresh_database(base_url: str, workdir: Path) -> tuple[str, Any]:
    """A new, empty database next to the suite's; returns its URL and a function dropping it."""
    if base_url.startswith("postgresql"):
        name = f"consult_live_{secrets.token_hex(4)}"
        admin = sa.create_engine(base_url, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
        url = sa.make_url(base_url).set(database=name).render_as_string(hide_password=False)

        def drop() -> None:
            with admin.connect() as conn:
                conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            admin.dispose()

        return url, drop
    path = workdir / f"live-{secrets.token_hex(4)}.sqlite"
    return f"sqlite:///{path}", lambda: None


@dataclass
class LiveServer:
    url: str
    env: dict[str, str]
    process: subprocess.Popen[bytes]

    def python(self, code: str) -> Any:
        """Run code in the server's environment (with ``app`` in an app context); the code
        sets ``result``, which comes back through JSON."""
        script = (
            "import json\nfrom consult import create_app\nfrom consult.extensions import db\n"
            "app = create_app()\nresult = None\nwith app.app_context():\n"
            + "".join(f"    {line}\n" for line in code.strip().splitlines())
            + "print('RESULT=' + json.dumps(result, default=str))\n")
        out = subprocess.run([sys.executable, "-c", script], env=self.env, cwd=ROOT,
                             capture_output=True, text=True, timeout=300)
        if out.returncode:
            raise RuntimeError(f"the code failed in the server's environment:\n{out.stderr}")
        line = next(line for line in out.stdout.splitlines() if line.startswith("RESULT="))
        return json.loads(line[len("RESULT="):])

    def flask(self, *args: str, lang: str | None = None) -> subprocess.CompletedProcess[str]:
        """A ``flask`` command in the server's environment (its messages in English, or in
        ``lang``)."""
        env = self.env if lang is None else {**self.env, "CONSULT_LANG": lang}
        return subprocess.run([str(VENV_BIN / "flask"), "--app", "wsgi", *args], env=env,
                              cwd=ROOT, capture_output=True, text=True, timeout=300)

    def stop(self) -> None:
        """Shut down gracefully (gunicorn finishes the requests under way)."""
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.kill()

    def kill(self) -> None:
        """SIGKILL the master and all its workers at the same instant, like a power cut of
        the application (the database server, if any, stays up)."""
        with contextlib.suppress(ProcessLookupError):  # the whole group is gone already
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=20)


def start(database_url: str, workdir: Path, workers: int = 4,
          extra_env: dict[str, str] | None = None,
          args: tuple[str, ...] = ()) -> tuple[LiveServer, Any]:
    """Migrate a fresh database and serve it; returns the server and a function stopping it.
    ``extra_env`` adds to (or overrides) the server's environment, ``args`` to gunicorn's."""
    url, drop = fresh_database(database_url, workdir)
    env = {
        **os.environ, "DATABASE_URL": url, "CONSULT_CONFIG": "development",
        "SECRET_KEY": secrets.token_hex(32), "CONSULT_INSTANCE_DIR": str(workdir),
        "UPLOAD_PATH": str(workdir / "uploads"), "CONSULT_LANG": "en",
        # The load comes from one address; the limits are tested elsewhere.
        "LOGIN_RATE_LIMIT": "100000 per minute", "ACCESS_CODE_RATE_LIMIT": "100000 per minute",
        **(extra_env or {}),
    }
    subprocess.run([str(VENV_BIN / "flask"), "--app", "wsgi", "db", "upgrade"], env=env,
                   cwd=ROOT, check=True, capture_output=True, timeout=300)
    server = serve(env, workers, args)

    def stop() -> None:
        server.stop()
        drop()

    return server, stop


def serve(env: dict[str, str], workers: int = 4, args: tuple[str, ...] = ()) -> LiveServer:
    """gunicorn on the (migrated) database of ``env``, answering; e.g. again after a kill."""
    port = free_port()
    process = subprocess.Popen(
        [str(VENV_BIN / "gunicorn"), "--workers", str(workers), "--bind", f"127.0.0.1:{port}",
         "--timeout", "120", *args, "wsgi:app"], env=env, cwd=ROOT,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        # A process group of its own: kill() reaches the master and every worker at once.
        start_new_session=True)
    server = LiveServer(f"http://127.0.0.1:{port}", env, process)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{server.url}/healthz", timeout=2) as response:
                if response.status == 200:
                    return server
        except OSError:  # refused, reset or timed out while the workers boot
            time.sleep(0.3)
    server.kill()
    raise RuntimeError("the live server did not start")


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


@dataclass
class Reply:
    status: int
    text: str
    location: str | None


class Refused(AssertionError):
    """A page of the voting path answered with something other than the next form."""

    def __init__(self, step: str, reply: Reply) -> None:
        super().__init__(f"{step}: {reply.status}")
        self.reply = reply


class Browser:
    """A cookie-keeping HTTP client that reads CSRF tokens out of forms, like a browser."""

    CSRF = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"')

    def __init__(self, base: str) -> None:
        self.base = base
        self.jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(self.jar), _NoRedirect())

    def request(self, method: str, path: str, data: dict[str, Any] | None = None) -> Reply:
        body = urllib.parse.urlencode(data or {}, doseq=True).encode() if data is not None \
            else None
        req = urllib.request.Request(self.base + path, data=body, method=method, headers={
            "Accept-Language": "en"})
        try:
            with self.opener.open(req, timeout=120) as response:
                return Reply(response.status, response.read().decode(), None)
        except urllib.error.HTTPError as exc:
            return Reply(exc.code, exc.read().decode(errors="replace"),
                         exc.headers.get("Location"))

    def get(self, path: str) -> Reply:
        return self.request("GET", path)

    def post(self, path: str, data: dict[str, Any]) -> Reply:
        return self.request("POST", path, data)

    def csrf(self, text: str) -> str:
        match = self.CSRF.search(text)
        assert match, "no CSRF token on the page"
        return match.group(1)

    def login(self, username: str, password: str = PASSWORD) -> None:
        page = self.get("/login")
        reply = self.post("/login", {"csrf_token": self.csrf(page.text), "username": username,
                                     "password": password})
        assert reply.status == 302, f"login failed for {username}: {reply.status}"

    def clone(self, base: str | None = None) -> Browser:
        """A second tab of the same signed-in browser (on ``base``, e.g. a restarted server):
        the same cookies, kept apart from now on."""
        twin = Browser(base or self.base)
        for cookie in self.jar:
            twin.jar.set_cookie(copy.copy(cookie))
        return twin

    FLASH = re.compile(r'<div class="alert alert-(\w+)" role="\w+">(.*?)</div>', re.S)

    def flashes(self, text: str) -> list[str]:
        """The messages shown at the top of a page."""
        return [html.unescape(m.group(2)).strip() for m in self.FLASH.finditer(text)]

    SUBMISSION = re.compile(r'name="submission" type="hidden" value="([^"]+)"')

    def review_vote(self, consultation: int, choices: dict[int, str]) -> dict[str, Any]:
        """A resident's first two screens: open the vote form, send ``choices`` (item id →
        agree/disagree/abstain) to the review screen; returns the reviewed form, ready to be
        confirmed with ``post(confirm_path(consultation), form)``."""
        vote = f"/consultations/{consultation}/vote"
        page = self.get(vote)
        if page.status != 200:
            raise Refused("vote form", page)
        fields = {f"item_{item}": choice for item, choice in choices.items()}
        review = self.post(vote, {"csrf_token": self.csrf(page.text), **fields})
        if review.status != 200:
            raise Refused("review", review)
        token = self.SUBMISSION.search(review.text)
        assert token, "no submission token on the review screen"
        return {"csrf_token": self.csrf(review.text), "submission": token.group(1), **fields}


def confirm_path(consultation: int) -> str:
    return f"/consultations/{consultation}/vote/confirm"


_SEED_VOTES = """
from datetime import timedelta
from werkzeug.security import generate_password_hash
from consult.accounts.models import User, UserScope
from consult.ballots import service as ballots
from consult.ballots.models import BallotChannel
from consult.consultations import service
from consult.process import workflow
from consult.consultations.states import Action
from consult.core.models import utcnow
from consult.registry import service as registry
password = generate_password_hash(PARAMS["password"], "pbkdf2:sha256:1000")
community = registry.create_community(None, "并发社区")
compound = registry.create_compound(None, community, "并发小区")
building = registry.create_building(None, compound, "1号楼")
households, users, committee = [], [], []
for n in range(PARAMS["households"]):
    h = registry.create_household(None, building, registry.household_data(
        unit="1", floor=str(n // 4 + 1), room=str(101 + n), area="60.5", owner_name=f"业主{n}",
        owner_key=None, phone=None))
    db.session.add(User(username=f"h{n:03d}", display_name="x", role="resident", household=h,
                        password_hash=password))
    households.append(h)
    users.append(f"h{n:03d}")
for n in range(PARAMS["committee"]):
    member = User(username=f"committee{n}", display_name="x", role="committee",
                  password_hash=password)
    db.session.add_all([member, UserScope(user=member, compound=compound)])
    committee.append(member.username)
votes = []
for v in range(PARAMS["votes"]):
    c = service.create(None, compound, service.settings(
        title=f"并发测试{v + 1}", summary="", rule_code="household_majority", secrecy="open",
        locale="zh_Hans", solicitation_deadline=None, vote_deadline=None, publicity_days=7,
        proxy_cap=None))
    for title in ("管道", "路面"):
        service.add_item(None, c, service.item_data(title=title, description="", cost="100"))
    for action in (Action.START_SOLICITING, Action.START_PROPOSING, Action.START_DISCUSSION):
        workflow.apply(c, action, None)
    c.vote_deadline = utcnow() + timedelta(days=1)
    workflow.apply(c, Action.OPEN_VOTE, None)
    if v < PARAMS["voted"]:
        for h in households:
            ballots.cast(None, c, h, {item.id: "agree" for item in c.items},
                         BallotChannel.ONLINE)
    votes.append({"consultation": c.id, "items": [i.id for i in c.items]})
db.session.commit()
result = {"votes": votes, "users": users, "committee": committee}
"""


def seed_votes(server: LiveServer, households: int, *, votes: int = 1, voted: int = 0,
               committee: int = 0) -> dict[str, Any]:
    """One compound of ``households`` households, each with a resident account (usernames
    h000, h001, …; password PASSWORD), ``committee`` committee members of the compound
    (committee0, …), and ``votes`` consultations of two items each, open for voting until
    tomorrow; in the first ``voted`` of them every household has already voted "agree".

    Returns ``{"votes": [{"consultation": id, "items": [item ids]}, …], "users": […],
    "committee": […]}``.
    """
    params = {"password": PASSWORD, "households": households, "votes": votes, "voted": voted,
              "committee": committee}
    return server.python(f"PARAMS = {params!r}\n" + _SEED_VOTES)
