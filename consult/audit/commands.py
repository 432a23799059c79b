"""``flask audit …``: verifying and exporting the audit trail."""

from __future__ import annotations

from pathlib import Path

import click
from flask.cli import AppGroup
from flask_babel import ngettext

from consult.audit.report import verify_report
from consult.core.commands import fail, transactional
from consult.process import audit_export as export

group = AppGroup("audit", help="The audit trail.")


@group.command("verify")
@transactional
def verify_command() -> None:
    """Check every link of the audit chain, then every stored ballot against it; exit 1
    naming what is wrong."""
    report = verify_report()
    for line in report.lines:
        click.echo(line)
    if report.problem is not None:
        fail(report.problem)


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
