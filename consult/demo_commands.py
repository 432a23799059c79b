"""``flask demo …``: the demo data."""

from __future__ import annotations

import click
from flask import current_app
from flask.cli import AppGroup
from flask_babel import gettext as _

from consult import demo
from consult.core.commands import fail, transactional

group = AppGroup("demo", help="The demo data.")


@group.command("seed")
@click.option("--force", is_flag=True, help="Allow seeding in production.")
@transactional
def seed_command(force: bool) -> list[str]:
    """Load the demo compounds and accounts (idempotent)."""
    if current_app.config.get("SESSION_COOKIE_SECURE") and not force:
        fail(_("This is a production configuration; demo accounts with published "
               "passwords are not created here (use --force to insist)."))
    return demo.report(demo.seed_demo())
