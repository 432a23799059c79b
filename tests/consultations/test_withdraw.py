"""A household sees its own opinions, supports and comments and withdraws them while their
stage is open: audited, never another household's, left out of every list and count."""

import json

import pytest
from sqlalchemy import func, select

from consult.audit.models import AuditEvent
from consult.consultations import discussion, opinions
from consult.consultations.models import Comment, Opinion, OpinionSupport
from consult.core.errors import Conflict, PermissionDenied
from consult.extensions import db
from tests import factories
from tests.conftest import audit_actions

EN = {"Accept-Language": "en"}


@pytest.fixture
def soliciting(compound):
    return factories.make_consultation(compound, stage="soliciting")


@pytest.fixture
def discussing(compound):
    return factories.make_consultation(compound, stage="discussing")


def _homes(compound):
    return [h for b in compound.buildings for h in b.households]


def _opinion(consultation, household, text="水管老化，经常漏水", category="pipes"):
    return opinions.submit(None, consultation, household,
                           opinions.opinion_data(category=category, text=text))


# --- service ----------------------------------------------------------------------------------


def test_a_withdrawn_opinion_leaves_lists_and_counts_but_not_the_audit(soliciting, compound):
    mine, other, third = _homes(compound)[:3]
    kept = _opinion(soliciting, other, category="roads", text="路面坑洼")
    gone = _opinion(soliciting, mine)
    opinions.support(None, gone, third)
    before = opinions.summary(soliciting)
    assert (before.received, before.supports, before.households) == (2, 1, 2)
    opinions.withdraw(None, gone, mine)
    assert gone.withdrawn_at is not None
    assert db.session.get(Opinion, gone.id) is not None  # kept for the record
    listed = list(db.session.scalars(opinions.listing(soliciting)))
    assert listed == [kept]
    after = opinions.summary(soliciting)
    assert (after.received, after.supports, after.households) == (1, 0, 1)
    assert [r.category for r in after.by_category] == ["roads"]
    assert sum(r.opinions for r in after.by_building) == 1
    assert [o for o, _n in opinions.item_choices(soliciting)] == [kept]
    assert opinions.own_opinions(soliciting, mine) == []
    event = db.session.scalars(select(AuditEvent).where(
        AuditEvent.action == "opinion.withdrawn")).one()
    payload = json.loads(event.payload)
    assert event.object_id == str(gone.id) and payload["household_id"] == mine.id
    assert payload["supports"] == 1 and "text" not in payload
    # Nobody can support, link, merge or withdraw it again.
    with pytest.raises(Conflict):
        opinions.support(None, gone, other)
    with pytest.raises(Conflict):
        opinions.withdraw(None, gone, mine)
    with pytest.raises(Conflict):
        opinions.merge(None, gone, kept.id)


def test_only_the_own_household_withdraws_and_only_while_collecting(soliciting, compound):
    mine, other = _homes(compound)[:2]
    opinion = _opinion(soliciting, mine)
    with pytest.raises(PermissionDenied):
        opinions.withdraw(None, opinion, other)
    soliciting.stage = "proposing"
    with pytest.raises(Conflict):
        opinions.withdraw(None, opinion, mine)
    assert opinion.withdrawn_at is None and "opinion.withdrawn" not in audit_actions()


def test_an_opinion_the_committee_used_stays(soliciting, compound):
    mine, other = _homes(compound)[:2]
    used = _opinion(soliciting, mine)
    opinions.set_item_opinions(None, soliciting.items[0], [used.id])
    with pytest.raises(Conflict):
        opinions.withdraw(None, used, mine)
    duplicate = _opinion(soliciting, other, text="水管漏水")
    target = _opinion(soliciting, _homes(compound)[2], text="换水管")
    opinions.merge(None, duplicate, target.id)
    with pytest.raises(Conflict):
        opinions.withdraw(None, duplicate, other)


def test_a_support_is_withdrawn_and_can_be_given_again(soliciting, compound):
    author, supporter = _homes(compound)[:2]
    opinion = _opinion(soliciting, author)
    opinions.support(None, opinion, supporter)
    assert opinions.own_supports(soliciting, supporter) == [opinion]
    assert opinions.withdraw_support(None, opinion, supporter) is True
    assert opinions.support_counts([opinion.id]) == {}
    assert opinions.summary(soliciting).supports == 0
    assert opinions.withdraw_support(None, opinion, supporter) is False
    assert audit_actions().count("opinion.support_withdrawn") == 1
    assert opinions.support(None, opinion, supporter) is True
    soliciting.stage = "proposing"
    with pytest.raises(Conflict):
        opinions.withdraw_support(None, opinion, supporter)


def test_a_withdrawn_comment_leaves_the_count_and_its_thread_stays_while_answered(
        discussing, compound):
    item = discussing.items[0]
    mine, other = _homes(compound)[:2]
    alone = discussion.comment_as_household(None, item, mine, "我反对")
    answered = discussion.comment_as_household(None, item, mine, "什么时候施工？")
    reply = discussion.comment_as_committee(None, item, "下个月", parent_id=answered.id)
    own_reply = discussion.comment_as_household(None, item, mine, "好的", parent_id=answered.id)
    assert discussion.count(item) == 4
    with pytest.raises(PermissionDenied):
        discussion.withdraw(None, alone, other)
    with pytest.raises(PermissionDenied):  # the committee's answer is nobody's to withdraw
        discussion.withdraw(None, reply, mine)
    for comment in (alone, answered, own_reply):
        discussion.withdraw(None, comment, mine)
    assert discussion.count(item) == 1
    threads = list(db.session.scalars(discussion.threads(item)))
    assert threads == [answered]  # kept for the committee's answer, marked as withdrawn
    assert discussion.replies([answered.id]) == {answered.id: [reply]}
    assert discussion.own_comments(discussing.items, mine) == []
    assert db.session.scalar(select(func.count(Comment.id))) == 4
    assert audit_actions().count("comment.withdrawn") == 3
    with pytest.raises(Conflict):  # no new replies under a withdrawn comment
        discussion.comment_as_household(None, item, other, "?", parent_id=answered.id)
    late = discussion.comment_as_household(None, item, mine, "还有一点")
    discussing.stage = "voting"
    with pytest.raises(Conflict):
        discussion.withdraw(None, late, mine)
    assert late.withdrawn_at is None


# --- pages ------------------------------------------------------------------------------------


def test_resident_sees_its_own_posts_and_withdraws_an_opinion(client, login_as, soliciting,
                                                               compound):
    mine, other = _homes(compound)[:2]
    own = _opinion(soliciting, mine, text="我家的意见")
    theirs = _opinion(soliciting, other, text="别人家的意见")
    opinions.support(None, theirs, mine)
    login_as("resident", household=mine)
    listing = client.get(f"/consultations/{soliciting.id}/opinions", headers=EN).text
    assert "Your household's opinion" in listing and "Withdraw my opinion" in listing
    assert "Withdraw my support" in listing
    page = client.get(f"/consultations/{soliciting.id}/mine", headers=EN)
    assert page.status_code == 200
    assert "我家的意见" in page.text and "别人家的意见" in page.text and "Mine" in page.text
    url = f"/consultations/{soliciting.id}/opinions/{own.id}/withdraw"
    confirm = client.get(url, headers=EN)
    assert confirm.status_code == 200 and "Yes, withdraw it" in confirm.text
    # Without the box ticked nothing happens.
    r = client.post(url, data={}, headers=EN)
    assert r.status_code == 400 and own.withdrawn_at is None
    assert "Tick the box" in r.text
    r = client.post(url, data={"confirm": "y"})
    assert r.status_code == 302 and r.headers["Location"].endswith(
        f"/consultations/{soliciting.id}/mine")
    assert own.withdrawn_at is not None
    listing = client.get(f"/consultations/{soliciting.id}/opinions", headers=EN).text
    assert "我家的意见" not in listing and "Number of opinions: 1" in listing
    # Its page is gone for residents and visitors; the committee still sees it, marked.
    assert client.get(f"/consultations/{soliciting.id}/opinions/{own.id}").status_code == 404
    login_as("committee", compound=compound)
    staff = client.get(f"/consultations/{soliciting.id}/opinions/{own.id}", headers=EN)
    assert staff.status_code == 200 and "withdrawn by its household" in staff.text


def test_another_households_opinion_or_comment_cannot_be_withdrawn(client, login_as,
                                                                    soliciting, compound):
    mine, other = _homes(compound)[:2]
    theirs = _opinion(soliciting, other)
    login_as("resident", household=mine)
    url = f"/consultations/{soliciting.id}/opinions/{theirs.id}/withdraw"
    assert client.get(url).status_code == 403
    assert client.post(url, data={"confirm": "y"}).status_code == 403
    assert theirs.withdrawn_at is None
    # A committee member cannot withdraw a household's opinion either.
    login_as("committee", compound=compound)
    assert client.post(url, data={"confirm": "y"}).status_code == 403
    assert theirs.withdrawn_at is None and "opinion.withdrawn" not in audit_actions()


def test_withdrawing_after_the_stage_closed_is_refused_with_a_message(client, login_as,
                                                                      soliciting, compound):
    mine, other = _homes(compound)[:2]
    own = _opinion(soliciting, mine)
    theirs = _opinion(soliciting, other)
    opinions.support(None, theirs, mine)
    login_as("resident", household=mine)
    soliciting.stage = "proposing"
    db.session.flush()
    for url in (f"/consultations/{soliciting.id}/opinions/{own.id}/withdraw",
                f"/consultations/{soliciting.id}/opinions/{theirs.id}/support/withdraw"):
        r = client.post(url, data={"confirm": "y"}, headers=EN, follow_redirects=True)
        assert r.status_code == 200 and "only while" in r.text
    assert own.withdrawn_at is None
    assert db.session.scalar(select(func.count(OpinionSupport.id))) == 1


def test_resident_withdraws_a_support_through_its_confirmation(client, login_as, soliciting,
                                                               compound):
    mine, other = _homes(compound)[:2]
    theirs = _opinion(soliciting, other)
    opinions.support(None, theirs, mine)
    login_as("resident", household=mine)
    url = f"/consultations/{soliciting.id}/opinions/{theirs.id}/support/withdraw"
    assert "Yes, withdraw it" in client.get(url, headers=EN).text
    assert client.post(url, data={"confirm": "y"}).status_code == 302
    assert opinions.support_counts([theirs.id]) == {}
    # Nothing left to withdraw: back to the list with a note.
    r = client.get(url, headers=EN, follow_redirects=True)
    assert "does not support" in r.text


def test_resident_withdraws_a_comment_and_not_another_households(client, login_as, discussing,
                                                                  compound):
    item = discussing.items[0]
    mine, other = _homes(compound)[:2]
    own = discussion.comment_as_household(None, item, mine, "我的评论")
    theirs = discussion.comment_as_household(None, item, other, "别人的评论")
    login_as("resident", household=mine)
    page = client.get(f"/consultations/{discussing.id}/items/{item.id}", headers=EN).text
    assert page.count("Your household's comment") == 1
    assert page.count("Withdraw my comment") == 1
    base = f"/consultations/{discussing.id}/items/{item.id}/comments"
    assert client.post(f"{base}/{theirs.id}/withdraw", data={"confirm": "y"}).status_code == 403
    assert client.post(f"{base}/{own.id}/withdraw", data={"confirm": "y"}).status_code == 302
    page = client.get(f"/consultations/{discussing.id}/items/{item.id}", headers=EN).text
    assert "我的评论" not in page and "别人的评论" in page and "Comments <span" in page
    assert "(1)" in page
    discussing.stage = "voting"
    db.session.flush()
    r = client.post(f"{base}/{theirs.id}/withdraw", data={"confirm": "y"})
    assert r.status_code == 403  # still not its own, whatever the stage
    assert theirs.withdrawn_at is None
