"""Comments on a proposal's items through the API: threads and replies, newest threads first;
households named by building only to neighbours; hidden text not shown; refused outside the
discussion, elsewhere and by role."""

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
