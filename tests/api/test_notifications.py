"""The notification centre through the API: a person's own notifications in their language,
cursor pages, marking read; preferences with the page's checks; nobody else's."""

from datetime import timedelta

from sqlalchemy import select

from consult.core.models import utcnow
from consult.extensions import db
from consult.notifications import events
from consult.notifications import service as notifications
from consult.notifications.models import Notification
from tests import factories
from tests.api.conftest import bearer
from tests.conftest import audit_actions


def _notify(user, n: int) -> None:
    start = utcnow() - timedelta(hours=n)
    for i in range(n):
        notifications.notify(events.VOTE_CLOSING, [user], {
            "consultation": f"议题{i}", "deadline": "2026-12-20T10:00:00+00:00"},
            "/consultations/1", f"closing-{i}", now=start + timedelta(minutes=i))


def test_pages_newest_first_in_the_readers_language(client, compound, resident):
    _notify(resident, 3)
    db.session.commit()
    url = "/api/v1/me/notifications"
    first = client.get(f"{url}?limit=2", headers=bearer(resident))
    assert first.status_code == 200, first.json
    assert first.json["unread"] == 3
    assert [n["params"]["consultation"] for n in first.json["items"]] == ["议题2", "议题1"]
    assert first.json["items"][0]["title"] == "议题2: the vote closes soon"
    assert all(n["unread"] for n in first.json["items"])
    rest = client.get(f"{url}?limit=2&cursor={first.json['next_cursor']}",
                      headers=bearer(resident))
    assert [n["params"]["consultation"] for n in rest.json["items"]] == ["议题0"]
    assert rest.json["next_cursor"] is None
    chinese = client.get(url, headers=bearer(resident, **{"Accept-Language": "zh-CN"}))
    assert chinese.json["items"][0]["title"] != "议题2: the vote closes soon"
    assert chinese.json["items"][0]["title"].startswith("议题2")
    etag = first.headers["ETag"]
    again = client.get(f"{url}?limit=2", headers=bearer(resident, **{"If-None-Match": etag}))
    assert again.status_code == 304


def test_mark_read_own_only(client, compound, resident):
    neighbour = factories.make_user("resident", household=compound.buildings[1].households[0])
    _notify(resident, 2)
    _notify(neighbour, 1)
    db.session.commit()
    mine = list(db.session.scalars(select(Notification.id).where(
        Notification.user_id == resident.id).order_by(Notification.id)))
    theirs = db.session.scalar(select(Notification.id).where(
        Notification.user_id == neighbour.id))
    headers = bearer(resident)
    refused = client.post(f"/api/v1/me/notifications/{theirs}/read", headers=headers)
    assert refused.status_code == 404 and refused.json["error"]["code"] == "not_found"
    assert db.session.get(Notification, theirs).read_at is None
    assert client.post(f"/api/v1/me/notifications/{mine[0]}/read",
                       headers=headers).status_code == 204
    listed = client.get("/api/v1/me/notifications", headers=headers).json
    assert [n["unread"] for n in listed["items"]] == [True, False] and listed["unread"] == 1
    # The neighbour's list holds only its own.
    theirs_listed = client.get("/api/v1/me/notifications", headers=bearer(neighbour)).json
    assert [n["id"] for n in theirs_listed["items"]] == [theirs]
    done = client.post("/api/v1/me/notifications/read-all", headers=headers)
    assert done.json == {"marked": 1}
    assert notifications.unread_count(resident.id) == 0
    assert notifications.unread_count(neighbour.id) == 1


def test_preferences_saved_with_the_pages_checks(client, compound, resident):
    url = "/api/v1/me/notification-preferences"
    headers = bearer(resident)
    start = client.get(url, headers=headers).json
    assert start["email"] is None and start["off"] == {"email": [], "sms": []}
    assert [e["code"] for e in start["events"]] == list(events.HOUSEHOLD_EVENTS)
    bad = client.put(url, json={"email": "not an address", "quiet_start": "25:00",
                                "quiet_end": ""}, headers=headers)
    assert bad.status_code == 400
    assert set(bad.json["error"]["errors"]) == {"email", "quiet_start"}
    half = client.put(url, json={"quiet_start": "22:00"}, headers=headers)
    assert "quiet_end" in half.json["error"]["errors"]
    unknown = client.put(url, json={"off": {"fax": []}}, headers=headers)
    assert unknown.status_code == 400
    saved = client.put(url, json={
        "email": "a@example.com", "quiet_start": "22:00", "quiet_end": "07:00",
        "off": {"email": ["vote_closing", "staff_todo"], "sms": ["stage_opened"]}},
        headers=headers)
    assert saved.status_code == 200, saved.json
    # An event a household cannot receive is dropped, as on the page.
    assert saved.json["off"] == {"email": ["vote_closing"], "sms": ["stage_opened"]}
    assert (saved.json["quiet_start"], saved.json["quiet_end"]) == ("22:00", "07:00")
    assert "notifications.preferences_changed" in audit_actions()
    prefs = notifications.preferences_of(resident)
    assert prefs.email == "a@example.com" and prefs.quiet_start == 22 * 60
    other = factories.make_user("resident", household=compound.buildings[1].households[0])
    assert client.get(url, headers=bearer(other)).json["email"] is None


def test_anonymous_is_refused(client):
    assert client.get("/api/v1/me/notifications").status_code == 401
    assert client.post("/api/v1/me/notifications/read-all").status_code == 401
