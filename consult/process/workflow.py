"""Moving a consultation through its stages. This is the only code that assigns a stage.

``apply`` looks the action up in ``states.TRANSITIONS``, checks the transition's guards
(``GUARDS``), carries out its effects (``EFFECTS``: freezing the roll, counting the vote,
publishing a notice) and records the move — actor, time, reason — in the audit trail, all in
the caller's transaction. Deadlines act on their own: ``due_action`` names the step a passed
deadline calls for, and ``close_expired`` / ``catch_up`` take it as the system.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from flask_babel import force_locale, ngettext
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import func, select

from consult.audit import service as audit
from consult.ballots import entries
from consult.ballots import service as ballots
from consult.consultations.models import Consultation
from consult.consultations.states import (
    TRANSITIONS,
    Action,
    Guard,
    Stage,
    Transition,
    actions_from,
    stage_label,
)
from consult.core.database import lock_row
from consult.core.errors import Conflict
from consult.core.models import utcnow
from consult.core.times import format_datetime
from consult.extensions import db
from consult.implementation import service as implementation
from consult.implementation.models import ProgressEntry
from consult.notices import service as notices
from consult.notices.models import NoticeKind
from consult.process import notify_events

GUARD_MESSAGES = {
    Guard.HAS_ITEMS: _l("The proposal needs at least one item."),
    Guard.VOTE_DEADLINE_AHEAD: _l("Set a voting deadline in the future."),
    Guard.ROLL_NOT_EMPTY: _l("No household is in this consultation's scope."),
    Guard.DEADLINE_REACHED_OR_ALL_VOTED: _l("The vote runs until its announced deadline, "
                                            "unless every household has already voted."),
    Guard.NOT_PASSED: _l("Only a proposal that did not pass goes to a new round."),
    Guard.PASSED: _l("No item of the proposal passed the vote."),
    Guard.PUBLICITY_OVER: _l("The notice's publicity period has not ended yet."),
    Guard.OBJECTIONS_ANSWERED: _l("Every objection needs a public answer first."),
    # Says where: the final report is a progress entry on the works page, not a page of its own.
    Guard.FINAL_REPORT: _l("Record the final report first: on the works page, choose “Record "
                           "progress”, enter 100 % and tick “This is the final report”."),
    Guard.ALL_ITEMS_SETTLED: _l("Tick off every item that passed, with its final cost."),
    Guard.REASON_GIVEN: _l("Give a reason."),
    Guard.ENTRIES_SETTLED: _l("Paper ballots await their second entry or a decision."),
    Guard.ENTRIES_SETTLED_OR_DEADLINE_REACHED: _l(
        "Paper ballots await their second entry or a decision."),
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


@dataclass(frozen=True)
class Context:
    """What a guard or an effect needs besides the consultation."""

    now: datetime
    reason: str = ""
    actor: Any = None
    # Where the step leads (for effects; guards are checked before it is known).
    target: Stage | None = None


# --- guards -----------------------------------------------------------------------------------


def _notice_for_stage(consultation: Consultation) -> Any:
    kind = (NoticeKind.RESULT if consultation.stage == Stage.RESULT_PUBLIC
            else NoticeKind.RESOLUTION)
    return notices.current_notice(consultation, kind)


def _deadline_reached(consultation: Consultation, context: Context) -> bool:
    return bool(consultation.vote_deadline and consultation.vote_deadline <= context.now)


def _result_passed(consultation: Consultation) -> bool | None:
    result = ballots.vote_result(consultation)
    return result.passed if result else None


def _any_passed_or_survey(consultation: Consultation, context: Context) -> bool:
    tally = ballots.frozen_tally(consultation)
    if tally is None:
        return False
    return tally["passed"] is None or any(item["passed"] for item in tally["items"])


def _publicity_over(consultation: Consultation, context: Context) -> bool:
    notice = _notice_for_stage(consultation)
    return notice is not None and notice.period_ends_at <= context.now


def _objections_answered(consultation: Consultation, context: Context) -> bool:
    notice = _notice_for_stage(consultation)
    return notice is None or notices.unanswered_objections(notice) == 0


def _final_report(consultation: Consultation, context: Context) -> bool:
    return bool(db.session.scalar(select(func.count(ProgressEntry.id)).where(
        ProgressEntry.consultation_id == consultation.id, ProgressEntry.is_final.is_(True))))


def _entries_settled(consultation: Consultation, context: Context) -> bool:
    return entries.unsettled(consultation) == 0


GuardCheck = Callable[[Consultation, Context], bool]

GUARDS: dict[Guard, GuardCheck] = {
    Guard.HAS_ITEMS: lambda c, _: bool(c.items),
    Guard.VOTE_DEADLINE_AHEAD: lambda c, ctx: bool(c.vote_deadline
                                                   and c.vote_deadline > ctx.now),
    Guard.ROLL_NOT_EMPTY: lambda c, _: ballots.count_in_scope(c) > 0,
    Guard.DEADLINE_REACHED_OR_ALL_VOTED: lambda c, ctx: (_deadline_reached(c, ctx)
                                                         or ballots.all_voted(c)),
    Guard.NOT_PASSED: lambda c, _: _result_passed(c) is False,
    Guard.PASSED: _any_passed_or_survey,
    Guard.PUBLICITY_OVER: _publicity_over,
    Guard.OBJECTIONS_ANSWERED: _objections_answered,
    Guard.FINAL_REPORT: _final_report,
    Guard.ALL_ITEMS_SETTLED: lambda c, _: all(
        item.completed_at is not None for item in implementation.implementable_items(c)),
    Guard.REASON_GIVEN: lambda _, ctx: bool(ctx.reason.strip()),
    Guard.ENTRIES_SETTLED: _entries_settled,
    Guard.ENTRIES_SETTLED_OR_DEADLINE_REACHED: lambda c, ctx: (_deadline_reached(c, ctx)
                                                               or _entries_settled(c, ctx)),
}


def guard_message(guard: Guard, consultation: Consultation) -> str:
    """What a failing guard means, in words; unsettled papers are counted."""
    if guard in (Guard.ENTRIES_SETTLED, Guard.ENTRIES_SETTLED_OR_DEADLINE_REACHED):
        n = entries.unsettled(consultation)
        return ngettext("%(num)s paper ballot awaits its second entry or a decision.",
                        "%(num)s paper ballots await their second entry or a decision.", n)
    return str(GUARD_MESSAGES[guard])


def _missing(transition: Transition, consultation: Consultation, context: Context,
             skip: frozenset[Guard] = frozenset()) -> list[str]:
    return [guard_message(guard, consultation) for guard in transition.guards
            if guard not in skip and not GUARDS[guard](consultation, context)]


def _target(transition: Transition, consultation: Consultation, context: Context) -> Stage:
    if transition.shortcut is not None:
        guard, stage = transition.shortcut
        if GUARDS[guard](consultation, context):
            return stage
    return transition.target


# --- steps ------------------------------------------------------------------------------------


def options(consultation: Consultation, now: datetime | None = None) -> list[Option]:
    """Every step the table allows from the current stage, with what is still missing."""
    context = Context(now or utcnow())
    # The reason is asked for with the step itself.
    return [Option(transition, _missing(transition, consultation, context,
                                        frozenset({Guard.REASON_GIVEN})))
            for transition in actions_from(consultation.stage_enum)]


def needs_reason(action: Action) -> bool:
    return Guard.REASON_GIVEN in TRANSITIONS[action].guards


def _possible(consultation: Consultation, action: Action, context: Context,
              by_deadline: bool = False) -> Transition:
    """The step's transition, or Conflict saying why it cannot be taken now."""
    transition = TRANSITIONS.get(action)
    if transition is None:
        raise Conflict(_("Unknown step."))
    source = consultation.stage_enum
    if source not in transition.sources:
        raise Conflict(_("This step is not possible at the current stage (%(stage)s).",
                         stage=stage_label(source)))
    if by_deadline and not transition.on_deadline:
        raise Conflict(_("This step is not taken by a deadline."))
    missing = _missing(transition, consultation, context)
    if missing:
        # A missing reason is the reason field's; everything else is the step's.
        field = "reason" if missing == [guard_message(Guard.REASON_GIVEN, consultation)] else None
        raise Conflict(" ".join(missing), field=field)
    return transition


def check(consultation: Consultation, action: Action, reason: str = "",
          now: datetime | None = None) -> None:
    """Raise Conflict, as ``apply`` would, when the step cannot be taken now; changes nothing
    (what a confirmation page asks before it shows the step's consequences)."""
    _possible(consultation, action, Context(now or utcnow(), reason))


def apply(consultation: Consultation, action: Action, actor: Any, reason: str = "",
          now: datetime | None = None, *, by_deadline: bool = False) -> Consultation:
    """Take a step of the TRANSITIONS table, or raise Conflict saying why it cannot be taken."""
    context = Context(now or utcnow(), reason, actor)
    # Decide on the stage as last committed, and keep anyone else from moving it (or casting
    # a ballot, see ballots.cast) until this step commits: two members closing the same vote
    # at once must close it once, and the tally must count every ballot acknowledged before.
    lock_row(consultation)
    # The step appends to the consultation's chain and anchors it in the global chain: both
    # heads, the global one first (the lock-order rule of ``audit``), before any effect
    # appends to either.
    audit.hold_heads(audit.GLOBAL_CHAIN, consultation.id)
    transition = _possible(consultation, action, context, by_deadline)
    source = consultation.stage_enum
    target = _target(transition, consultation, context)
    effect = EFFECTS.get(action)
    if effect is not None:
        # What the effects freeze (tallies, notices) is written in the consultation's
        # language, whoever takes the step.
        with force_locale(consultation.locale):
            effect(consultation, replace(context, target=target))
    consultation.stage = target.value
    db.session.flush()
    # Households hear of a stage that asks something of them, in this same transaction.
    notify_events.stage_opened(consultation, target, context.now)
    audit.record(actor, "consultation.stage_changed", consultation, {
        "action": action.value, "from": source.value, "to": target.value,
        "reason": reason.strip()[:500], "round": consultation.round, "by_deadline": by_deadline,
    })
    # The chain as it stands after the step, stage event included, goes into the global
    # chain: rewriting the consultation's chain up to here can no longer go unnoticed.
    audit.anchor(consultation.id, actor)
    return consultation


# --- confirmation -----------------------------------------------------------------------------

# Steps that cannot be undone: the committee confirms each on a page that says, with the
# numbers, what will happen. The other steps only open the next stage's work.
CONFIRMED_ACTIONS = frozenset({
    Action.OPEN_VOTE, Action.CLOSE_VOTE, Action.COUNT_VOTE, Action.NEW_ROUND,
    Action.PUBLISH_RESOLUTION, Action.PUBLISH_RESULT, Action.CLOSE, Action.WITHDRAW,
})


def needs_confirmation(action: Action) -> bool:
    """Whether the step is taken only after a confirmation page."""
    return action in CONFIRMED_ACTIONS


def _households(n: int) -> str:
    return ngettext("%(num)s household", "%(num)s households", n)


def _notice_period(consultation: Consultation, now: datetime) -> str:
    days = consultation.publicity_days
    return ngettext("The notice stays up for %(num)s day, until %(when)s; households may "
                    "object until then, and the committee answers every objection publicly.",
                    "The notice stays up for %(num)s days, until %(when)s; households may "
                    "object until then, and the committee answers every objection publicly.",
                    days, when=format_datetime(now + timedelta(days=days), "short"))


def _counting(consultation: Consultation) -> list[str]:
    """What counting the closed vote freezes, with the proxies it sets aside."""
    lines = [_("The result is counted from the ballots as they stand at the close and frozen: "
               "no ballot can be added, changed or corrected afterwards.")]
    set_aside = entries.pending(consultation).awaiting_authorisation
    if set_aside:
        lines.append(ngettext(
            "%(num)s proxy ballot still lacks its written authorisation: it is set aside and "
            "does not count.",
            "%(num)s proxy ballots still lack their written authorisation: they are set aside "
            "and do not count.", set_aside))
    return lines


def consequences(consultation: Consultation, action: Action,
                 now: datetime | None = None) -> list[str]:
    """What taking ``action`` now will do, sentence by sentence, with the numbers from the
    data (households on the roll, ballots, items, papers waiting, the notice's period) — what
    the confirmation page shows before an irreversible step."""
    now = now or utcnow()
    lines: list[str] = []
    if action is Action.OPEN_VOTE:
        households = ballots.count_in_scope(consultation)
        buildings = db.session.scalar(select(func.count(func.distinct(
            ballots.households_in_scope(consultation).subquery().c.building_id)))) or 0
        lines.append(_("The electoral roll of %(households)s in %(buildings)s is frozen as the "
                       "registry stands now; households added later do not vote.",
                       households=_households(households),
                       buildings=ngettext("%(num)s building", "%(num)s buildings", buildings)))
        lines.append(ngettext(
            "The proposal's %(num)s item can no longer change; nor can the scope, the decision "
            "rule, the ballot secrecy or how paper ballots are entered.",
            "The proposal's %(num)s items can no longer change; nor can the scope, the "
            "decision rule, the ballot secrecy or how paper ballots are entered.",
            len(consultation.items)))
        if consultation.vote_deadline:
            lines.append(_("Households can vote until %(when)s; the deadline can then only be "
                           "extended.", when=format_datetime(consultation.vote_deadline,
                                                              "short")))
    elif action is Action.CLOSE_VOTE:
        total = ballots.roll_totals(consultation).households
        voted = sum(ballots.counts_by_channel(consultation).values())
        if voted >= total:
            lines.append(ngettext("The %(num)s household on the roll has voted.",
                                  "All %(num)s households on the roll have voted.", total))
        else:
            lines.append(ngettext(
                "%(voted)s of the %(num)s household on the roll has voted; %(missing)s can no "
                "longer vote.",
                "%(voted)s of the %(num)s households on the roll have voted; %(missing)s can "
                "no longer vote.", total, voted=voted, missing=_households(total - voted)))
        target = _target(TRANSITIONS[action], consultation, Context(now))
        if target is Stage.VOTE_COUNTED:
            lines.extend(_counting(consultation))
        else:
            lines.append(ngettext(
                "%(num)s paper ballot awaits its second entry or a decision: the vote is "
                "counted once it is settled.",
                "%(num)s paper ballots await their second entry or a decision: the vote is "
                "counted once they are settled.", entries.unsettled(consultation)))
    elif action is Action.COUNT_VOTE:
        total = ballots.roll_totals(consultation).households
        voted = sum(ballots.counts_by_channel(consultation).values())
        lines.append(ngettext(
            "%(voted)s ballots of the %(num)s household on the roll are counted.",
            "%(voted)s ballots of the %(num)s households on the roll are counted.",
            total, voted=voted))
        lines.extend(_counting(consultation))
    elif action is Action.PUBLISH_RESOLUTION:
        lines.append(_("The resolution notice with the result of round %(round)s is published "
                       "and frozen: it cannot be edited or taken back.",
                       round=consultation.round))
        lines.append(_notice_period(consultation, now))
    elif action is Action.PUBLISH_RESULT:
        lines.append(_("The result notice, with what was done and what it cost, is published "
                       "and frozen: it cannot be edited or taken back."))
        lines.append(_notice_period(consultation, now))
        lines.append(_("The %(households)s the consultation concerns can say whether they are "
                       "satisfied.",
                       households=_households(ballots.count_in_scope(consultation))))
    elif action is Action.NEW_ROUND:
        lines.append(_("The result of round %(round)s stays on record; round %(next)s starts "
                       "in discussion, and its vote needs a new deadline and a new roll.",
                       round=consultation.round, next=consultation.round + 1))
    elif action is Action.CLOSE:
        lines.append(_("The consultation is archived: nothing can be added or changed any "
                       "more; everything stays readable."))
    elif action is Action.WITHDRAW:
        lines.append(_("The consultation stops at “%(stage)s” and cannot be resumed; its "
                       "history stays readable.", stage=stage_label(consultation.stage_enum)))
        if consultation.items:
            lines.append(ngettext("Its %(num)s item is not voted on.",
                                  "Its %(num)s items are not voted on.",
                                  len(consultation.items)))
    else:
        lines.append(str(ACTION_EFFECTS[action]))
    return lines


def confirmation(consultation: Consultation, action: Action) -> dict[str, int | str]:
    """The numbers the confirmation of an irreversible step shows (``consequences`` says them
    in words): a program confirming the step sends them back, so it confirms what it showed,
    not whatever the data became meanwhile. Empty for a step taken without confirmation."""
    if action is Action.OPEN_VOTE:
        return {"households": ballots.count_in_scope(consultation),
                "items": len(consultation.items)}
    if action in (Action.CLOSE_VOTE, Action.COUNT_VOTE):
        return {"households": ballots.roll_totals(consultation).households,
                "voted": sum(ballots.counts_by_channel(consultation).values())}
    if action in (Action.PUBLISH_RESOLUTION, Action.NEW_ROUND):
        return {"round": consultation.round}
    if action is Action.PUBLISH_RESULT:
        return {"households": ballots.count_in_scope(consultation)}
    if action in (Action.CLOSE, Action.WITHDRAW):
        return {"stage": consultation.stage}
    return {}


class ConfirmationMismatch(Conflict):
    """The numbers confirmed are not those of the step now (someone voted, the roll changed)."""

    code = "confirmation_mismatch"


def apply_confirmed(consultation: Consultation, action: Action, actor: Any,
                    confirmed: dict[str, Any] | None, reason: str = "") -> Consultation:
    """``apply``, for an irreversible step only when ``confirmed`` holds the numbers of
    ``confirmation`` as they stand now (ConfirmationMismatch otherwise, naming them)."""
    if needs_confirmation(action):
        check(consultation, action, reason)
        wanted = confirmation(consultation, action)
        if {k: (confirmed or {}).get(k) for k in wanted} != wanted:
            raise ConfirmationMismatch(_(
                "Confirm this step with the numbers it concerns now: %(numbers)s.",
                numbers=", ".join(f"{k}={v}" for k, v in wanted.items())))
    return apply(consultation, action, actor, reason)


# --- effects ----------------------------------------------------------------------------------


def _open_vote(consultation: Consultation, context: Context) -> None:
    consultation.vote_opened_at = context.now
    consultation.vote_closed_at = None
    ballots.freeze_roll(context.actor, consultation)


def _close_vote(consultation: Consultation, context: Context) -> None:
    # A deadline closes the vote at the deadline, even if nobody looked until later.
    deadline = consultation.vote_deadline
    consultation.vote_closed_at = min(context.now, deadline) if deadline else context.now
    if context.target is Stage.VOTE_COUNTED:
        _count(consultation, context)
    else:
        # Only at the deadline (the guards saw to that): no more ballots, but the papers
        # entered before it are settled first, and COUNT_VOTE counts them all.
        audit.record(context.actor, "ballot.count_waiting", consultation, {
            "round": consultation.round, "unsettled": entries.unsettled(consultation)})


def _count(consultation: Consultation, context: Context) -> None:
    """Count the closed vote and freeze its result (the tally of the ballots as they stand at
    the close; proxy ballots still lacking a required authorisation never counted)."""
    entries.set_aside_at_count(consultation, context.now)
    assert consultation.vote_closed_at is not None
    ballots.freeze_result(context.actor, consultation, consultation.vote_closed_at)
    consultation.vote_counted_at = context.now


def _publish_resolution(consultation: Consultation, context: Context) -> None:
    notices.publish(context.actor, consultation, NoticeKind.RESOLUTION, context.now)


def _publish_result(consultation: Consultation, context: Context) -> None:
    notices.publish(context.actor, consultation, NoticeKind.RESULT, context.now,
                    content=implementation.result_summary(consultation))


def _new_round(consultation: Consultation, context: Context) -> None:
    consultation.round += 1
    consultation.vote_opened_at = None
    consultation.vote_closed_at = None
    consultation.vote_counted_at = None
    consultation.vote_deadline = None


Effect = Callable[[Consultation, Context], None]

# What a step does besides moving the stage; steps not named here only move it.
EFFECTS: dict[Action, Effect] = {
    Action.OPEN_VOTE: _open_vote,
    Action.CLOSE_VOTE: _close_vote,
    Action.COUNT_VOTE: _count,
    Action.PUBLISH_RESOLUTION: _publish_resolution,
    Action.PUBLISH_RESULT: _publish_result,
    Action.NEW_ROUND: _new_round,
}


def awaits_count(consultation: Consultation) -> bool:
    """Whether the vote closed (at its deadline) before the papers entered were settled, and
    waits for them to be counted."""
    return consultation.stage_enum is Stage.VOTE_CLOSED


# --- deadlines --------------------------------------------------------------------------------


def due_action(consultation: Consultation, now: datetime | None = None) -> Action | None:
    """The step a passed deadline calls for, if any."""
    now = now or utcnow()
    stage = consultation.stage_enum
    if (stage is Stage.SOLICITING and consultation.solicitation_deadline
            and consultation.solicitation_deadline <= now):
        return Action.START_PROPOSING
    if stage is Stage.VOTING and not consultation.vote_is_open(now):
        return Action.CLOSE_VOTE
    if stage is Stage.VOTE_CLOSED and entries.unsettled(consultation) == 0:
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
    # The candidates ``due_action`` may find a step for: in SQL, so that only they are locked.
    candidates = db.session.scalars(select(Consultation).where(
        ((Consultation.stage == Stage.SOLICITING.value)
         & (Consultation.solicitation_deadline <= now))
        | ((Consultation.stage == Stage.VOTING.value) & (Consultation.vote_deadline <= now))
        | (Consultation.stage == Stage.VOTE_CLOSED.value))
        # Every candidate is locked before the first step writes its audit event: a ballot
        # holding one of them must never wait for the audit chain this transaction holds.
        .order_by(Consultation.id).with_for_update()).all()
    done = []
    for consultation in candidates:
        action = catch_up(consultation, now)
        if action is not None:
            done.append((consultation.id, action))
    return done
