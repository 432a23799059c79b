"""``flask notices …``: printed documents."""

from __future__ import annotations

from pathlib import Path

import click
from flask.cli import AppGroup
from flask_babel import gettext as _

from consult.consultations import service as consultations
from consult.core.commands import ProgressBar, transactional
from consult.notices.models import PrintKind
from consult.process import printing

group = AppGroup("notices", help="Notices and the other printed documents.")

# The documents by the names ``printing.render_kind`` takes, in the order of the help.
PDF_KINDS = (*printing.NOTICE_KINDS, *(kind.value for kind in PrintKind), "minutes")


@group.command("render-pdf")
@click.argument("consultation_id", type=int)
@click.argument("kind", type=click.Choice(PDF_KINDS))
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path),
              required=True, help="The PDF file to write.")
@transactional
def render_pdf_command(consultation_id: int, kind: str, output: Path) -> str:
    """Print a document: vote-notice, resolution, result, ballots, solicitation,
    access-letters (issues fresh codes) or minutes."""
    consultation = consultations.get_or_404(consultation_id)
    with ProgressBar(_("Printing")) as bar:
        data = printing.render_kind(None, consultation, kind, progress=bar.at)
    output.write_bytes(data)
    return _("Wrote %(path)s.", path=str(output))
