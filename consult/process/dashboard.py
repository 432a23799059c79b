"""The overview dashboard: every compound in a user's scope compared on one page.

Built for district size (a thousand compounds): a fixed set of aggregate queries, each grouped
by compound or consultation and returning plain rows, whatever the number of compounds. No ORM
object is loaded per compound; the rows are combined, filtered, sorted and totalled in Python
by the pure functions below.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from fractions import Fraction
from typing import Any

from sqlalchemy import and_, case, exists, func, or_, select
from sqlalchemy.sql.elements import ColumnElement

from consult.audit.models import AuditEvent
from consult.ballots.explain import change_text
from consult.ballots.models import Ballot, BallotChoice, RollEntry, VoteResult
from consult.ballots.tally import Base, Choice, Condition, Count, Measure, Rule
from consult.consultations.models import Consultation, Item, Opinion, item_opinion
from consult.consultations.states import STAGE_ORDER, Stage
from consult.core.models import MAX_ID, utcnow
from consult.core.sorting import Sort
from consult.core.times import LOCAL
from consult.extensions import db
from consult.feedback import service as feedback
from consult.implementation.models import Evaluation, ProgressEntry, Rating
from consult.notices.models import Notice, Objection
from consult.registry.models import Community, Compound, Grid, StreetOffice

# Stages in which the works are under way or done: their items make the checklist.
WORKS_STAGES = (Stage.IMPLEMENTING.value, Stage.RESULT_PUBLIC.value, Stage.CLOSED.value)
# Stages that no longer count as a running consultation.
ENDED_STAGES = frozenset({Stage.CLOSED.value, Stage.WITHDRAWN.value})

SORT_KEYS = ("name", "community", "grid", "consultations", "turnout", "turnout_area",
             "deadline", "works", "spend", "satisfaction", "objections", "feedback",
             "activity")
DEFAULT_SORT = "name"
# Charts draw at most this many compounds (in the table's order), so they stay readable.
CHART_LIMIT = 40
# Rows per page of the table: sorting and totals cover every compound, the page shows these.
PAGE_ROWS = 100
# Frozen rolls' totals, (consultation id, round, vote opened at) → (households, area): the
# roll aggregate was the largest part of the page's time at a thousand compounds.
_ROLL_TOTALS: dict[tuple[int, int, datetime | None], tuple[int, int]] = {}
_ROLL_CACHE_SIZE = 20_000


def share(part: int, whole: int) -> Fraction | None:
    """``part`` of ``whole`` exactly; None when there is no whole to take a share of."""
    return Fraction(part, whole) if whole else None


class _Works:
    """The shares a compound's row and a group's totals both show."""

    items_done: int
    items_all: int
    satisfied: int
    evaluations: int

    @property
    def works(self) -> Fraction | None:
        return share(self.items_done, self.items_all)

    @property
    def satisfaction(self) -> Fraction | None:
        return share(self.satisfied, self.evaluations)


@dataclass
class Vote:
    """The running vote of a compound (the one closing first, if several are open)."""

    consultation_id: int
    title: str
    deadline: datetime | None
    roll_households: int
    roll_owners: int
    roll_area_dm2: int
    voted_households: int
    voted_owners: int
    voted_area_dm2: int
    # The rule's conditions that participation alone must meet, each with its numbers.
    conditions: list[tuple[Condition, int, int]] = field(default_factory=list)

    @property
    def missing(self) -> list[str]:
        """What participation still lacks, in the tally's words ("short by 3 households")."""
        texts = (change_text(c, num, den) for c, num, den in self.conditions)
        return [text for text in texts if text]


@dataclass
class Row(_Works):
    """One compound's line of the dashboard."""

    compound_id: int
    name: str
    community_id: int
    community: str
    grid_id: int | None
    grid: str
    office_id: int | None
    office: str
    consultations: int = 0
    stages: dict[str, int] = field(default_factory=dict)
    vote: Vote | None = None
    deadline: datetime | None = None
    days_left: int | None = None
    items_done: int = 0
    items_all: int = 0
    budget_fen: int = 0
    spent_fen: int = 0
    satisfied: int = 0  # satisfied and basically satisfied
    evaluations: int = 0
    objections: int = 0
    feedback: int = 0
    # Defect reports after completion: still open, overdue among them, fixed or confirmed.
    defects_open: int = 0
    defects_overdue: int = 0
    defects_fixed: int = 0
    last_activity: datetime | None = None

    @property
    def turnout(self) -> Fraction | None:
        v = self.vote
        return share(v.voted_households, v.roll_households) if v else None

    @property
    def turnout_area(self) -> Fraction | None:
        v = self.vote
        return share(v.voted_area_dm2, v.roll_area_dm2) if v else None


@dataclass
class Totals(_Works):
    """Sums over a group of rows (a grid, a community, a street office, everything)."""

    level: str  # "grid", "community", "office", "all"
    key: int | None
    name: str
    compounds: int = 0
    consultations: int = 0
    votes: int = 0
    roll_households: int = 0
    voted_households: int = 0
    roll_area_dm2: int = 0
    voted_area_dm2: int = 0
    items_done: int = 0
    items_all: int = 0
    budget_fen: int = 0
    spent_fen: int = 0
    satisfied: int = 0
    evaluations: int = 0
    objections: int = 0
    feedback: int = 0
    # Defect reports after completion: still open, overdue among them, fixed or confirmed.
    defects_open: int = 0
    defects_overdue: int = 0
    defects_fixed: int = 0
    last_activity: datetime | None = None

    @property
    def turnout(self) -> Fraction | None:
        return share(self.voted_households, self.roll_households)

    @property
    def turnout_area(self) -> Fraction | None:
        return share(self.voted_area_dm2, self.roll_area_dm2)


@dataclass
class Filters:
    community_id: int | None = None
    grid_id: int | None = None


@dataclass
class Dashboard:
    rows: list[Row]
    totals: list[Totals]  # grids, then communities, then offices, then everything
    grand: Totals
    communities: list[tuple[int, str]]
    grids: list[tuple[int, str, int]]  # id, name, community id
    filters: Filters
    sort: Sort
    as_of: datetime


# --- pure computations ------------------------------------------------------------------------


def turnout_conditions(rule: Rule) -> list[Condition]:
    """The conditions of a rule that say how many must take part, and only that: those on
    participation, and those on agreement measured against the whole roll (nobody agrees
    without taking part, so turnout must reach at least the same share). Objection rules
    (at most …) set no turnout; a survey has none."""
    found: list[Condition] = []
    for c in rule.conditions:
        if c.base is not Base.ROLL:
            continue
        if c.count is Count.PARTICIPATING or (c.count is Count.AGREEING
                                              and c.comparison.value in ("gt", "ge")):
            found.append(Condition(c.measure, Count.PARTICIPATING, Base.ROLL, c.comparison,
                                   c.fraction))
    return found


def days_until(deadline: datetime | None, now: datetime) -> int | None:
    """Whole days from today to the deadline's day, both in Beijing time (0: today,
    negative: passed)."""
    if deadline is None:
        return None
    return (deadline.astimezone(LOCAL).date() - now.astimezone(LOCAL).date()).days


def sort_rows(rows: list[Row], sort: Sort) -> list[Row]:
    """The rows in the chosen order; rows without a value (no vote, no works) go last either
    way, and equal values keep the compounds' names in order."""
    value: Callable[[Row], Any] = {
        "name": lambda r: r.name,
        "community": lambda r: (r.community, r.name),
        "grid": lambda r: (r.grid, r.name) if r.grid else None,
        "consultations": lambda r: r.consultations,
        "turnout": lambda r: r.turnout,
        "turnout_area": lambda r: r.turnout_area,
        "deadline": lambda r: r.days_left,
        "works": lambda r: r.works,
        "spend": lambda r: r.spent_fen,
        "satisfaction": lambda r: r.satisfaction,
        "objections": lambda r: r.objections,
        "feedback": lambda r: r.feedback,
        "activity": lambda r: r.last_activity,
    }[sort.key]
    by_name = sorted(rows, key=lambda r: (r.name, r.compound_id))
    present = [r for r in by_name if value(r) is not None]
    absent = [r for r in by_name if value(r) is None]
    return sorted(present, key=value, reverse=sort.descending) + absent


def _add(total: Totals, row: Row) -> None:
    total.compounds += 1
    total.consultations += row.consultations
    if row.vote is not None:
        total.votes += 1
        total.roll_households += row.vote.roll_households
        total.voted_households += row.vote.voted_households
        total.roll_area_dm2 += row.vote.roll_area_dm2
        total.voted_area_dm2 += row.vote.voted_area_dm2
    total.items_done += row.items_done
    total.items_all += row.items_all
    total.budget_fen += row.budget_fen
    total.spent_fen += row.spent_fen
    total.satisfied += row.satisfied
    total.evaluations += row.evaluations
    total.objections += row.objections
    total.feedback += row.feedback
    total.defects_open += row.defects_open
    total.defects_overdue += row.defects_overdue
    total.defects_fixed += row.defects_fixed
    if row.last_activity is not None and (total.last_activity is None
                                          or row.last_activity > total.last_activity):
        total.last_activity = row.last_activity


def level_totals(rows: Iterable[Row], no_grid: str = "", no_office: str = ""
                 ) -> tuple[list[Totals], Totals]:
    """Totals per grid, per community and per street office (each level in name order), and
    the grand total. Turnout and satisfaction are recomputed from the summed counts, never
    averaged from the rows' shares."""
    groups: dict[tuple[str, int | None], Totals] = {}
    grand = Totals("all", None, "")
    for row in rows:
        # Compounds without a grid are grouped per community, and named after it.
        no_grid_name = f"{no_grid} · {row.community}" if no_grid else row.community
        for level, key, name in (("grid", row.grid_id, row.grid or no_grid_name),
                                 ("community", row.community_id, row.community),
                                 ("office", row.office_id, row.office or no_office)):
            if level == "grid" and key is None:
                key = -row.community_id  # the compounds of a community that have no grid
            total = groups.setdefault((level, key), Totals(level, key, name))
            _add(total, row)
        _add(grand, row)
    order = {"grid": 0, "community": 1, "office": 2}
    ordered = sorted(groups.values(), key=lambda t: (order[t.level], t.name, t.key or 0))
    return ordered, grand


# --- the queries ------------------------------------------------------------------------------


def _compound_filter(scope: frozenset[int] | None, filters: Filters
                     ) -> list[ColumnElement[bool]]:
    where: list[ColumnElement[bool]] = []
    if scope is not None:
        where.append(Compound.id.in_(sorted(scope)) if scope else Compound.id.is_(None))
    if filters.community_id is not None:
        where.append(Compound.community_id == filters.community_id)
    if filters.grid_id is not None:
        where.append(Compound.grid_id == filters.grid_id)
    return where


def _chosen(scope: frozenset[int] | None, filters: Filters) -> Any:
    """The ids of the compounds shown, as a subquery every aggregate is restricted by."""
    return select(Compound.id).where(*_compound_filter(scope, filters)).scalar_subquery()


def build(scope: frozenset[int] | None, filters: Filters, sort: Sort,
          now: datetime | None = None, no_grid: str = "", no_office: str = "") -> Dashboard:
    """The dashboard of the compounds in ``scope`` (None: every compound) that pass
    ``filters``, in the order ``sort`` asks for. Thirteen statements, whatever the number of
    compounds."""
    now = now or utcnow()

    # 1. Every compound in scope, with its grid, community and office: filter options too.
    scope_where = _compound_filter(scope, Filters())
    compounds = _rows(
        select(Compound.id, Compound.name, Compound.community_id, Community.name,
               Compound.grid_id, Grid.name, Community.street_office_id, StreetOffice.name)
        .join(Community, Community.id == Compound.community_id)
        .outerjoin(Grid, Grid.id == Compound.grid_id)
        .outerjoin(StreetOffice, StreetOffice.id == Community.street_office_id)
        .where(*scope_where))
    communities = sorted({(r[2], r[3]) for r in compounds}, key=lambda c: (c[1], c[0]))
    grids = sorted({(r[4], r[5], r[2]) for r in compounds if r[4] is not None},
                   key=lambda g: (g[1], g[0]))
    rows: dict[int, Row] = {}
    for cid, name, comm_id, comm, grid_id, grid, office_id, office in compounds:
        if filters.community_id is not None and comm_id != filters.community_id:
            continue
        if filters.grid_id is not None and grid_id != filters.grid_id:
            continue
        rows[cid] = Row(cid, name, comm_id, comm, grid_id, grid or "", office_id, office or "")
    chosen = _chosen(scope, filters)

    # 2. Consultations (plain columns) of those compounds.
    consultations = _rows(
        select(Consultation.id, Consultation.compound_id, Consultation.stage,
               Consultation.round, Consultation.title, Consultation.rule_json,
               Consultation.vote_opened_at,
               Consultation.vote_deadline, Consultation.solicitation_deadline)
        .where(Consultation.compound_id.in_(chosen))
        .order_by(Consultation.id))
    running: dict[int, Any] = {}  # consultation id → its row, for votes open now
    works: dict[int, int] = {}  # consultation id → round, for those whose works are on
    for c in consultations:
        row = rows.get(c.compound_id)
        if row is None:
            continue
        if c.stage != Stage.DRAFT.value:
            row.consultations += 1
            row.stages[c.stage] = row.stages.get(c.stage, 0) + 1
        if c.stage == Stage.VOTING.value:
            running[c.id] = c
        if c.stage in WORKS_STAGES:
            works[c.id] = c.round
        deadline = (c.vote_deadline if c.stage == Stage.VOTING.value else
                    c.solicitation_deadline if c.stage == Stage.SOLICITING.value else None)
        if deadline is not None and deadline >= now and (row.deadline is None
                                                         or deadline < row.deadline):
            row.deadline = deadline
    for row in rows.values():
        row.days_left = days_until(row.deadline, now)
        row.stages = {s.value: row.stages[s.value] for s in (*STAGE_ORDER, Stage.WITHDRAWN)
                      if s.value in row.stages}

    # 3–5. The running votes: their rolls, the ballots returned, and — only for votes whose
    # rule counts owners — distinct owners, the one costly count (a temporary b-tree per
    # vote). Each is one aggregate over every vote shown. A ballot counts as taking part
    # unless every answer on it is "not reached", an answer only a survey offers: the
    # answers are looked at for surveys alone (CASE evaluates lazily).
    rules: dict[str, Rule] = {}  # most votes share a preset: parse each rule text once
    for c in running.values():
        if c.rule_json not in rules:
            rules[c.rule_json] = Rule.from_json(c.rule_json)
    needs_owners = [cid for cid, c in running.items()
                    if any(cond.measure is Measure.OWNERS
                           for cond in turnout_conditions(rules[c.rule_json]))]
    current_round = and_(Consultation.stage == Stage.VOTING.value,
                         Consultation.compound_id.in_(chosen))
    roll_of = and_(RollEntry.consultation_id == Consultation.id,
                   RollEntry.round == Consultation.round)
    answered = exists().where(BallotChoice.ballot_id == Ballot.id,
                              BallotChoice.choice != Choice.NOT_REACHED.value)
    took_part = case((Consultation.rule_code == "survey", answered), else_=True)
    ballot_of = and_(Ballot.consultation_id == Consultation.id,
                     Ballot.round == Consultation.round,
                     Ballot.household_id == RollEntry.household_id)
    # A round's roll is frozen when its vote opens and never changes after: its totals are
    # kept per (consultation, round, opening time) and counted only for votes not seen yet.
    keys = {cid: (cid, c.round, c.vote_opened_at) for cid, c in running.items()}
    unseen = [cid for cid, key in keys.items() if key not in _ROLL_TOTALS]
    if unseen:
        counted = {cid: (n, int(area or 0)) for cid, n, area in _rows(
            select(Consultation.id, func.count(RollEntry.id), func.sum(RollEntry.area_dm2))
            .join(RollEntry, roll_of).where(current_round, Consultation.id.in_(unseen))
            .group_by(Consultation.id))}
        if len(_ROLL_TOTALS) + len(counted) > _ROLL_CACHE_SIZE:
            _ROLL_TOTALS.clear()
        for cid, pair in counted.items():
            _ROLL_TOTALS[keys[cid]] = pair
    roll_totals = {cid: _ROLL_TOTALS[key] for cid, key in keys.items() if key in _ROLL_TOTALS}
    voted_totals = {cid: (n, int(area or 0)) for cid, n, area in _rows(
        select(Ballot.consultation_id, func.count(Ballot.id), func.sum(RollEntry.area_dm2))
        .join(Consultation, and_(Consultation.id == Ballot.consultation_id,
                                 Consultation.round == Ballot.round))
        .join(RollEntry, and_(RollEntry.consultation_id == Ballot.consultation_id,
                              RollEntry.round == Ballot.round,
                              RollEntry.household_id == Ballot.household_id))
        .where(current_round, or_(Consultation.rule_code != "survey", answered))
        .group_by(Ballot.consultation_id))}
    owner_totals = {cid: (owners, voted) for cid, owners, voted in _rows(
        select(Consultation.id, func.count(RollEntry.owner_identity.distinct()),
               func.count(case((and_(Ballot.id.is_not(None), took_part),
                                RollEntry.owner_identity)).distinct()))
        .join(RollEntry, roll_of).outerjoin(Ballot, ballot_of)
        .where(current_round, Consultation.id.in_(needs_owners))
        .group_by(Consultation.id))}
    for cid, (households, area) in roll_totals.items():
        c = running[cid]
        voted, voted_area = voted_totals.get(cid, (0, 0))
        owners, voted_owners = owner_totals.get(cid, (0, 0))
        vote = Vote(cid, c.title, c.vote_deadline, households, owners, area, voted,
                    voted_owners, voted_area)
        numbers = {Measure.HOUSEHOLDS: (vote.voted_households, vote.roll_households),
                   Measure.OWNERS: (vote.voted_owners, vote.roll_owners),
                   Measure.AREA: (vote.voted_area_dm2, vote.roll_area_dm2)}
        conditions = turnout_conditions(rules[c.rule_json])
        vote.conditions = [(cond, *numbers[cond.measure]) for cond in conditions]
        row = rows[c.compound_id]
        current = row.vote
        if current is None or (vote.deadline or now) < (current.deadline or now):
            row.vote = vote

    # 6–7. The checklist of the works: items that passed their vote (from the frozen tally),
    # ticked off or not, and their estimates as the budget.
    passed: dict[int, set[int] | None] = {}
    for cid, rnd, tally_json in _rows(
            select(VoteResult.consultation_id, VoteResult.round, VoteResult.tally_json)
            .join(Consultation, Consultation.id == VoteResult.consultation_id)
            .where(Consultation.stage.in_(WORKS_STAGES), Consultation.compound_id.in_(chosen))):
        if works.get(cid) == rnd:
            tally = json.loads(tally_json)
            passed[cid] = {i["number"] for i in tally["items"] if i["passed"] is not False}
    for cid, compound_id, number, estimate, done in _rows(
            select(Item.consultation_id, Consultation.compound_id, Item.number,
                   Item.estimated_cost_fen, Item.completed_at.is_not(None))
            .join(Consultation, Consultation.id == Item.consultation_id)
            .where(Consultation.stage.in_(WORKS_STAGES), Consultation.compound_id.in_(chosen))):
        passing = passed.get(cid)
        if passing is None or number not in passing:
            continue
        row = rows[compound_id]
        row.items_all += 1
        row.items_done += 1 if done else 0
        row.budget_fen += estimate

    # 8. Spend recorded with the progress entries.
    for compound_id, spent in _rows(
            select(Consultation.compound_id, func.sum(ProgressEntry.spend_fen))
            .join(Consultation, Consultation.id == ProgressEntry.consultation_id)
            .where(Consultation.compound_id.in_(chosen))
            .group_by(Consultation.compound_id)):
        rows[compound_id].spent_fen = int(spent or 0)

    # 9. Satisfaction (群众评判): satisfied and basically satisfied, of all evaluations.
    good = (Rating.SATISFIED.value, Rating.BASICALLY_SATISFIED.value)
    for compound_id, total, satisfied in _rows(
            select(Consultation.compound_id, func.count(Evaluation.id),
                   func.sum(case((Evaluation.rating.in_(good), 1), else_=0)))
            .join(Consultation, Consultation.id == Evaluation.consultation_id)
            .where(Consultation.compound_id.in_(chosen))
            .group_by(Consultation.compound_id)):
        rows[compound_id].evaluations = total
        rows[compound_id].satisfied = int(satisfied or 0)

    # 10. Objections without an answer.
    for compound_id, count in _rows(
            select(Consultation.compound_id, func.count(Objection.id))
            .join(Notice, Notice.id == Objection.notice_id)
            .join(Consultation, Consultation.id == Notice.consultation_id)
            .where(Objection.answered_at.is_(None), Consultation.compound_id.in_(chosen))
            .group_by(Consultation.compound_id)):
        rows[compound_id].objections = count

    # 11. Open feedback: residents' opinions of consultations still running that no item has
    # taken up yet (neither withdrawn nor merged into another).
    taken_up = exists().where(item_opinion.c.opinion_id == Opinion.id)
    for compound_id, count in _rows(
            select(Consultation.compound_id, func.count(Opinion.id))
            .join(Consultation, Consultation.id == Opinion.consultation_id)
            .where(Opinion.withdrawn_at.is_(None), Opinion.merged_into_id.is_(None),
                   ~taken_up, Consultation.stage.not_in(ENDED_STAGES),
                   Consultation.compound_id.in_(chosen))
            .group_by(Consultation.compound_id)):
        rows[compound_id].feedback = count

    # 11b. Defect reports after completion, counted by the feedback service.
    for compound_id, counts in feedback.counts_by_compound(chosen, now).items():
        row = rows[compound_id]
        row.defects_open, row.defects_overdue = counts.open, counts.overdue
        row.defects_fixed = counts.fixed

    # 12. The last event of the audit trail that concerns each compound: the highest seq,
    # found on the (compound, seq) index without reading the events, then its time.
    last_seqs = (select(func.max(AuditEvent.seq)).where(AuditEvent.compound_id.in_(chosen))
                 .group_by(AuditEvent.compound_id))
    for compound_id, last in _rows(
            select(AuditEvent.compound_id, AuditEvent.created_at)
            .where(AuditEvent.seq.in_(last_seqs))):
        rows[compound_id].last_activity = _aware(last)

    shown = sort_rows(list(rows.values()), sort)
    totals, grand = level_totals(shown, no_grid, no_office)
    return Dashboard(shown, totals, grand, communities, grids, filters, sort, now)


def _rows(stmt: Any) -> list[Any]:
    """The plain rows of a statement (tuples, no ORM objects)."""
    return list(db.session.execute(stmt).all())


def _aware(value: Any) -> datetime | None:
    """``func.max`` over a UTC column comes back naive (or as text) on SQLite."""
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def percent(value: Fraction | None) -> str:
    """A share as a percentage with one decimal, rounded half up; "—" for none."""
    if value is None:
        return "—"
    tenths = (value * 1000 + Fraction(1, 2)).__floor__()
    return f"{tenths // 10}.{tenths % 10}%"


def filters_from(args: Any) -> Filters:
    """The filters of a query string; anything that is not a whole number is ignored."""
    def number(name: str) -> int | None:
        text = (args.get(name) or "").strip()
        # Beyond MAX_ID no record can match, and the databases cannot even compare the number.
        return int(text) if text.isdigit() and 0 < int(text) <= MAX_ID else None
    return Filters(number("community"), number("grid"))




# --- what the pages, the workbook and the report show -------------------------------------


def short_time(value: datetime | None) -> str:
    """A time as "2026-12-04 20:48" in Beijing time: a thousand rows formatted by Babel
    took longer than the rest of the page."""
    return value.astimezone(LOCAL).strftime("%Y-%m-%d %H:%M") if value else "—"


LEVELS = ("office", "community", "grid")


def shown_level(args: Any, filters: Filters) -> str:
    """The level whose totals the page lists: the one asked for, else the grid chosen, the
    community chosen, or the street offices."""
    asked = args.get("level")
    if asked in LEVELS:
        return str(asked)
    if filters.grid_id:
        return "grid"
    return "community" if filters.community_id else "office"


def money(fen: int) -> str:
    """分 as 元 with two decimals and thousands separators."""
    return f"{fen // 100:,}.{fen % 100:02d}"


def stage_text(row: Row) -> str:
    """"投票中 1 · 实施中 2": the stages of a compound's consultations, with their counts."""
    from consult.consultations.states import stage_label
    return " · ".join(f"{stage_label(stage)} {count}" for stage, count in row.stages.items())


def headers() -> list[str]:
    """The columns of the workbook, in the reader's language."""
    from flask_babel import gettext as _
    return [_("Street office"), _("Community"), _("Grid"), _("Compound"),
            _("Consultations"), _("Stages"), _("Running vote"), _("Households on the roll"),
            _("Households voted"), _("Turnout (households)"), _("Area on the roll (m²)"),
            _("Area voted (m²)"), _("Turnout (area)"), _("Still needed to pass"),
            _("Days to the deadline"), _("Items ticked off"), _("Items"),
            _("Budget (yuan)"), _("Spent (yuan)"), _("Satisfied"), _("Evaluations"),
            _("Satisfaction"), _("Open objections"), _("Open feedback"), _("Last activity")]


def _share(value: Fraction | None) -> float | None:
    return None if value is None else round(float(value), 4)


def workbook(dash: Dashboard) -> bytes:
    """The dashboard as an XLSX workbook: a sheet of compounds (numbers as numbers, names as
    text, never formulas) and a sheet of the totals per level."""
    import io

    from flask_babel import gettext as _
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell

    book = Workbook(write_only=True)
    sheet = book.create_sheet(title=_("Compounds")[:31])
    sheet.append(headers())

    def text(value: str, on: Any = sheet) -> Any:
        cell = WriteOnlyCell(on, value=value)
        cell.data_type = "s"  # a name starting with "=" stays text
        return cell

    for r in dash.rows:
        v = r.vote
        sheet.append([
            text(r.office), text(r.community), text(r.grid), text(r.name), r.consultations,
            text(stage_text(r)), text(v.title if v else ""),
            v.roll_households if v else None, v.voted_households if v else None,
            _share(r.turnout), v.roll_area_dm2 / 100 if v else None,
            v.voted_area_dm2 / 100 if v else None, _share(r.turnout_area),
            text("; ".join(v.missing) if v else ""), r.days_left, r.items_done, r.items_all,
            r.budget_fen / 100, r.spent_fen / 100, r.satisfied, r.evaluations,
            _share(r.satisfaction), r.objections, r.feedback,
            text(short_time(r.last_activity) if r.last_activity else "")])
    levels = book.create_sheet(title=_("Totals")[:31])
    level_names = level_labels()
    levels.append([_("Level"), _("Level name"), _("Compounds"), _("Consultations"),
                   _("Households on the roll"), _("Households voted"),
                   _("Turnout (households)"), _("Items ticked off"), _("Items"),
                   _("Budget (yuan)"), _("Spent (yuan)"), _("Satisfaction"),
                   _("Open objections"), _("Open feedback")])
    for t in [*dash.totals, dash.grand]:
        levels.append([text(level_names[t.level], levels), text(t.name, levels), t.compounds,
                       t.consultations, t.roll_households, t.voted_households,
                       _share(t.turnout), t.items_done,
                       t.items_all, t.budget_fen / 100, t.spent_fen / 100,
                       _share(t.satisfaction), t.objections, t.feedback])
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def level_labels() -> dict[str, str]:
    from flask_babel import gettext as _
    return {"grid": _("Grid"), "community": _("Community"), "office": _("Street office"),
            "all": _("All compounds shown")}


def month_bounds(text: str | None, now: datetime) -> tuple[datetime, datetime]:
    """The first instant of a month (``YYYY-MM``, Beijing time; this month if not given or
    not a month) and of the next one, in UTC."""
    local = now.astimezone(LOCAL)
    year, month = local.year, local.month
    shaped = bool(text) and len(text or "") == 7 and (text or "")[4] == "-"
    if shaped and text and text[:4].isdigit() and text[5:].isdigit() and (
            2000 <= int(text[:4]) <= 2100 and 1 <= int(text[5:]) <= 12):
        year, month = int(text[:4]), int(text[5:])
    start = datetime(year, month, 1, tzinfo=LOCAL)
    end = datetime(year + month // 12, month % 12 + 1, 1, tzinfo=LOCAL)
    return start.astimezone(UTC), end.astimezone(UTC)


def month_activity(scope: frozenset[int] | None, filters: Filters, start: datetime,
                   end: datetime) -> dict[int, int]:
    """Events of the audit trail per compound within the month (one statement)."""
    return {int(compound_id): count for compound_id, count in _rows(
        select(AuditEvent.compound_id, func.count(AuditEvent.seq))
        .where(AuditEvent.compound_id.in_(_chosen(scope, filters)),
               AuditEvent.created_at >= start, AuditEvent.created_at < end)
        .group_by(AuditEvent.compound_id))}


def report_pdf(dash: Dashboard, scope: frozenset[int] | None, month: str | None,
               locale: str) -> bytes:
    """The monthly report for the office, A4, through the project's PDF printing."""
    from consult.notices import pdf

    start, end = month_bounds(month, dash.as_of)
    activity = month_activity(scope, dash.filters, start, end)
    return pdf.render("pdf/dashboard_report.html", locale, dash=dash, activity=activity,
                      month_start=start.astimezone(LOCAL), percent=percent, money=money,
                      stage_text=stage_text, level_labels=level_labels())
