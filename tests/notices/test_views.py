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


def test_published_content_is_frozen_and_hashed(published, client):
    import hashlib

    from consult.audit.models import AuditEvent

    c, notice, _now = published
    assert hashlib.sha256(notice.content_json.encode()).hexdigest() == notice.content_sha256
    # Issued at a head of the consultation's own chain: an event of it, with that hash.
    assert notice.chain_id == c.id and notice.chain_seq > 0
    assert db.session.scalar(select(AuditEvent.hash).where(
        AuditEvent.chain_id == c.id, AuditEvent.chain_seq == notice.chain_seq)) == \
        notice.chain_hash
    page = client.get(f"/verify/{notice.verify_code}",
                      headers={"Accept-Language": "zh-CN"}).text
    assert f"链 {c.id} · 第 {notice.chain_seq} 条 · {notice.chain_hash}" in page
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


def test_a_refused_answer_comes_back_on_the_notice_with_what_was_typed(client, login_as,
                                                                       published, compound):
    _c, notice, now = published
    objection = notices.file_objection(None, notice, compound.buildings[0].households[0],
                                       "费用太高", now=now)
    db.session.commit()
    login_as("committee", compound=compound)
    typed = "已按标准核算" * 400  # 2400 characters: over the limit
    r = client.post(f"/objections/{objection.id}/answer", data={"text": typed}, headers=EN)
    assert r.status_code == 400 and typed in r.text
    assert f'aria-describedby="answer-{objection.id}-error"' in r.text
    assert objection.answered_at is None and "notice.objection_answered" not in audit_actions()

OBJECT_LINK = '<a class="btn btn-outline-primary" href="#objection-form">File an objection</a>'


def test_a_link_above_the_notice_leads_to_the_objection_form(client, login_as, published,
                                                             compound):
    _c, notice, _now = published
    login_as("resident", household=compound.buildings[0].households[0])
    page = client.get(f"/notices/{notice.id}", headers=EN).text
    # Above the notice itself, whose appendix is thousands of pixels tall on a phone.
    assert OBJECT_LINK in page
    assert page.index(OBJECT_LINK) < page.index('<article class="notice-sheet"')
    assert 'id="objection-form"' in page
    assert f'action="/notices/{notice.id}/objections#objection-form"' in page


def test_no_link_to_the_objection_form_for_those_who_cannot_object(client, login_as,
                                                                   published, compound):
    _c, notice, _now = published
    assert "#objection-form" not in client.get(f"/notices/{notice.id}", headers=EN).text
    login_as("committee", compound=compound)  # answers objections, files none
    page = client.get(f"/notices/{notice.id}", headers=EN).text
    assert "Objections" in page and "#objection-form" not in page


def test_no_link_to_the_objection_form_once_the_period_is_over(client, login_as, published,
                                                               compound, monkeypatch):
    from consult.notices import views

    _c, notice, _now = published
    login_as("resident", household=compound.buildings[0].households[0])
    monkeypatch.setattr(views, "utcnow", lambda: notice.period_ends_at + timedelta(seconds=1))
    page = client.get(f"/notices/{notice.id}", headers=EN).text
    assert "objections are closed" in page and "#objection-form" not in page


@pytest.mark.parametrize("typed, message", [
    ("   ", "This field is required."),
    ("太贵" * 1001, "At most 2000 characters."),
])
def test_a_refused_objection_comes_back_at_the_form_with_what_was_typed(
        client, login_as, published, compound, typed, message):
    _c, notice, _now = published
    login_as("resident", household=compound.buildings[0].households[0])
    r = client.post(f"/notices/{notice.id}/objections", data={"text": typed}, headers=EN)
    assert r.status_code == 400 and not notice.objections
    page = r.text
    # The browser shows the answer at the form (the action's fragment), not at the top.
    form_at = page.index('<form method="post" action="/notices/'
                         f'{notice.id}/objections#objection-form"')
    field_at = page.index('<textarea')
    error = f'<div id="text-error" class="invalid-feedback d-block" role="alert">{message}</div>'
    # The message right after the field, inside the form, tied to the field for screen readers.
    assert form_at < field_at < page.index(error) < page.index("Send the objection", field_at)
    textarea = page[field_at:page.index("</textarea>", field_at)]
    assert 'aria-invalid="true"' in textarea and 'aria-describedby="text-error"' in textarea
    if typed.strip():
        assert typed in page
    assert "notice.objection_filed" not in audit_actions()


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


def test_verify_page_names_each_kind_of_notice(client, compound):
    from consult.consultations.states import Action
    from consult.core.models import utcnow
    from consult.implementation import service as works
    from consult.process import printing, workflow

    c = factories.make_consultation(compound, items=1)
    factories.walk_to(c, "discussing")
    c.vote_deadline = utcnow() + timedelta(days=10)
    vote_notice = printing.issue_vote_notice(None, c)
    now = factories.walk_to(c, "implementing")
    works.add_progress(None, c, works.progress_data(
        item_id=None, percent="100", spend="3,000", note="全部完工", is_final=True), now=now)
    for item in works.implementable_items(c):
        works.complete_item(None, item, item.estimated_cost_fen, "", now=now)
    workflow.apply(c, Action.PUBLISH_RESULT, None, now=now)
    for notice, name in ((vote_notice, "Vote notice"),
                         (notices.current_notice(c, NoticeKind.RESOLUTION), "Resolution notice"),
                         (notices.current_notice(c, NoticeKind.RESULT),
                          "Notice of the works’ result")):
        page = html.unescape(client.get(f"/verify/{notice.verify_code}", headers=EN).text)
        assert f"— {name}" in page, name
        others = {"Vote notice", "Resolution notice", "Notice of the works’ result"} - {name}
        assert not any(f"— {other}" in page for other in others), name
