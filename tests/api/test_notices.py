"""Notices through the API: a consultation's list, one with its frozen content, and the
verification of a printed code."""

from consult.notices import service as notices
from tests import factories


def test_list_detail_and_verify(client, compound):
    c = factories.make_consultation(compound, items=1)
    factories.walk_to(c, "resolution_public")
    listed = client.get(f"/api/v1/consultations/{c.id}/notices")
    assert listed.status_code == 200
    kinds = [n["kind"] for n in listed.json["items"]]
    assert "resolution" in kinds
    resolution = next(n for n in listed.json["items"] if n["kind"] == "resolution")
    detail = client.get(f"/api/v1/notices/{resolution['id']}")
    assert detail.status_code == 200
    stored = notices.get_notice_or_404(resolution["id"])
    assert detail.json["content"] == notices.content_of(stored)
    assert detail.json["content_sha256"] == stored.content_sha256
    assert detail.json["in_period"] is True
    checked = client.get(f"/api/v1/verify/{stored.verify_code.lower()}")
    assert checked.status_code == 200 and checked.json["id"] == stored.id
    unknown = client.get("/api/v1/verify/NOSUCHCODE", headers={"Accept-Language": "en"})
    assert unknown.status_code == 404
    assert unknown.json["error"]["message"] == "No notice has this verification code."


def test_a_draft_s_notices_stay_hidden(client, compound):
    draft = factories.make_consultation(compound)
    assert client.get(f"/api/v1/consultations/{draft.id}/notices").status_code == 404
    assert client.get("/api/v1/notices/999999").status_code == 404
