"""``flask ballots …``: paper ballots in, the electoral roll out, the tally."""

from __future__ import annotations

import json
from pathlib import Path

import click
from flask.cli import AppGroup
from flask_babel import gettext as _

from consult.ballots import service as ballots
from consult.ballots.explain import tally_lines
from consult.consultations import service as consultations
from consult.consultations.models import Consultation
from consult.core.commands import ProgressBar, fail, table_format, transactional

group = AppGroup("ballots", help="Ballots, the electoral roll and the tally.")


@group.command("import")
@click.argument("consultation_id", type=int)
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@transactional
def import_ballots_command(consultation_id: int, file: Path) -> list[str]:
    """Enter paper, door-to-door and proxy ballots from CSV or XLSX, all or nothing."""
    consultation = consultations.get_or_404(consultation_id)
    with ProgressBar(_("Recording ballots")) as bar:
        summary = ballots.import_ballots(None, consultation, file.read_bytes(), file.name,
                                         progress=bar)
    return ballots.import_report(summary)


@group.command("export-roll")
@click.argument("consultation_id", type=int)
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@transactional
def export_roll_command(consultation_id: int, file: Path) -> str:
    """Write the frozen electoral roll (表决名册) in the households file format."""
    fmt = table_format(file)
    consultation = consultations.get_or_404(consultation_id)
    file.write_bytes(ballots.export_roll(None, consultation, fmt))
    return _("Wrote %(path)s.", path=str(file))


@group.command("tally")
@click.argument("consultation_id", type=int)
@click.option("--json", "as_json", is_flag=True, help="Print the tally as JSON.")
@click.option("--check", is_flag=True,
              help="Count the current round both ways: by the database's aggregate queries "
                   "and by the rule over every ballot; exit 1 if they differ.")
@transactional
def tally_command(consultation_id: int, as_json: bool, check: bool) -> str | list[str]:
    """The tally: frozen once the vote closed, provisional while it runs."""
    consultation = consultations.get_or_404(consultation_id)
    if check:
        return _check_tally(consultation)
    data = ballots.current_tally(consultation)
    if data is None:
        fail(_("Voting has not started yet."))
    if as_json:
        return json.dumps(data, ensure_ascii=False, indent=2)
    return tally_lines(data)


def _check_tally(consultation: Consultation) -> str:
    if consultation.vote_opened_at is None:
        fail(_("Voting has not started yet."))
    if ballots.compute(consultation) != ballots.compute_reference(consultation):
        fail(_("The database's count of round %(round)s differs from the count by the rule "
               "over every ballot. Do not publish; report this.", round=consultation.round))
    return _("Round %(round)s: the database's count equals the count by the rule over every "
             "ballot.", round=consultation.round)
