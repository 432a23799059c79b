"""The consultation state machine as data: stages, actions and the TRANSITIONS table.

No database; the labels are lazy translations, resolved when shown. ``workflow.apply`` (in
``consult.process``) is the only code that moves a consultation, and it does so by looking
the action up here and checking the named guards. Where a vote stands (open, closed, counted)
is a stage too, and ``vote_is_open`` is the one answer to whether ballots are taken.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from flask_babel import lazy_gettext as _l
from flask_babel import lazy_pgettext


class Stage(StrEnum):
    DRAFT = "draft"
    SOLICITING = "soliciting"            # 一征 征集民意
    PROPOSING = "proposing"              # 一议 提议
    DISCUSSING = "discussing"            # 二议 商议
    VOTING = "voting"                    # 三议 决议: the vote is open until its deadline
    VOTE_CLOSED = "vote_closed"          # closed; papers entered before it await settling
    VOTE_COUNTED = "vote_counted"        # counted; the resolution is not published yet
    RESOLUTION_PUBLIC = "resolution_public"  # 一公开 决议公开
    IMPLEMENTING = "implementing"        # 实施
    RESULT_PUBLIC = "result_public"      # 二公开 实施结果公开
    CLOSED = "closed"
    WITHDRAWN = "withdrawn"


# The method's order; WITHDRAWN stands apart.
STAGE_ORDER = (
    Stage.DRAFT, Stage.SOLICITING, Stage.PROPOSING, Stage.DISCUSSING, Stage.VOTING,
    Stage.VOTE_CLOSED, Stage.VOTE_COUNTED, Stage.RESOLUTION_PUBLIC, Stage.IMPLEMENTING,
    Stage.RESULT_PUBLIC, Stage.CLOSED,
)
# The vote of a round: open, closed (waiting for its papers to be settled), counted.
VOTE_STAGES = frozenset({Stage.VOTING, Stage.VOTE_CLOSED, Stage.VOTE_COUNTED})
# Papers entered while the vote was open may still be settled until it is counted.
UNCOUNTED_VOTE_STAGES = frozenset({Stage.VOTING, Stage.VOTE_CLOSED})
# The current round's vote is counted: its result is frozen.
COUNTED_STAGES = frozenset({Stage.VOTE_COUNTED, Stage.RESOLUTION_PUBLIC, Stage.IMPLEMENTING,
                            Stage.RESULT_PUBLIC, Stage.CLOSED})


def timeline_step(stage: Stage) -> Stage:
    """The step of the method's timeline a stage belongs to: the vote's stages are all 三议."""
    return Stage.VOTING if stage in VOTE_STAGES else stage


# The steps a timeline shows, in the method's order.
TIMELINE = tuple(dict.fromkeys(timeline_step(stage) for stage in STAGE_ORDER))


def vote_is_open(stage: Stage | str, deadline: datetime | None, now: datetime) -> bool:
    """Whether a ballot may be cast at ``now``: only in the open vote's stage, and only before
    its deadline (the vote closes at its deadline, even before the system takes the step)."""
    return Stage(stage) is Stage.VOTING and (deadline is None or now < deadline)


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
    DEADLINE_REACHED_OR_ALL_VOTED = "deadline_reached_or_all_voted"
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


@dataclass(frozen=True)
class Transition:
    action: Action
    sources: frozenset[Stage]
    target: Stage
    guards: tuple[Guard, ...] = ()
    # Whether the system may take this step on its own when a deadline passes.
    on_deadline: bool = False
    # Where the step leads instead when this guard holds as it is taken.
    shortcut: tuple[Guard, Stage] | None = None

    @property
    def targets(self) -> tuple[Stage, ...]:
        """Every stage the step may lead to."""
        return (self.target,) + ((self.shortcut[1],) if self.shortcut else ())


def _t(action: Action, sources: set[Stage], target: Stage, *guards: Guard,
       on_deadline: bool = False, shortcut: tuple[Guard, Stage] | None = None) -> Transition:
    return Transition(action, frozenset(sources), target, guards, on_deadline, shortcut)


TRANSITIONS: dict[Action, Transition] = {t.action: t for t in (
    _t(Action.START_SOLICITING, {Stage.DRAFT}, Stage.SOLICITING),
    _t(Action.START_PROPOSING, {Stage.SOLICITING}, Stage.PROPOSING, on_deadline=True),
    _t(Action.START_DISCUSSION, {Stage.PROPOSING}, Stage.DISCUSSING, Guard.HAS_ITEMS),
    # Opening the vote freezes the electoral roll of the new round.
    _t(Action.OPEN_VOTE, {Stage.DISCUSSING}, Stage.VOTING,
       Guard.HAS_ITEMS, Guard.VOTE_DEADLINE_AHEAD, Guard.ROLL_NOT_EMPTY),
    # Closing the vote; the deadline does it by itself. Before the announced deadline, only
    # when every household on the roll has voted and no paper ballot awaits its second entry
    # or a decision. With nothing waiting the vote is counted at once (the tally frozen); at
    # the deadline it closes whatever waits, and is counted once those papers are settled.
    _t(Action.CLOSE_VOTE, {Stage.VOTING}, Stage.VOTE_CLOSED,
       Guard.DEADLINE_REACHED_OR_ALL_VOTED, Guard.ENTRIES_SETTLED_OR_DEADLINE_REACHED,
       on_deadline=True, shortcut=(Guard.ENTRIES_SETTLED, Stage.VOTE_COUNTED)),
    # The system takes this step by itself as soon as the last waiting paper is settled.
    _t(Action.COUNT_VOTE, {Stage.VOTE_CLOSED}, Stage.VOTE_COUNTED, Guard.ENTRIES_SETTLED,
       on_deadline=True),
    _t(Action.PUBLISH_RESOLUTION, {Stage.VOTE_COUNTED}, Stage.RESOLUTION_PUBLIC),
    # A failed vote goes back to discussion as a new, numbered round.
    _t(Action.NEW_ROUND, {Stage.VOTE_COUNTED, Stage.RESOLUTION_PUBLIC}, Stage.DISCUSSING,
       Guard.NOT_PASSED, Guard.REASON_GIVEN),
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


STAGE_LABELS = {
    Stage.DRAFT: _l("Draft"),
    Stage.SOLICITING: _l("Collecting opinions"),
    Stage.PROPOSING: _l("Drafting the proposal"),
    Stage.DISCUSSING: _l("Discussion"),
    Stage.VOTING: _l("Voting"),
    Stage.VOTE_CLOSED: _l("Vote closed, not counted yet"),
    Stage.VOTE_COUNTED: _l("Vote counted, not published yet"),
    Stage.RESOLUTION_PUBLIC: _l("Resolution published"),
    Stage.IMPLEMENTING: _l("Works under way"),
    Stage.RESULT_PUBLIC: _l("Result published"),
    Stage.CLOSED: _l("Closed"),
    Stage.WITHDRAWN: _l("Withdrawn"),
}
# The method's own names (一征三议两公开), shown beside the plain words. They are fixed terms,
# not sentences: the catalogs write them in Traditional characters for Traditional Chinese and
# keep them as they are in English, the way the method is known.
STAGE_TERMS = {
    Stage.SOLICITING: lazy_pgettext("method", "一征"),
    Stage.PROPOSING: lazy_pgettext("method", "一议"),
    Stage.DISCUSSING: lazy_pgettext("method", "二议"),
    Stage.VOTING: lazy_pgettext("method", "三议"),
    Stage.VOTE_CLOSED: lazy_pgettext("method", "三议"),
    Stage.VOTE_COUNTED: lazy_pgettext("method", "三议"),
    Stage.RESOLUTION_PUBLIC: lazy_pgettext("method", "一公开"),
    Stage.RESULT_PUBLIC: lazy_pgettext("method", "二公开"),
}


def stage_term(stage: Stage | str) -> str:
    """The method's name of a stage (``三议`` for the vote's stages), or "" for a stage outside
    the method's six steps (draft, works under way, closed, withdrawn)."""
    return str(STAGE_TERMS.get(Stage(stage), ""))


def stage_label(stage: Stage | str) -> str:
    return str(STAGE_LABELS[Stage(stage)])
