"""The API's vote path against the web's, on the same server in the same run.

A *web vote* is the resident's three requests of ``bench.load.vote`` (form, review, confirm).
An *API vote* is what a mini-program does: GET the household's ballot state, then PUT the
answers with a new ``Idempotency-Key`` (the ballot, its choices, its audit event and the
idempotency record, committed). Both end in the same ``ballots.cast``. The baseline of the
scale benchmark runs beside them as the stack's yardstick.

Each level runs the three in rotating slices, each path with households of its own (half the
batch votes on the web, half through the API, alternately from one shuffled list, so that
first ballots and changed ballots fall alike on both). Besides latency and throughput it
records the CPU the gunicorn workers spent per operation (``/proc/<pid>/stat``), which the
number of requests does not hide.

Writes ``bench/results/api.{json,md}``.
"""

from __future__ import annotations

import json
import os
import random
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from bench import data, load
from bench.common import Report, app_on, cpu_reference, fresh_database

LEVELS = {False: (8, 32, 128), True: (8,)}
OPERATIONS = {False: {8: 300, 32: 600, 128: 900}, True: {8: 24}}  # per path and level


def _api_headers(voter: load.Voter, **extra: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {voter.cookies['token']}", "Accept": "application/json",
            **extra}


def api_sign_in(port: int, voter: load.Voter) -> None:
    """Sign in through the API with the account's password; the access token is kept where
    the web voter keeps its cookies (``voter.cookies['token']``)."""
    status, text, _ = load.request(port, "POST", "/api/v1/auth/password", {}, json_body={
        "username": voter.username, "password": data.PASSWORD})
    if status != 200:
        raise load.Failed(f"API sign-in of {voter.username}: {status}")
    voter.cookies = {"token": json.loads(text)["access_token"]}


def api_vote(port: int, voter: load.Voter, rng: random.Random) -> list[load.Step]:
    """The two requests of a vote through the API; returns each step's latency."""
    path = f"/api/v1/consultations/{voter.consultation}/ballot"
    steps: list[load.Step] = []
    # The cookie jar holds the token: no cookie is sent with an API request.
    jar: dict[str, str] = {}
    text, _ = load.timed_request(steps, "ballot state", 200, port, "GET", path, jar,
                         send=_api_headers(voter))
    if not json.loads(text).get("vote_open"):
        raise load.Failed("ballot state: the vote is not open")
    choices = [{"item_id": item,
                "choice": rng.choice(("agree", "agree", "agree", "disagree", "abstain"))}
               for item in voter.items]
    text, _ = load.timed_request(steps, "cast", 200, port, "PUT", path, jar,
                         json_body={"choices": choices},
                         send=_api_headers(voter, **{"Idempotency-Key": str(uuid.uuid4())}))
    if json.loads(text).get("ballot") is None:
        raise load.Failed("cast: no ballot in the answer")
    return steps


def compare(level: int, web: list[load.Voter], api: list[load.Voter], server: load.Server
            ) -> dict[str, Any]:
    """The web vote, the API vote and the baseline at ``level`` concurrent voters, in rotating
    slices (``load.interleave``)."""
    return load.interleave(level, {
        "web": load.Lane(load.vote, web, server), "api": load.Lane(api_vote, api, server),
        "baseline": load.Lane(load.baseline, web, server)})


def _table(levels: dict[str, Any]) -> list[str]:
    lines = ["## Web and API side by side", "",
             "Per level: operations per second; per-operation latency (all of an operation's "
             "requests: three for the web and the baseline, two for the API); the CPU the "
             "gunicorn workers spent per operation; the serialised section (SQLite's write lock, "
             "PostgreSQL's audit head row) held per operation (the sum of its transactions' "
             "holds) and per transaction at p99; failed operations.", "",
             "| Voters | Path | Ops/s | ÷ web | p50 | p95 | p99 | CPU/op | Lock/op | Lock p99 "
             "| Errors |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    for level, result in levels.items():
        web_rate = result["web"]["operations_per_s"]
        for name, label in (("web", "web vote"), ("api", "API vote"), ("baseline", "baseline")):
            s = result[name]
            lat = s["operation_latency"]
            lock = s.get("serialised")
            held = (f"{lock['per_operation_ms']} ms | {lock['p99_ms']} ms" if lock
                    else "— | —")
            lines.append(
                f"| {level} | {label} | {s['operations_per_s']} | "
                f"{round(s['operations_per_s'] / web_rate, 2)} | {lat['p50_ms']} ms | "
                f"{lat['p95_ms']} ms | {lat['p99_ms']} ms | {s['cpu_ms_per_operation']} ms | "
                f"{held} | {s['errors']} |")
    return [*lines, ""]


def run_levels(report: Report, kind: str, workdir: Path, households: int, workers: int,
               quick: bool) -> None:
    """Generate a district, drive the three paths at each level, then check the ballots and
    the audit chain."""
    from sqlalchemy import func, select

    from bench import baseline
    from consult.audit import service as audit
    from consult.ballots.models import Ballot
    from consult.extensions import db

    levels = LEVELS[quick]
    wanted = 2 * sum(OPERATIONS[quick][level] for level in levels)
    with fresh_database(kind, workdir) as url:
        with app_on(url, workdir):
            generated = data.generate(households, max(1, households // 100))
            baseline.create_table(db.engine)
            voters = [load.Voter(*row) for row in data.voters(wanted)]
            ballots_before = db.session.scalar(select(func.count(Ballot.id)))
        report.measurements["district"] = generated.summary()
        if len(voters) < wanted:
            raise load.Failed(f"the district has {len(voters)} voters; {wanted} are needed")
        results: dict[str, Any] = {}
        offset = 0
        with load.serve(url, workdir, workers) as server:
            for level in levels:
                count = OPERATIONS[quick][level]
                batch = voters[offset:offset + 2 * count]
                offset += len(batch)
                web, api = batch[0::2], batch[1::2]
                load.sign_in_all(server.port, web, 16)
                load.sign_in_all(server.port, api, 16, api_sign_in)
                result = compare(level, web, api, server)
                result["api_per_web"] = round(result["api"]["operations_per_s"]
                                              / result["web"]["operations_per_s"], 2)
                results[str(level)] = result
                print(f"[api] {level} voters: web {result['web']['operations_per_s']} votes/s, "
                      f"API {result['api']['operations_per_s']} votes/s, baseline "
                      f"{result['baseline']['operations_per_s']} ops/s", flush=True)
            memory = server.worker_memory()
        report.measurements["levels"] = results
        report.measurements["worker_memory"] = memory
        for shown, result in results.items():
            level = int(shown)
            report.target(f"API vote ÷ web vote throughput, {level} voters",
                          result["api_per_web"], 1.0, "×", at_least=True, gate=not quick)
            report.figure(f"Web vote ÷ baseline throughput, {level} voters", round(
                result["web"]["operations_per_s"] / result["baseline"]["operations_per_s"], 2),
                "×")
            for name, label in (("web", "web"), ("api", "API")):
                report.figure(f"Workers' CPU per {label} vote, {level} voters",
                              result[name]["cpu_ms_per_operation"], "ms")
            for name, label in (("web", "web"), ("api", "API")):
                report.target(f"Failed {label} votes at {level} voters",
                              result[name]["errors"], 0, "", exact=True)
        with app_on(url, workdir):
            fresh = len({v.username for v in voters[:offset] if v.fresh})
            ballots_after = db.session.scalar(select(func.count(Ballot.id)))
            verified = audit.verify()
        report.target("New ballots = households voting for the first time",
                      (ballots_after or 0) - (ballots_before or 0), fresh, "ballots",
                      exact=True)
        report.target("Audit chain and ballots verify after the load", int(verified.ok), 1, "",
                      exact=True)
        report.notes += _table(results)
        headline = results.get("32") or next(iter(results.values()))
        report.lead += [
            f"**Headline: at {headline['web']['concurrency']} concurrent voters a vote "
            f"through the API runs at {headline['api_per_web']} × the web vote's throughput** "
            f"({headline['api']['operations_per_s']} against "
            f"{headline['web']['operations_per_s']} votes/s; CPU per vote "
            f"{headline['api']['cpu_ms_per_operation']} ms against "
            f"{headline['web']['cpu_ms_per_operation']} ms), {kind}, {workers} gunicorn "
            "workers.", ""]


def main(quick: bool = False, households: int = 10_000, db_kind: str = "sqlite",
         workers: int | None = None) -> bool:
    """Run the API-against-web benchmark; write ``bench/results/api.{json,md}`` (with the
    database in the name on PostgreSQL); True if every (gating) target was met."""
    workers = workers or 2 * (os.cpu_count() or 1)
    households = 400 if quick else households
    name = "api" + ("" if db_kind == "sqlite" else f"-{db_kind}")
    report = Report(name, "The vote through the API against the vote on the web")
    report.measurements["settings"] = {
        "database": db_kind, "households": households, "levels": list(LEVELS[quick]),
        "operations_per_path": OPERATIONS[quick], "gunicorn_workers": workers}
    load_before = [round(x, 2) for x in os.getloadavg()]
    speed_before = cpu_reference()
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="consult-bench-") as tmp:
        run_levels(report, db_kind, Path(tmp), households, workers, quick)
    report.measurements["total_s"] = round(time.perf_counter() - started, 1)
    load_after = [round(x, 2) for x in os.getloadavg()]
    speed_after = cpu_reference()
    report.measurements["load_average"] = {"start_1_5_15_min": load_before,
                                           "end_1_5_15_min": load_after}
    report.measurements["cpu_reference_s"] = {"start": speed_before, "end": speed_after}
    report.lead += [f"Load average (1, 5, 15 min) at the start {load_before}, at the end "
                    f"{load_after}, on {os.cpu_count()} cores; the fixed CPU workload took "
                    f"{speed_before} s at the start and {speed_after} s at the end "
                    "(docs/benchmarks.md).", ""]
    path = report.write(quick)
    print(path.read_text(encoding="utf-8"))
    return report.passed
