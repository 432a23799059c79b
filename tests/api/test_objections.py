"""Objections (异议) to a notice through the API: a household files one during the publicity
period, the committee answers it publicly and the household is notified; the list names a
household by building only to everyone but itself and the compound's staff; refused by role,
elsewhere, after the period, on a vote notice and for bad text."""

from datetime import timedelta

from sqlalchemy import select

from consult.consultations.states import Action
from consult.core.models import utcnow
from consult.extensions import db
from consult.notices import service as notices
from consult.notices.models import NoticeKind
from consult.notifications import events
from consult.notifications.models import Notification
from consult.process import printing, workflow
from tests import factories
from tests.api.conftest import bearer
from tests.conftest import audit_actions


def _resolution(compound):
    c = factories.make_consultation(compound, items=1)
    factories.walk_to(c, "resolution_public")
    notice = notices.current_notice(c, NoticeKind.RESOLUTION)
    db.session.commit()
    return notice


def _notes(user, event):
    return list(db.session.scalars(select(Notification).where(
        Notification.user_id == user.id, Notification.event == event)))


def test_file_list_answer_and_notify(client, compound, resident):
    notice = _resolution(compound)
    url = f"/api/v1/notices/{notice.id}/objections"
    filed = client.post(url, json={"text": "  我户面积登记有误  "}, headers=bearer(resident))
    assert filed.status_code == 201, filed.json
    assert filed.json["own"] is True and filed.json["text"] == "我户面积登记有误"
    assert filed.json["household"] == resident.household.label
    assert filed.json["answer"] is None and filed.json["answered_at"] is None
    assert "notice.objection_filed" in audit_actions()

    # A neighbour and a visitor see the building only; the household and the committee all.
    neighbour = factories.make_user("resident", household=compound.buildings[1].households[0])
    member = factories.make_user("committee", compound=compound)
    for headers in (bearer(neighbour), {}):
        [seen] = client.get(url, headers=headers).json["items"]
        assert seen["own"] is False and seen["text"] == "我户面积登记有误"
        assert seen["household"] != resident.household.label
        assert resident.household.room not in seen["household"]
        assert resident.household.building.name in seen["household"]
    assert client.get(url, headers=bearer(resident)).json["items"][0]["household"] == \
        resident.household.label
    assert client.get(url, headers=bearer(member)).json["items"][0]["household"] == \
        resident.household.label

    answer_url = f"/api/v1/objections/{filed.json['id']}/answer"
    answered = client.put(answer_url, json={"text": "已核对房产证，面积已更正。"},
                          headers=bearer(member))
    assert answered.status_code == 200, answered.json
    assert answered.json["answer"] == "已核对房产证，面积已更正。"
    assert answered.json["answered_at"] is not None
    assert "notice.objection_answered" in audit_actions()
    [note] = _notes(resident, events.OBJECTION_ANSWERED)
    assert note.link == f"/notices/{notice.id}"
    assert _notes(neighbour, events.OBJECTION_ANSWERED) == []
    [shown] = client.get(url).json["items"]
    assert shown["answer"] == "已核对房产证，面积已更正。"

    # A revised answer is recorded and notified again.
    revised = client.put(answer_url, json={"text": "面积已更正为 85.32 m²。"},
                         headers=bearer(member))
    assert revised.status_code == 200 and revised.json["answer"] == "面积已更正为 85.32 m²。"
    assert audit_actions().count("notice.objection_answered") == 2
    assert len(_notes(resident, events.OBJECTION_ANSWERED)) == 2


def test_refused_by_role_elsewhere_and_for_bad_text(client, compound, resident):
    notice = _resolution(compound)
    url = f"/api/v1/notices/{notice.id}/objections"
    objection = notices.file_objection(resident, notice, resident.household, "费用太高")
    db.session.commit()
    answer_url = f"/api/v1/objections/{objection.id}/answer"
    body = {"text": "费用已按财政标准核定。"}

    assert client.post(url, json={"text": "x"}).status_code == 401
    assert client.put(answer_url, json=body).status_code == 401
    assert client.put(answer_url, json=body, headers=bearer(resident)).status_code == 403
    elsewhere = factories.make_user("committee", compound=factories.make_compound("别的小区"))
    assert client.put(answer_url, json=body, headers=bearer(elsewhere)).status_code == 403
    supervisor = factories.make_user("supervisor", compound=compound)
    assert client.put(answer_url, json=body, headers=bearer(supervisor)).status_code == 403
    member = factories.make_user("committee", compound=compound)
    assert client.post(url, json={"text": "x"}, headers=bearer(member)).status_code == 403
    other = factories.make_compound_with_households(per_building=1)
    stranger = factories.make_user("resident", household=other.buildings[0].households[0])
    assert client.post(url, json={"text": "x"}, headers=bearer(stranger)).status_code == 403
    assert "notice.objection_answered" not in audit_actions()
    assert notices.objections_of(notice) == [objection]

    for text in ("   ", "长" * (notices.MAX_OBJECTION_LENGTH + 1)):
        refused = client.post(url, json={"text": text}, headers=bearer(resident))
        assert refused.status_code == 400 and "text" in refused.json["error"]["errors"]
        empty = client.put(answer_url, json={"text": text}, headers=bearer(member))
        assert empty.status_code == 400 and "text" in empty.json["error"]["errors"]
    missing = client.post(url, json={}, headers=bearer(resident))
    assert missing.status_code == 400 and "text" in missing.json["error"]["errors"]
    assert objection.answered_at is None

    assert client.get("/api/v1/notices/999999/objections").status_code == 404
    assert client.post("/api/v1/notices/999999/objections", json={"text": "x"},
                       headers=bearer(resident)).status_code == 404
    assert client.put("/api/v1/objections/999999/answer", json=body,
                      headers=bearer(member)).status_code == 404


def test_refused_after_the_period_and_on_a_vote_notice(client, compound, resident):
    notice = _resolution(compound)
    notice.period_ends_at = utcnow() - timedelta(minutes=1)
    db.session.commit()
    late = client.post(f"/api/v1/notices/{notice.id}/objections", json={"text": "晚了"},
                       headers=bearer(resident))
    assert late.status_code == 409 and late.json["error"]["code"] == "conflict"
    assert notices.objections_of(notice) == []

    c = factories.make_consultation(compound, items=1)
    factories.walk_to(c, "discussing")
    c.vote_deadline = utcnow() + timedelta(days=7)
    vote_notice = printing.issue_vote_notice(None, c)
    workflow.apply(c, Action.OPEN_VOTE, None)
    db.session.commit()
    refused = client.post(f"/api/v1/notices/{vote_notice.id}/objections",
                          json={"text": "反对"}, headers=bearer(resident))
    assert refused.status_code == 409
    assert client.get(f"/api/v1/notices/{vote_notice.id}/objections").json["items"] == []

