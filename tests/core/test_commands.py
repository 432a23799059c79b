"""The command line as a whole: one group per domain, the old flat names kept as aliases of the
same commands, and one transaction per command whose domain errors end on stderr, exit 1."""

from __future__ import annotations

from pathlib import Path

import click
import pytest
from sqlalchemy import select

from consult import cli
from consult.core.commands import command_transaction, table_format, transactional
from consult.core.errors import CellError, Conflict, ImportRejected, ValidationFailed
from consult.extensions import db
from consult.registry import service as registry
from consult.registry.models import Community

GROUPS = {"registry", "accounts", "ballots", "notices", "consultations", "audit", "operations",
          "demo", "translate", "jobs", "notifications"}
# The names scripts, cron lines and earlier documentation use, and what each one runs now.
OLD_NAMES = {
    "seed-demo": "demo seed",
    "import-households": "registry import-households",
    "export-households": "registry export-households",
    "create-user": "accounts create-user",
    "issue-access-codes": "accounts issue-access-codes",
    "import-ballots": "ballots import",
    "export-roll": "ballots export-roll",
    "tally": "ballots tally",
    "render-pdf": "notices render-pdf",
    "close-expired": "consultations close-expired",
    "backup": "operations backup",
    "restore": "operations restore",
}


def _command(app, *names: str) -> click.Command:
    command: click.Command = app.cli
    context = click.Context(app.cli)
    for name in names:
        assert isinstance(command, click.Group)
        found = command.get_command(context, name)
        assert found is not None, names
        command = found
    return command


def test_help_lists_the_groups_and_hides_the_old_names(runner):
    result = runner.invoke(args=["--help"])
    assert result.exit_code == 0, result.output
    listed = {line.split()[0] for line in result.output.split("Commands:")[1].splitlines()
              if line.strip()}
    assert listed >= GROUPS | {"send-notifications"}
    assert not listed & set(OLD_NAMES)


def test_send_notifications_runs_the_groups_command(app):
    short, command = _command(app, "send-notifications"), _command(app, "notifications", "send")
    assert short.callback is command.callback and short.params == command.params


def test_every_old_flat_name_runs_the_same_command(app):
    assert {old: " ".join(new) for old, new in cli.ALIASES.items()} == OLD_NAMES
    for old, new in OLD_NAMES.items():
        alias, command = _command(app, old), _command(app, *new.split())
        assert alias.hidden and not command.hidden, old
        assert alias.callback is command.callback, old
        assert alias.params == command.params and alias.help == command.help, old


def test_an_old_name_answers_as_the_new_one(runner):
    for args in (["tally", "999999"], ["close-expired"]):
        old = runner.invoke(args=args)
        new = runner.invoke(args=[*OLD_NAMES[args[0]].split(), *args[1:]])
        assert (old.exit_code, old.output) == (new.exit_code, new.output), args
    assert "0 consultations updated." in new.output


def _communities(name: str) -> list[Community]:
    return list(db.session.scalars(select(Community).where(Community.name == name)))


def test_a_command_transaction_commits_once_it_succeeds():
    with command_transaction():
        registry.create_community(None, "提交社区")
    db.session.rollback()  # nothing left to roll back: it was committed
    assert len(_communities("提交社区")) == 1


def test_a_domain_error_rolls_back_and_exits_1_with_its_message(capsys):
    with pytest.raises(SystemExit) as exited, command_transaction():
        registry.create_community(None, "回滚社区")
        raise Conflict("This clashes.")
    assert exited.value.code == 1
    assert capsys.readouterr().err == "This clashes.\n"
    assert _communities("回滚社区") == []


def test_a_rejected_file_lists_every_problem(capsys):
    problems = [CellError(2, "B (房号)", "Required."), CellError(5, "D (面积)", "Not a number.")]
    with pytest.raises(SystemExit), command_transaction():
        raise ImportRejected("Nothing was imported.", problems)
    assert capsys.readouterr().err.splitlines() == [
        "Nothing was imported.", "Line 2, column B (房号): Required.",
        "Line 5, column D (面积): Not a number."]


def test_other_errors_roll_back_and_go_on():
    with pytest.raises(RuntimeError), command_transaction():
        registry.create_community(None, "故障社区")
        raise RuntimeError("a bug")
    assert _communities("故障社区") == []


def test_transactional_prints_what_the_command_returns_after_the_commit(capsys):
    @transactional
    def command(name: str) -> list[str]:
        registry.create_community(None, name)
        return [f"Made {name}.", "Done."]

    @transactional
    def one_line() -> str:
        return "One line."

    @transactional
    def quiet() -> None:
        return None

    command("打印社区")
    one_line()
    quiet()
    db.session.rollback()
    assert capsys.readouterr().out == "Made 打印社区.\nDone.\nOne line.\n"
    assert len(_communities("打印社区")) == 1


def test_table_files_are_named_csv_or_xlsx():
    assert table_format(Path("out.CSV")) == "csv" and table_format(Path("a/b.xlsx")) == "xlsx"
    with pytest.raises(ValidationFailed, match=r"\.csv or \.xlsx"):
        table_format(Path("roll.pdf"))
