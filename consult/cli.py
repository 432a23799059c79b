"""The ``flask`` commands (DESIGN: stable entry points): one group per domain, each in its
domain's ``commands`` module; every command runs in one transaction, and an error goes to
stderr with exit code 1 (``consult.core.commands``)."""

from __future__ import annotations

from flask import Flask
from flask.cli import AppGroup

from consult import demo_commands
from consult.accounts import commands as accounts
from consult.audit import commands as audit
from consult.ballots import commands as ballots
from consult.core import commands as core
from consult.core.commands import hidden_alias
from consult.notices import commands as notices
from consult.notifications import commands as notifications
from consult.operations import commands as operations
from consult.process import commands as process
from consult.registry import commands as registry

GROUPS: tuple[AppGroup, ...] = (
    registry.group, accounts.group, ballots.group, notices.group, process.group, audit.group,
    operations.group, demo_commands.group, core.translate, core.jobs, notifications.group,
)

# The flat names the commands had before they were grouped, which scripts and cron lines use:
# each still runs the same command, without being listed in --help.
ALIASES = {
    "seed-demo": ("demo", "seed"),
    "import-households": ("registry", "import-households"),
    "export-households": ("registry", "export-households"),
    "create-user": ("accounts", "create-user"),
    "issue-access-codes": ("accounts", "issue-access-codes"),
    "import-ballots": ("ballots", "import"),
    "export-roll": ("ballots", "export-roll"),
    "tally": ("ballots", "tally"),
    "render-pdf": ("notices", "render-pdf"),
    "close-expired": ("consultations", "close-expired"),
    "backup": ("operations", "backup"),
    "restore": ("operations", "restore"),
}

# Names of their own for what cron runs every few minutes, listed in --help beside the groups.
SHORTCUTS = {
    "send-notifications": ("notifications", "send"),
}


def register(app: Flask) -> None:
    """Attach the command groups, and the old flat names, to the app."""
    for group in GROUPS:
        app.cli.add_command(group)
    by_name = {group.name: group for group in GROUPS}
    for old, (group_name, name) in ALIASES.items():
        app.cli.add_command(hidden_alias(by_name[group_name].commands[name], old))
    for short, (group_name, name) in SHORTCUTS.items():
        shortcut = hidden_alias(by_name[group_name].commands[name], short)
        shortcut.hidden = False
        app.cli.add_command(shortcut)
