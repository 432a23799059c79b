"""Defect reports through the API: a household reports with photos and sees only its own, the
committee handles it step by step (a wrong step is 409 with its code), the household
confirms; neighbours, other compounds and wrong roles refused; the public list names nobody."""

import base64
from datetime import timedelta

from consult.core.models import utcnow
from consult.extensions import db
from consult.feedback.models import DefectReport
from tests import factories
from tests.access.uploads import png_upload
from tests.api.conftest import bearer
from tests.conftest import audit_actions
from tests.feedback.conftest import finished  # noqa: F401  # the fixture

PNG = {"filename": "lamp.png", "content_base64": base64.b64encode(png_upload().read()).decode()}


def _report(client, f, headers, **extra):
    c = f.consultation
    body = {"item_id": c.items[0].id, "building_id": f.mine.building_id, "text": "路灯不亮",
            **extra}
    return client.post(f"/api/v1/consultations/{c.id}/feedback", json=body, headers=headers)


def test_report_handle_and_confirm(client, finished):  # noqa: F811
    f = finished
    mine, theirs, staff = bearer(f.resident), bearer(f.neighbour_account), bearer(f.committee)
    made = _report(client, f, mine, photos=[PNG])
    assert made.status_code == 201, made.json
    report_id = made.json["id"]
    assert made.json["state"] == "open" and len(made.json["photo_urls"]) == 1
    assert made.json["history"][0]["action"] == "feedback.reported"
    assert "feedback.reported" in audit_actions()
    url = f"/api/v1/consultations/{f.consultation.id}/feedback"
    # The household sees its own, the neighbour none, the committee all.
    assert [r["id"] for r in client.get(url, headers=mine).json["items"]] == [report_id]
    assert client.get(url, headers=theirs).json["items"] == []
    assert [r["id"] for r in client.get(url, headers=staff).json["items"]] == [report_id]
    detail = f"/api/v1/feedback/{report_id}"
    assert client.get(detail, headers=theirs).status_code == 403
    steps = f"{detail}/steps"
    early = client.post(steps, json={"action": "confirm"}, headers=mine)
    assert early.status_code == 409
    assert early.json["error"]["code"] == "feedback_step_not_allowed"
    assert client.post(steps, json={"action": "accept"}, headers=mine).status_code == 403
    assert client.post(steps, json={"action": "accept"}, headers=staff).json["state"] == \
        "accepted"
    missing = client.post(steps, json={"action": "assign"}, headers=staff)
    assert missing.status_code == 400
    assert {"assignee", "due_on"} <= set(missing.json["error"]["errors"])
    due = (utcnow() + timedelta(days=5)).date().isoformat()
    assigned = client.post(steps, json={"action": "assign", "assignee": "物业 王师傅",
                                        "due_on": due}, headers=staff)
    assert assigned.json["state"] == "assigned" and assigned.json["due_on"] == due
    no_photo = client.post(steps, json={"action": "mark_fixed", "note": "换了灯泡"},
                           headers=staff)
    assert "photo" in no_photo.json["error"]["errors"]
    fixed = client.post(steps, json={"action": "mark_fixed", "note": "换了灯泡",
                                     "photo": PNG}, headers=staff)
    assert fixed.json["state"] == "fixed" and fixed.json["fix_photo_url"]
    seen = client.get(detail, headers=mine).json
    assert seen["actions"] == ["confirm", "reopen"]
    assert [s["action"] for s in seen["history"]] == [
        "feedback.reported", "feedback.accepted", "feedback.assigned", "feedback.fixed"]
    assert seen["history"][2]["data"]["due_on"] == due
    assert client.post(steps, json={"action": "confirm"}, headers=theirs).status_code == 403
    done = client.post(steps, json={"action": "confirm"}, headers=mine)
    assert done.json["state"] == "confirmed"
    assert db.session.get(DefectReport, report_id).closed_at is not None


def test_refusals_elsewhere_and_by_role(client, finished):  # noqa: F811
    f = finished
    elsewhere = factories.make_user("committee", compound=factories.make_compound("别处"))
    made = _report(client, f, bearer(f.resident))
    report_id = made.json["id"]
    url = f"/api/v1/consultations/{f.consultation.id}/feedback"
    assert client.get(url, headers=bearer(elsewhere)).status_code == 403
    assert client.get(f"/api/v1/feedback/{report_id}",
                      headers=bearer(elsewhere)).status_code == 403
    assert client.post(f"/api/v1/feedback/{report_id}/steps", json={"action": "accept"},
                       headers=bearer(elsewhere)).status_code == 403
    # The committee handles reports, it does not make them.
    assert _report(client, f, bearer(f.committee)).status_code == 403
    assert client.get(url).status_code == 401
    bad = _report(client, f, bearer(f.resident), item_id=999999, text="",
                  photos=[{"filename": "a.pdf", "content_base64": "JVBERi0xLjQ="}])
    assert bad.status_code == 400
    assert {"item_id", "text"} <= set(bad.json["error"]["errors"])
    not_image = _report(client, f, bearer(f.resident),
                        photos=[{"filename": "a.pdf", "content_base64": "JVBERi0xLjQ="}])
    assert not_image.status_code == 400 and "photos" in not_image.json["error"]["errors"]


def test_public_list_names_nobody(client, finished):  # noqa: F811
    f = finished
    for _ in range(3):
        assert _report(client, f, bearer(f.resident)).status_code == 201
    url = f"/api/v1/compounds/{f.compound.id}/feedback"
    first = client.get(f"{url}?limit=2")
    assert first.status_code == 200, first.json
    rows = first.json["items"]
    assert len(rows) == 2 and rows[0]["number"] > rows[1]["number"]
    assert "text" not in rows[0] and "household_id" not in rows[0]
    assert "路灯不亮" not in first.get_data(as_text=True)
    rest = client.get(f"{url}?limit=2&cursor={first.json['next_cursor']}").json
    assert len(rest["items"]) == 1 and rest["next_cursor"] is None
    assert client.get("/api/v1/compounds/999999/feedback").status_code == 404
