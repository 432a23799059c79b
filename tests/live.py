"""A real server for tests that need one: gunicorn on a free port, its own database.

Used by the concurrency tests (and, later, browser tests). The database is a fresh SQLite file,
or a fresh PostgreSQL database on the same server when the suite runs on PostgreSQL.
"""

from __future__ import annotations

import http.cookiejar
import json
import os
import re
import secrets
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
                             capture_output=True, text=True, check=True, timeout=300)
        line = next(line for line in out.stdout.splitlines() if line.startswith("RESULT="))
        return json.loads(line[len("RESULT="):])

    def flask(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(VENV_BIN / "flask"), "--app", "wsgi", *args], env=self.env,
                              cwd=ROOT, capture_output=True, text=True, timeout=300)


def start(database_url: str, workdir: Path, workers: int = 4) -> tuple[LiveServer, Any]:
    """Migrate a fresh database and serve it; returns the server and a function stopping it."""
    url, drop = fresh_database(database_url, workdir)
    env = {
        **os.environ, "DATABASE_URL": url, "CONSULT_CONFIG": "development",
        "SECRET_KEY": secrets.token_hex(32), "CONSULT_INSTANCE_DIR": str(workdir),
        "UPLOAD_PATH": str(workdir / "uploads"), "CONSULT_LANG": "en",
        # The load comes from one address; the limits are tested elsewhere.
        "LOGIN_RATE_LIMIT": "100000 per minute", "ACCESS_CODE_RATE_LIMIT": "100000 per minute",
    }
    subprocess.run([str(VENV_BIN / "flask"), "--app", "wsgi", "db", "upgrade"], env=env,
                   cwd=ROOT, check=True, capture_output=True, timeout=300)
    port = free_port()
    process = subprocess.Popen(
        [str(VENV_BIN / "gunicorn"), "--workers", str(workers), "--bind", f"127.0.0.1:{port}",
         "--timeout", "120", "wsgi:app"], env=env, cwd=ROOT,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    server = LiveServer(f"http://127.0.0.1:{port}", env, process)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{server.url}/healthz", timeout=2) as response:
                if response.status == 200:
                    break
        except OSError:  # refused, reset or timed out while the workers boot
            time.sleep(0.3)
    else:
        process.kill()
        raise RuntimeError("the live server did not start")

    def stop() -> None:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
        drop()

    return server, stop


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


@dataclass
class Reply:
    status: int
    text: str
    location: str | None


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

    def login(self, username: str, password: str) -> None:
        page = self.get("/login")
        reply = self.post("/login", {"csrf_token": self.csrf(page.text), "username": username,
                                     "password": password})
        assert reply.status == 302, f"login failed for {username}: {reply.status}"
