"""The consultation state machine as data: stages, actions and the TRANSITIONS table.

Pure: no Flask, no database. ``workflow.apply`` is the only code that moves a consultation,
and it does so by looking the action up here and checking the named guards.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Stage(StrEnum):
    DRAFT = "draft"
    SOLICITING = "soliciting"            # 一征 征集民意
    PROPOSING = "proposing"              # 一议 提议
    DISCUSSING = "discussing"            # 二议 商议
    VOTING = "voting"                    # 三议 决议
    RESOLUTION_PUBLIC = "resolution_public"  # 一公开 决议公开
    IMPLEMENTING = "implementing"        # 实施
    RESULT_PUBLIC = "result_public"      # 二公开 实施结果公开
    CLOSED = "closed"
    WITHDRAWN = "withdrawn"


# The method's order, for timelines; WITHDRAWN stands apart.
STAGE_ORDER = (
    Stage.DRAFT, Stage.SOLICITING, Stage.PROPOSING, Stage.DISCUSSING, Stage.VOTING,
    Stage.RESOLUTION_PUBLIC, Stage.IMPLEMENTING, Stage.RESULT_PUBLIC, Stage.CLOSED,
)


class Action(StrEnum):
    START_SOLICITING = "start_soliciting"
    START_PROPOSING = "start_proposing"
    START_DISCUSSION = "start_discussion"
    OPEN_VOTE = "open_vote"
    CLOSE_VOTE = "close_vote"
    COUNT_VOTE = "count_vote"
    NEW_ROUND = "new_round"
    PUBLISH_RESOLUTION = "publish_resolution"
    START_IMPLEMENTATION = "start_implementation"
    PUBLISH_RESULT = "publish_result"
    CLOSE = "close"
    WITHDRAW = "withdraw"


class Guard(StrEnum):
    """Conditions checked before a transition; ``workflow`` knows how to evaluate each."""

    HAS_ITEMS = "has_items"
    VOTE_DEADLINE_AHEAD = "vote_deadline_ahead"
    ROLL_NOT_EMPTY = "roll_not_empty"
    VOTE_OPEN = "vote_open"
    DEADLINE_REACHED_OR_ALL_VOTED = "deadline_reached_or_all_voted"
    VOTE_CLOSED = "vote_closed"
    NOT_PASSED = "not_passed"
    PASSED = "passed"
    PUBLICITY_OVER = "publicity_over"
    OBJECTIONS_ANSWERED = "objections_answered"
    FINAL_REPORT = "final_report"
    ALL_ITEMS_SETTLED = "all_items_settled"
    REASON_GIVEN = "reason_given"
    # No paper ballot awaits its second entry or a decision (double entry).
    ENTRIES_SETTLED = "entries_settled"
    ENTRIES_SETTLED_OR_DEADLINE_REACHED = "entries_settled_or_deadline_reached"
    VOTE_AWAITS_COUNT = "vote_awaits_count"


@dataclass(frozen=True)
class Transition:
    action: Action
    sources: frozenset[Stage]
    target: Stage
    guards: tuple[Guard, ...] = ()
    # Whether the system may take this step on its own when a deadline passes.
    on_deadline: bool = False


def _t(action: Action, sources: set[Stage], target: Stage, *guards: Guard,
       on_deadline: bool = False) -> Transition:
    return Transition(action, frozenset(sources), target, guards, on_deadline)


TRANSITIONS: dict[Action, Transition] = {t.action: t for t in (
    _t(Action.START_SOLICITING, {Stage.DRAFT}, Stage.SOLICITING),
    _t(Action.START_PROPOSING, {Stage.SOLICITING}, Stage.PROPOSING, on_deadline=True),
    _t(Action.START_DISCUSSION, {Stage.PROPOSING}, Stage.DISCUSSING, Guard.HAS_ITEMS),
    # Opening the vote freezes the electoral roll of the new round.
    _t(Action.OPEN_VOTE, {Stage.DISCUSSING}, Stage.VOTING,
       Guard.HAS_ITEMS, Guard.VOTE_DEADLINE_AHEAD, Guard.ROLL_NOT_EMPTY),
    # Closing the vote keeps the stage and freezes the tally; the deadline does it by itself.
    # Before the announced deadline, only when every household on the roll has voted and no
    # paper ballot awaits its second entry or a decision. At the deadline the vote closes
    # whatever waits, and is counted only once the papers entered before it are settled.
    _t(Action.CLOSE_VOTE, {Stage.VOTING}, Stage.VOTING, Guard.VOTE_OPEN,
       Guard.DEADLINE_REACHED_OR_ALL_VOTED, Guard.ENTRIES_SETTLED_OR_DEADLINE_REACHED,
       on_deadline=True),
    # A vote closed with papers still unsettled is counted when they are: the system takes
    # this step by itself as soon as the last one is settled.
    _t(Action.COUNT_VOTE, {Stage.VOTING}, Stage.VOTING, Guard.VOTE_AWAITS_COUNT,
       Guard.ENTRIES_SETTLED, on_deadline=True),
    _t(Action.PUBLISH_RESOLUTION, {Stage.VOTING}, Stage.RESOLUTION_PUBLIC, Guard.VOTE_CLOSED),
    # A failed vote goes back to discussion as a new, numbered round.
    _t(Action.NEW_ROUND, {Stage.VOTING, Stage.RESOLUTION_PUBLIC}, Stage.DISCUSSING,
       Guard.VOTE_CLOSED, Guard.NOT_PASSED, Guard.REASON_GIVEN),
    _t(Action.START_IMPLEMENTATION, {Stage.RESOLUTION_PUBLIC}, Stage.IMPLEMENTING,
       Guard.PASSED, Guard.PUBLICITY_OVER, Guard.OBJECTIONS_ANSWERED),
    _t(Action.PUBLISH_RESULT, {Stage.IMPLEMENTING}, Stage.RESULT_PUBLIC,
       Guard.FINAL_REPORT, Guard.ALL_ITEMS_SETTLED),
    _t(Action.CLOSE, {Stage.RESOLUTION_PUBLIC, Stage.RESULT_PUBLIC}, Stage.CLOSED,
       Guard.PUBLICITY_OVER, Guard.OBJECTIONS_ANSWERED),
    _t(Action.WITHDRAW, {Stage.DRAFT, Stage.SOLICITING, Stage.PROPOSING, Stage.DISCUSSING},
       Stage.WITHDRAWN, Guard.REASON_GIVEN),
)}

# Stages in which residents see the consultation (a draft is the committee's own).
PUBLIC_STAGES = frozenset(set(Stage) - {Stage.DRAFT})
# Stages in which the proposal (items and their texts) may still change.
EDITABLE_PROPOSAL_STAGES = frozenset({Stage.DRAFT, Stage.SOLICITING, Stage.PROPOSING,
                                      Stage.DISCUSSING})
FINAL_STAGES = frozenset({Stage.CLOSED, Stage.WITHDRAWN})


def actions_from(stage: Stage) -> list[Transition]:
    """The transitions that start in ``stage``, in table order."""
    return [t for t in TRANSITIONS.values() if stage in t.sources]
