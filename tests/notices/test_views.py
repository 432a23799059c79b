import html
from datetime import timedelta

import pytest
from sqlalchemy import select

from consult.extensions import db
from consult.notices import service as notices
from consult.notices.models import NoticeKind
from tests import factories
from tests.conftest import audit_actions

EN = {"Accept-Language": "en"}


@pytest.fixture
def published(compound):
    c = factories.make_consultation(compound, items=2)
    now = factories.walk_to(c, "resolution_public")
    return c, notices.current_notice(c, NoticeKind.RESOLUTION), now


def test_resolution_notice_shows_the_tally_and_households_by_address_only(client, published):
    _c, notice, _now = published
    page = html.unescape(client.get(f"/notices/{notice.id}", headers=EN).text)
    # A notice is a document in its consultation's language, whoever reads it; the page
    # around it is in the reader's.
    assert "决议公示" in page and "<svg" in page and "通过" in page and "Passed" not in page
    assert "同意户数：8/8 = 100.00% > 1/2 ✓" in page
    assert "This notice is shown as it was published, in 简体中文." in page
    assert "Objections" in page
    assert "1号楼" in page and "60.00" in page  # the per-household appendix
    # No owner names, no phones: only addresses and areas.
    from consult.registry.models import Household

    for household in db.session.scalars(select(Household)):
        assert household.owner_name not in page and household.phone not in page
    assert notice.verify_code in page and notice.content_sha256 in page


def test_confidential_ballots_publish_counts_only(client, compound):
    c = factories.make_consultation(compound, items=1, secrecy="confidential")
    factories.walk_to(c, "resolution_public")
    notice = notices.current_notice(c, NoticeKind.RESOLUTION)
    assert notices.content_of(notice)["households"] is None
    page = client.get(f"/notices/{notice.id}", headers=EN).text
    assert "各户表决情况" not in page and "决议公示" in page


def test_published_content_is_frozen_and_hashed(published):
    import hashlib

    c, notice, _now = published
    assert hashlib.sha256(notice.content_json.encode()).hexdigest() == notice.content_sha256
    assert notice.chain_seq > 0
    c.items[0].title = "改了标题"
    assert notices.content_of(notice)["items"][0]["title"] == "改造项目1"


def test_objection_during_the_period_and_a_public_answer(client, login_as, published, compound):
    _c, notice, _now = published
    login_as("resident", household=compound.buildings[0].households[0])
    r = client.post(f"/notices/{notice.id}/objections", data={"text": "<b>费用</b>太高"})
    assert r.status_code == 302
    page = client.get(f"/notices/{notice.id}").text
    assert "&lt;b&gt;费用&lt;/b&gt;太高" in page
    client.post("/logout")
    login_as("committee", compound=compound)
    objection = notice.objections[0]
    client.post(f"/objections/{objection.id}/answer", data={"text": "已按标准核算。"})
    assert objection.answer == "已按标准核算。"
    assert audit_actions()[-2:] == ["notice.objection_filed", "notice.objection_answered"]


def test_objections_after_the_period_are_refused(published, compound):
    from consult.core.errors import Conflict

    _c, notice, _now = published
    with pytest.raises(Conflict):
        notices.file_objection(None, notice, compound.buildings[0].households[0], "迟到的异议",
                               now=notice.period_ends_at + timedelta(seconds=1))


def test_verify_page(client, published):
    _c, notice, _now = published
    page = client.get(f"/verify/{notice.verify_code.lower()}", headers=EN)
    assert page.status_code == 200 and "genuine and current" in page.text
    assert client.get("/verify/NOPE1234", headers=EN).status_code == 404
