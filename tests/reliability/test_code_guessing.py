"""Access-code guessing against a real gunicorn with two workers behind a (simulated) proxy:
the per-code count is kept in the database, so wrong tries add up across workers and client
addresses; a client that is not the proxy cannot choose its address with X-Forwarded-For.

Which worker answers is made certain rather than left to chance: a request whose headers are
held back keeps one sync worker busy, so the other answers everything meanwhile; the held
request, completed last, is answered by the first. gunicorn's access log (one line per request
with the worker's pid) shows it.
"""

from __future__ import annotations

import html
import http.client
import json
import re
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from http.cookies import SimpleCookie
from pathlib import Path
from urllib.parse import urlencode, urlsplit

import pytest
import sqlalchemy as sa

from consult.accounts.models import AccessCode, ClientLock
from consult.audit.models import AuditEvent
from tests import live

PER_CODE = 5  # wrong tries that pause a code
PER_CLIENT = 4  # wrong tries naming no code that pause an address
PROXY_PEER = "127.0.0.1"  # the proxy's address: trusted by default
OTHER_PEER = "127.0.0.2"  # another host on the network, talking to gunicorn directly

_SEED = """
from consult.accounts import service as accounts
from consult.registry import service as registry
community = registry.create_community(None, "猜码社区")
compound = registry.create_compound(None, community, "猜码小区")
building = registry.create_building(None, compound, "1号楼")
codes = []
for n in range(2):
    h = registry.create_household(None, building, registry.household_data(
        unit="1", floor="1", room=str(101 + n), area="60.5", owner_name=f"业主{n}",
        owner_key=None, phone=None))
    codes.append(accounts.issue_access_code(None, h))
db.session.commit()
result = codes
"""


@dataclass
class Server:
    live: live.LiveServer
    log: Path
    codes: list[str]
    engine: sa.Engine


@pytest.fixture(scope="module")
def server(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    workdir = tmp_path_factory.mktemp("guessing")
    log = workdir / "access.log"
    running, stop = live.start(
        database_url, workdir, workers=2,
        extra_env={"TRUSTED_PROXIES": "1", "ACCESS_CODE_PER_CODE_THRESHOLD": str(PER_CODE),
                   "ACCESS_CODE_LOCKOUT_THRESHOLD": str(PER_CLIENT)},
        args=("--access-logfile", str(log), "--access-logformat", "%(p)s %(m)s %(U)s %(s)s"))
    engine = sa.create_engine(running.env["DATABASE_URL"])
    try:
        yield Server(running, log, running.python(_SEED), engine)
    finally:
        engine.dispose()
        stop()


class Phone:
    """A browser on the code form: its cookies and CSRF token, sending from ``peer``."""

    CSRF = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"')

    def __init__(self, url: str, peer: str = PROXY_PEER) -> None:
        parts = urlsplit(url)
        self.host, self.port, self.peer = parts.hostname or "", parts.port or 80, peer
        self.cookies: dict[str, str] = {}
        status, text = self.request("GET", "/code")
        assert status == 200
        match = self.CSRF.search(text)
        assert match
        self.token = match.group(1)

    def _connection(self) -> http.client.HTTPConnection:
        return http.client.HTTPConnection(self.host, self.port, timeout=60,
                                          source_address=(self.peer, 0))

    def _headers(self, forwarded_for: str | None) -> dict[str, str]:
        headers = {"Accept-Language": "en",
                   "Cookie": "; ".join(f"{k}={v}" for k, v in self.cookies.items())}
        if forwarded_for:
            headers["X-Forwarded-For"] = forwarded_for
        return headers

    def _keep(self, set_cookies: list[str]) -> None:
        for header in set_cookies:
            cookie = SimpleCookie(header)
            self.cookies.update({k: m.value for k, m in cookie.items()})

    def request(self, method: str, path: str, body: str | None = None,
                forwarded_for: str | None = None) -> tuple[int, str]:
        conn = self._connection()
        headers = self._headers(forwarded_for)
        if body is not None:
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        conn.request(method, path, body=body, headers=headers)
        response = conn.getresponse()
        text = response.read().decode()
        self._keep(response.headers.get_all("Set-Cookie") or [])
        conn.close()
        return response.status, html.unescape(text)

    def form(self, code: str) -> str:
        return urlencode({"csrf_token": self.token, "code": code})

    def try_code(self, code: str, forwarded_for: str | None = None) -> tuple[int, str]:
        return self.request("POST", "/code", self.form(code), forwarded_for)

    def hold(self, code: str, forwarded_for: str) -> Held:
        """Start a code request and stop before the end of its headers."""
        sock = socket.create_connection((self.host, self.port), timeout=60,
                                        source_address=(self.peer, 0))
        body = self.form(code)
        head = f"POST /code HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
        rest = "".join(f"{k}: {v}\r\n" for k, v in {
            **self._headers(forwarded_for), "Content-Type": "application/x-www-form-urlencoded",
            "Content-Length": str(len(body)), "Connection": "close"}.items())
        sock.sendall(head.encode())
        return Held(sock, (rest + "\r\n" + body).encode())


@dataclass
class Held:
    sock: socket.socket
    rest: bytes

    def finish(self) -> tuple[int, str]:
        self.sock.sendall(self.rest)
        data = b""
        while chunk := self.sock.recv(65536):
            data += chunk
        self.sock.close()
        head, _sep, body = data.partition(b"\r\n\r\n")
        return int(head.split()[1]), html.unescape(body.decode())


def wrong_verifier(code: str, n: int) -> str:
    return code[:5] + f"{(int(code[5:]) + n) % 10 ** 7:07d}"


def pids_of_code_posts(log: Path) -> set[str]:
    return {line.split()[0] for line in log.read_text().splitlines()
            if " POST /code " in f" {line} "}


def test_wrong_tries_at_one_code_add_up_across_workers_and_addresses(server: Server) -> None:
    code = server.codes[0]
    phone = Phone(server.live.url)
    # One worker is held by a request whose headers are not complete; the other answers the
    # next tries, each from another client address (X-Forwarded-For, set by the proxy).
    held = phone.hold(wrong_verifier(code, PER_CODE), forwarded_for="198.51.100.50")
    for n in range(1, PER_CODE):
        status, text = phone.try_code(wrong_verifier(code, n), f"198.51.100.{n}")
        assert status == 200 and "This access code is not valid" in text, text[-800:]
    status, text = held.finish()  # the last wrong try, on the other worker
    assert status == 200 and "entered wrongly too many times" in text
    # Paused for everyone, the right code included.
    status, text = Phone(server.live.url).try_code(code, "198.51.100.99")
    assert status == 200 and "entered wrongly too many times" in text
    assert len(pids_of_code_posts(server.log)) == 2  # both workers counted
    with server.engine.connect() as conn:
        stored = conn.execute(sa.select(AccessCode.pauses, AccessCode.paused_until)
                              .where(AccessCode.selector_hash.isnot(None))
                              .order_by(AccessCode.id)).all()
        paused_events = conn.execute(sa.select(AuditEvent.payload).where(
            AuditEvent.action == "accounts.access_code.paused")).scalars().all()
        clients = conn.scalar(sa.select(sa.func.count(ClientLock.id))
                              .where(ClientLock.client_key != "*"))
    assert stored[0].pauses == 1 and stored[0].paused_until is not None
    assert stored[1].pauses == 0  # the other household's code is untouched
    assert len(paused_events) == 1 and json.loads(paused_events[0])["failures"] == PER_CODE
    assert clients == 0  # no address was blamed for tries aimed at a real code


def test_a_client_that_is_not_the_proxy_cannot_choose_its_address(server: Server) -> None:
    direct = Phone(server.live.url, peer=OTHER_PEER)
    taken = {code[:5] for code in server.codes}
    misses = [f"{s:05d}9999999" for s in range(100) if f"{s:05d}" not in taken][:PER_CLIENT]
    for n, miss in enumerate(misses):  # every try claims another address
        status, text = direct.try_code(miss, forwarded_for=f"192.0.2.{n}")
    assert status == 200 and "Too many wrong access codes came from this network" in text
    # Through the proxy, other addresses are not paused by it: the neighbour's code works.
    status, _text = Phone(server.live.url).try_code(server.codes[1], "198.51.100.7")
    assert status == 302
    with server.engine.connect() as conn:
        rows = conn.execute(sa.select(ClientLock.failures, ClientLock.locked_until)
                            .where(ClientLock.client_key != "*")).all()
    assert len(rows) == 1 and rows[0].locked_until is not None  # one address: the real one
