"""``flask audit …``: verifying and exporting the audit trail."""

from __future__ import annotations

import time
from pathlib import Path

import click
from flask.cli import AppGroup
from flask_babel import ngettext

from consult.audit import service as audit
from consult.audit.report import speed_line, verify_report
from consult.audit.streaming import default_jobs
from consult.core.commands import fail, transactional
from consult.core.database import reading
from consult.process import audit_export as export

group = AppGroup("audit", help="The audit trail.")


@group.command("verify")
@click.option("--jobs", type=click.IntRange(min=1), default=None,
              help="Processes that verify parts of a long chain at once (default: one per "
                   "processor).")
@transactional
def verify_command(jobs: int | None) -> None:
    """Check every link of the audit chain, then every stored ballot against it; exit 1
    naming what is wrong."""
    start = time.perf_counter()
    # A plain read (on SQLite, no write lock): a long chain takes seconds, and ballots must
    # not wait for it. The events up to the head it reads never change, so the snapshot (and
    # the other processes' reads of those rows) is the chain as it was at that moment.
    with reading():
        report = verify_report(jobs=default_jobs() if jobs is None else jobs)
    for line in report.lines:
        click.echo(line)
    click.echo(speed_line(report.events, time.perf_counter() - start))
    if report.problem is not None:
        fail(report.problem)


@group.command("anchor")
@transactional
def anchor_command() -> str:
    """Anchor in the global chain the head of every consultation chain that moved since it was
    last anchored (run it from a timer, e.g. every few minutes)."""
    chains = audit.anchor_moved()
    return ngettext("Anchored %(num)s chain.", "Anchored %(num)s chains.", len(chains))


@group.command("export")
@click.option("--consultation", "consultation_id", type=int, default=None,
              help="Export one consultation's events (the public format); "
                   "without it, the whole chain.")
@click.argument("output", type=click.Path(dir_okay=False, writable=True, path_type=Path))
@transactional
def export_command(consultation_id: int | None, output: Path) -> str:
    """Write the audit export that tools/recount.py verifies and recounts."""
    consultation = (None if consultation_id is None
                    else export.consultation_or_404(consultation_id))
    try:
        with output.open("w", encoding="utf-8") as stream:
            count = (export.write_chain(stream) if consultation is None
                     else export.write_consultation(stream, consultation))
    except BaseException:
        output.unlink(missing_ok=True)  # no half-written export is left behind
        raise
    return ngettext("Wrote %(num)s event to %(path)s.", "Wrote %(num)s events to %(path)s.",
                    count, path=str(output))
