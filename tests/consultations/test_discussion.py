"""二议: the item page, comments, replies and moderation."""

import pytest
from sqlalchemy import func, select

from consult.audit.models import AuditEvent
from consult.consultations import discussion, service
from consult.consultations.models import Comment
from consult.core.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from consult.extensions import db
from tests import factories
from tests.conftest import audit_actions

EN = {"Accept-Language": "en"}


def _comments() -> int:
    return db.session.scalar(select(func.count(Comment.id))) or 0


@pytest.fixture
def discussing(compound):
    return factories.make_consultation(compound, stage="discussing")


@pytest.fixture
def item(discussing):
    return discussing.items[0]


# --- service ----------------------------------------------------------------------------------


def test_a_reply_to_a_reply_joins_the_thread(item, compound):
    a, b = compound.buildings[0].households[:2]
    top = discussion.comment_as_household(None, item, a, "楼道太暗")
    reply = discussion.comment_as_household(None, item, b, "同意", top.id)
    deeper = discussion.comment_as_committee(None, item, "会加装声控灯", reply.id)
    assert reply.parent_id == top.id and deeper.parent_id == top.id
    assert deeper.household_id is None
    assert audit_actions() == ["comment.posted"] * 3
    assert discussion.replies([top.id]) == {top.id: [reply, deeper]}


@pytest.mark.parametrize("stage", ["draft", "soliciting", "proposing", "voting", "closed"])
def test_comments_only_while_discussing(compound, stage):
    consultation = factories.make_consultation(compound, stage=stage)
    with pytest.raises(Conflict):
        discussion.comment_as_household(None, consultation.items[0],
                                         compound.buildings[0].households[0], "说两句")
    with pytest.raises(Conflict):
        discussion.comment_as_committee(None, consultation.items[0], "说两句")
    assert _comments() == 0 and audit_actions() == []


def test_comment_text_is_required_and_limited(item, compound):
    household = compound.buildings[0].households[0]
    with pytest.raises(ValidationFailed) as exc:
        discussion.comment_as_household(None, item, household, "   ")
    assert "text" in exc.value.errors
    with pytest.raises(ValidationFailed):
        discussion.comment_as_household(None, item, household, "长" * 2001)


def test_reply_to_a_comment_of_another_item_is_refused(discussing, compound):
    first, second = discussing.items
    household = compound.buildings[0].households[0]
    elsewhere = discussion.comment_as_household(None, second, household, "另一项")
    with pytest.raises(NotFound):
        discussion.comment_as_household(None, first, household, "回复", elsewhere.id)


def test_out_of_scope_household_cannot_comment(discussing, item, compound):
    service.set_scope(None, discussing, [(compound.buildings[0].id, None)])
    with pytest.raises(PermissionDenied):
        discussion.comment_as_household(None, item, compound.buildings[1].households[0], "我")


def test_moderation_needs_a_reason_and_is_audited(item, compound):
    comment = discussion.comment_as_household(None, item, compound.buildings[0].households[0],
                                              "骂人的话")
    with pytest.raises(ValidationFailed):
        discussion.moderate(None, comment, "  ")
    with pytest.raises(ValidationFailed):
        discussion.moderate(None, comment, "理" * 301)
    discussion.moderate(None, comment, "含有人身攻击")
    assert comment.moderated_at is not None and comment.moderation_reason == "含有人身攻击"
    with pytest.raises(Conflict):
        discussion.moderate(None, comment, "再次")
    assert audit_actions() == ["comment.posted", "comment.moderated"]
    payloads = list(db.session.scalars(select(AuditEvent.payload).order_by(AuditEvent.seq)))
    assert "含有人身攻击" in payloads[1]
    assert "骂人的话" not in "".join(payloads)  # the text itself stays out of the trail


def test_moderation_works_after_the_discussion(discussing, item, compound):
    comment = discussion.comment_as_household(None, item, compound.buildings[0].households[0],
                                              "x")
    discussing.stage = "voting"
    discussion.moderate(None, comment, "广告")
    assert comment.moderation_reason == "广告"


# --- views ------------------------------------------------------------------------------------


def test_item_page_shows_number_cost_markdown_and_opinions(client, discussing, item):
    item.description = "**加固** 管道\n\n<script>alert(1)</script>"
    item.estimated_cost_fen = 1250050
    db.session.flush()
    text = client.get(f"/consultations/{discussing.id}/items/{item.id}", headers=EN).text
    assert item.title in text and "Item 1 of the proposal" in text
    assert "<strong>加固</strong>" in text and "<script>alert(1)</script>" not in text
    assert "¥12,500.50" in text


def test_resident_comments_and_replies(client, login_as, discussing, item, compound):
    household = compound.buildings[0].households[0]
    login_as("resident", household=household)
    url = f"/consultations/{discussing.id}/items/{item.id}/comments"
    r = client.post(url, data={"text": "<i>好</i> 建议"})
    assert r.status_code == 302 and "#comment-" in r.headers["Location"]
    top = db.session.scalars(select(Comment)).one()
    assert top.household_id == household.id
    assert client.post(url, data={"text": "补充", "parent_id": str(top.id)}).status_code == 302
    page = client.get(f"/consultations/{discussing.id}/items/{item.id}", headers=EN).text
    assert "&lt;i&gt;好&lt;/i&gt; 建议" in page and "<i>好</i>" not in page
    assert household.label in page and household.owner_name not in page
    assert audit_actions() == ["comment.posted", "comment.posted"]


def test_empty_comment_shows_the_error_next_to_the_field(client, login_as, discussing, item,
                                                       compound):
    login_as("resident", household=compound.buildings[0].households[0])
    r = client.post(f"/consultations/{discussing.id}/items/{item.id}/comments",
                    data={"text": "  "}, headers=EN)
    assert r.status_code == 400 and 'id="text-error"' in r.text and _comments() == 0


def test_failed_reply_reopens_its_form(client, login_as, discussing, item, compound):
    household = compound.buildings[0].households[0]
    top = discussion.comment_as_household(None, item, household, "第一条")
    login_as("resident", household=household)
    r = client.post(f"/consultations/{discussing.id}/items/{item.id}/comments",
                    data={"text": "", "parent_id": str(top.id)}, headers=EN)
    assert r.status_code == 400 and f'id="reply-{top.id}-error"' in r.text


def test_comment_refused_outside_the_discussion(client, login_as, compound):
    consultation = factories.make_consultation(compound, stage="voting")
    login_as("resident", household=compound.buildings[0].households[0])
    r = client.post(f"/consultations/{consultation.id}/items/{consultation.items[0].id}"
                    "/comments", data={"text": "晚了"}, headers=EN)
    assert r.status_code == 409 and "only while" in r.text
    assert _comments() == 0 and audit_actions() == []


def test_comment_on_another_consultations_item_is_refused(client, login_as, discussing,
                                                         compound):
    other = factories.make_consultation(compound, stage="discussing")
    login_as("resident", household=compound.buildings[0].households[0])
    r = client.post(f"/consultations/{discussing.id}/items/{other.items[0].id}/comments",
                    data={"text": "错位"})
    assert r.status_code == 404 and _comments() == 0


def test_out_of_scope_resident_is_refused(client, login_as, discussing, item, compound):
    service.set_scope(None, discussing, [(compound.buildings[0].id, None)])
    login_as("resident", household=compound.buildings[1].households[0])
    r = client.post(f"/consultations/{discussing.id}/items/{item.id}/comments",
                    data={"text": "我"})
    assert r.status_code == 403 and _comments() == 0


def test_committee_answers_as_the_committee(client, login_as, discussing, item, compound):
    question = discussion.comment_as_household(None, item, compound.buildings[0].households[0],
                                               "什么时候开工？")
    member = login_as("committee", compound=compound)
    member.display_name = "李红梅"
    db.session.flush()
    r = client.post(f"/consultations/{discussing.id}/items/{item.id}/comments/committee",
                    data={"text": "预计四月", "parent_id": str(question.id)})
    assert r.status_code == 302
    page = client.get(f"/consultations/{discussing.id}/items/{item.id}", headers=EN).text
    assert "Neighbourhood committee" in page and "李红梅" in page and "预计四月" in page


def test_supervisor_cannot_comment(client, login_as, discussing, item, compound):
    login_as("supervisor", compound=compound)
    r = client.post(f"/consultations/{discussing.id}/items/{item.id}/comments/committee",
                    data={"text": "x"})
    assert r.status_code == 403 and _comments() == 0


def test_moderation_shows_the_reason_in_place(client, login_as, discussing, item, compound):
    comment = discussion.comment_as_household(None, item, compound.buildings[0].households[0],
                                              "广告：低价装修")
    login_as("committee", compound=compound)
    url = f"/consultations/{discussing.id}/items/{item.id}/comments/{comment.id}/moderate"
    assert "广告：低价装修" in client.get(url).text
    bad = client.post(url, data={"reason": ""}, headers=EN)
    assert bad.status_code == 400 and comment.moderated_at is None
    assert client.post(url, data={"reason": "商业广告 <b>"}).status_code == 302
    client.post("/logout")
    page = client.get(f"/consultations/{discussing.id}/items/{item.id}", headers=EN).text
    assert "hidden by the neighbourhood committee" in page and "商业广告 &lt;b&gt;" in page
    assert "低价装修" not in page
    assert audit_actions() == ["comment.posted", "comment.moderated"]


def test_supervisor_sees_the_hidden_text(client, login_as, discussing, item, compound):
    comment = discussion.comment_as_household(None, item, compound.buildings[0].households[0],
                                              "原文内容")
    discussion.moderate(None, comment, "理由")
    login_as("supervisor", compound=compound)
    page = client.get(f"/consultations/{discussing.id}/items/{item.id}").text
    assert "原文内容" in page


def test_committee_elsewhere_cannot_moderate(client, login_as, discussing, item, compound):
    comment = discussion.comment_as_household(None, item, compound.buildings[0].households[0],
                                              "x")
    login_as("committee", compound=factories.make_compound("别处"))
    r = client.post(f"/consultations/{discussing.id}/items/{item.id}/comments/{comment.id}"
                    "/moderate", data={"reason": "y"})
    assert r.status_code == 403 and comment.moderated_at is None


def test_comments_are_paginated_by_thread(client, app, discussing, item, compound):
    household = compound.buildings[0].households[0]
    tops = [discussion.comment_as_household(None, item, household, f"第{n}条") for n in range(3)]
    discussion.comment_as_household(None, item, household, "回复第一条", tops[0].id)
    app.config["PAGE_SIZE"] = 2
    try:
        first = client.get(f"/consultations/{discussing.id}/items/{item.id}").text
        second = client.get(f"/consultations/{discussing.id}/items/{item.id}?page=2").text
        assert discussion.page_of(tops[2], 2) == 2
    finally:
        app.config["PAGE_SIZE"] = 50
    assert "第0条" in first and "回复第一条" in first and "第2条" not in first
    assert "第2条" in second and "第0条" not in second


def test_draft_item_is_hidden_from_the_public(client, compound):
    draft = factories.make_consultation(compound)
    assert client.get(f"/consultations/{draft.id}/items/{draft.items[0].id}").status_code == 404
