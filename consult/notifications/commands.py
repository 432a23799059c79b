"""``flask send-notifications`` (``flask notifications send``): produce the time-based events,
then send the outbox rows that are due. Run it from cron every few minutes, or let an RQ worker
run ``send_job`` when Redis is configured (``--queue``)."""

from __future__ import annotations

import os
import socket
import uuid
from dataclasses import asdict
from datetime import datetime

import click
from flask.cli import AppGroup
from flask_babel import gettext as _

from consult.core import jobs
from consult.core.commands import command_transaction
from consult.core.models import utcnow
from consult.extensions import db
from consult.notifications import outbox
from consult.process import notify_events

group = AppGroup("notifications", help="Notifications: reminders and the outbox.")

BATCH = 500


def sender_name() -> str:
    """Who claims rows: host, process and a random part, unique to this run."""
    return f"{socket.gethostname()[:40]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def send_pending(now: datetime | None = None, sender: str | None = None,
                 limit: int = BATCH) -> outbox.Counts:
    """Send the due outbox rows, each claimed and finished in a transaction of its own (a
    claim is committed before the message goes, so no other sender can send it too)."""
    now = now or utcnow()
    sender = sender or sender_name()
    counts = outbox.Counts()
    outbox.release_stale(now)
    ids = outbox.due_ids(now, limit)
    db.session.commit()
    for row_id in ids:
        claimed = outbox.claim(row_id, sender, now)
        db.session.commit()
        if not claimed:
            counts.skipped += 1
            continue
        if outbox.defer_if_quiet(row_id, sender, now):
            db.session.commit()
            counts.deferred += 1
            continue
        result = outbox.send_claimed(row_id, sender, now)
        db.session.commit()
        if result == "sent":
            counts.sent += 1
        elif result == "given_up":
            counts.given_up += 1
        elif result == "failed":
            counts.failed += 1
    return counts


def run(now: datetime | None = None) -> tuple[dict[str, int], outbox.Counts]:
    """Produce the time-based events (one transaction), then send what is due."""
    now = now or utcnow()
    with command_transaction():
        produced = notify_events.produce_due(now)
    return produced, send_pending(now)


def send_job() -> None:
    """The same as the command, as an RQ job (``jobs.submit(send_job)``)."""
    run()


@group.command("send")
@click.option("--queue", "queued", is_flag=True,
              help="Queue the run for an RQ worker instead of running it here.")
def send_command(queued: bool) -> None:
    """Produce reminders and send the due email and SMS messages; run it from cron."""
    if queued:
        jobs.submit(send_job)
        click.echo(_("Queued."))
        return
    produced, counts = run()
    click.echo(_("Reminders of votes closing: %(num)s; new to-do items: %(todo)s.",
                 num=produced["vote_closing"], todo=produced["staff_todo"]))
    numbers = asdict(counts)
    click.echo(_("Sent: %(sent)s; failed (tried again later): %(failed)s; given up: "
                 "%(given_up)s; waiting for quiet hours to end: %(deferred)s; taken by "
                 "another sender: %(skipped)s.", **numbers))
