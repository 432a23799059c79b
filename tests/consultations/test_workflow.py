"""The state machine: the table, the guards, the effects, deadlines and rounds."""

import json
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from consult.audit.models import AuditEvent
from consult.ballots import service as ballots
from consult.ballots.models import BallotChannel, RollEntry
from consult.consultations.states import (
    STAGE_ORDER,
    STAGE_TERMS,
    TIMELINE,
    TRANSITIONS,
    VOTE_STAGES,
    Action,
    Guard,
    Stage,
    actions_from,
    vote_is_open,
)
from consult.core.errors import Conflict
from consult.core.models import utcnow
from consult.extensions import db
from consult.process import workflow
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
            for target in set(t.targets) - reachable:
                reachable.add(target)
                frontier.append(target)
    assert reachable == set(Stage)
    assert actions_from(Stage.CLOSED) == [] and actions_from(Stage.WITHDRAWN) == []
    withdraw = TRANSITIONS[Action.WITHDRAW]
    assert Stage.VOTING not in withdraw.sources  # a running vote cannot just disappear
    assert not VOTE_STAGES & withdraw.sources  # nor a closed or counted one


def test_the_vote_has_its_own_stages_in_the_table():
    close, count = TRANSITIONS[Action.CLOSE_VOTE], TRANSITIONS[Action.COUNT_VOTE]
    assert close.sources == {Stage.VOTING}
    # Closed and waiting for its papers, or counted at once when nothing waits.
    assert close.targets == (Stage.VOTE_CLOSED, Stage.VOTE_COUNTED)
    assert count.sources == {Stage.VOTE_CLOSED} and count.targets == (Stage.VOTE_COUNTED,)
    assert TRANSITIONS[Action.PUBLISH_RESOLUTION].sources == {Stage.VOTE_COUNTED}
    assert TRANSITIONS[Action.NEW_ROUND].sources == {Stage.VOTE_COUNTED, Stage.RESOLUTION_PUBLIC}
    # Every step moves the consultation on: none leads back to where it starts.
    assert all(source not in t.targets for t in TRANSITIONS.values() for source in t.sources)
    # Every guard and every message of the table is known to the workflow.
    named = {g for t in TRANSITIONS.values() for g in t.guards}
    named |= {t.shortcut[0] for t in TRANSITIONS.values() if t.shortcut}
    assert named <= set(workflow.GUARDS) and set(workflow.GUARDS) <= set(Guard)
    assert set(workflow.EFFECTS) <= set(TRANSITIONS)


@pytest.mark.parametrize("stage", list(Stage))
def test_every_stage_offers_exactly_the_steps_of_the_table(compound, stage):
    c = factories.make_consultation(compound, stage=stage.value)
    offered = [o.action for o in workflow.options(c)]
    assert offered == [t.action for t in TRANSITIONS.values() if stage in t.sources]
    for action in set(Action) - set(offered):
        with pytest.raises(Conflict, match="not possible at the current stage"):
            workflow.apply(c, action, None, "理由")
    assert c.stage == stage and stage_events() == []


@pytest.mark.parametrize("stage", list(Stage))
def test_the_vote_is_open_only_in_its_stage_and_only_before_its_deadline(stage):
    deadline = utcnow() + timedelta(days=3)
    just_before = deadline - timedelta(microseconds=1)
    assert vote_is_open(stage, deadline, just_before) is (stage is Stage.VOTING)
    assert vote_is_open(stage.value, None, just_before) is (stage is Stage.VOTING)
    for later in (deadline, deadline + timedelta(days=1)):
        assert not vote_is_open(stage, deadline, later)


def test_the_vote_closes_at_its_deadline_for_ballots_and_for_the_workflow(compound):
    c = factories.make_consultation(compound)
    factories.walk_to(c, "discussing")
    c.vote_deadline = deadline = utcnow() + timedelta(days=3)
    workflow.apply(c, Action.OPEN_VOTE, None)
    just_before = deadline - timedelta(microseconds=1)
    first, second = compound.buildings[0].households[:2]
    answers = {i.id: "agree" for i in c.items}
    assert c.vote_is_open(just_before) and workflow.due_action(c, just_before) is None
    ballots.cast(None, c, first, answers, BallotChannel.ONLINE, now=just_before)
    assert not c.vote_is_open(deadline) and workflow.due_action(c, deadline) is Action.CLOSE_VOTE
    with pytest.raises(Conflict, match="Voting has closed"):
        ballots.cast(None, c, second, answers, BallotChannel.ONLINE, now=deadline)
    assert workflow.catch_up(c, deadline) is Action.CLOSE_VOTE
    assert (c.stage, c.vote_closed_at, c.vote_counted) == (Stage.VOTE_COUNTED, deadline, True)
    with pytest.raises(Conflict, match="Voting has closed"):
        ballots.cast(None, c, second, answers, BallotChannel.ONLINE, now=just_before)


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
    assert c.stage == Stage.VOTE_COUNTED and c.vote_counted_at is not None
    with pytest.raises(Conflict):  # a second close finds the vote closed
        workflow.apply(c, Action.CLOSE_VOTE, None)
    assert stage_events()[-1]["from"] == "voting" and stage_events()[-1]["to"] == "vote_counted"


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
    assert c.vote_closed_at == deadline and c.stage == Stage.VOTE_COUNTED
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
        "draft", "soliciting", "proposing", "discussing", "voting", "vote_closed",
        "vote_counted", "resolution_public", "implementing", "result_public", "closed"]
    # On the timeline the vote's stages are one step, 三议.
    assert [s.value for s in TIMELINE] == [
        "draft", "soliciting", "proposing", "discussing", "voting", "resolution_public",
        "implementing", "result_public", "closed"]
    assert {STAGE_TERMS[s] for s in VOTE_STAGES} == {"三议"}
