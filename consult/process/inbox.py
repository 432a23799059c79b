"""What needs a household now: the resident's home page (reads only)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import joinedload

from consult.ballots import entries
from consult.ballots import service as ballots
from consult.consultations import questionnaires, service
from consult.consultations.models import Consultation
from consult.consultations.states import PUBLIC_STAGES, Stage
from consult.core.models import utcnow
from consult.extensions import db
from consult.implementation.models import Evaluation
from consult.notices import service as notices
from consult.notices.models import Notice, NoticeKind
from consult.registry.models import Household

ACTIVE = (Stage.SOLICITING, Stage.DISCUSSING, Stage.VOTING, Stage.RESOLUTION_PUBLIC,
          Stage.IMPLEMENTING, Stage.RESULT_PUBLIC)


@dataclass
class Task:
    """One thing the household can do, with its deadline and whether it is done already."""

    kind: str  # "opinion", "questionnaire", "comment", "vote", "objection", "evaluate", "follow"
    consultation: Consultation
    deadline: datetime | None = None
    done: bool = False
    receipt: str | None = None
    notice: Notice | None = None
    # The committee corrected the household's ballot, and the correction is what counts now.
    corrected: entries.Correction | None = None


def tasks_for(household: Household, now: datetime | None = None) -> list[Task]:
    """The household's open tasks, most urgent (nearest deadline) first."""
    now = now or utcnow()
    compound_id = household.building.compound_id
    consultations = db.session.scalars(select(Consultation).where(
        Consultation.compound_id == compound_id,
        Consultation.stage.in_([s.value for s in ACTIVE])).order_by(Consultation.id.desc()))
    tasks = []
    for consultation in consultations:
        if not service.household_in_scope(consultation, household):
            continue
        task = _task(consultation, household, now)
        if task is not None:
            tasks.append(task)
        questionnaire = _questionnaire_task(consultation, household)
        if questionnaire is not None:
            tasks.append(questionnaire)
    far = datetime.max.replace(tzinfo=now.tzinfo)
    # A ballot the committee corrected stays among the things to look at.
    return sorted(tasks, key=lambda t: (t.done and t.corrected is None, t.deadline or far))


def _task(consultation: Consultation, household: Household, now: datetime) -> Task | None:
    stage = consultation.stage_enum
    if stage is Stage.SOLICITING:
        return Task("opinion", consultation, consultation.solicitation_deadline)
    if stage is Stage.DISCUSSING:
        return Task("comment", consultation)
    if consultation.vote_is_open(now):
        if ballots.roll_entry_for(consultation, household.id) is None:
            return None
        ballot = ballots.ballot_of(consultation, household.id)
        corrected = None
        if ballot is not None and ballot.channel != "online":
            latest = next(iter(entries.corrections_of(consultation, household.id)), None)
            if latest is not None and latest.version == ballot.version:
                corrected = latest
        return Task("vote", consultation, consultation.vote_deadline, done=ballot is not None,
                    receipt=ballot.receipt if ballot else None, corrected=corrected)
    if stage is Stage.RESOLUTION_PUBLIC:
        notice = notices.current_notice(consultation, NoticeKind.RESOLUTION)
        if notice and notices.in_period(notice, now):
            return Task("objection", consultation, notice.period_ends_at, notice=notice)
    if stage is Stage.IMPLEMENTING:
        return Task("follow", consultation)
    if stage is Stage.RESULT_PUBLIC:
        notice = notices.current_notice(consultation, NoticeKind.RESULT)
        if notice and notices.in_period(notice, now):
            rated = db.session.scalar(select(Evaluation.id).where(
                Evaluation.consultation_id == consultation.id,
                Evaluation.household_id == household.id)) is not None
            return Task("evaluate", consultation, notice.period_ends_at, done=rated,
                        notice=notice)
    return None


def _questionnaire_task(consultation: Consultation, household: Household) -> Task | None:
    """The consultation's questionnaire while households answer it; done once answered."""
    if consultation.stage_enum is not Stage.SOLICITING:
        return None
    found = questionnaires.questionnaire_of(consultation)
    if not questionnaires.is_open(found):
        return None
    assert found is not None
    return Task("questionnaire", consultation, consultation.solicitation_deadline,
                done=questionnaires.response_of(found, household) is not None)


def recent_public(limit: int = 8) -> list[Any]:
    """The latest published consultations, for everyone's home page."""
    # The compound's name is shown next to each title.
    return list(db.session.scalars(select(Consultation).options(
        joinedload(Consultation.compound)).where(
        Consultation.stage.in_([s.value for s in PUBLIC_STAGES])).order_by(
        Consultation.updated_at.desc()).limit(limit)))
