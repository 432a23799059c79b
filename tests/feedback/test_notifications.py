"""A household hears of each step on its defect report that someone else took, in its
notification centre; its own steps, and other households, tell it nothing."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import select

from consult.extensions import db
from consult.notifications.models import Notification
from tests import factories
from tests.feedback.conftest import png
from tests.feedback.test_life import EN, due, report_id, send_report, step


def told(user: Any) -> list[tuple[str, Any, str]]:
    rows = db.session.scalars(select(Notification).where(Notification.user_id == user.id)
                              .where(Notification.event == "defect_report_changed")
                              .order_by(Notification.id))
    return [(r.event, json.loads(r.params_json)["state"], r.link) for r in rows]


def test_each_step_of_the_committee_reaches_the_household_once(client, finished):
    c = finished.consultation
    factories.sign_in(client, finished.resident)
    rid = report_id(send_report(client, c, building_id=str(finished.mine.building_id)))
    assert told(finished.resident) == []  # its own report: nothing to tell it
    factories.sign_in(client, finished.committee)
    step(client, rid, "accept")
    step(client, rid, "assign", assignee="市政维修队", due_on=due())
    step(client, rid, "mark_fixed", note="已重新铺设", photo=png())
    link = f"/feedback/{rid}"
    assert told(finished.resident) == [("defect_report_changed", state, link)
                                       for state in ("accepted", "assigned", "fixed")]
    factories.sign_in(client, finished.resident)
    step(client, rid, "confirm")
    assert len(told(finished.resident)) == 3  # confirming itself tells it nothing
    assert told(finished.neighbour_account) == []
    assert told(finished.committee) == []

    centre = client.get("/notifications", headers=EN)
    assert centre.status_code == 200
    assert f"defect report no. {rid}" in centre.text
    assert "The committee says it is fixed: look, then confirm or reopen the report." in (
        centre.text)


def test_a_report_a_grid_worker_made_for_a_household_is_told_to_it(client, finished, login_as):
    c = finished.consultation
    login_as("grid_worker", compound=finished.compound)
    rid = report_id(send_report(client, c, building_id=str(finished.mine.building_id),
                                household_id=str(finished.mine.id)))
    assert told(finished.resident) == [("defect_report_changed", "open", f"/feedback/{rid}")]
    assert told(finished.neighbour_account) == []


def test_the_email_goes_out_unless_the_household_switched_the_event_off(app, client, finished,
                                                                       monkeypatch):
    from consult.notifications import service as notifications
    from consult.notifications.models import OutboxMessage

    def emails(user: Any) -> list[str]:
        return list(db.session.scalars(select(OutboxMessage.address).where(
            OutboxMessage.user_id == user.id, OutboxMessage.channel == "email",
            OutboxMessage.event == "defect_report_changed")))

    monkeypatch.setitem(app.config, "SMTP_HOST", "127.0.0.1")  # email configured
    notifications.save_preferences(finished.resident, "mine@example.com", {}, "", "")
    notifications.save_preferences(finished.neighbour_account, "them@example.com",
                                   {"email": ["defect_report_changed"]}, "", "")
    c = finished.consultation
    ids = []
    for household, account in ((finished.mine, finished.resident),
                               (finished.neighbour, finished.neighbour_account)):
        factories.sign_in(client, account)
        ids.append(report_id(send_report(client, c, building_id=str(household.building_id))))
    factories.sign_in(client, finished.committee)
    for rid in ids:
        step(client, rid, "accept")
    assert emails(finished.resident) == ["mine@example.com"]
    # Switched off for email: the centre still shows it, no email is queued.
    assert emails(finished.neighbour_account) == []
    assert [s for _, s, _ in told(finished.neighbour_account)] == ["accepted"]
