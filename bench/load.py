"""The load test: the app under gunicorn on 127.0.0.1, driven by a bounded pool of threads
along the full resident voting path, and along the baseline's form flow of the same shape.

One *vote* is three requests by a signed-in household: GET the vote form (its CSRF token),
POST the choices (validated, the review screen with a one-time submission token), POST the
confirmation (the ballot, its choices and its audit event, committed; a 302 to the receipt).
One *baseline operation* is the same three steps on ``bench.baseline``, whose confirmation
only inserts one row. Signing in happens before the clock starts.
"""

from __future__ import annotations

import http.client
import json
import math
import os
import random
import re
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.parse
from collections.abc import Callable
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.data import PASSWORD

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent
CSRF = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"')
SUBMISSION = re.compile(r'name="submission" type="hidden" value="([^"]+)"')


class Failed(RuntimeError):
    """A step answered with something other than what the path expects."""


# --- the server -----------------------------------------------------------------------------


@dataclass
class Server:
    port: int
    env: dict[str, str]
    process: subprocess.Popen[bytes]

    def lock_holds(self) -> list[float]:
        """The holds (ms) of SQLite's write lock or PostgreSQL's audit head row by every
        transaction since the last call (``bench.lockclock``), whatever the request."""
        from bench import lockclock

        directory = self.env.get("BENCH_LOCK_LOG")
        if not directory:
            return []
        return [ms for holds in lockclock.read(Path(directory)).values() for ms in holds]

    def worker_pids(self) -> list[int]:
        """The gunicorn workers (children of the master)."""
        pids = []
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                with suppress(OSError):
                    stat = (entry / "stat").read_text()
                    if int(stat.rsplit(")", 1)[1].split()[1]) == self.process.pid:
                        pids.append(int(entry.name))
        return sorted(pids)

    def cpu_ticks(self) -> int:
        """User and system CPU of every gunicorn worker so far, in clock ticks."""
        total = 0
        for pid in self.worker_pids():
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15)
        return total

    def worker_memory(self) -> list[dict[str, float]]:
        """Each worker's resident set now and at its peak, in MiB."""
        result = []
        for pid in self.worker_pids():
            values = {}
            with suppress(OSError):
                for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                    if line.startswith(("VmRSS:", "VmHWM:")):
                        values[line[:5]] = round(int(line.split()[1]) / 1024, 1)
            if values:
                result.append({"pid": pid, "rss_mib": values.get("VmRSS", 0.0),
                               "peak_rss_mib": values.get("VmHWM", 0.0)})
        return result


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def serve(database_url: str, workdir: Path, workers: int, target: str = "bench.wsgi_bench:app",
          extra_env: dict[str, str] | None = None) -> Any:
    """gunicorn with ``target`` (by default the app with the baseline registered) on a free
    port; stopped (the whole process group) on leaving."""
    env = {
        **os.environ, "DATABASE_URL": database_url, "CONSULT_CONFIG": "development",
        "SECRET_KEY": secrets.token_hex(32), "CONSULT_INSTANCE_DIR": str(workdir),
        "UPLOAD_PATH": str(workdir / "uploads"), "BENCH_BASELINE": "1",
        # Every voter comes from one address: the sign-in limits are not what is measured.
        "LOGIN_RATE_LIMIT": "1000000 per minute", "ACCESS_CODE_RATE_LIMIT": "1000000 per minute",
        **(extra_env or {}),
    }
    if target == "bench.wsgi_bench:app":
        # How long each write holds the write lock or the audit head row (bench.lockclock).
        (workdir / "locks").mkdir(exist_ok=True)
        env["BENCH_LOCK_LOG"] = str(workdir / "locks")
    port = free_port()
    log = (workdir / "gunicorn.log").open("ab")  # request logs; kept for a failed start
    process = subprocess.Popen(  # noqa: S603 - our own venv's gunicorn, fixed arguments
        [str(VENV_BIN / "gunicorn"), "--workers", str(workers), "--bind", f"127.0.0.1:{port}",
         "--timeout", "120", "--backlog", "2048", target],
        env=env, cwd=ROOT, stdout=log, stderr=log, start_new_session=True)
    server = Server(port, env, process)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                status, _body, _headers = request(port, "GET", "/healthz", {})
                if status in (200, 404):  # the floor probe has no /healthz: it answers
                    break
            except OSError:
                pass
            if time.monotonic() > deadline or process.poll() is not None:
                tail = (workdir / "gunicorn.log").read_text(errors="replace")[-2000:]
                raise RuntimeError(f"gunicorn did not start:\n{tail}")
            time.sleep(0.2)
        yield server
    finally:
        with suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            with suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=20)
        log.close()


# --- the client -----------------------------------------------------------------------------


def request(port: int, method: str, path: str, cookies: dict[str, str],
            form: dict[str, str] | None = None, json_body: Any = None,
            headers: dict[str, str] | None = None) -> tuple[int, str, list[tuple[str, str]]]:
    """One request on a new connection (gunicorn's sync workers close it after each), with a
    form or a JSON body; cookies the response sets are stored in ``cookies``."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    try:
        headers = {"Accept-Language": "zh-CN", **(headers or {})}
        if cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in cookies.items())
        body = None
        if form is not None:
            body = urllib.parse.urlencode(form)
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        elif json_body is not None:
            body = json.dumps(json_body)
            headers["Content-Type"] = "application/json"
        connection.request(method, path, body=body, headers=headers)
        response = connection.getresponse()
        text = response.read().decode("utf-8", "replace")
        for name, value in response.getheaders():
            if name.lower() == "set-cookie":
                key, _, rest = value.partition("=")
                cookies[key.strip()] = rest.split(";", 1)[0]
        return response.status, text, response.getheaders()
    finally:
        connection.close()


def _token(pattern: re.Pattern[str], text: str, step: str) -> str:
    match = pattern.search(text)
    if not match:
        raise Failed(f"{step}: no token on the page")
    return match.group(1)


@dataclass
class Voter:
    """A household's representative: account, consultation and item ids."""

    username: str
    consultation: int
    items: list[int]
    fresh: bool = True  # the household has not voted yet
    cookies: dict[str, str] = field(default_factory=dict)


def sign_in(port: int, voter: Voter) -> None:
    status, text, _ = request(port, "GET", "/login", voter.cookies)
    status, text, _ = request(port, "POST", "/login", voter.cookies, {
        "csrf_token": _token(CSRF, text, "login form"), "username": voter.username,
        "password": PASSWORD})
    if status != 302:
        raise Failed(f"sign-in of {voter.username}: {status}")


Step = tuple[str, float]  # (step name, seconds)


def timed_request(steps: list[Step], name: str, expected: int, port: int, method: str,
                  path: str, cookies: dict[str, str], form: dict[str, str] | None = None,
                  json_body: Any = None, send: dict[str, str] | None = None
                  ) -> tuple[str, list[tuple[str, str]]]:
    """One timed request of an operation, added to ``steps``; Failed unless it answers with
    ``expected``. Returns the body and the headers."""
    start = time.perf_counter()
    status, text, headers = request(port, method, path, cookies, form, json_body, send)
    steps.append((name, time.perf_counter() - start))
    if status != expected:
        raise Failed(f"{name}: {status}")
    return text, headers


def _form_flow(port: int, voter: Voter, rng: random.Random, path: str) -> tuple[
        list[Step], list[tuple[str, str]]]:
    """A vote's three requests on ``path`` (the form, the review, the confirmation): each
    step's latency, and the confirmation's headers."""
    steps: list[Step] = []
    text, _ = timed_request(steps, "vote form", 200, port, "GET", path, voter.cookies)
    choices = {f"item_{item}": rng.choice(("agree", "agree", "agree", "disagree", "abstain"))
               for item in voter.items}
    text, _ = timed_request(steps, "review", 200, port, "POST", path, voter.cookies,
                            {"csrf_token": _token(CSRF, text, "vote form"), **choices})
    form = {"csrf_token": _token(CSRF, text, "review"),
            "submission": _token(SUBMISSION, text, "review"), **choices}
    _, headers = timed_request(steps, "confirm", 302, port, "POST", f"{path}/confirm",
                               voter.cookies, form)
    return steps, headers


def vote(port: int, voter: Voter, rng: random.Random) -> list[Step]:
    """The three requests of an online vote; returns each step's latency."""
    steps, headers = _form_flow(port, voter, rng, f"/consultations/{voter.consultation}/vote")
    location = dict((k.lower(), v) for k, v in headers).get("location", "")
    if not location.endswith(f"/consultations/{voter.consultation}/ballot"):
        raise Failed(f"confirm: redirected to {location}")
    return steps


def baseline(port: int, voter: Voter, rng: random.Random) -> list[Step]:
    """The baseline's three requests (form, review, confirm: one row inserted)."""
    from bench.baseline import URL_PREFIX

    path = f"{URL_PREFIX}/baseline"
    steps: list[Step] = []
    text, _ = timed_request(steps, "form", 200, port, "GET", path, voter.cookies)
    note = f"{voter.username}-{rng.randrange(10**6)}"
    text, _ = timed_request(steps, "review", 200, port, "POST", path, voter.cookies,
                            {"csrf_token": _token(CSRF, text, "baseline form"), "note": note})
    timed_request(steps, "confirm", 302, port, "POST", f"{path}/confirm", voter.cookies,
                  {"csrf_token": _token(CSRF, text, "baseline review"), "note": note})
    return steps


def floor_sign_in(port: int, voter: Voter) -> None:
    """The floor probe's sign-in: a signed cookie naming the household (``bench.floor``)."""
    status, _text, _ = request(port, "GET", f"/floor/login/{voter.username}", voter.cookies)
    if status != 200:
        raise Failed(f"floor sign-in of {voter.username}: {status}")


def floor_vote(port: int, voter: Voter, rng: random.Random) -> list[Step]:
    """The floor probe's three requests, in the vote's shape (``bench.floor``)."""
    return _form_flow(port, voter, rng, f"/floor/{voter.consultation}/vote")[0]


def lock_summary(holds_ms: list[float], operations: int) -> dict[str, float]:
    """The serialised section (SQLite's write lock, PostgreSQL's audit head row) as the
    operations held it: per transaction (percentiles) and per operation (the sum of its
    transactions' holds, on average)."""
    return {"transactions": len(holds_ms),
            "per_operation_ms": round(sum(holds_ms) / max(1, operations), 2),
            "p50_ms": round(percentile(holds_ms, 0.50), 2),
            "p99_ms": round(percentile(holds_ms, 0.99), 2),
            "max_ms": round(max(holds_ms), 2)}


def percentile(values: list[float], fraction: float) -> float:
    """The nearest-rank percentile (``fraction`` of 1) of ``values``."""
    ordered = sorted(values)
    # ceil(p·n), rounded first so that 0.99 × 100 is 99, not 99.00000000000001
    rank = max(1, min(len(ordered), math.ceil(round(fraction * len(ordered), 9))))
    return ordered[rank - 1]


def _ms(values: list[float]) -> dict[str, float]:
    return {"p50_ms": round(percentile(values, 0.50) * 1000, 1),
            "p95_ms": round(percentile(values, 0.95) * 1000, 1),
            "p99_ms": round(percentile(values, 0.99) * 1000, 1),
            "max_ms": round(max(values) * 1000, 1),
            "mean_ms": round(statistics.fmean(values) * 1000, 1)}


@dataclass
class Samples:
    """What one or more runs of an action measured: latencies, errors and time under load."""

    requests: list[float] = field(default_factory=list)
    operations: list[float] = field(default_factory=list)
    per_step: dict[str, list[float]] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    seconds: float = 0.0
    lock_holds: list[float] = field(default_factory=list)  # ms, each serialised section

    def summary(self, concurrency: int) -> dict[str, Any]:
        """Throughput and latency (per request, per step, per operation)."""
        if not self.operations:
            raise Failed(f"no operation succeeded: {self.errors[:3]}")
        return {
            "concurrency": concurrency, "operations": len(self.operations),
            "errors": len(self.errors), "error_samples": self.errors[:3],
            "seconds": round(self.seconds, 2),
            "operations_per_s": round(len(self.operations) / self.seconds, 1),
            "requests_per_s": round(len(self.requests) / self.seconds, 1),
            "request_latency": _ms(self.requests), "operation_latency": _ms(self.operations),
            "steps": {name: _ms(values) for name, values in self.per_step.items()},
            **({"serialised": lock_summary(self.lock_holds, len(self.operations))}
               if self.lock_holds else {}),
        }


def run(concurrency: int, voters: list[Voter], action: Callable[..., list[Step]], port: int,
        seed: int = 1, into: Samples | None = None) -> Samples:
    """``len(voters)`` operations by ``concurrency`` threads, each taking the next voter;
    their measurements are added to ``into`` (or to new samples), which is returned."""
    samples = into if into is not None else Samples()
    queue = list(reversed(voters))
    lock = threading.Lock()

    def worker(n: int) -> None:
        rng = random.Random(seed * 1000 + n)
        while True:
            with lock:
                if not queue:
                    return
                voter = queue.pop()
            try:
                steps = action(port, voter, rng)
            except (Failed, OSError, http.client.HTTPException) as exc:
                with lock:
                    samples.errors.append(str(exc))
                continue
            with lock:
                samples.operations.append(sum(s for _n, s in steps))
                for name, seconds in steps:
                    samples.requests.append(seconds)
                    samples.per_step.setdefault(name, []).append(seconds)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(concurrency)]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    samples.seconds += time.perf_counter() - start
    return samples


TICKS = os.sysconf("SC_CLK_TCK")


@dataclass
class Lane:
    """One of the paths a level compares: its action, its voters and the server it runs on."""

    action: Callable[..., list[Step]]
    voters: list[Voter]
    server: Server


def interleave(concurrency: int, lanes: dict[str, Lane], slices: int = 3) -> dict[str, Any]:
    """Every lane's voters at ``concurrency``, in ``slices`` slices whose order rotates (a, b,
    c; b, c, a; …), so that drift in the machine's speed meets every lane alike. Returns each
    lane's summary, with the CPU its server's workers spent per operation and, on SQLite,
    the write lock's holds."""
    samples = {name: Samples() for name in lanes}
    ticks = dict.fromkeys(lanes, 0)
    order = list(lanes)
    for lane in lanes.values():
        lane.server.lock_holds()  # the sign-ins' writes are not the slices'
    for n in range(slices):
        for name in order[n % len(order):] + order[:n % len(order)]:
            lane = lanes[name]
            size = math.ceil(len(lane.voters) / slices)
            before = lane.server.cpu_ticks()
            run(concurrency, lane.voters[n * size:(n + 1) * size], lane.action,
                lane.server.port, seed=n + 1, into=samples[name])
            ticks[name] += lane.server.cpu_ticks() - before
            samples[name].lock_holds += lane.server.lock_holds()
    out = {}
    for name, sample in samples.items():
        summary = sample.summary(concurrency)
        summary["cpu_ms_per_operation"] = round(
            ticks[name] * 1000 / TICKS / max(1, summary["operations"]), 1)
        out[name] = summary
    return out


def sign_in_all(port: int, voters: list[Voter], concurrency: int,
                sign_in_with: Callable[[int, Voter], None] | None = None) -> None:
    """Sign every voter in (before the clock starts), ``concurrency`` at a time, on the web
    (or with ``sign_in_with``)."""
    pending = [v for v in voters if not v.cookies]
    sign_in_one = sign_in_with or sign_in
    lock = threading.Lock()
    errors: list[str] = []

    def worker() -> None:
        while True:
            with lock:
                if not pending:
                    return
                voter = pending.pop()
            try:
                sign_in_one(port, voter)
            except (Failed, OSError, http.client.HTTPException) as exc:
                with lock:
                    errors.append(str(exc))

    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise Failed(f"{len(errors)} sign-ins failed, e.g. {errors[0]}")
