"""The state machine: the table, the guards, the effects, deadlines and rounds."""

import json
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from consult.audit.models import AuditEvent
from consult.ballots import service as ballots
from consult.ballots.models import BallotChannel, RollEntry
from consult.consultations import workflow
from consult.consultations.states import STAGE_ORDER, TRANSITIONS, Action, Stage, actions_from
from consult.core.errors import Conflict
from consult.core.models import utcnow
from consult.extensions import db
from consult.registry.models import Household
from tests import factories


def stage_events():
    rows = db.session.scalars(select(AuditEvent).where(
        AuditEvent.action == "consultation.stage_changed").order_by(AuditEvent.seq))
    return [json.loads(e.payload) for e in rows]


def test_every_stage_is_reachable_and_final_stages_are_final():
    reachable, frontier = {Stage.DRAFT}, [Stage.DRAFT]
    while frontier:
        stage = frontier.pop()
        for t in actions_from(stage):
            if t.target not in reachable:
                reachable.add(t.target)
                frontier.append(t.target)
    assert reachable == set(Stage)
    assert actions_from(Stage.CLOSED) == [] and actions_from(Stage.WITHDRAWN) == []
    withdraw = TRANSITIONS[Action.WITHDRAW]
    assert Stage.VOTING not in withdraw.sources  # a running vote cannot just disappear


def test_steps_need_their_stage(compound):
    c = factories.make_consultation(compound)
    with pytest.raises(Conflict):
        workflow.apply(c, Action.OPEN_VOTE, None)
    assert c.stage == Stage.DRAFT and stage_events() == []


def test_discussion_needs_items(compound):
    c = factories.make_consultation(compound, items=0)
    workflow.apply(c, Action.START_SOLICITING, None)
    workflow.apply(c, Action.START_PROPOSING, None)
    with pytest.raises(Conflict, match="at least one item"):
        workflow.apply(c, Action.START_DISCUSSION, None)


def test_opening_the_vote_needs_a_deadline_ahead_and_freezes_the_roll(compound):
    c = factories.make_consultation(compound)
    factories.walk_to(c, "discussing")
    with pytest.raises(Conflict, match="deadline"):
        workflow.apply(c, Action.OPEN_VOTE, None)
    c.vote_deadline = utcnow() + timedelta(days=3)
    workflow.apply(c, Action.OPEN_VOTE, None, "投票开始")
    assert c.stage == Stage.VOTING and c.vote_opened_at is not None
    assert db.session.scalar(select(func.count(RollEntry.id))) == 8
    # The registry may change; the running vote keeps the frozen roll.
    household = compound.buildings[0].households[0]
    household.area_dm2 = 99999
    assert ballots.roll_entry_for(c, household.id).area_dm2 != 99999
    event = stage_events()[-1]
    assert event == {"action": "open_vote", "from": "discussing", "to": "voting",
                     "reason": "投票开始", "round": 1, "by_deadline": False}


def test_the_vote_cannot_close_early_unless_everyone_voted(compound):
    c = factories.make_consultation(compound)
    factories.walk_to(c, "discussing")
    c.vote_deadline = utcnow() + timedelta(days=3)
    workflow.apply(c, Action.OPEN_VOTE, None)
    with pytest.raises(Conflict, match="deadline"):
        workflow.apply(c, Action.CLOSE_VOTE, None)
    for entry in db.session.scalars(ballots.roll_entries(c)):
        ballots.cast(None, c, db.session.get(Household, entry.household_id),
                     {i.id: "agree" for i in c.items}, BallotChannel.PAPER)
    workflow.apply(c, Action.CLOSE_VOTE, None)
    assert c.vote_closed_at is not None and ballots.vote_result(c).passed is True
    with pytest.raises(Conflict):  # a second close finds the vote closed
        workflow.apply(c, Action.CLOSE_VOTE, None)


def test_a_passed_deadline_closes_the_vote_at_the_deadline(compound):
    c = factories.make_consultation(compound)
    factories.walk_to(c, "discussing")
    deadline = utcnow() + timedelta(days=3)
    c.vote_deadline = deadline
    workflow.apply(c, Action.OPEN_VOTE, None)
    later = deadline + timedelta(hours=5)
    assert workflow.due_action(c, deadline - timedelta(seconds=1)) is None
    assert workflow.due_action(c, later) is Action.CLOSE_VOTE
    assert workflow.close_expired(later) == [(c.id, Action.CLOSE_VOTE)]
    assert c.vote_closed_at == deadline
    assert stage_events()[-1]["by_deadline"] is True
    assert workflow.close_expired(later) == []


def test_solicitation_deadline_moves_on_to_the_proposal(compound):
    c = factories.make_consultation(compound)
    workflow.apply(c, Action.START_SOLICITING, None)
    c.solicitation_deadline = utcnow() - timedelta(minutes=1)
    assert workflow.catch_up(c) is Action.START_PROPOSING
    assert c.stage == Stage.PROPOSING


def test_a_failed_vote_returns_to_discussion_as_a_new_round(compound):
    c = factories.make_consultation(compound, items=1)
    now = factories.walk_to(c, "resolution_public", choices="disagree")
    assert ballots.vote_result(c).passed is False
    with pytest.raises(Conflict):  # nothing passed: no works
        workflow.apply(c, Action.START_IMPLEMENTATION, None,
                       now=now + timedelta(days=30))
    with pytest.raises(Conflict, match="reason"):
        workflow.apply(c, Action.NEW_ROUND, None, "")
    workflow.apply(c, Action.NEW_ROUND, None, "方案调整后重新表决", now=now)
    assert (c.stage, c.round, c.vote_deadline) == (Stage.DISCUSSING, 2, None)
    # Round 1 stays on record; round 2 gets its own roll and result.
    assert ballots.vote_result(c, 1) is not None and ballots.vote_result(c) is None
    c.vote_deadline = now + timedelta(days=5)
    workflow.apply(c, Action.OPEN_VOTE, None, now=now)
    assert ballots.roll_totals(c).households == 8 and ballots.roll_totals(c, 1).households == 8


def test_a_passed_vote_cannot_start_a_new_round(compound):
    c = factories.make_consultation(compound, items=1)
    factories.walk_to(c, "resolution_public")
    with pytest.raises(Conflict):
        workflow.apply(c, Action.NEW_ROUND, None, "reason")


def test_works_start_after_the_publicity_period_and_answered_objections(compound):
    from consult.notices import service as notices
    from consult.notices.models import NoticeKind

    c = factories.make_consultation(compound, items=1)
    now = factories.walk_to(c, "resolution_public")
    notice = notices.current_notice(c, NoticeKind.RESOLUTION)
    with pytest.raises(Conflict, match="publicity period"):
        workflow.apply(c, Action.START_IMPLEMENTATION, None, now=now + timedelta(days=1))
    objection = notices.file_objection(None, notice, compound.buildings[0].households[0],
                                       "费用太高", now=now + timedelta(days=1))
    after = notice.period_ends_at + timedelta(minutes=1)
    with pytest.raises(Conflict, match="objection"):
        workflow.apply(c, Action.START_IMPLEMENTATION, None, now=after)
    notices.answer_objection(None, objection, "费用已按财政标准核定。")
    workflow.apply(c, Action.START_IMPLEMENTATION, None, now=after)
    assert c.stage == Stage.IMPLEMENTING


def test_withdrawal_keeps_the_history_and_needs_a_reason(compound):
    c = factories.make_consultation(compound)
    factories.walk_to(c, "discussing")
    with pytest.raises(Conflict):
        workflow.apply(c, Action.WITHDRAW, None, "  ")
    workflow.apply(c, Action.WITHDRAW, None, "小区将整体拆迁")
    assert c.stage == Stage.WITHDRAWN
    assert [e["to"] for e in stage_events()] == [
        "soliciting", "proposing", "discussing", "withdrawn"]


def test_options_explain_what_is_missing(compound, app):
    c = factories.make_consultation(compound, items=0)
    factories.walk_to(c, "proposing")
    with app.test_request_context(headers={"Accept-Language": "en"}):
        options = {o.action: o for o in workflow.options(c)}
        assert set(options) == {Action.START_DISCUSSION, Action.WITHDRAW}
        assert options[Action.START_DISCUSSION].missing == ["The proposal needs at least one item."]
        assert options[Action.WITHDRAW].possible


def test_stage_order_matches_the_method():
    assert [s.value for s in STAGE_ORDER] == [
        "draft", "soliciting", "proposing", "discussing", "voting", "resolution_public",
        "implementing", "result_public", "closed"]
