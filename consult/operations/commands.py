"""``flask operations …``: backups of the database and their restoration."""

from __future__ import annotations

from pathlib import Path

import click
from flask import current_app
from flask.cli import AppGroup
from flask_babel import gettext as _
from flask_babel import ngettext

from consult.audit.commands import verify_command
from consult.core.commands import command_transaction, fail, transactional
from consult.operations import backup

group = AppGroup("operations", help="Backups and restoration of the database.")


@group.command("backup")
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--yes", is_flag=True, help="Replace PATH if it exists.")
@transactional
def backup_command(path: Path, yes: bool) -> None:
    """Write a consistent backup of the database to PATH while the app keeps running
    (SQLite: a database file; PostgreSQL: a pg_dump custom-format file)."""
    info = backup.backup(current_app, path, overwrite=yes)
    click.echo(_("Backup written to %(path)s: %(size)s bytes, SHA-256 %(sha)s.",
                 path=str(info.path), size=info.size, sha=info.sha256))
    if info.kind == "sqlite":
        click.echo(ngettext(
            "It holds %(num)s audit event up to #%(seq)s %(hash)s, at migration "
            "%(revision)s.",
            "It holds %(num)s audit events up to #%(seq)s %(hash)s, at migration "
            "%(revision)s.", info.events or 0, seq=info.head_seq,
            hash=(info.head_hash or "")[:16], revision=info.revision))
        if not info.chain_ok:
            fail(_("Warning: the audit chain in this backup does not verify (neither does "
                   "the database's): run flask audit verify."))


@group.command("restore")
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--yes", is_flag=True, help="Replace the database, which must not be used "
              "meanwhile.")
@click.pass_context
def restore_command(ctx: click.Context, path: Path, yes: bool) -> None:
    """Replace the (SQLite) database with the backup PATH, then verify the audit chain."""
    # The restoration's audit event is committed before the chain is verified, whatever the
    # verification finds.
    with command_transaction():
        info = backup.restore(current_app, path, confirmed=yes)
    click.echo(ngettext(
        "Restored %(path)s (SHA-256 %(sha)s): %(num)s audit event up to #%(seq)s; the "
        "restoration is recorded as the next event.",
        "Restored %(path)s (SHA-256 %(sha)s): %(num)s audit events up to #%(seq)s; the "
        "restoration is recorded as the next event.", info.events or 0, path=str(path),
        sha=info.sha256, seq=info.head_seq))
    # The same check as `flask audit verify`, on the restored database; exits 1 if broken.
    ctx.invoke(verify_command)
