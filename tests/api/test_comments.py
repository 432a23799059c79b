"""Comments on a proposal's items through the API: threads and replies, newest threads first;
households named by building only to neighbours; hidden text not shown; refused outside the
discussion, elsewhere and by role."""

import json

from sqlalchemy import select

from consult.audit.models import AuditEvent
from consult.consultations import discussion
from consult.consultations.models import Comment
from consult.extensions import db
from tests import factories
from tests.api.conftest import bearer
from tests.conftest import audit_actions


def test_comment_reply_and_list(client, compound, resident):
    c = factories.make_consultation(compound, items=1)
    factories.walk_to(c, "discussing")
    db.session.commit()
    item = c.items[0]
    url = f"/api/v1/consultations/{c.id}/items/{item.id}/comments"
    mine = bearer(resident)
    neighbour = factories.make_user("resident", household=compound.buildings[1].households[0])
    theirs = bearer(neighbour)
    first = client.post(url, json={"text": "建议北侧"}, headers=mine)
    assert first.status_code == 201, first.json
    assert first.json["own"] is True and first.json["by"] == "household"
    reply = client.post(url, json={"text": "同意", "parent_id": first.json["id"]},
                        headers=theirs)
    assert reply.json["parent_id"] == first.json["id"]
    second = client.post(url, json={"text": "再议"}, headers=theirs)
    assert "comment.posted" in audit_actions()
    empty = client.post(url, json={"text": "   "}, headers=mine)
    assert empty.status_code == 400 and "text" in empty.json["error"]["errors"]
    listed = client.get(f"{url}?limit=1", headers=theirs).json
    assert listed["count"] == 3
    assert [t["id"] for t in listed["items"]] == [second.json["id"]]
    rest = client.get(f"{url}?cursor={listed['next_cursor']}", headers=theirs).json
    thread = rest["items"][0]
    assert thread["id"] == first.json["id"] and thread["own"] is False
    assert [r["text"] for r in thread["replies"]] == ["同意"]
    # A neighbour sees the building only; the household itself its own address.
    assert thread["author"] != resident.household.label
    assert resident.household.building.name in thread["author"]
    assert client.get(url, headers=mine).json["items"][1]["author"] == \
        resident.household.label
    discussion.moderate(None, db.session.get(Comment, first.json["id"]), "人身攻击")
    db.session.commit()
    hidden = client.get(url).json["items"][1]
    assert hidden["text"] is None and hidden["hidden_reason"] == "人身攻击"


def test_refused_outside_discussion_elsewhere_and_by_role(client, compound, resident, voting):
    item = voting.items[0]
    url = f"/api/v1/consultations/{voting.id}/items/{item.id}/comments"
    closed = client.post(url, json={"text": "晚了"}, headers=bearer(resident))
    assert closed.status_code == 409
    other = factories.make_compound_with_households(per_building=1)
    stranger = factories.make_user("resident", household=other.buildings[0].households[0])
    assert client.post(url, json={"text": "x"}, headers=bearer(stranger)).status_code == 403
    committee = factories.make_user("committee", compound=compound)
    assert client.post(url, json={"text": "x"}, headers=bearer(committee)).status_code == 403
    assert client.post(url, json={"text": "x"}).status_code == 401
    assert client.get(f"/api/v1/consultations/{voting.id}/items/999999/comments"
                      ).status_code == 404


def test_committee_answers_hides_and_a_household_withdraws(client, compound, resident):
    c = factories.make_consultation(compound, items=1)
    factories.walk_to(c, "discussing")
    db.session.commit()
    item = c.items[0]
    url = f"/api/v1/consultations/{c.id}/items/{item.id}/comments"
    member = factories.make_user("committee", compound=compound)
    mine = bearer(resident)
    first = client.post(url, json={"text": "建议北侧"}, headers=mine).json

    answer = client.post(f"{url}/committee", json={"text": "谢谢，已记录。",
                                                  "parent_id": first["id"]},
                         headers=bearer(member))
    assert answer.status_code == 201, answer.json
    assert answer.json["by"] == "committee" and answer.json["author"] is None
    assert answer.json["parent_id"] == first["id"] and answer.json["own"] is False
    own = client.post(f"{url}/committee", json={"text": "井道位置请大家讨论"},
                      headers=bearer(member))
    assert own.status_code == 201 and own.json["parent_id"] is None
    posted = db.session.scalars(select(AuditEvent).where(
        AuditEvent.action == "comment.posted").order_by(AuditEvent.seq)).all()
    assert [json.loads(e.payload)["as"] for e in posted] == [
        "household", "committee", "committee"]
    empty = client.post(f"{url}/committee", json={"text": " "}, headers=bearer(member))
    assert empty.status_code == 400 and "text" in empty.json["error"]["errors"]
    # An answer to a comment beyond any id the databases hold is refused, not a server error.
    for side, who in (("/committee", member), ("", resident)):
        huge = client.post(f"{url}{side}", json={"text": "回复", "parent_id": 10**21},
                           headers=bearer(who))
        assert huge.status_code == 400 and "parent_id" in huge.json["error"]["errors"], huge.json

    # Hiding: the reason stands in the text's place, for everyone.
    moderate = f"{url}/{first['id']}/moderate"
    no_reason = client.post(moderate, json={"reason": "  "}, headers=bearer(member))
    assert no_reason.status_code == 400 and "reason" in no_reason.json["error"]["errors"]
    hidden = client.post(moderate, json={"reason": "含有人身攻击内容"}, headers=bearer(member))
    assert hidden.status_code == 200, hidden.json
    assert hidden.json["text"] is None and hidden.json["hidden_reason"] == "含有人身攻击内容"
    assert "comment.moderated" in audit_actions()
    again = client.post(moderate, json={"reason": "重复"}, headers=bearer(member))
    assert again.status_code == 409
    thread = next(t for t in client.get(url).json["items"] if t["id"] == first["id"])
    assert thread["text"] is None and thread["hidden_reason"] == "含有人身攻击内容"

    # Withdrawal: the household's own comment only.
    second = client.post(url, json={"text": "再议"}, headers=mine).json
    neighbour = factories.make_user("resident", household=compound.buildings[1].households[0])
    assert client.delete(f"{url}/{second['id']}", headers=bearer(neighbour)).status_code == 403
    assert client.delete(f"{url}/{second['id']}", headers=bearer(member)).status_code == 403
    assert client.delete(f"{url}/{second['id']}").status_code == 401
    assert client.delete(f"{url}/{own.json['id']}", headers=mine).status_code == 403
    before = client.get(url).json["count"]
    gone = client.delete(f"{url}/{second['id']}", headers=mine)
    assert gone.status_code == 204
    assert "comment.withdrawn" in audit_actions()
    listed = client.get(url).json
    assert listed["count"] == before - 1
    assert second["id"] not in [t["id"] for t in listed["items"]]
    assert client.delete(f"{url}/{second['id']}", headers=mine).status_code == 409
    assert client.delete(f"{url}/999999", headers=mine).status_code == 404


def test_committee_side_refused_by_role_elsewhere_and_stage(client, compound, resident,
                                                            voting):
    item = voting.items[0]
    url = f"/api/v1/consultations/{voting.id}/items/{item.id}/comments"
    comment = Comment(item_id=item.id, household_id=resident.household_id, text="同意")
    db.session.add(comment)
    db.session.commit()
    member = factories.make_user("committee", compound=compound)
    elsewhere = factories.make_user("committee", compound=factories.make_compound("别的小区"))
    supervisor = factories.make_user("supervisor", compound=compound)
    moderate = f"{url}/{comment.id}/moderate"
    body = {"reason": "广告"}
    for headers, status in ((bearer(resident), 403), (bearer(elsewhere), 403),
                            (bearer(supervisor), 403), ({}, 401)):
        assert client.post(f"{url}/committee", json={"text": "x"},
                           headers=headers).status_code == status
        assert client.post(moderate, json=body, headers=headers).status_code == status
    assert comment.moderated_at is None
    # Voting: no more comments, the committee's neither; hiding is possible at any stage,
    # and withdrawing is over.
    closed = client.post(f"{url}/committee", json={"text": "晚了"}, headers=bearer(member))
    assert closed.status_code == 409
    assert client.post(moderate, json=body, headers=bearer(member)).status_code == 200
    assert client.delete(f"{url}/{comment.id}", headers=bearer(resident)).status_code == 409
    assert client.post(f"{url}/999999/moderate", json=body,
                       headers=bearer(member)).status_code == 404
