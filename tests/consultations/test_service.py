from datetime import timedelta

import pytest

from consult.ballots import service as ballots
from consult.ballots.tally import PRESETS
from consult.consultations import service
from consult.consultations.states import Action
from consult.core.errors import Conflict, ValidationFailed
from consult.core.models import utcnow
from consult.process import workflow
from tests import factories
from tests.conftest import audit_actions


def settings(**overrides):
    values = dict(title="加装电梯", summary="", rule_code="household_two_thirds", rule_json=None,
                  secrecy="open", locale="zh_Hans", solicitation_deadline=None,
                  vote_deadline=None, publicity_days=7, proxy_cap=None)
    values.update(overrides)
    return service.settings(**values)


@pytest.mark.parametrize(("text", "fen"), [
    ("12500", 1250000), ("12,500.50", 1250050), ("¥0.01", 1), ("", 0), ("300元", 30000)])
def test_money_in_yuan(text, fen):
    assert service.parse_money(text, "x") == fen
    assert service.parse_money(service.format_money(fen).replace(",", ""), "x") == fen


@pytest.mark.parametrize("text", ["-1", "1.234", "abc", "1e5", "99999999999"])
def test_bad_money_is_refused(text):
    with pytest.raises(ValueError):
        service.parse_money(text, "x")


def test_settings_collect_every_error():
    with pytest.raises(ValidationFailed) as e:
        settings(title="", rule_code="nonsense", secrecy="x", publicity_days=0, proxy_cap=500)
    assert set(e.value.errors) == {"title", "rule_code", "secrecy", "publicity_days", "proxy_cap"}


def test_a_local_rule_from_the_editor():
    rule_json = ('{"code":"custom","conditions":[{"measure":"households","count":"agreeing",'
                 '"base":"roll","comparison":"ge","fraction":"2/3"}]}')
    values = settings(rule_code="custom", rule_json=rule_json)
    assert values.rule.code == "custom" and len(values.rule.conditions) == 1
    with pytest.raises(ValidationFailed) as e:
        settings(rule_code="custom", rule_json='{"code":"custom","conditions":[{"x":1}]}')
    assert "rule_json" in e.value.errors


def test_create_records_the_first_revision_and_audit(compound):
    c = service.create(None, compound, settings())
    assert c.stage == "draft" and c.rule_json == PRESETS["household_two_thirds"].to_json()
    assert [r.number for r in service.revisions(c)] == [1]
    assert audit_actions() == ["consultation.created"]


def test_deadlines_must_lie_ahead(compound):
    with pytest.raises(ValidationFailed):
        service.create(None, compound, settings(vote_deadline=utcnow() - timedelta(hours=1)))


def test_rule_and_secrecy_freeze_when_the_vote_opens(compound):
    c = factories.make_consultation(compound)
    factories.walk_to(c, "discussing")
    c.vote_deadline = utcnow() + timedelta(days=2)
    workflow.apply(c, Action.OPEN_VOTE, None)
    with pytest.raises(Conflict):
        service.update(None, c, settings(title=c.title, summary=c.summary,
                                         rule_code="household_two_thirds",
                                         vote_deadline=c.vote_deadline))
    with pytest.raises(ValidationFailed, match="extended"):
        service.update(None, c, settings(title=c.title, summary=c.summary,
                                         rule_code="household_majority", secrecy="open",
                                         vote_deadline=c.vote_deadline - timedelta(hours=1)))
    later = c.vote_deadline + timedelta(days=1)
    service.update(None, c, settings(title=c.title, summary=c.summary,
                                     rule_code="household_majority", vote_deadline=later))
    assert c.vote_deadline == later


def test_items_make_numbered_revisions_with_a_diff(compound):
    c = service.create(None, compound, settings())
    first = service.add_item(None, c, service.item_data(title="更换供水管", description="全部楼栋",
                                                         cost="120000"))
    service.add_item(None, c, service.item_data(title="路面硬化", description="", cost="80000"))
    service.update_item(None, first, service.item_data(title="更换供水管和排水管",
                                                       description="全部楼栋", cost="150000"),
                        note="居民建议一并更换排水管")
    revisions = service.revisions(c)
    assert [r.number for r in revisions] == [4, 3, 2, 1]
    assert revisions[0].note == "居民建议一并更换排水管"
    lines = service.diff(service.previous_revision(revisions[0]), revisions[0])
    assert any(line.kind == "removed" and "更换供水管  (¥120,000.00)" in line.text
               for line in lines)
    assert any(line.kind == "added" and "更换供水管和排水管" in line.text for line in lines)
    unchanged = service.update_item(None, first, service.item_data(
        title="更换供水管和排水管", description="全部楼栋", cost="150000"))
    assert unchanged is first and len(service.revisions(c)) == 4


def test_a_revision_diff_shows_text_not_markdown(compound):
    c = service.create(None, compound, settings())
    item = service.add_item(None, c, service.item_data(
        title="路灯", description="**加粗**说明\n\n- 列表一\n- 列表二", cost="10"))
    service.update_item(None, item, service.item_data(
        title="路灯", description="**加粗**说明\n\n- 列表一\n- *列表三*", cost="10"))
    revisions = service.revisions(c)
    lines = service.diff(service.previous_revision(revisions[0]), revisions[0])
    texts = [(line.kind, line.text) for line in lines]
    assert ("same", "加粗说明") in texts and ("same", "• 列表一") in texts
    assert ("removed", "• 列表二") in texts and ("added", "• 列表三") in texts
    assert not any("*" in text or text.startswith("- ") for _kind, text in texts)


def test_removing_an_item_renumbers_the_rest(compound):
    c = factories.make_consultation(compound, items=3)
    service.remove_item(None, c.items[0])
    assert [(i.number, i.title) for i in c.items] == [(1, "改造项目2"), (2, "改造项目3")]


def test_items_with_comments_stay(compound):
    from consult.consultations.models import Comment
    from consult.extensions import db

    c = factories.make_consultation(compound, items=1)
    db.session.add(Comment(item_id=c.items[0].id, text="支持"))
    db.session.flush()
    with pytest.raises(Conflict):
        service.remove_item(None, c.items[0])


def test_the_proposal_is_frozen_once_voting_started(compound):
    c = factories.make_consultation(compound, items=1)
    factories.walk_to(c, "voting")
    with pytest.raises(Conflict):
        service.add_item(None, c, service.item_data(title="x", description="", cost=""))


def test_scope_narrows_the_roll_to_a_stairwell(compound):
    c = factories.make_consultation(compound)
    building = compound.buildings[0]
    service.set_scope(None, c, [(building.id, "1")])
    assert ballots.count_in_scope(c) == 4
    assert service.household_in_scope(c, building.households[0])
    assert not service.household_in_scope(c, compound.buildings[1].households[0])
    other = factories.make_building(factories.make_compound("别处"))
    with pytest.raises(ValidationFailed):
        service.set_scope(None, c, [(other.id, None)])
    service.set_scope(None, c, [])
    assert ballots.count_in_scope(c) == 8
