"""``flask accounts …``: staff accounts and households' access codes."""

from __future__ import annotations

from pathlib import Path

import click
from flask.cli import AppGroup
from flask_babel import gettext as _
from flask_babel import ngettext

from consult.accounts import service as accounts
from consult.core.commands import ProgressBar, transactional
from consult.registry import service as registry

group = AppGroup("accounts", help="Staff accounts and households' access codes.")


@group.command("create-user")
@click.argument("username")
@click.option("--role", type=click.Choice(["admin", "committee", "supervisor"]),
              default="admin")
@click.option("--name", "display_name", required=True, help="The person's name.")
@click.password_option()
@transactional
def create_user_command(username: str, role: str, display_name: str, password: str) -> str:
    """Create a staff account (e.g. the first administrator)."""
    accounts.create_user(None, username=username, display_name=display_name, role=role,
                         password=password)
    return _("Account %(name)s created.", name=username)


@group.command("issue-access-codes")
@click.option("--compound", "compound_name", required=True)
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path),
              required=True, help="CSV file for the letters.")
@click.option("--only-new", is_flag=True,
              help="Skip households that already have an account.")
@transactional
def issue_access_codes_command(compound_name: str, output: Path, only_new: bool) -> str:
    """Issue a fresh access code to every household of a compound (earlier codes stop)."""
    compound = registry.find_compound(compound_name)
    # Nothing is issued if anything fails (e.g. no secret key), the file included.
    with ProgressBar(_("Issuing codes")) as bar:
        rows = accounts.issue_compound_codes(None, compound, only_new=only_new, progress=bar)
    output.write_bytes(accounts.code_list(rows))
    return ngettext(
        "%(num)s code written to %(path)s. Keep this file safe: the code is not stored "
        "anywhere else.",
        "%(num)s codes written to %(path)s. Keep this file safe: the codes are not stored "
        "anywhere else.", len(rows), path=str(output))
