"""``flask registry …``: households in from and out to spreadsheets."""

from __future__ import annotations

from pathlib import Path

import click
from flask.cli import AppGroup
from flask_babel import get_locale
from flask_babel import gettext as _

from consult.core.commands import ProgressBar, table_format, transactional
from consult.core.errors import ImportRejected
from consult.registry import grids
from consult.registry import service as registry

group = AppGroup("registry", help="The household registry.")


@group.command("import-households")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--compound", "compound_name", help="Compound for rows without one "
              "(NAME or COMMUNITY/NAME).")
@click.option("--create-buildings", is_flag=True, help="Create buildings not yet registered.")
@transactional
def import_households_command(file: Path, compound_name: str | None,
                              create_buildings: bool) -> list[str]:
    """Import households from CSV or XLSX, all or nothing."""
    compound = registry.find_compound(compound_name) if compound_name else None
    with ProgressBar(_("Importing")) as bar:
        summary = registry.import_households(
            None, file.read_bytes(), file.name, compound=compound,
            create_buildings=create_buildings, progress=bar)
    return registry.import_report(summary)


@group.command("export-households")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--compound", "compound_name", help="Only this compound.")
@click.option("--headers", type=click.Choice(["zh", "en"]), default=None,
              help="Column header language (default: Chinese unless the locale is English).")
@transactional
def export_households_command(file: Path, compound_name: str | None,
                              headers: str | None) -> str:
    """Write households to CSV or XLSX (by the file's extension)."""
    fmt = table_format(file)
    compounds = ([registry.find_compound(compound_name)] if compound_name
                 else registry.compounds_in_scope(None))
    headers = headers or ("en" if str(get_locale()) == "en" else "zh")
    file.write_bytes(registry.export_households(None, compounds, fmt, headers))
    return _("Wrote %(path)s.", path=str(file))


@group.command("import-grids")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--check", is_flag=True, help="Only check the file and say what it would do.")
@transactional
def import_grids_command(file: Path, check: bool) -> list[str]:
    """Import grids from CSV or XLSX (street office, community, grid, compound), all or
    nothing."""
    plan = grids.check_grids(file.read_bytes(), file.name)
    if plan.errors:
        raise ImportRejected(_("The file has problems; nothing was imported."), plan.errors)
    if check:
        return grids.grid_report(plan, done=False)
    return grids.grid_report(grids.apply_grids(None, plan))
