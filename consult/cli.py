"""The ``flask`` commands (DESIGN: stable entry points). Errors go to stderr, exit code 1."""

from __future__ import annotations

import sys
import unicodedata
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import click
from flask import Flask, current_app
from flask.cli import AppGroup
from flask_babel import gettext as _
from flask_babel import ngettext

from consult.core.errors import DomainError, ImportRejected
from consult.extensions import db

T = TypeVar("T")
PDF_KINDS = ("vote-notice", "resolution", "result", "ballots", "solicitation", "access-letters",
             "minutes")


def fail(message: str) -> NoReturn:
    click.echo(message, err=True)
    sys.exit(1)


def print_rejection(exc: ImportRejected) -> NoReturn:
    click.echo(exc.message, err=True)
    for error in exc.errors:
        click.echo(_("Line %(line)s, column %(column)s: %(message)s", line=error.line,
                     column=error.column, message=error.message), err=True)
    sys.exit(1)


class ProgressBar:
    """A click progress bar that learns its length from the first report.

    Called as ``bar(advance, total)`` by the importers, which report steps since their last call;
    ``bar.at(done, total)`` suits the printers, which report how far they have got.
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


def run_import(label: str, action: Callable[[ProgressBar], T]) -> T:
    """Run an all-or-nothing import with a progress bar: commit its result, or roll back and
    print every problem (exit 1)."""
    bar = ProgressBar(label)
    try:
        result = action(bar)
    except ImportRejected as exc:
        bar.close()
        db.session.rollback()
        print_rejection(exc)
    except DomainError as exc:
        bar.close()
        db.session.rollback()
        fail(exc.message)
    db.session.commit()
    bar.close()
    return result


def _consultation(consultation_id: int) -> Any:
    from consult.consultations import service

    try:
        return service.get_or_404(consultation_id)
    except DomainError as exc:
        fail(exc.message)


def _resolve_compound(name: str | None) -> Any:
    from consult.registry import service as registry

    if not name:
        return None
    try:
        return registry.find_compound(name)
    except DomainError as exc:
        fail(exc.message)


def register(app: Flask) -> None:
    """Attach the commands to the app."""

    @app.cli.command("seed-demo")
    @click.option("--force", is_flag=True, help="Allow seeding in production.")
    def seed_demo_command(force: bool) -> None:
        """Load the demo compounds and accounts (idempotent)."""
        from consult.demo import seed_demo

        if current_app.config.get("SESSION_COOKIE_SECURE") and not force:
            fail(_("This is a production configuration; demo accounts with published "
                   "passwords are not created here (use --force to insist)."))
        try:
            result = seed_demo()
        except DomainError as exc:
            db.session.rollback()
            fail(exc.message)
        db.session.commit()
        click.echo(_("Demo data ready: %(n)s households and %(c)s consultations, one in every "
                     "stage.", n=result.households, c=result.consultations))
        click.echo(_("Demo accounts (username / password):"))
        for role, username, password, _note in result.accounts:
            click.echo(f"  {role:<11} {username:<11} {password}")
        if result.access_code:
            click.echo(_("Household access code for %(household)s: %(code)s",
                         household=result.access_code_household, code=result.access_code))

    @app.cli.command("import-households")
    @click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
    @click.option("--compound", "compound_name", help="Compound for rows without one "
                  "(NAME or COMMUNITY/NAME).")
    @click.option("--create-buildings", is_flag=True, help="Create buildings not yet registered.")
    def import_households_command(file: Path, compound_name: str | None,
                                  create_buildings: bool) -> None:
        """Import households from CSV or XLSX, all or nothing."""
        from consult.registry import service as registry

        compound = _resolve_compound(compound_name)
        summary = run_import(_("Importing"), lambda bar: registry.import_households(
            None, file.read_bytes(), file.name, compound=compound,
            create_buildings=create_buildings, progress=bar))
        click.echo(_("Imported %(rows)s rows: %(created)s new, %(updated)s changed, "
                     "%(unchanged)s unchanged.", rows=summary.rows, created=summary.created,
                     updated=summary.updated, unchanged=summary.unchanged))
        if summary.buildings_created:
            click.echo(_("New buildings: %(names)s",
                         names=", ".join(summary.buildings_created)))

    @app.cli.command("export-households")
    @click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
    @click.option("--compound", "compound_name", help="Only this compound.")
    @click.option("--headers", type=click.Choice(["zh", "en"]), default=None,
                  help="Column header language (default: Chinese unless the locale is English).")
    def export_households_command(file: Path, compound_name: str | None,
                                  headers: str | None) -> None:
        """Write households to CSV or XLSX (by the file's extension)."""
        from flask_babel import get_locale

        from consult.registry import service as registry

        fmt = file.suffix.lower().lstrip(".")
        if fmt not in ("csv", "xlsx"):
            fail(_("The file name must end in .csv or .xlsx."))
        compound = _resolve_compound(compound_name)
        compounds = [compound] if compound else registry.compounds_in_scope(None)
        headers = headers or ("en" if str(get_locale()) == "en" else "zh")
        data = registry.export_households(None, compounds, fmt, headers)
        file.write_bytes(data)
        db.session.commit()
        click.echo(_("Wrote %(path)s.", path=str(file)))

    @app.cli.command("create-user")
    @click.argument("username")
    @click.option("--role", type=click.Choice(["admin", "committee", "supervisor"]),
                  default="admin")
    @click.option("--name", "display_name", required=True, help="The person's name.")
    @click.password_option()
    def create_user_command(username: str, role: str, display_name: str, password: str) -> None:
        """Create a staff account (e.g. the first administrator)."""
        from consult.accounts import service as accounts

        try:
            accounts.create_user(None, username=username, display_name=display_name, role=role,
                                 password=password)
        except DomainError as exc:
            db.session.rollback()
            fail(exc.message)
        db.session.commit()
        click.echo(_("Account %(name)s created.", name=username))

    @app.cli.command("issue-access-codes")
    @click.option("--compound", "compound_name", required=True)
    @click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path),
                  required=True, help="CSV file for the letters.")
    @click.option("--only-new", is_flag=True,
                  help="Skip households that already have an account.")
    def issue_access_codes_command(compound_name: str, output: Path, only_new: bool) -> None:
        """Issue a fresh access code to every household of a compound (earlier codes stop)."""
        from sqlalchemy import select

        from consult.accounts import service as accounts
        from consult.core.tabular import write_csv
        from consult.registry.models import Building, Household

        compound = _resolve_compound(compound_name)
        households = list(db.session.scalars(
            select(Household).join(Household.building).where(Building.compound_id == compound.id)
            .order_by(Building.sort_key, Household.sort_key)))
        rows = []
        try:
            with click.progressbar(households, label=_("Issuing codes"), file=sys.stderr) as bar:
                for household in bar:
                    if only_new and accounts.resident_account_for(household) is not None:
                        continue
                    code = accounts.issue_access_code(None, household)
                    rows.append([household.building.name, household.unit, household.room,
                                 accounts.format_code(code)])
        except DomainError as exc:  # e.g. no secret key: nothing is issued
            db.session.rollback()
            fail(exc.message)
        output.write_bytes(write_csv(["楼栋", "单元", "房号", "访问码"], rows))
        db.session.commit()
        click.echo(ngettext(
            "%(num)s code written to %(path)s. Keep this file safe: the code is not stored "
            "anywhere else.",
            "%(num)s codes written to %(path)s. Keep this file safe: the codes are not stored "
            "anywhere else.", len(rows), path=str(output)))

    @app.cli.command("import-ballots")
    @click.argument("consultation_id", type=int)
    @click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
    def import_ballots_command(consultation_id: int, file: Path) -> None:
        """Enter paper, door-to-door and proxy ballots from CSV or XLSX, all or nothing."""
        from consult.ballots import service as ballots

        consultation = _consultation(consultation_id)
        summary = run_import(_("Recording ballots"), lambda bar: ballots.import_ballots(
            None, consultation, file.read_bytes(), file.name, progress=bar))
        click.echo(_("Recorded the ballots of %(n)s households (%(new)s new, %(changed)s "
                     "changed) from %(rows)s rows.", n=summary.households, new=summary.new,
                     changed=summary.changed, rows=summary.rows))
        waiting = summary.awaiting_second + summary.differs + summary.awaiting_authorisation
        if waiting or summary.unchanged:
            click.echo(_("Not counted yet: %(second)s await their second entry, %(differs)s "
                         "differ from their first entry, %(authorisation)s await a written "
                         "authorisation. Already recorded exactly so: %(unchanged)s.",
                         second=summary.awaiting_second, differs=summary.differs,
                         authorisation=summary.awaiting_authorisation,
                         unchanged=summary.unchanged))

    @app.cli.command("export-roll")
    @click.argument("consultation_id", type=int)
    @click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
    def export_roll_command(consultation_id: int, file: Path) -> None:
        """Write the frozen electoral roll (表决名册) in the households file format."""
        from consult.ballots import service as ballots

        fmt = file.suffix.lower().lstrip(".")
        if fmt not in ("csv", "xlsx"):
            fail(_("The file name must end in .csv or .xlsx."))
        consultation = _consultation(consultation_id)
        try:
            data = ballots.export_roll(None, consultation, fmt)
        except DomainError as exc:
            fail(exc.message)
        file.write_bytes(data)
        db.session.commit()
        click.echo(_("Wrote %(path)s.", path=str(file)))

    @app.cli.command("tally")
    @click.argument("consultation_id", type=int)
    @click.option("--json", "as_json", is_flag=True, help="Print the tally as JSON.")
    def tally_command(consultation_id: int, as_json: bool) -> None:
        """The tally: frozen once the vote closed, provisional while it runs."""
        import json

        from consult.ballots import service as ballots

        consultation = _consultation(consultation_id)
        data = ballots.current_tally(consultation)
        if data is None:
            fail(_("Voting has not started yet."))
        if as_json:
            click.echo(json.dumps(data, ensure_ascii=False, indent=2))
            return
        from consult.ballots.explain import CHOICE_LABELS, reword
        from consult.core.display import area_m2, choice_order

        # The words in the reader's language, from the numbers (a frozen tally keeps the words
        # it was counted with).
        data = reword(data)
        if data["provisional"]:
            click.echo(_("Provisional: voting is still open."))
        click.echo(data["rule"]["label"])
        for label, totals in ((_("On the electoral roll"), data["roll"]),
                              (_("Returned a ballot"), data["participation"])):
            click.echo(_("%(label)s: %(h)s households, %(o)s owners, %(a)s m²", label=label,
                         h=totals["households"], o=totals["owners"],
                         a=area_m2(totals["area_m2"])))
        for item in data["items"]:
            verdict = {True: _("passed"), False: _("not passed"), None: _("survey")}[
                item["passed"]]
            click.echo(_("%(number)s. %(title)s: %(verdict)s", number=item["number"],
                         title=item["title"], verdict=verdict))
            for key in choice_order(list(item["counts"])):
                label = str(CHOICE_LABELS.get(key, key))
                # Pad by terminal columns: a Chinese character takes two.
                pad = 12 - sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1
                               for ch in label)
                click.echo(f"   {label}{' ' * max(pad, 1)}{item['counts'][key]:>6}  "
                           f"{item['percentages'][key]:>5}%")
            for condition in item["conditions"]:
                click.echo(f"   {condition['text']}")

    @app.cli.command("render-pdf")
    @click.argument("consultation_id", type=int)
    @click.argument("kind", type=click.Choice(list(PDF_KINDS)))
    @click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path),
                  required=True, help="The PDF file to write.")
    def render_pdf_command(consultation_id: int, kind: str, output: Path) -> None:
        """Print a document: vote-notice, resolution, result, ballots, solicitation,
        access-letters (issues fresh codes) or minutes."""
        from consult.notices import printing

        consultation = _consultation(consultation_id)
        bar = ProgressBar(_("Printing"))
        try:
            data = printing.render_kind(None, consultation, kind, progress=bar.at)
        except DomainError as exc:
            bar.close()
            db.session.rollback()
            fail(exc.message)
        bar.close()
        db.session.commit()
        output.write_bytes(data)
        click.echo(_("Wrote %(path)s.", path=str(output)))

    @app.cli.command("close-expired")
    def close_expired_command() -> None:
        """Apply passed deadlines (close solicitations and votes); run it from cron."""
        from consult.consultations import workflow

        done = workflow.close_expired()
        db.session.commit()
        for consultation_id, action in done:
            click.echo(f"{consultation_id}: {action.value}")
        click.echo(ngettext("%(num)s consultation updated.", "%(num)s consultations updated.",
                            len(done)))

    @app.cli.command("backup")
    @click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
    @click.option("--yes", is_flag=True, help="Replace PATH if it exists.")
    def backup_command(path: Path, yes: bool) -> None:
        """Write a consistent backup of the database to PATH while the app keeps running
        (SQLite: a database file; PostgreSQL: a pg_dump custom-format file)."""
        from consult.core import backup

        try:
            info = backup.backup(current_app, path, overwrite=yes)
        except backup.BackupError as exc:
            fail(exc.message)
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

    @app.cli.command("restore")
    @click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
    @click.option("--yes", is_flag=True, help="Replace the database, which must not be used "
                  "meanwhile.")
    @click.pass_context
    def restore_command(ctx: click.Context, path: Path, yes: bool) -> None:
        """Replace the (SQLite) database with the backup PATH, then verify the audit chain."""
        from consult.core import backup

        try:
            info = backup.restore(current_app, path, confirmed=yes)
        except backup.BackupError as exc:
            fail(exc.message)
        db.session.commit()
        click.echo(ngettext(
            "Restored %(path)s (SHA-256 %(sha)s): %(num)s audit event up to #%(seq)s; the "
            "restoration is recorded as the next event.",
            "Restored %(path)s (SHA-256 %(sha)s): %(num)s audit events up to #%(seq)s; the "
            "restoration is recorded as the next event.", info.events or 0, path=str(path),
            sha=info.sha256, seq=info.head_seq))
        # The same check as `flask audit verify`, on the restored database; exits 1 if broken.
        ctx.invoke(current_app.cli.commands["audit"].commands["verify"])  # type: ignore[attr-defined]

    translate_group = AppGroup("translate", help="Keep the translation catalogs in step.")
    app.cli.add_command(translate_group)

    @translate_group.command("update")
    def translate_update_command() -> None:
        """Extract messages and merge them into every catalog."""
        from consult.core import catalogs

        catalogs.update()
        click.echo("Catalogs updated; translate the new empty entries, then compile.")

    @translate_group.command("compile")
    def translate_compile_command() -> None:
        """Compile the catalogs for use."""
        from consult.core import catalogs

        catalogs.compile_all()

    @translate_group.command("check")
    def translate_check_command() -> None:
        """Exit 1 listing every message that is untranslated, fuzzy or has wrong placeholders."""
        from consult.core import catalogs

        problems = catalogs.check()
        for problem in problems:
            click.echo(f"{problem.locale}: {problem.reason}: {problem.msgid!r}", err=True)
        if problems:
            sys.exit(1)
        click.echo("All catalogs are complete.")

    audit_group = AppGroup("audit", help="The audit trail.")
    app.cli.add_command(audit_group)

    jobs_group = AppGroup("jobs", help="Background jobs (print batches) on RQ workers.")
    app.cli.add_command(jobs_group)

    @jobs_group.command("worker")
    @click.option("--burst", is_flag=True, help="Stop once the queue is empty.")
    @click.option("--name", default=None, help="The worker's name (default: a random one).")
    def jobs_worker_command(burst: bool, name: str | None) -> None:
        """Run the queued jobs of REDIS_URL's queue JOBS_QUEUE, in this app's configuration."""
        from consult.core import jobs

        if not current_app.config.get("REDIS_URL"):
            fail(_("Set REDIS_URL to run a jobs worker: without Redis, jobs run in the app "
                   "process."))
        worked = jobs.run_worker(current_app._get_current_object(), burst=burst,  # type: ignore[attr-defined]
                                 name=name)
        if burst:
            click.echo(_("Worked the queue until it was empty.") if worked
                       else _("The queue is empty."))

    def fail_ballots(problems: Any, shown: int = 20) -> NoReturn:
        from consult.audit.crosscheck import describe

        lines = [ngettext("The stored ballots disagree with the audit trail (%(num)s problem):",
                          "The stored ballots disagree with the audit trail (%(num)s problems):",
                          len(problems))]
        lines += [f"- {describe(p)}" for p in problems[:shown]]
        if len(problems) > shown:
            lines.append(_("… and %(n)s more.", n=len(problems) - shown))
        fail("\n".join(lines))

    @audit_group.command("verify")
    def audit_verify_command() -> None:
        """Check every link of the audit chain, then every stored ballot against it; exit 1
        naming what is wrong."""
        from consult.audit import service as audit

        result = audit.verify()
        if result.problem is None:
            click.echo(_("The audit chain holds: %(n)s events, head #%(seq)s %(hash)s.",
                         n=result.checked, seq=result.head_seq, hash=result.head_hash[:16]))
            if not result.ballot_problems:
                click.echo(ngettext("%(num)s stored ballot matches the audit trail.",
                                    "%(num)s stored ballots match the audit trail.",
                                    result.ballots_checked))
                return
            fail_ballots(result.ballot_problems)
        problem = result.problem
        assert problem is not None
        reasons = {
            "hash": _("its content does not match its hash (the row was changed)"),
            "link": _("it does not point to the previous event (an event was removed, inserted "
                      "or reordered)"),
            "gap": _("the sequence jumps from %(expected)s to %(found)s (events are missing)",
                     expected=problem.expected, found=problem.found),
            "head": _("the chain head says %(found)s but the last event is %(expected)s (events "
                      "at the end were removed or added)", found=problem.found,
                      expected=problem.expected),
        }
        where = (_("event #%(seq)s", seq=problem.seq) if problem.seq is not None
                 else _("the chain head"))
        fail(_("The audit chain is broken at %(where)s: %(reason)s. %(n)s events before it "
               "verified.", where=where, reason=reasons[problem.kind], n=result.checked))

    @audit_group.command("export")
    @click.option("--consultation", "consultation_id", type=int, default=None,
                  help="Export one consultation's events (the public format); "
                       "without it, the whole chain.")
    @click.argument("output", type=click.Path(dir_okay=False, writable=True, path_type=Path))
    def audit_export_command(consultation_id: int | None, output: Path) -> None:
        """Write the audit export that tools/recount.py verifies and recounts."""
        from consult.audit import export

        try:
            with output.open("w", encoding="utf-8") as stream:
                if consultation_id is None:
                    count = export.write_chain(stream)
                else:
                    count = export.write_consultation(stream, export.consultation_or_404(
                        consultation_id))
        except DomainError as exc:
            output.unlink(missing_ok=True)
            fail(exc.message)
        click.echo(ngettext("Wrote %(num)s event to %(path)s.",
                            "Wrote %(num)s events to %(path)s.", count, path=str(output)))
