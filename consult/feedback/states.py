"""The life of a defect report, as one table: which action moves a report from which states
to which, who may take it and what it needs. Pure: no Flask, no session.

``service.move`` is the only code that changes a report's state; it reads this table.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class State(StrEnum):
    OPEN = "open"            # reported, not yet looked at by the committee
    ACCEPTED = "accepted"    # the committee agrees it is a defect (or it was reopened)
    REJECTED = "rejected"    # not a defect of these works, with a reason
    ASSIGNED = "assigned"    # someone named has to fix it by a due date
    FIXED = "fixed"          # the committee says it is fixed, with a photo
    CONFIRMED = "confirmed"  # the reporter or a supervisor agrees it is fixed


class Action(StrEnum):
    ACCEPT = "accept"
    REJECT = "reject"
    ASSIGN = "assign"
    MARK_FIXED = "mark_fixed"
    CONFIRM = "confirm"
    REOPEN = "reopen"


class Who(StrEnum):
    """Whose step an action is."""

    COMMITTEE = "committee"  # committee members of the compound (policy ``feedback.manage``)
    CHECKER = "checker"      # the reporting household or a supervisor (``feedback.check``)


class Need(StrEnum):
    """What an action needs besides the actor."""

    REASON = "reason"
    ASSIGNEE = "assignee"
    DUE_DATE = "due_date"
    PHOTO = "photo"
    NOTE = "note"


@dataclass(frozen=True)
class Transition:
    action: Action
    sources: frozenset[State]
    target: State
    who: Who
    needs: frozenset[Need] = frozenset()


def _t(action: Action, sources: set[State], target: State, who: Who,
       needs: set[Need] | None = None) -> Transition:
    return Transition(action, frozenset(sources), target, who, frozenset(needs or ()))


# A reopened report goes back to "accepted": the committee assigns it again with a new due
# date (the same contractor or another), so an old due date never makes it look overdue.
# Reassigning an assigned report (a new contractor or date) is the same "assign" step.
TRANSITIONS: dict[Action, Transition] = {t.action: t for t in (
    _t(Action.ACCEPT, {State.OPEN}, State.ACCEPTED, Who.COMMITTEE),
    _t(Action.REJECT, {State.OPEN, State.ACCEPTED}, State.REJECTED, Who.COMMITTEE,
       {Need.REASON}),
    _t(Action.ASSIGN, {State.ACCEPTED, State.ASSIGNED}, State.ASSIGNED, Who.COMMITTEE,
       {Need.ASSIGNEE, Need.DUE_DATE}),
    _t(Action.MARK_FIXED, {State.ASSIGNED}, State.FIXED, Who.COMMITTEE,
       {Need.PHOTO, Need.NOTE}),
    _t(Action.CONFIRM, {State.FIXED}, State.CONFIRMED, Who.CHECKER),
    _t(Action.REOPEN, {State.FIXED}, State.ACCEPTED, Who.CHECKER, {Need.REASON}),
)}

# States in which nothing is left to do.
FINAL_STATES = frozenset({State.REJECTED, State.CONFIRMED})
# States counted as "fixed" on the dashboard and the public list.
DONE_STATES = frozenset({State.FIXED, State.CONFIRMED})
# States the committee still has to act on.
OPEN_STATES = frozenset({State.OPEN, State.ACCEPTED, State.ASSIGNED})


def actions_from(state: State) -> list[Transition]:
    """The transitions that start from ``state``, in the table's order."""
    return [t for t in TRANSITIONS.values() if state in t.sources]
