"""What every benchmark needs: a scratch app and database, a made-up compound, timing, and a
place to write its results."""

from __future__ import annotations

import hashlib
import json
import os
import platform
import resource
import secrets
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from flask import Flask
from sqlalchemy import select

RESULTS = Path(__file__).resolve().parent / "results"


@contextmanager
def scratch_app() -> Iterator[Flask]:
    """The app on a new SQLite database in a temporary instance folder, migrated, with an
    application context pushed."""
    from flask_migrate import upgrade

    from config import DevelopmentConfig
    from consult import create_app

    with tempfile.TemporaryDirectory(prefix="consult-bench-") as tmp:
        class BenchConfig(DevelopmentConfig):
            SQLALCHEMY_DATABASE_URI = f"sqlite:///{tmp}/bench.sqlite"
            INSTANCE_DIR = tmp
            UPLOAD_PATH = f"{tmp}/uploads"
            SQLITE_SYNCHRONOUS = "NORMAL"  # setting up the data is not what is measured

        app = create_app(BenchConfig)
        with app.app_context():
            upgrade()
            yield app


PG_ADMIN_URL = os.environ.get("BENCH_PG_URL",
                              "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")


@contextmanager
def fresh_database(kind: str, workdir: Path) -> Iterator[str]:
    """A new, empty database for one benchmark run: a SQLite file in ``workdir``, or a
    PostgreSQL database on the local server (``BENCH_PG_URL``) created here and dropped after.
    Yields its URL."""
    if kind == "sqlite":
        yield f"sqlite:///{workdir}/bench-{secrets.token_hex(3)}.sqlite"
        return
    import sqlalchemy as sa

    name = f"bench_{secrets.token_hex(4)}"
    admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    try:
        yield sa.make_url(PG_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


@contextmanager
def app_on(url: str, workdir: Path) -> Iterator[Flask]:
    """The app on the database at ``url`` (migrated), with an application context pushed."""
    from flask_migrate import upgrade

    from config import DevelopmentConfig
    from consult import create_app

    class BenchConfig(DevelopmentConfig):
        SQLALCHEMY_DATABASE_URI = url
        INSTANCE_DIR = str(workdir)
        UPLOAD_PATH = f"{workdir}/uploads"
        SQLITE_SYNCHRONOUS = "NORMAL"  # setting up the data is not what is measured
        LOG_LEVEL = "WARNING"  # no request log lines between the benchmark's own

    app = create_app(BenchConfig)
    with app.app_context():
        upgrade()
        yield app
        from consult.extensions import db

        db.session.remove()
        db.engine.dispose()


def make_compound(name: str, buildings: int, units: int, floors: int, per_floor: int) -> Any:
    """A compound of ``buildings × units × floors × per_floor`` made-up households, imported
    through the real households import."""
    from consult.core.tabular import write_csv
    from consult.demo import DemoCompound, household_rows
    from consult.extensions import db
    from consult.registry import service as registry
    from consult.registry.models import Community, Compound

    spec = DemoCompound("基准社区", "基准街道", name, "测试路 1 号", buildings, units, floors,
                        per_floor, seed=7)
    community = db.session.scalar(select(Community).where(Community.name == spec.community))
    community = community or registry.create_community(None, spec.community, spec.street)
    compound = registry.create_compound(None, community, spec.name, spec.address)
    data = write_csv(registry.EXPORT_HEADERS["zh"], household_rows(spec))
    registry.import_households(None, data, "bench.csv", compound=compound,
                               create_buildings=True)
    db.session.commit()
    return db.session.get(Compound, compound.id)


def timed(action: Callable[[], Any]) -> tuple[float, Any]:
    """Seconds taken by ``action()`` (wall clock), and what it returned."""
    start = time.perf_counter()
    value = action()
    return time.perf_counter() - start, value


def cpu_reference() -> float:
    """Seconds a fixed single-threaded workload (arithmetic in a Python loop, then SHA-256
    over 20 MB) takes, the best of three: how fast this machine runs right now. A shared host
    slows down and speeds up with its neighbours; runs are comparable only at similar values."""
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        total = 0
        for i in range(1_000_000):
            total += i * i % 7
        hashlib.sha256(bytes(20_000_000)).digest()
        best = min(best, time.perf_counter() - start)
    return round(best, 3)


def summary(seconds: list[float]) -> dict[str, float]:
    return {"runs": len(seconds), "min_s": round(min(seconds), 4),
            "median_s": round(statistics.median(seconds), 4), "max_s": round(max(seconds), 4)}


def reset_peak_rss() -> None:
    """Start measuring the peak resident set afresh (Linux; elsewhere the peak is since start)."""
    with suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")


def peak_rss_mib() -> float:
    """The largest resident set since ``reset_peak_rss`` (or since start), in MiB."""
    with suppress(OSError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


@dataclass
class Report:
    """One benchmark's results: measurements, targets met or missed, and where it ran."""

    name: str
    title: str
    measurements: dict[str, Any] = field(default_factory=dict)
    targets: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # Markdown lines before the measurements
    lead: list[str] = field(default_factory=list)   # Markdown lines before the table

    def target(self, what: str, measured: float, limit: float, unit: str,
               exact: bool = False, at_least: bool = False, gate: bool = True) -> bool:
        """Record a target: met when ``measured`` is at most ``limit`` (at least it with
        ``at_least``, equal to it with ``exact``). A target that does not ``gate`` is reported
        but does not fail the run (e.g. a timing target in a quick run on tiny data)."""
        met = measured == limit if exact else (
            measured >= limit if at_least else measured <= limit)
        self.targets.append({"what": what, "measured": measured, "limit": limit, "unit": unit,
                             "exact": exact, "at_least": at_least, "gate": gate, "met": met})
        return met

    def figure(self, what: str, measured: float, unit: str) -> None:
        """Record a figure that has no target (shown in the same table)."""
        self.targets.append({"what": what, "measured": measured, "limit": None, "unit": unit,
                             "exact": False, "at_least": False, "gate": False, "met": None})

    @property
    def passed(self) -> bool:
        return all(t["met"] for t in self.targets if t.get("gate", True))

    def machine(self) -> dict[str, Any]:
        return {"python": sys.version.split()[0], "platform": platform.platform(),
                "cpus": os.cpu_count(), "when": datetime.now(UTC).isoformat(timespec="seconds")}

    def write(self, quick: bool) -> Path:
        """Write ``<name>.json`` and ``<name>.md`` (quick runs get a ``-quick`` suffix, so they
        never overwrite the real results)."""
        RESULTS.mkdir(parents=True, exist_ok=True)
        stem = self.name + ("-quick" if quick else "")
        payload = {"benchmark": self.name, "title": self.title, "quick": quick,
                   "machine": self.machine(), "measurements": self.measurements,
                   "targets": self.targets, "passed": self.passed}
        (RESULTS / f"{stem}.json").write_text(
            json.dumps(payload, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
        lines = [f"# {self.title}", "", f"Run {payload['machine']['when']} on "
                 f"{payload['machine']['platform']}, {payload['machine']['cpus']} CPUs, "
                 f"Python {payload['machine']['python']}" + (" (quick run)" if quick else "")
                 + ".", "", *self.lead, "| Target | Measured | Limit | Met |", "|---|---|---|---|"]
        for t in self.targets:
            if t["limit"] is None:
                lines.append(f"| {t['what']} | {t['measured']} {t['unit']} | — | — |")
                continue
            sign = "= " if t["exact"] else ("≥ " if t.get("at_least") else "≤ ")
            limit = sign + f"{t['limit']} {t['unit']}"
            met = "yes" if t["met"] else "**no**"
            if not t.get("gate", True):
                met += " (reported only)"
            lines.append(f"| {t['what']} | {t['measured']} {t['unit']} | {limit} | {met} |")
        lines += ["", *self.notes, "## Measurements", "", "```json",
                  json.dumps(self.measurements, ensure_ascii=False, indent=2), "```", ""]
        path = RESULTS / f"{stem}.md"
        path.write_text("\n".join(lines), encoding="utf-8")
        return path
