"""Sending the outbox to a real SMTP server: exactly one email per event and recipient across a
refused attempt, a second run and two senders at once."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from flask import Flask
from sqlalchemy import select

from consult.consultations.states import Action
from consult.core.models import utcnow
from consult.extensions import db
from consult.notifications import events, outbox
from consult.notifications import service as notifications
from consult.notifications.commands import send_pending
from consult.notifications.models import OutboxMessage, OutboxStatus
from consult.process import workflow
from tests import factories
from tests.notifications.conftest import households_with_accounts

pytestmark = pytest.mark.committing


def _rows() -> list[OutboxMessage]:
    db.session.expire_all()
    return list(db.session.scalars(select(OutboxMessage).order_by(OutboxMessage.id)))


def test_one_email_per_event_and_recipient_across_a_refusal_and_a_second_run(app, smtp,
                                                                              runner):
    compound = factories.make_compound_with_households(per_building=2)
    users = households_with_accounts(compound)
    c = factories.make_consultation(compound, title="加装电梯")
    workflow.apply(c, Action.START_SOLICITING, None)
    db.session.commit()
    assert len(_rows()) == len(users) == 4

    smtp.refuse = 1  # the server refuses the first message (451)
    now = utcnow()
    first = send_pending(now)
    assert (first.sent, first.failed) == (3, 1) and smtp.refused == 1
    [failed] = [r for r in _rows() if r.status == OutboxStatus.PENDING.value]
    assert failed.attempts == 1 and "451" in (failed.last_error or "")
    assert failed.next_attempt_at == now + outbox.backoff(1)
    # Not due yet: nothing is sent again.
    assert send_pending(now + timedelta(seconds=30)).sent == 0
    assert send_pending(now + timedelta(minutes=2)).sent == 1
    assert all(r.status == OutboxStatus.SENT.value and r.sent_at for r in _rows())

    # A second run from the command line (as cron would start it) sends nothing more.
    db.session.commit()  # the test holds no transaction while the command runs
    result = runner.invoke(args=["send-notifications"])
    assert result.exit_code == 0, result.output
    assert "Sent: 0" in result.output
    for user in users:
        [message] = smtp.to(f"h{user.household_id}@example.org")
        assert "加装电梯" in message["Subject"]
        body = message.get_content()
        assert f"https://yishi.example.org/consultations/{c.id}" in body
    assert len(smtp.messages) == 4
    # The message is written in the recipient's language (here the consultation's: Chinese).
    assert "征集" in smtp.messages[0]["Subject"] or "意见" in smtp.messages[0]["Subject"]


def test_two_senders_at_once_send_each_message_once(app: Flask, smtp):
    compound = factories.make_compound_with_households(per_building=4)
    users = households_with_accounts(compound)
    for n in range(5):
        notifications.notify(events.BALLOT_CORRECTED, users, {"consultation": f"议题{n}"},
                             "/", f"two-senders:{n}")
    db.session.commit()
    assert len(_rows()) == 5 * len(users) == 40
    now = utcnow()
    results: list[outbox.Counts] = []
    barrier = threading.Barrier(2)

    def sender(name: str) -> None:
        with app.app_context():
            barrier.wait()
            results.append(send_pending(now, sender=name))
            db.session.remove()

    db.session.commit()
    threads = [threading.Thread(target=sender, args=(f"sender-{n}",)) for n in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert sum(r.sent for r in results) == 40
    assert len(smtp.messages) == 40
    sent = {(m["To"], m["Subject"]) for m in smtp.messages}
    assert len(sent) == 40  # every (recipient, event) exactly once
    assert all(r.status == OutboxStatus.SENT.value for r in _rows())


def test_a_claim_is_taken_once(app, smtp):
    compound = factories.make_compound_with_households(per_building=1)
    [user, *_] = households_with_accounts(compound)
    notifications.notify(events.BALLOT_CORRECTED, [user], {"consultation": "x"}, "/", "claim")
    db.session.commit()
    [row] = _rows()
    now = utcnow()
    assert outbox.claim(row.id, "a", now) is True
    assert outbox.claim(row.id, "b", now) is False
    db.session.commit()
    # A sender that died holding the claim: the row comes back after STALE_CLAIM.
    assert outbox.release_stale(now + timedelta(minutes=1)) == 0
    assert outbox.release_stale(now + outbox.STALE_CLAIM + timedelta(seconds=1)) == 1
    assert outbox.claim(row.id, "b", now + outbox.STALE_CLAIM + timedelta(seconds=2)) is True


def test_a_server_that_is_down_leaves_the_row_pending_with_backoff(app, smtp, monkeypatch):
    compound = factories.make_compound_with_households(per_building=1)
    [user, *_] = households_with_accounts(compound)
    notifications.notify(events.BALLOT_CORRECTED, [user], {"consultation": "x"}, "/", "down")
    db.session.commit()
    from tests.notifications.conftest import free_port

    monkeypatch.setitem(app.config, "SMTP_PORT", free_port())  # nobody listens there
    now = utcnow()
    assert send_pending(now).failed == 1
    assert send_pending(now + outbox.backoff(1) - timedelta(seconds=1)).failed == 0
    assert send_pending(now + outbox.backoff(1)).failed == 1
    [row] = _rows()
    assert row.attempts == 2 and row.next_attempt_at == now + outbox.backoff(1) + outbox.backoff(2)
    assert smtp.messages == []


def test_backoff_doubles_up_to_six_hours():
    assert [outbox.backoff(n).total_seconds() // 60 for n in (1, 2, 3)] == [1, 2, 4]
    assert outbox.backoff(30) == outbox.LONGEST_WAIT


def test_the_queued_run_sends_as_a_job(app, smtp, runner):
    """``--queue`` hands the run to ``jobs.submit`` (RQ with Redis; inline in the tests)."""
    compound = factories.make_compound_with_households(per_building=1)
    [user, *_] = households_with_accounts(compound)
    notifications.notify(events.BALLOT_CORRECTED, [user], {"consultation": "排队"}, "/", "job")
    db.session.commit()
    result = runner.invoke(args=["notifications", "send", "--queue"])
    assert result.exit_code == 0, result.output
    assert [m["To"] for m in smtp.messages] == [f"h{user.household_id}@example.org"]
    assert all(r.status == OutboxStatus.SENT.value for r in _rows())
