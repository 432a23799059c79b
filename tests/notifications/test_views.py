"""The notification centre's pages: one's own notifications only, marking read with CSRF,
the unread count in the header, the preferences form."""

from __future__ import annotations

import re

from sqlalchemy import select

from consult.extensions import db
from consult.notifications import events
from consult.notifications import service as notifications
from consult.notifications.models import Notification, NotificationSettings
from tests import factories


def _household(compound, b=0, n=0):
    return compound.buildings[b].households[n]


def _notify(users, key, title="电梯加装"):
    notifications.notify(events.BALLOT_CORRECTED, users, {"consultation": title},
                         "/consultations/1", key)


def _badge(html):
    match = re.search(r'class="nav-link notification-link[^"]*"[^>]*data-unread="(\d+)"', html)
    assert match, "the header has no notification link"
    return int(match.group(1))


def test_the_centre_lists_only_ones_own_notifications_newest_first(client, compound):
    me = factories.make_user("resident", household=_household(compound))
    neighbour = factories.make_user("resident", household=_household(compound, 1))
    _notify([me], "first", "第一件事")
    _notify([me], "second", "第二件事")
    _notify([neighbour], "theirs", "邻居的秘密")
    factories.sign_in(client, me)
    page = client.get("/notifications").get_data(as_text=True)
    assert page.index("第二件事") < page.index("第一件事")
    assert "邻居的秘密" not in page
    assert _badge(page) == 2
    assert page.count("notification-unread") == 2


def test_a_household_cannot_mark_a_neighbours_notification(client, compound):
    me = factories.make_user("resident", household=_household(compound))
    neighbour = factories.make_user("resident", household=_household(compound, 1))
    _notify([neighbour], "theirs")
    theirs = db.session.scalars(select(Notification).where(
        Notification.user_id == neighbour.id)).one()
    factories.sign_in(client, me)
    response = client.post("/notifications/read", data={"notification_id": theirs.id})
    assert response.status_code == 404
    assert client.post("/notifications/read-all").status_code == 302
    db.session.refresh(theirs)
    assert theirs.read_at is None


def test_marking_read_needs_the_csrf_token_and_lowers_the_count(client, compound):
    me = factories.make_user("resident", household=_household(compound))
    _notify([me], "a")
    _notify([me], "b")
    note = db.session.scalars(select(Notification).where(Notification.user_id == me.id)
                              .order_by(Notification.id)).first()
    factories.sign_in(client, me)
    refused = client.post("/notifications/read", data={"notification_id": note.id},
                          csrf=False)
    assert refused.status_code == 400
    assert notifications.unread_count(me.id) == 2
    page = client.post("/notifications/read", data={"notification_id": note.id},
                       follow_redirects=True).get_data(as_text=True)
    assert _badge(page) == 1
    assert client.post("/notifications/read-all", csrf=False).status_code == 400
    page = client.post("/notifications/read-all", follow_redirects=True).get_data(as_text=True)
    assert _badge(page) == 0 and "notification-unread" not in page


def test_the_header_count_costs_one_query_and_none_for_visitors(client, compound, app):
    from sqlalchemy import event

    me = factories.make_user("resident", household=_household(compound))
    _notify([me], "a")
    statements: list[str] = []

    def count(conn, cursor, statement, *args):
        if "notification" in statement:
            statements.append(statement)

    event.listen(db.engine, "before_cursor_execute", count)
    try:
        assert "notification-link" not in client.get("/").get_data(as_text=True)
        assert statements == []
        factories.sign_in(client, me)
        assert _badge(client.get("/consultations/").get_data(as_text=True)) == 1
    finally:
        event.remove(db.engine, "before_cursor_execute", count)
    assert len(statements) == 1 and "count(" in statements[0].lower()


def test_preferences_are_saved_and_bad_input_comes_back_with_the_work_kept(client, compound):
    me = factories.make_user("resident", household=_household(compound))
    factories.sign_in(client, me)
    page = client.get("/notifications/preferences").get_data(as_text=True)
    assert 'name="email__vote_closing"' in page and "staff_todo" not in page
    bad = client.post("/notifications/preferences", data={
        "email": "me@example.org", "quiet_start": "22:00", "quiet_end": "7h",
        "email__stage_opened": "y"}, headers={"Accept-Language": "en"})
    assert bad.status_code == 200
    text = bad.get_data(as_text=True)
    assert "Enter a time as hours and minutes" in text and 'value="me@example.org"' in text
    assert db.session.scalar(select(NotificationSettings)) is None
    good = client.post("/notifications/preferences", data={
        "email": "me@example.org", "quiet_start": "22:00", "quiet_end": "07:00",
        "email__stage_opened": "y", "sms__stage_opened": "y"})
    assert good.status_code == 302
    prefs = notifications.preferences_of(me)
    assert prefs.email == "me@example.org" and (prefs.quiet_start, prefs.quiet_end) == (
        22 * 60, 7 * 60)
    assert not prefs.wants(notifications.Channel.EMAIL, events.VOTE_CLOSING)
    assert prefs.wants(notifications.Channel.EMAIL, events.STAGE_OPENED)
    # The account page shows the address and leads to the preferences.
    profile = client.get("/account").get_data(as_text=True)
    assert "me@example.org" in profile and "/notifications/preferences" in profile


def test_staff_have_a_centre_and_their_own_events(client, compound):
    member = factories.make_user("committee", compound=compound)
    factories.sign_in(client, member)
    page = client.get("/notifications/preferences").get_data(as_text=True)
    assert 'name="email__staff_todo"' in page and "vote_closing" not in page
    assert client.get("/notifications").status_code == 200
    profile = client.get("/account").get_data(as_text=True)
    assert "/notifications/preferences" in profile
