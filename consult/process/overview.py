"""What a consultation's overview page shows, gathered in one place (reads only)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Select, func, select

from consult.audit.models import AuditEvent
from consult.ballots import entries
from consult.ballots import service as ballots
from consult.ballots.explain import rule_label, rule_sentences
from consult.ballots.models import Ballot
from consult.ballots.tally import Totals
from consult.consultations import service, states
from consult.consultations.models import Consultation, Item, Meeting, Opinion, item_opinion
from consult.consultations.states import (
    EDITABLE_PROPOSAL_STAGES,
    TIMELINE,
    UNCOUNTED_VOTE_STAGES,
    Action,
    Stage,
)
from consult.core.models import utcnow
from consult.core.policy import can
from consult.extensions import db
from consult.implementation import service as works
from consult.notices import service as notices
from consult.notices.models import Notice, NoticeKind
from consult.process import printing, reminders, workflow
from consult.registry.models import Household


@dataclass
class StageStep:
    stage: Stage
    label: str
    term: str
    state: str  # "done", "current", "todo"


@dataclass
class HistoryEntry:
    at: datetime
    action: str
    step: str  # the step taken, as its button read: opening and closing a vote differ
    to: str
    reason: str
    by_deadline: bool


@dataclass
class Overview:
    consultation: Consultation
    steps: list[StageStep]
    rule_label: str
    rule_sentences: list[str]
    scope_text: str
    opinion_counts: dict[int, int]
    history: list[HistoryEntry]
    vote_notice: Notice | None
    resolution: Notice | None
    result: Notice | None
    has_meetings: bool
    can_manage: bool
    proposal_editable: bool
    works_started: bool
    options: list[workflow.Option] = field(default_factory=list)
    print_kinds: list[str] = field(default_factory=list)
    roll: Totals | None = None
    voted: int = 0
    channels: dict[str, int] = field(default_factory=dict)
    household: Household | None = None
    my_ballot: Ballot | None = None
    in_scope: bool = False
    double_entry: bool = False
    # Paper ballots awaiting their second entry or a decision (staff, during the vote).
    unsettled: int = 0
    # The WeChat message and poster of a stage open to households (committee, supervisors).
    reminder: reminders.Reminder | None = None


def _steps(consultation: Consultation) -> list[StageStep]:
    current = states.timeline_step(consultation.stage_enum)
    position = TIMELINE.index(current) if current in TIMELINE else -1
    steps = []
    for index, stage in enumerate(TIMELINE[1:], start=1):  # the draft is not a public step
        state = ("current" if index == position else "done" if index < position or
                 current == Stage.CLOSED else "todo")
        steps.append(StageStep(stage, states.stage_label(stage),
                               states.stage_term(stage), state))
    return steps


def _step_label(action: str) -> str:
    """The label of a recorded action; an action no longer known keeps its stored name."""
    try:
        return str(workflow.ACTION_LABELS[Action(action)])
    except (ValueError, KeyError):
        return action


def _history(consultation: Consultation) -> list[HistoryEntry]:
    events = db.session.scalars(select(AuditEvent).where(
        AuditEvent.object_type == "consultation", AuditEvent.object_id == str(consultation.id),
        AuditEvent.action == "consultation.stage_changed").order_by(AuditEvent.seq))
    entries = []
    for event in events:
        data = json.loads(event.payload)
        entries.append(HistoryEntry(event.created_at, data["action"],
                                    _step_label(data["action"]),
                                    data["to"],
                                    data.get("reason", ""), data.get("by_deadline", False)))
    return entries


def opinion_counts(consultation: Consultation) -> dict[int, int]:
    """item id → how many opinions it came from."""
    counts: Select[int, int] = (
        select(item_opinion.c.item_id, func.count(item_opinion.c.opinion_id))
        .join(Item, Item.id == item_opinion.c.item_id)
        .join(Opinion, Opinion.id == item_opinion.c.opinion_id)
        .where(Item.consultation_id == consultation.id).group_by(item_opinion.c.item_id))
    return {item_id: n for item_id, n in db.session.execute(counts)}


def build(consultation: Consultation, user: Any, now: datetime | None = None) -> Overview:
    now = now or utcnow()
    can_manage = can(user, "consultation.manage", consultation)
    rule = ballots.rule_of(consultation)
    view = Overview(
        consultation=consultation, steps=_steps(consultation), rule_label=rule_label(rule),
        rule_sentences=rule_sentences(rule), scope_text=service.scope_text(consultation),
        opinion_counts=opinion_counts(consultation), history=_history(consultation),
        vote_notice=notices.current_notice(consultation, NoticeKind.VOTE),
        has_meetings=db.session.scalar(select(Meeting.id).where(
            Meeting.consultation_id == consultation.id).limit(1)) is not None,
        resolution=notices.current_notice(consultation, NoticeKind.RESOLUTION),
        result=notices.current_notice(consultation, NoticeKind.RESULT), can_manage=can_manage,
        proposal_editable=consultation.stage_enum in EDITABLE_PROPOSAL_STAGES,
        works_started=works.works_started(consultation))
    if can_manage:
        view.options = workflow.options(consultation, now)
        view.print_kinds = printing.available_batches(consultation)
    view.double_entry = ballots.double_entry_on(consultation)
    if consultation.vote_opened_at is not None and can(user, "ballot.inspect", consultation):
        view.roll = ballots.roll_totals(consultation)
        view.channels = ballots.counts_by_channel(consultation)
        view.voted = sum(view.channels.values())
        if consultation.stage_enum in UNCOUNTED_VOTE_STAGES:
            view.unsettled = entries.unsettled(consultation)
    if can(user, "consultation.remind", consultation):
        # The notices are loaded already: the reminder of a notice's stage takes its own.
        stage_notice = {Stage.RESOLUTION_PUBLIC: view.resolution,
                        Stage.RESULT_PUBLIC: view.result}.get(consultation.stage_enum)
        view.reminder = reminders.reminder_for(consultation, now, stage_notice)
    household = getattr(user, "household", None)
    if household is not None and getattr(user, "is_authenticated", False):
        view.household = household
        view.in_scope = service.household_in_scope(consultation, household)
        if consultation.vote_opened_at is not None:
            view.my_ballot = ballots.ballot_of(consultation, household.id)
    return view
