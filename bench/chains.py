"""Fifty consultations voting at once on PostgreSQL, through several app instances sharing one
database: how long each ballot waits for its audit chain's head row, and how long it holds it.

Every consultation has its own audit chain (docs/deploy.md, "The audit trail"), so ballots of
different consultations lock different head rows and never queue behind each other; ballots of
one consultation still do. The voters are spread over ``CONSULTATIONS`` consultations and over
``INSTANCES`` gunicorn instances (separate processes, as separate machines would be), each
voter signing in and voting on one instance. ``bench.lockclock`` logs, in every worker of every
instance, how long each ``SELECT … FOR UPDATE`` of a head row took (the wait: queueing behind
another holder, plus one round trip) and how long the row was then held until the commit.

Afterwards every chain and every anchor of the global chain is verified. Writes
``bench/results/chains.{json,md}``.
"""

from __future__ import annotations

import random
import tempfile
import threading
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from bench import data, load, lockclock
from bench.common import Report, app_on, fresh_database

CONSULTATIONS = 50
INSTANCES = 3
WORKERS_PER_INSTANCE = 2
CONCURRENCY = 48
# Backends blocked on a head row at any moment, on average, with 50 consultations at once:
# near zero beside the dozens in flight.
BLOCKED_TARGET = 0.1


def _spread(voters: list[load.Voter], consultations: int, per_consultation: int
            ) -> list[load.Voter]:
    """``per_consultation`` voters of each of the first ``consultations`` consultations,
    interleaved (a, b, c, …, a, b, c, …) so that every consultation votes all the time."""
    by_consultation: dict[int, list[load.Voter]] = {}
    for voter in voters:
        by_consultation.setdefault(voter.consultation, []).append(voter)
    chosen = sorted(by_consultation)[:consultations]
    out = []
    for n in range(per_consultation):
        out += [by_consultation[c][n] for c in chosen if n < len(by_consultation[c])]
    return out


def _vote_everywhere(ports: dict[str, int], voters: list[load.Voter], concurrency: int
                     ) -> load.Samples:
    """Each voter votes on the instance it signed in on."""
    def action(_port: int, voter: load.Voter, rng: random.Random) -> list[load.Step]:
        return load.vote(ports[voter.username], voter, rng)
    return load.run(concurrency, voters, action, port=0)


class LockSampler:
    """Samples PostgreSQL's own view of who is blocked, every few milliseconds while the
    ballots run: how many of the database's backends wait for a lock (``pg_stat_activity``'s
    ``wait_event_type`` 'Lock') while running the head row's ``SELECT … FOR UPDATE``, and how
    many wait for any lock. Unlike the statement's duration, this counts queueing only, not
    the round trip or a busy processor."""

    QUERY = ("SELECT count(*) FILTER (WHERE wait_event_type = 'Lock' "
             "AND query LIKE :head_lock), "
             "count(*) FILTER (WHERE wait_event_type = 'Lock'), "
             "count(*) FILTER (WHERE state = 'active' AND pid <> pg_backend_pid()) "
             "FROM pg_stat_activity WHERE datname = current_database()")

    def __init__(self, url: str) -> None:
        import sqlalchemy as sa

        self.engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
        self.samples: list[tuple[int, int, int]] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run)
        self.failed: BaseException | None = None

    def _run(self) -> None:
        import sqlalchemy as sa

        query = sa.text(self.QUERY)
        try:
            with self.engine.connect() as conn:
                # A statement of its own each time: pg_stat_activity is read once per
                # transaction.
                conn = conn.execution_options(isolation_level="AUTOCOMMIT")
                while not self.stop.is_set():
                    head, any_lock, active = conn.execute(
                        query, {"head_lock": "%audit_head%FOR UPDATE%"}).one()
                    self.samples.append((int(head), int(any_lock), int(active)))
                    time.sleep(0.005)
        except BaseException as exc:  # reported by __exit__
            self.failed = exc

    def __enter__(self) -> LockSampler:
        self.thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop.set()
        self.thread.join()
        self.engine.dispose()
        if self.failed is not None:
            raise RuntimeError("the lock sampler failed") from self.failed

    def summary(self) -> dict[str, Any]:
        n = max(1, len(self.samples))
        return {
            "samples": len(self.samples),
            "share_with_a_head_row_wait": round(sum(1 for h, _a, _b in self.samples if h) / n, 4),
            "mean_waiting_for_a_head_row": round(sum(h for h, _a, _b in self.samples) / n, 3),
            "mean_waiting_for_any_lock": round(sum(a for _h, a, _b in self.samples) / n, 3),
            "mean_active_backends": round(sum(b for _h, _a, b in self.samples) / n, 2),
        }


def _logged(servers: list[load.Server], kind: str) -> list[float]:
    return [ms for server in servers for holds in lockclock.read(
        Path(server.env["BENCH_LOCK_LOG"]), kind).values() for ms in holds]


def _verify(url: str, workdir: Path) -> dict[str, Any]:
    from sqlalchemy import func, select

    from consult.audit import service as audit
    from consult.audit.models import AuditEvent
    from consult.extensions import db

    with app_on(url, workdir):
        result = audit.verify()
        chains = db.session.scalar(select(func.count(func.distinct(AuditEvent.chain_id))))
        anchors = db.session.scalar(select(func.count()).where(
            AuditEvent.action == "audit.anchor"))
        return {"ok": result.ok, "events": result.checked, "chains": int(chains or 0),
                "anchors": int(anchors or 0)}


def _lane(name: str, servers: list[load.Server], ports: dict[str, int], url: str,
          voters: list[load.Voter], concurrency: int) -> dict[str, Any]:
    """One lane's ballots, with the head rows' waits and holds and the sampled lock waits."""
    for kind in ("locks", "waits"):  # what came before is not this lane's
        _logged(servers, kind)
    with LockSampler(url) as sampler:
        samples = _vote_everywhere(ports, voters, concurrency)
    waits, holds = _logged(servers, "waits"), _logged(servers, "locks")
    summary = samples.summary(concurrency)
    return {"lane": name, "votes": summary, "sampled": sampler.summary(),
            "lock_statement": load.lock_summary(waits, summary["operations"]),
            "hold": load.lock_summary(holds, summary["operations"])}


def main(quick: bool = False, households: int = 10_000, db_kind: str = "postgresql",
         workers: int | None = None) -> bool:
    """Fifty consultations voting at once through ``INSTANCES`` instances, against the same
    ballots sent consultation by consultation; writes ``bench/results/chains.{json,md}``."""
    del households, db_kind  # its own district, always on PostgreSQL (the head rows' case)
    consultations, per_consultation = (4, 12) if quick else (CONSULTATIONS, 48)
    instances, concurrency = (2, 8) if quick else (INSTANCES, CONCURRENCY)
    per_instance = workers or WORKERS_PER_INSTANCE
    report = Report("chains", f"{consultations} consultations voting at once on PostgreSQL, "
                    f"{instances} app instances")
    with tempfile.TemporaryDirectory(prefix="consult-bench-") as tmp:
        workdir = Path(tmp)
        with fresh_database("postgresql", workdir) as url:
            with app_on(url, workdir):
                # Households enough that every consultation has ``per_consultation`` voters
                # who have not voted yet.
                data.generate(consultations * per_consultation * 4, consultations)
                voters = _spread([load.Voter(*row) for row in data.voters(10**6)],
                                 consultations, per_consultation)
            # Half the voters spread over every consultation at once; the other half sent
            # consultation by consultation, so that the ballots in flight share a chain.
            spread = voters[:len(voters) // 2]
            grouped = sorted(voters[len(voters) // 2:], key=lambda v: v.consultation)
            with ExitStack() as stack:
                servers = []
                for n in range(instances):
                    home = workdir / f"instance-{n}"
                    home.mkdir()
                    servers.append(stack.enter_context(load.serve(url, home, per_instance)))
                ports = {v.username: servers[i % instances].port for i, v in enumerate(voters)}
                # Each voter signs in on the instance it votes on.
                load.sign_in_all(0, voters, 16, sign_in_with=lambda _port, voter: load.sign_in(
                    ports[voter.username], voter))
                load_before = _loadavg()
                lanes = [_lane("one consultation after another", servers, ports, url, grouped,
                               concurrency),
                         _lane("all consultations at once", servers, ports, url, spread,
                               concurrency)]
                load_after = _loadavg()
            checked = _verify(url, workdir)
    grouped_lane, spread_lane = lanes
    report.measurements.update({
        "consultations": consultations, "instances": instances,
        "workers_per_instance": per_instance, "concurrency": concurrency,
        "lanes": lanes, "verify": checked,
        "load_average": {"start": load_before, "end": load_after},
    })
    blocked = spread_lane["sampled"]["mean_waiting_for_a_head_row"]
    report.lead += [
        f"**Headline: with {consultations} consultations voting at once through {instances} "
        f"instances, {blocked:.3f} backends on average were blocked on a chain's head row "
        f"(sampled every 5 ms, of {spread_lane['sampled']['mean_active_backends']} active); "
        f"the same number of ballots sent one consultation after another, sharing a chain, "
        f"had {grouped_lane['sampled']['mean_waiting_for_a_head_row']:.3f}.**", "",
        f"Load average (1, 5, 15 min) at the start {load_before}, at the end {load_after}, "
        "on 2 cores.", ""]
    for lane in lanes:
        name, votes, sampled = lane["lane"], lane["votes"], lane["sampled"]
        report.target(f"Failed votes, {name}", votes["errors"], 0, "", exact=True)
        report.figure(f"Votes per second, {name}", votes["operations_per_s"], "votes/s")
        report.figure(f"Backends blocked on a head row, mean (sampled), {name}",
                      sampled["mean_waiting_for_a_head_row"], "")
        report.figure(f"Samples with a backend blocked on a head row, {name}",
                      round(sampled["share_with_a_head_row_wait"] * 100, 1), "%")
        report.figure(f"Head row lock statement p50 (round trip and any queueing), "
                      f"{name}", lane["lock_statement"]["p50_ms"], "ms")
        report.figure(f"Head row lock statement p99, {name}",
                      lane["lock_statement"]["p99_ms"], "ms")
        report.figure(f"Head row held per ballot p50, {name}", lane["hold"]["p50_ms"], "ms")
    report.target("Backends blocked on a head row, all consultations at once (mean)",
                  blocked, BLOCKED_TARGET, "", gate=not quick)
    report.target("Chains holding ballots", checked["chains"] - 1, consultations, "",
                  exact=True)
    report.target("Audit chains and anchors verify", int(checked["ok"]), 1, "", exact=True)
    report.notes += [
        "## How to read it", "",
        "Each consultation has its own audit chain, so a ballot locks only its own "
        "consultation's head row. A backend *blocked on a head row* is one PostgreSQL reports "
        "as waiting for a lock (`pg_stat_activity.wait_event_type = 'Lock'`) while running "
        "the head row's `SELECT … FOR UPDATE`: it queues behind a ballot of the same "
        "consultation. The lock statement's duration adds the round trip and the time the "
        "backend waits for a processor on this 2-core machine, so it is not near zero even "
        "when nothing queues; the sampled count is the queueing alone. The hold runs from "
        "the head row's lock to the commit, whose WAL flush it includes.", "",
        "Before the chains were split every audited write of the city, sign-ins included, "
        "locked one head row, held 5.0 ms with 1 voter and 11.5 ms with 32: all ballots of "
        "all consultations queued on it, as the lane that sends them one consultation after "
        "another still does within a consultation.", ""]
    path = report.write(quick)
    print(path.read_text(encoding="utf-8")[:3000])
    return report.passed


def _loadavg() -> list[float]:
    return [float(x) for x in Path("/proc/loadavg").read_text().split()[:3]]
