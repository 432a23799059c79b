"""Opinions through the API: list, give one with a photo (the upload's checks), support
another household's, take either back; neighbours and other stages refused."""

import base64

from sqlalchemy import select

from consult.consultations.models import Opinion
from consult.extensions import db
from tests import factories
from tests.access.uploads import png_upload
from tests.api.conftest import bearer
from tests.conftest import audit_actions


def photo(data: bytes, name: str = "p.png") -> dict:
    return {"filename": name, "content_base64": base64.b64encode(data).decode()}


def test_give_support_and_withdraw(client, compound, resident):
    c = factories.make_consultation(compound, stage="soliciting")
    mine = bearer(resident)
    neighbour = factories.make_user("resident", household=compound.buildings[1].households[0])
    theirs = bearer(neighbour)
    url = f"/api/v1/consultations/{c.id}/opinions"
    r = client.post(url, json={"category": "charging", "text": "需要充电桩",
                               "photo": photo(png_upload().read())}, headers=mine)
    assert r.status_code == 201, r.json
    opinion_id = r.json["id"]
    assert r.json["own"] is True and r.json["photo_url"].startswith("/files/")
    assert "opinion.submitted" in audit_actions()
    listed = client.get(url, headers=theirs).json["items"]
    assert [(o["id"], o["own"], o["supported"]) for o in listed] == [(opinion_id, False, False)]
    support = f"{url}/{opinion_id}/support"
    assert client.post(support, headers=theirs).json == {"supported": True, "counted_now": True}
    assert client.post(support, headers=theirs).json["counted_now"] is False
    own = client.post(support, headers=mine)
    assert own.status_code == 409  # its own opinion counts already
    assert client.get(url, headers=theirs).json["items"][0]["supports"] == 1
    assert client.delete(support, headers=theirs).status_code == 204
    assert client.delete(support, headers=theirs).status_code == 409
    refused = client.delete(f"{url}/{opinion_id}", headers=theirs)
    assert refused.status_code == 403  # another household's opinion
    assert client.delete(f"{url}/{opinion_id}", headers=mine).status_code == 204
    assert client.get(url, headers=theirs).json["items"] == []
    assert db.session.get(Opinion, opinion_id).withdrawn_at is not None


def test_photos_are_checked_like_the_web_form(client, compound, resident):
    c = factories.make_consultation(compound, stage="soliciting")
    url = f"/api/v1/consultations/{c.id}/opinions"
    headers = bearer(resident)
    not_image = client.post(url, json={"category": "other", "text": "x",
                                       "photo": photo(b"%PDF-1.4 not an image", "a.pdf")},
                            headers=headers)
    assert not_image.status_code == 400 and "photo" in not_image.json["error"]["errors"]
    garbage = client.post(url, json={"category": "other", "text": "x",
                                     "photo": {"filename": "a.png", "content_base64": "@@@"}},
                          headers=headers)
    assert garbage.status_code == 400 and "photo" in garbage.json["error"]["errors"]
    assert db.session.scalar(select(Opinion.id)) is None


def test_only_while_collecting_and_only_in_scope(client, compound, resident):
    discussing = factories.make_consultation(compound, stage="discussing")
    r = client.post(f"/api/v1/consultations/{discussing.id}/opinions",
                    json={"category": "other", "text": "晚了"}, headers=bearer(resident))
    assert r.status_code == 409
    elsewhere = factories.make_consultation(factories.make_compound("别处"), stage="soliciting")
    r = client.post(f"/api/v1/consultations/{elsewhere.id}/opinions",
                    json={"category": "other", "text": "别人的小区"}, headers=bearer(resident))
    assert r.status_code == 403
    bad = client.post(f"/api/v1/consultations/{discussing.id}/opinions",
                      json={"category": "nonsense", "text": ""}, headers=bearer(resident))
    assert bad.status_code == 400
    assert set(bad.json["error"]["errors"]) == {"category", "text"}
