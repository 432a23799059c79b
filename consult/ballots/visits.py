"""Door-to-door follow-up (再入户): the households of a running vote or survey to visit
again, split among named teams, and what each visit found.

A visit that takes an answer enters it through ``entries.enter`` on the door-to-door channel,
so the entry rules hold here as everywhere: a household's own ballot (voted online, a signed
paper) is never replaced by a visit, and "not reached" or "undecided" never replace a ballot.
Every function flushes (never commits) and records its audit event.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from consult.audit import service as audit
from consult.audit.actions import describe, describe_objects
from consult.ballots import entries
from consult.ballots import service as ballots
from consult.ballots import tally as t
from consult.ballots.models import (
    Ballot,
    BallotChannel,
    BallotEntry,
    RollEntry,
    Visit,
    VisitList,
    VisitOutcome,
    VisitTeam,
)
from consult.ballots.visit_split import assign
from consult.consultations.models import Consultation
from consult.core.errors import Conflict, NotFound, ValidationFailed
from consult.core.models import utcnow
from consult.extensions import db
from consult.registry.models import Household

describe({
    "visits.list_created": _l("Follow-up visit list made"),
    "visits.recorded": _l("Follow-up visit recorded"),
}, kind="ballots")
describe_objects({"visit_list": _l("Follow-up visit list"), "visit": _l("Follow-up visit")})

NOT_VOTED, UNDECIDED, NOT_REACHED, DISAGREED = "not_voted", "undecided", "not_reached", "disagreed"
REASONS = (NOT_VOTED, UNDECIDED, NOT_REACHED, DISAGREED)
REASON_LABELS = {
    NOT_VOTED: _l("Has not answered"),
    UNDECIDED: _l("Undecided"),
    NOT_REACHED: _l("Not reached"),
    DISAGREED: _l("Disagreed"),
}
# What the team is to bring back, by reason.
REASON_NEEDS = {
    NOT_VOTED: _l("Take the household's answer on every item"),
    UNDECIDED: _l("Explain the proposal again; a changed answer needs the signed paper"),
    NOT_REACHED: _l("Reach the household and take its answer"),
    DISAGREED: _l("Hear the objection and note it; a changed answer needs the signed paper"),
}
MODES = ("building", "count")
MAX_TEAMS = 20
MAX_NOTE = 500


def reasons_offered(consultation: Consultation) -> tuple[str, ...]:
    """The filters a consultation offers: "disagreed" only for a survey."""
    if ballots.rule_of(consultation).is_survey:
        return REASONS
    return REASONS[:3]


@dataclass
class Candidate:
    """A household on the roll that a filter picked, and why."""

    household_id: int
    building: str
    unit: str
    room: str
    area_dm2: int
    reasons: list[str]

    @property
    def label(self) -> str:
        from consult.registry.models import household_label
        return household_label(self.building, self.unit, self.room)


def _reasons_of(ballot_choices: Sequence[str] | None, survey: bool) -> list[str]:
    """Why a household's ballot (its choices, None without one) puts it on a list."""
    if ballot_choices is None:
        return [NOT_VOTED]
    if all(c == t.Choice.NOT_REACHED for c in ballot_choices):
        return [NOT_REACHED]
    found = []
    if t.Choice.UNDECIDED in ballot_choices:
        found.append(UNDECIDED)
    if survey and t.Choice.DISAGREE in ballot_choices:
        found.append(DISAGREED)
    return found


def candidates(consultation: Consultation, reasons: Sequence[str],
               building: str | None = None) -> list[Candidate]:
    """The households on the current roll matching any of ``reasons`` (in ``building``
    when given), in address order, each with every reason that applies to it."""
    survey = ballots.rule_of(consultation).is_survey
    wanted = set(reasons)
    stmt = select(RollEntry).where(RollEntry.consultation_id == consultation.id,
                                   RollEntry.round == consultation.round)
    if building:
        stmt = stmt.where(RollEntry.building_name == building)
    roll = list(db.session.scalars(stmt.order_by(RollEntry.building_sort,
                                                 RollEntry.household_sort,
                                                 RollEntry.household_id)))
    choices: dict[int, list[str]] = {}
    for ballot in db.session.scalars(select(Ballot).where(
            Ballot.consultation_id == consultation.id, Ballot.round == consultation.round)):
        choices[ballot.household_id] = [c.choice for c in ballot.choices]
    found = []
    for entry in roll:
        why = [r for r in _reasons_of(choices.get(entry.household_id), survey) if r in wanted]
        if why:
            found.append(Candidate(entry.household_id, entry.building_name, entry.unit,
                                   entry.room, entry.area_dm2, why))
    return found


def parse_teams(text: str) -> list[tuple[str, str]]:
    """Teams typed one per line, "name: member, member" (a Chinese colon too); raises
    ValidationFailed on the ``teams`` field."""
    teams: list[tuple[str, str]] = []
    problems: list[str] = []
    for number, line in enumerate((text or "").splitlines(), start=1):
        line = line.strip()
        if not line:
            continue
        name, _sep, members = line.replace("：", ":").partition(":")
        name, members = " ".join(name.split()), " ".join(members.split())
        if not name:
            problems.append(_("Line %(line)d: the team has no name.", line=number))
        elif len(name) > 60 or len(members) > 300:
            problems.append(_("Line %(line)d is too long (60 characters for the name, 300 "
                              "for the members).", line=number))
        elif name in {n for n, _m in teams}:
            problems.append(_("Line %(line)d: another team is already called %(name)s.",
                              line=number, name=name))
        else:
            teams.append((name, members))
    if not teams and not problems:
        problems.append(_("Name at least one team, one per line."))
    if len(teams) > MAX_TEAMS:
        problems.append(_("At most %(count)d teams.", count=MAX_TEAMS))
    if problems:
        raise ValidationFailed(problems[0], {"teams": problems})
    return teams


@dataclass
class PlannedTeam:
    name: str
    members: str
    households: list[Candidate] = field(default_factory=list)

    @property
    def buildings(self) -> list[str]:
        return list(dict.fromkeys(c.building for c in self.households))

    @property
    def area_dm2(self) -> int:
        return sum(c.area_dm2 for c in self.households)


@dataclass
class Plan:
    """A list and its split, as shown before it is saved."""

    reasons: list[str]
    building: str | None
    mode: str
    teams: list[PlannedTeam]

    @property
    def total(self) -> int:
        return sum(len(team.households) for team in self.teams)


def check_open(consultation: Consultation) -> None:
    """Raise Conflict unless the vote or survey takes ballots now."""
    if not consultation.vote_is_open():
        raise Conflict(_("Follow-up visits are organised while the vote or survey is open."))


def plan(consultation: Consultation, reasons: Sequence[str], building: str | None,
         teams_text: str, mode: str) -> Plan:
    """The visit list the filters give and its split among the typed teams; raises
    ValidationFailed (by field) or Conflict (the vote is not open)."""
    check_open(consultation)
    errors: dict[str, list[str]] = {}
    offered = reasons_offered(consultation)
    chosen = [r for r in offered if r in set(reasons)]
    if not chosen or len(chosen) != len(set(reasons)):
        errors["reasons"] = [_("Choose at least one of the offered reasons.")]
    if mode not in MODES:
        errors["mode"] = [_("Split by building or by count.")]
    building = (building or "").strip() or None
    if building is not None and building not in ballots.roll_buildings(consultation):
        errors["building"] = [_("No building of that name is on the roll.")]
    try:
        teams = parse_teams(teams_text)
    except ValidationFailed as exc:
        errors.update(exc.errors)
        teams = []
    if errors:
        raise ValidationFailed(_("Please correct the marked fields."), errors)
    found = candidates(consultation, chosen, building)
    if not found:
        message = _("No household on the roll matches these filters.")
        raise ValidationFailed(message, {"reasons": [message]})
    planned = [PlannedTeam(name, members) for name, members in teams]
    for candidate, team in zip(found, assign([c.building for c in found], len(planned), mode),
                               strict=True):
        planned[team].households.append(candidate)
    return Plan(chosen, building, mode, planned)


def create_list(actor: Any, consultation: Consultation, planned: Plan) -> VisitList:
    """Save a planned list and its teams; audited."""
    visit_list = VisitList(consultation_id=consultation.id, round=consultation.round,
                           reasons=",".join(planned.reasons), building=planned.building,
                           mode=planned.mode, created_by_id=getattr(actor, "id", None))
    visit_list.consultation = consultation
    db.session.add(visit_list)
    db.session.flush()
    position = 0
    for number, team in enumerate(planned.teams, start=1):
        row = VisitTeam(visit_list_id=visit_list.id, position=number, name=team.name,
                        members=team.members)
        db.session.add(row)
        db.session.flush()
        for candidate in team.households:
            position += 1
            db.session.add(Visit(visit_list_id=visit_list.id, team_id=row.id,
                                 household_id=candidate.household_id, position=position,
                                 reasons=",".join(candidate.reasons)))
    db.session.flush()
    db.session.expire(visit_list, ["teams"])
    audit.record(actor, "visits.list_created", visit_list, {
        "consultation_id": consultation.id, "round": consultation.round,
        "reasons": planned.reasons, "building": planned.building, "mode": planned.mode,
        "teams": [{"name": team.name, "households": len(team.households)}
                  for team in planned.teams],
        "households": planned.total})
    return visit_list


def record_visit(actor: Any, visit: Visit, outcome: str, choices: Mapping[int, str],
                 note: str = "", now: datetime | None = None) -> Visit:
    """Record what a visit found. An answer taken is entered as a door-to-door ballot through
    ``entries.enter`` (its rules: never over the household's own ballot, double entry when
    the consultation asks for it). Raises ValidationFailed (by field) or Conflict."""
    now = now or utcnow()
    consultation = visit.visit_list.consultation
    if visit.visit_list.round != consultation.round:
        raise Conflict(_("This visit list belongs to an earlier voting round."))
    try:
        value = VisitOutcome(outcome)
    except ValueError:
        message = _("Choose what the visit found.")
        raise ValidationFailed(message, {"outcome": [message]}) from None
    note = " ".join((note or "").split())
    if len(note) > MAX_NOTE:
        message = _("The note is longer than %(count)d characters.", count=MAX_NOTE)
        raise ValidationFailed(message, {"note": [message]})
    household = db.session.get(Household, visit.household_id)
    if household is None:
        raise NotFound(_("No such household."))
    lead = None
    if value is VisitOutcome.ANSWERED:
        lead = entries.enter(actor, consultation, household,
                             entries.Paper(BallotChannel.DOOR_TO_DOOR, dict(choices)), now=now)
    else:
        check_open(consultation)
    previous = visit.outcome
    visit.outcome = value.value
    visit.note = note or None
    visit.entry_id = lead.id if lead is not None else visit.entry_id
    visit.recorded_by_id = getattr(actor, "id", None)
    visit.recorded_at = now
    db.session.flush()
    audit.record(actor, "visits.recorded", visit, {
        "visit_list_id": visit.visit_list_id, "team": visit.team.name,
        "household_id": visit.household_id, "outcome": value.value,
        "previous_outcome": previous, "entry_id": lead.id if lead is not None else None,
        "entry_state": lead.state if lead is not None else None, "noted": bool(note)},
        chain=consultation.id)
    return visit


# --- reading ------------------------------------------------------------------------------


def lists_of(consultation: Consultation) -> list[VisitList]:
    return list(db.session.scalars(select(VisitList).where(
        VisitList.consultation_id == consultation.id).order_by(VisitList.id.desc())))


def get_list_or_404(list_id: int) -> VisitList:
    found = db.session.get(VisitList, list_id)
    if found is None:
        raise NotFound(_("No such visit list."))
    return found


def get_visit_or_404(visit_id: int) -> Visit:
    found = db.session.get(Visit, visit_id)
    if found is None:
        raise NotFound(_("No such visit."))
    return found


@dataclass
class Row:
    visit: Visit
    roll: RollEntry

    @property
    def reasons(self) -> list[str]:
        return self.visit.reasons.split(",")


def rows(visit_list: VisitList, team: VisitTeam | None = None) -> list[Row]:
    """The list's visits with their roll rows, in address order (one query)."""
    stmt = (select(Visit, RollEntry).join(RollEntry, (RollEntry.household_id == Visit.household_id)
                                          & (RollEntry.consultation_id
                                             == visit_list.consultation_id)
                                          & (RollEntry.round == visit_list.round))
            .where(Visit.visit_list_id == visit_list.id).order_by(Visit.position))
    if team is not None:
        stmt = stmt.where(Visit.team_id == team.id)
    return [Row(visit, roll) for visit, roll in db.session.execute(stmt)]


def entry_states(visit_list: VisitList) -> dict[int, str]:
    """The state of each ballot entry an answer taken made (counted, awaiting its second
    entry, …), by entry id (one query)."""
    return {entry_id: state for entry_id, state in db.session.execute(
        select(BallotEntry.id, BallotEntry.state).join(Visit, Visit.entry_id == BallotEntry.id)
        .where(Visit.visit_list_id == visit_list.id))}


@dataclass
class TeamProgress:
    team: VisitTeam
    assigned: int = 0
    visited: int = 0
    by_outcome: dict[str, int] = field(default_factory=lambda: {o.value: 0 for o in VisitOutcome})

    @property
    def remaining(self) -> int:
        return self.assigned - self.visited


def progress(visit_list: VisitList) -> list[TeamProgress]:
    """Each team's visits: assigned, visited, and how many of each outcome."""
    teams = {team.id: TeamProgress(team) for team in visit_list.teams}
    for team_id, outcome in db.session.execute(select(Visit.team_id, Visit.outcome).where(
            Visit.visit_list_id == visit_list.id)):
        found = teams[team_id]
        found.assigned += 1
        if outcome is not None:
            found.visited += 1
            found.by_outcome[outcome] += 1
    return list(teams.values())


def totals(teams: Sequence[TeamProgress]) -> TeamProgress:
    """The sum of every team's progress (its ``team`` is the first team's, unused)."""
    total = TeamProgress(teams[0].team if teams else VisitTeam())
    for item in teams:
        total.assigned += item.assigned
        total.visited += item.visited
        for key, count in item.by_outcome.items():
            total.by_outcome[key] += count
    return total


def current_ballot_channel(consultation: Consultation, household_id: int) -> Ballot | None:
    """The household's current ballot, for the visit page (what it has, by which channel)."""
    return ballots.ballot_of(consultation, household_id)
