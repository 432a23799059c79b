"""What every ``flask`` command shares, as ``core/handlers.py`` is for requests: one
transaction per command, committed once when it succeeds; a domain error rolled back and told
on stderr in the user's language, exit code 1; progress bars on stderr. Also core's own command
groups: the translation catalogs and the jobs worker."""

from __future__ import annotations

import copy
import functools
import sys
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import Any, NoReturn, ParamSpec

import click
from flask import current_app
from flask.cli import AppGroup
from flask_babel import gettext as _

from consult.core.errors import DomainError, ImportRejected, ValidationFailed
from consult.extensions import db

P = ParamSpec("P")
# What a command returns to be printed once its transaction is committed: a line, lines, or
# nothing.
Said = str | Iterable[str] | None


def fail(message: str) -> NoReturn:
    """Print ``message`` on stderr and exit with code 1 (rolling back, inside a transaction)."""
    click.echo(message, err=True)
    sys.exit(1)


def _rejection_lines(exc: ImportRejected) -> list[str]:
    return [exc.message] + [
        _("Line %(line)s, column %(column)s: %(message)s", line=error.line,
          column=error.column, message=error.message) for error in exc.errors]


@contextmanager
def command_transaction() -> Iterator[None]:
    """Run the block as one transaction: commit when it ends normally; on a domain error roll
    back, print its message (and every problem of a rejected file) on stderr and exit 1; on
    anything else (an early exit included) roll back and let it go on."""
    try:
        yield
    except ImportRejected as exc:
        db.session.rollback()
        fail("\n".join(_rejection_lines(exc)))
    except DomainError as exc:
        db.session.rollback()
        fail(exc.message)
    except BaseException:
        db.session.rollback()
        raise
    db.session.commit()


def transactional(command: Callable[P, Said]) -> Callable[P, None]:
    """Run a command's callback in ``command_transaction`` and print what it returns (a line
    or lines) once the transaction is committed, so nothing is reported done that was not
    kept. Put it below the click decorators."""

    @functools.wraps(command)
    def run(*args: P.args, **kwargs: P.kwargs) -> None:
        with command_transaction():
            said = command(*args, **kwargs)
        for line in [said] if isinstance(said, str) else said or ():
            click.echo(line)

    return run


def table_format(path: Path) -> str:
    """``csv`` or ``xlsx``, from the file name's extension (any other is refused)."""
    fmt = path.suffix.lower().lstrip(".")
    if fmt not in ("csv", "xlsx"):
        raise ValidationFailed(_("The file name must end in .csv or .xlsx."))
    return fmt


def hidden_alias(command: click.Command, name: str) -> click.Command:
    """``command`` under another name, left out of ``--help``: the same callback, options
    and help, for the names scripts and cron lines used before the commands had groups."""
    alias = copy.copy(command)
    alias.name = name
    alias.hidden = True
    return alias


class ProgressBar:
    """A click progress bar on stderr that learns its length from the first report.

    Called as ``bar(advance, total)`` by the importers, which report steps since their last call;
    ``bar.at(done, total)`` suits the printers, which report how far they have got. Used as a
    context manager it is closed however the block ends, before any error is printed.
    """

    def __init__(self, label: str) -> None:
        self.label = label
        self.bar: Any = None
        self.done = 0

    def __call__(self, advance: int, total: int) -> None:
        if self.bar is None:
            self.bar = click.progressbar(length=total, label=self.label, file=sys.stderr)
            self.bar.__enter__()
        self.done += advance
        self.bar.update(advance)

    def at(self, done: int, total: int) -> None:
        self(done - self.done, total)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.__exit__(None, None, None)

    def __enter__(self) -> ProgressBar:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.close()


# --- core's own commands ----------------------------------------------------------------------

translate = AppGroup("translate", help="Keep the translation catalogs in step.")


@translate.command("update")
def translate_update_command() -> None:
    """Extract messages and merge them into every catalog."""
    from consult.core import catalogs

    catalogs.update()
    click.echo("Catalogs updated; translate the new empty entries, then compile.")


@translate.command("compile")
def translate_compile_command() -> None:
    """Compile the catalogs for use."""
    from consult.core import catalogs

    catalogs.compile_all()


@translate.command("check")
def translate_check_command() -> None:
    """Exit 1 listing every message that is untranslated, fuzzy or has wrong placeholders."""
    from consult.core import catalogs

    problems = catalogs.check()
    if problems:
        fail("\n".join(f"{p.locale}: {p.reason}: {p.msgid!r}" for p in problems))
    click.echo("All catalogs are complete.")


jobs = AppGroup("jobs", help="Background jobs (print batches) on RQ workers.")


@jobs.command("worker")
@click.option("--burst", is_flag=True, help="Stop once the queue is empty.")
@click.option("--name", default=None, help="The worker's name (default: a random one).")
def jobs_worker_command(burst: bool, name: str | None) -> None:
    """Run the queued jobs of REDIS_URL's queue JOBS_QUEUE, in this app's configuration."""
    from consult.core import jobs as queue

    if not current_app.config.get("REDIS_URL"):
        fail(_("Set REDIS_URL to run a jobs worker: without Redis, jobs run in the app "
               "process."))
    # The app itself, not the proxy: the forked work-horses inherit it.
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    worked = queue.run_worker(app, burst=burst, name=name)
    if burst:
        click.echo(_("Worked the queue until it was empty.") if worked
                   else _("The queue is empty."))
