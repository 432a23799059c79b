"""Moving a consultation through its stages. This is the only code that assigns a stage.

``apply`` looks the action up in ``states.TRANSITIONS``, checks the transition's guards, carries
out its effects (freezing the roll, counting the vote, publishing a notice) and records the
move — actor, time, reason — in the audit trail, all in the caller's transaction.
Deadlines act on their own: ``due_action`` names the step a passed deadline calls for, and
``close_expired`` / ``catch_up`` take it as the system.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from flask_babel import force_locale, ngettext
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import func, select

from consult.audit import service as audit
from consult.ballots import entries
from consult.ballots import service as ballots
from consult.consultations.models import Consultation
from consult.consultations.states import TRANSITIONS, Action, Guard, Stage, Transition
from consult.core.database import lock_row
from consult.core.errors import Conflict
from consult.core.models import utcnow
from consult.extensions import db
from consult.implementation.models import ProgressEntry
from consult.notices import service as notices
from consult.notices.models import NoticeKind

GUARD_MESSAGES = {
    Guard.HAS_ITEMS: _l("The proposal needs at least one item."),
    Guard.VOTE_DEADLINE_AHEAD: _l("Set a voting deadline in the future."),
    Guard.ROLL_NOT_EMPTY: _l("No household is in this consultation's scope."),
    Guard.VOTE_OPEN: _l("The vote is not open."),
    Guard.DEADLINE_REACHED_OR_ALL_VOTED: _l("The vote runs until its announced deadline, "
                                            "unless every household has already voted."),
    Guard.VOTE_CLOSED: _l("The vote has to be closed and counted first."),
    Guard.NOT_PASSED: _l("Only a proposal that did not pass goes to a new round."),
    Guard.PASSED: _l("No item of the proposal passed the vote."),
    Guard.PUBLICITY_OVER: _l("The notice's publicity period has not ended yet."),
    Guard.OBJECTIONS_ANSWERED: _l("Every objection needs a public answer first."),
    Guard.FINAL_REPORT: _l("Record a final progress report first."),
    Guard.ALL_ITEMS_SETTLED: _l("Tick off every item that passed, with its final cost."),
    Guard.REASON_GIVEN: _l("Give a reason."),
    Guard.ENTRIES_SETTLED: _l("Paper ballots await their second entry or a decision."),
    Guard.ENTRIES_SETTLED_OR_DEADLINE_REACHED: _l(
        "Paper ballots await their second entry or a decision."),
    Guard.VOTE_AWAITS_COUNT: _l("Only a vote that closed before it could be counted waits "
                                "for its count."),
}

ACTION_LABELS = {
    Action.START_SOLICITING: _l("Start collecting opinions"),
    Action.START_PROPOSING: _l("Stop collecting opinions and draft the proposal"),
    Action.START_DISCUSSION: _l("Put the proposal up for discussion"),
    Action.OPEN_VOTE: _l("Open the vote"),
    Action.CLOSE_VOTE: _l("Close the vote and count"),
    Action.COUNT_VOTE: _l("Count the closed vote"),
    Action.NEW_ROUND: _l("Return to discussion for a new round"),
    Action.PUBLISH_RESOLUTION: _l("Publish the resolution notice"),
    Action.START_IMPLEMENTATION: _l("Start the works"),
    Action.PUBLISH_RESULT: _l("Publish the result notice"),
    Action.CLOSE: _l("Close and archive"),
    Action.WITHDRAW: _l("Withdraw the consultation"),
}

ACTION_EFFECTS = {
    Action.START_SOLICITING: _l("Residents can submit and support opinions; the committee "
                                "records offline ones."),
    Action.START_PROPOSING: _l("Opinions are closed; the committee turns them into items."),
    Action.START_DISCUSSION: _l("Residents comment on each item; meetings are recorded; every "
                                "change to the proposal becomes a numbered revision."),
    Action.OPEN_VOTE: _l("The electoral roll is frozen as the registry stands now, the "
                         "proposal can no longer change, and households can vote until the "
                         "deadline."),
    Action.CLOSE_VOTE: _l("No more ballots are accepted; the result is counted and frozen."),
    Action.COUNT_VOTE: _l("Every paper ballot entered before the close is settled: the result "
                          "is counted and frozen."),
    Action.NEW_ROUND: _l("The proposal can be revised and voted on again; this round's result "
                         "stays on record."),
    Action.PUBLISH_RESOLUTION: _l("The result becomes a public notice; households may object "
                                  "during the publicity period."),
    Action.START_IMPLEMENTATION: _l("Progress, spending and inspections are recorded; items "
                                    "are ticked off one by one."),
    Action.PUBLISH_RESULT: _l("What was done and what it cost becomes a public notice; "
                              "households say whether they are satisfied."),
    Action.CLOSE: _l("The consultation is archived; everything stays readable."),
    Action.WITHDRAW: _l("The consultation stops here; its history stays readable."),
}


@dataclass(frozen=True)
class Option:
    """A step offered to the committee: what it does, and what still stands in its way."""

    transition: Transition
    missing: list[str]

    @property
    def action(self) -> Action:
        return self.transition.action

    @property
    def possible(self) -> bool:
        return not self.missing


def _notice_for_stage(consultation: Consultation) -> Any:
    kind = (NoticeKind.RESULT if consultation.stage == Stage.RESULT_PUBLIC
            else NoticeKind.RESOLUTION)
    return notices.current_notice(consultation, kind)


def _guard(guard: Guard, consultation: Consultation, now: datetime, reason: str) -> bool:
    checks: dict[Guard, Callable[[], bool]] = {
        Guard.HAS_ITEMS: lambda: bool(consultation.items),
        Guard.VOTE_DEADLINE_AHEAD: lambda: bool(
            consultation.vote_deadline and consultation.vote_deadline > now),
        Guard.ROLL_NOT_EMPTY: lambda: ballots.count_in_scope(consultation) > 0,
        Guard.VOTE_OPEN: lambda: bool(consultation.vote_opened_at
                                      and consultation.vote_closed_at is None),
        Guard.DEADLINE_REACHED_OR_ALL_VOTED: lambda: bool(
            (consultation.vote_deadline and consultation.vote_deadline <= now)
            or ballots.all_voted(consultation)),
        Guard.VOTE_CLOSED: lambda: ballots.vote_result(consultation) is not None,
        Guard.NOT_PASSED: lambda: _result_passed(consultation) is False,
        Guard.PASSED: lambda: _any_passed_or_survey(consultation),
        Guard.PUBLICITY_OVER: lambda: _publicity_over(consultation, now),
        Guard.OBJECTIONS_ANSWERED: lambda: _objections_answered(consultation),
        Guard.FINAL_REPORT: lambda: bool(db.session.scalar(select(func.count(ProgressEntry.id))
                                         .where(ProgressEntry.consultation_id == consultation.id,
                                                ProgressEntry.is_final.is_(True)))),
        Guard.ALL_ITEMS_SETTLED: lambda: all(
            item.completed_at is not None for item in items_to_implement(consultation)),
        Guard.REASON_GIVEN: lambda: bool(reason.strip()),
        Guard.ENTRIES_SETTLED: lambda: entries.unsettled(consultation) == 0,
        Guard.ENTRIES_SETTLED_OR_DEADLINE_REACHED: lambda: bool(
            (consultation.vote_deadline and consultation.vote_deadline <= now)
            or entries.unsettled(consultation) == 0),
        Guard.VOTE_AWAITS_COUNT: lambda: bool(consultation.vote_closed_at is not None
                                              and consultation.vote_counted_at is None),
    }
    return checks[guard]()


def guard_message(guard: Guard, consultation: Consultation) -> str:
    """What a failing guard means, in words; unsettled papers are counted."""
    if guard in (Guard.ENTRIES_SETTLED, Guard.ENTRIES_SETTLED_OR_DEADLINE_REACHED):
        n = entries.unsettled(consultation)
        return ngettext("%(num)s paper ballot awaits its second entry or a decision.",
                        "%(num)s paper ballots await their second entry or a decision.", n)
    return str(GUARD_MESSAGES[guard])


def _result_passed(consultation: Consultation) -> bool | None:
    result = ballots.vote_result(consultation)
    return result.passed if result else None


def _any_passed_or_survey(consultation: Consultation) -> bool:
    tally = ballots.frozen_tally(consultation)
    if tally is None:
        return False
    return tally["passed"] is None or any(item["passed"] for item in tally["items"])


def items_to_implement(consultation: Consultation) -> list[Any]:
    """The items that passed (every item, for a survey); the ones to be ticked off."""
    tally = ballots.frozen_tally(consultation)
    if tally is None:
        return []
    passed = {item["number"] for item in tally["items"] if item["passed"] is not False}
    return [item for item in consultation.items if item.number in passed]


def _publicity_over(consultation: Consultation, now: datetime) -> bool:
    notice = _notice_for_stage(consultation)
    return notice is not None and notice.period_ends_at <= now


def _objections_answered(consultation: Consultation) -> bool:
    notice = _notice_for_stage(consultation)
    return notice is None or notices.unanswered_objections(notice) == 0


def options(consultation: Consultation, now: datetime | None = None) -> list[Option]:
    """Every step the table allows from the current stage, with what is still missing."""
    now = now or utcnow()
    stage = consultation.stage_enum
    result = []
    for transition in TRANSITIONS.values():
        if stage not in transition.sources:
            continue
        if transition.action is Action.COUNT_VOTE and not awaits_count(consultation):
            continue  # a step of its own only for a vote closed before it could be counted
        missing = [guard_message(g, consultation) for g in transition.guards
                   if g is not Guard.REASON_GIVEN and not _guard(g, consultation, now, "")]
        result.append(Option(transition, missing))
    return result


def needs_reason(action: Action) -> bool:
    return Guard.REASON_GIVEN in TRANSITIONS[action].guards


def apply(consultation: Consultation, action: Action, actor: Any, reason: str = "",
          now: datetime | None = None, *, by_deadline: bool = False) -> Consultation:
    """Take a step of the TRANSITIONS table, or raise Conflict saying why it cannot be taken."""
    now = now or utcnow()
    # Decide on the stage as last committed, and keep anyone else from moving it (or casting
    # a ballot, see ballots.cast) until this step commits: two members closing the same vote
    # at once must close it once, and the tally must count every ballot acknowledged before.
    lock_row(consultation)
    transition = TRANSITIONS.get(action)
    if transition is None:
        raise Conflict(_("Unknown step."))
    source = consultation.stage_enum
    if source not in transition.sources:
        raise Conflict(_("This step is not possible at the current stage (%(stage)s).",
                         stage=stage_label(source)))
    if by_deadline and not transition.on_deadline:
        raise Conflict(_("This step is not taken by a deadline."))
    missing = [guard_message(g, consultation) for g in transition.guards
               if not _guard(g, consultation, now, reason)]
    if missing:
        raise Conflict(" ".join(missing))
    # What the effects freeze (tallies, notices) is written in the consultation's language,
    # whoever takes the step.
    with force_locale(consultation.locale):
        _effects(consultation, action, actor, now)
    consultation.stage = transition.target.value
    db.session.flush()
    audit.record(actor, "consultation.stage_changed", consultation, {
        "action": action.value, "from": source.value, "to": transition.target.value,
        "reason": reason.strip()[:500], "round": consultation.round, "by_deadline": by_deadline,
    })
    return consultation


def _effects(consultation: Consultation, action: Action, actor: Any, now: datetime) -> None:
    if action is Action.OPEN_VOTE:
        consultation.vote_opened_at = now
        consultation.vote_closed_at = None
        ballots.freeze_roll(actor, consultation)
    elif action is Action.CLOSE_VOTE:
        # A deadline closes the vote at the deadline, even if nobody looked until later.
        deadline = consultation.vote_deadline
        consultation.vote_closed_at = min(now, deadline) if deadline else now
        waiting = entries.unsettled(consultation)
        if waiting:
            # Only at the deadline (the guards saw to that): no more ballots, but the papers
            # entered before it are settled first, and COUNT_VOTE counts them all.
            audit.record(actor, "ballot.count_waiting", consultation,
                         {"round": consultation.round, "unsettled": waiting})
        else:
            _count(actor, consultation, now)
    elif action is Action.COUNT_VOTE:
        _count(actor, consultation, now)
    elif action is Action.PUBLISH_RESOLUTION:
        notices.publish(actor, consultation, NoticeKind.RESOLUTION, now)
    elif action is Action.PUBLISH_RESULT:
        from consult.implementation.service import result_summary

        notices.publish(actor, consultation, NoticeKind.RESULT, now,
                        content=result_summary(consultation))
    elif action is Action.NEW_ROUND:
        consultation.round += 1
        consultation.vote_opened_at = None
        consultation.vote_closed_at = None
        consultation.vote_counted_at = None
        consultation.vote_deadline = None


def _count(actor: Any, consultation: Consultation, now: datetime) -> None:
    """Count the closed vote and freeze its result (the tally of the ballots as they stand at
    the close; proxy ballots still lacking a required authorisation never counted)."""
    entries.set_aside_at_count(consultation, now)
    assert consultation.vote_closed_at is not None
    ballots.freeze_result(actor, consultation, consultation.vote_closed_at)
    consultation.vote_counted_at = now


def awaits_count(consultation: Consultation) -> bool:
    """Whether the vote closed (at its deadline) before the papers entered were settled, and
    waits for them to be counted."""
    return (consultation.stage == Stage.VOTING and consultation.vote_closed_at is not None
            and consultation.vote_counted_at is None)


# --- deadlines --------------------------------------------------------------------------------


def due_action(consultation: Consultation, now: datetime | None = None) -> Action | None:
    """The step a passed deadline calls for, if any."""
    now = now or utcnow()
    if (consultation.stage == Stage.SOLICITING and consultation.solicitation_deadline
            and consultation.solicitation_deadline <= now):
        return Action.START_PROPOSING
    if (consultation.stage == Stage.VOTING and consultation.vote_opened_at
            and consultation.vote_closed_at is None and consultation.vote_deadline
            and consultation.vote_deadline <= now):
        return Action.CLOSE_VOTE
    if awaits_count(consultation) and entries.unsettled(consultation) == 0:
        return Action.COUNT_VOTE
    return None


def catch_up(consultation: Consultation, now: datetime | None = None) -> Action | None:
    """Take the step a passed deadline calls for, as the system; returns it (or None)."""
    now = now or utcnow()
    lock_row(consultation)  # another request may have just taken the step
    action = due_action(consultation, now)
    if action is not None:
        apply(consultation, action, None, _("deadline passed"), now, by_deadline=True)
    return action


def close_expired(now: datetime | None = None) -> list[tuple[int, Action]]:
    """Catch up every consultation whose deadline has passed (run from cron)."""
    now = now or utcnow()
    candidates = db.session.scalars(select(Consultation).where(
        ((Consultation.stage == Stage.SOLICITING.value)
         & (Consultation.solicitation_deadline <= now))
        | ((Consultation.stage == Stage.VOTING.value) & Consultation.vote_closed_at.is_(None)
           & (Consultation.vote_deadline <= now))
        | ((Consultation.stage == Stage.VOTING.value) & Consultation.vote_closed_at.isnot(None)
           & Consultation.vote_counted_at.is_(None)))
        # Every candidate is locked before the first step writes its audit event: a ballot
        # holding one of them must never wait for the audit chain this transaction holds.
        .order_by(Consultation.id).with_for_update()).all()
    done = []
    for consultation in candidates:
        action = catch_up(consultation, now)
        if action is not None:
            done.append((consultation.id, action))
    return done


STAGE_LABELS = {
    Stage.DRAFT: _l("Draft"),
    Stage.SOLICITING: _l("Collecting opinions"),
    Stage.PROPOSING: _l("Drafting the proposal"),
    Stage.DISCUSSING: _l("Discussion"),
    Stage.VOTING: _l("Voting"),
    Stage.RESOLUTION_PUBLIC: _l("Resolution published"),
    Stage.IMPLEMENTING: _l("Works under way"),
    Stage.RESULT_PUBLIC: _l("Result published"),
    Stage.CLOSED: _l("Closed"),
    Stage.WITHDRAWN: _l("Withdrawn"),
}
# The method's own names (一征三议两公开), shown beside the plain words.
STAGE_TERMS = {
    Stage.SOLICITING: "一征", Stage.PROPOSING: "一议", Stage.DISCUSSING: "二议",
    Stage.VOTING: "三议", Stage.RESOLUTION_PUBLIC: "一公开", Stage.RESULT_PUBLIC: "二公开",
}


def stage_label(stage: Stage | str) -> str:
    return str(STAGE_LABELS[Stage(stage)])
