"""Running scoring rounds (观摩评比). Functions take the acting user, flush (never commit) and
record their audit event in the same transaction; the arithmetic is in ``compute``."""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from fractions import Fraction
from typing import Any

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import func, select
from sqlalchemy.orm import selectinload

from consult.audit import service as audit
from consult.audit.actions import describe, describe_kinds, describe_objects
from consult.core.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from consult.core.models import utcnow
from consult.core.policy import compound_scope
from consult.extensions import db
from consult.notices import service as notices
from consult.notices.models import Notice
from consult.registry.models import Compound
from consult.scoring import compute
from consult.scoring.models import (
    RoundStatus,
    Score,
    ScoringCriterion,
    ScoringParticipant,
    ScoringRound,
)

describe({
    "scoring.round_opened": _l("Scoring round opened"),
    "scoring.round_updated": _l("Scoring round changed"),
    "scoring.scored": _l("Scores entered"),
    "scoring.round_closed": _l("Scoring round closed"),
}, kind="scoring")
describe_kinds({"scoring": _l("Scoring rounds")})
describe_objects({"scoring_round": _l("Scoring round")})

MIN_COMPOUNDS = 3
MAX_CRITERIA = 30
MAX_POINTS = 1000
RANKING_PUBLICITY_DAYS = 7
DEFAULT_SHEET = "环境卫生 | 30 | 10\n设施维护 | 25 | 10\n居民参与 | 25 | 10\n公开透明 | 20 | 10"


@dataclass(frozen=True)
class CriterionInput:
    name: str
    weight: int
    max_points: int


@dataclass(frozen=True)
class RoundInput:
    """What the office fills in to open or change a round."""

    name: str
    period_start: date
    period_end: date
    compound_ids: list[int]
    criteria: list[CriterionInput]
    inspector_weight_pct: int
    decimals: int
    honour_count: int
    outlier_points: int


# --- the scoring sheet as text ------------------------------------------------------------------


def parse_sheet(text: str) -> list[CriterionInput]:
    """A sheet written one criterion a line as ``name | weight | most points``; every line's
    mistakes are named by line number (field ``criteria``), and nothing is taken on any."""
    criteria: list[CriterionInput] = []
    errors: list[str] = []
    for number, line in enumerate((text or "").splitlines(), start=1):
        if not line.strip():
            continue
        parts = [part.strip() for part in line.replace("｜", "|").split("|")]
        if len(parts) != 3 or not parts[0]:
            errors.append(_("Line %(n)s: write “name | weight | most points”.", n=number))
            continue
        name, weight, most = parts
        if len(name) > 100:
            errors.append(_("Line %(n)s: the name is longer than 100 characters.", n=number))
            continue
        if not weight.isdigit() or not 1 <= int(weight) <= 100:
            errors.append(_("Line %(n)s: the weight must be a whole number from 1 to 100.",
                            n=number))
            continue
        if not most.isdigit() or not 1 <= int(most) <= MAX_POINTS:
            errors.append(_("Line %(n)s: the most points must be a whole number from 1 to "
                            "%(max)s.", n=number, max=MAX_POINTS))
            continue
        if any(c.name == name for c in criteria):
            errors.append(_("Line %(n)s: “%(name)s” is on the sheet twice.", n=number,
                            name=name))
            continue
        criteria.append(CriterionInput(name, int(weight), int(most)))
    if not errors and not criteria:
        errors.append(_("Write at least one criterion."))
    if len(criteria) > MAX_CRITERIA:
        errors.append(_("A sheet has at most %(n)s criteria.", n=MAX_CRITERIA))
    if errors:
        raise ValidationFailed(errors[0], {"criteria": errors})
    return criteria


def sheet_text(round_: ScoringRound) -> str:
    """A round's sheet written back as text (to edit it, or to start the next round from)."""
    return "\n".join(f"{c.name} | {c.weight} | {c.max_points}" for c in round_.criteria)


def starting_sheet() -> str:
    """The sheet a new round starts from: the latest round's, else a common one."""
    latest = db.session.scalar(select(ScoringRound).order_by(ScoringRound.id.desc()).limit(1))
    return sheet_text(latest) if latest is not None and latest.criteria else DEFAULT_SHEET


# --- opening and changing a round -------------------------------------------------------------


def _check(data: RoundInput) -> None:
    errors: dict[str, list[str]] = {}
    if not data.name.strip() or len(data.name.strip()) > 100:
        errors["name"] = [_("Give the round a name of 1 to 100 characters.")]
    if data.period_end < data.period_start:
        errors["period_end"] = [_("The period ends on or after the day it starts.")]
    ids = set(data.compound_ids)
    if len(ids) < MIN_COMPOUNDS:
        errors["compound_ids"] = [_("Choose at least %(n)s compounds: each scores the others.",
                                    n=MIN_COMPOUNDS)]
    elif db.session.scalar(select(func.count(Compound.id)).where(
            Compound.id.in_(ids))) != len(ids):
        errors["compound_ids"] = [_("A chosen compound does not exist any more.")]
    if not 0 <= data.inspector_weight_pct <= 100:
        errors["inspector_weight_pct"] = [_("The inspectors' weight is from 0 to 100 percent.")]
    if data.decimals not in (0, 1, 2):
        errors["decimals"] = [_("Scores have 0, 1 or 2 decimal places.")]
    if not 0 <= data.honour_count <= len(ids):
        errors["honour_count"] = [_("At most as many red-flag compounds as compounds taking part.")]
    if not 1 <= data.outlier_points <= 100:
        errors["outlier_points"] = [_("The threshold is from 1 to 100 points.")]
    if errors:
        raise ValidationFailed(next(iter(errors.values()))[0], errors)


def _describe(data: RoundInput) -> dict[str, Any]:
    return {"name": data.name.strip(), "period_start": data.period_start.isoformat(),
            "period_end": data.period_end.isoformat(), "compounds": sorted(set(data.compound_ids)),
            "criteria": [[c.name, c.weight, c.max_points] for c in data.criteria],
            "inspector_weight_pct": data.inspector_weight_pct, "decimals": data.decimals,
            "honour_count": data.honour_count, "outlier_points": data.outlier_points}


def _apply(round_: ScoringRound, data: RoundInput) -> None:
    round_.name = data.name.strip()
    round_.period_start = data.period_start
    round_.period_end = data.period_end
    round_.inspector_weight_pct = data.inspector_weight_pct
    round_.decimals = data.decimals
    round_.honour_count = data.honour_count
    round_.outlier_points = data.outlier_points
    round_.criteria = [ScoringCriterion(position=n, name=c.name, weight=c.weight,
                                        max_points=c.max_points)
                       for n, c in enumerate(data.criteria, start=1)]
    wanted = sorted(set(data.compound_ids))
    kept = [p for p in round_.participants if p.compound_id in wanted]
    have = {p.compound_id for p in kept}
    round_.participants = kept + [ScoringParticipant(compound_id=c) for c in wanted
                                  if c not in have]


def open_round(actor: Any, data: RoundInput, locale: str = "zh_Hans") -> ScoringRound:
    """The street office opens a round: its sheet, its compounds and its settings."""
    _check(data)
    round_ = ScoringRound(created_by_id=getattr(actor, "id", None), locale=locale,
                          status=RoundStatus.OPEN.value)
    _apply(round_, data)
    db.session.add(round_)
    db.session.flush()
    audit.record(actor, "scoring.round_opened", round_, _describe(data))
    return round_


def score_count(round_: ScoringRound) -> int:
    return db.session.scalar(select(func.count(Score.id)).where(
        Score.round_id == round_.id)) or 0


def update_round(actor: Any, round_: ScoringRound, data: RoundInput) -> ScoringRound:
    """Change a round's sheet, compounds or settings: only before the first score is entered
    (a scorer must know what they score against)."""
    if not round_.is_open:
        raise Conflict(_("This round is closed; it cannot change any more."))
    if score_count(round_):
        raise Conflict(_("Scoring has started: the sheet and the compounds can no longer "
                         "change."))
    _check(data)
    _apply(round_, data)  # the old sheet's lines go as orphans
    db.session.flush()
    audit.record(actor, "scoring.round_updated", round_, _describe(data))
    return round_


# --- scores -----------------------------------------------------------------------------------


def parse_points(value: str, criterion: ScoringCriterion, decimals: int) -> int | str:
    """Points typed for a criterion → hundredths of a point, or the message saying why not."""
    text = (value or "").strip().replace("，", ".").replace(",", ".")
    try:
        points = Decimal(text)
    except InvalidOperation:
        return _("Write a number from 0 to %(max)s.", max=criterion.max_points)
    if not points.is_finite():
        return _("Write a number from 0 to %(max)s.", max=criterion.max_points)
    if not 0 <= points <= criterion.max_points:
        return _("From 0 to %(max)s points.", max=criterion.max_points)
    exponent = points.normalize().as_tuple().exponent
    if isinstance(exponent, int) and -exponent > decimals:
        if decimals == 0:
            return _("Whole points only.")
        return _("At most %(n)s decimal places.", n=decimals)
    return int(points * 100)


def _participant(round_: ScoringRound, compound_id: int) -> ScoringParticipant:
    for participant in round_.participants:
        if participant.compound_id == compound_id:
            return participant
    raise NotFound(_("This compound does not take part in the round."))


def _record(actor: Any, round_: ScoringRound, scorer_key: str, target_compound_id: int,
            values: dict[int, str], *, scorer_compound_id: int | None = None,
            inspector: str | None = None, now: datetime | None = None) -> list[Score]:
    """Validate a whole sheet (all or nothing), then write and audit it."""
    now = now or utcnow()
    if not round_.is_open:
        raise Conflict(_("This round is closed: its scores can no longer change."))
    target = _participant(round_, target_compound_id)
    points: dict[int, int] = {}
    errors: dict[str, list[str]] = {}
    for criterion in round_.criteria:
        parsed = parse_points(values.get(criterion.id, ""), criterion, round_.decimals)
        if isinstance(parsed, str):
            errors[f"c{criterion.id}"] = [parsed]
        else:
            points[criterion.id] = parsed
    if errors:
        raise ValidationFailed(_("Some scores could not be taken; see each criterion."), errors)
    existing = {s.criterion_id: s for s in db.session.scalars(select(Score).where(
        Score.round_id == round_.id, Score.scorer_key == scorer_key,
        Score.target_compound_id == target.compound_id))}
    before = {str(cid): compute.shown(Fraction(s.points_centi, 100)) for cid, s in
              existing.items()}
    scores = []
    for criterion in round_.criteria:
        score = existing.get(criterion.id)
        if score is None:
            score = Score(round_id=round_.id, criterion_id=criterion.id,
                          target_compound_id=target.compound_id, scorer_key=scorer_key,
                          scorer_compound_id=scorer_compound_id, inspector=inspector,
                          points_centi=points[criterion.id])
            db.session.add(score)
        score.points_centi = points[criterion.id]
        score.entered_by_id = getattr(actor, "id", None)
        score.updated_at = now
        scores.append(score)
    db.session.flush()
    audit.record(actor, "scoring.scored", round_, {
        "scorer": scorer_key, "target_compound_id": target.compound_id,
        "points": {str(cid): compute.shown(Fraction(p, 100)) for cid, p in points.items()},
        "before": before or None,
    }, compound_id=scorer_compound_id)
    return scores


def record_scores(actor: Any, round_: ScoringRound, scorer_compound_id: int,
                  target_compound_id: int, values: dict[int, str],
                  now: datetime | None = None) -> list[Score]:
    """A compound's representatives score another compound on every criterion of the sheet.

    Refused for the compound's own scores (never scored by itself), outside the round, after
    it closes, and for anyone not on that compound's committee (``actor`` None: the system,
    e.g. sheets collected on paper and entered by a command).
    """
    scorer = _participant(round_, scorer_compound_id)
    if scorer_compound_id == target_compound_id:
        raise Conflict(_("A compound does not score itself."))
    # ``actor`` None is the system (a command, the demo) copying in the paper sheets.
    scope = None if actor is None else compound_scope(actor, "scoring.score")
    if scope is not None and scorer.compound_id not in scope:
        raise PermissionDenied(_("Only the committee of a compound scores for it."))
    return _record(actor, round_, f"c:{scorer.compound_id}", target_compound_id, values,
                   scorer_compound_id=scorer.compound_id, now=now)


def record_inspector_scores(actor: Any, round_: ScoringRound, inspector: str,
                            target_compound_id: int, values: dict[int, str],
                            now: datetime | None = None) -> list[Score]:
    """The street office enters one of its inspectors' sheet for a compound."""
    name = (inspector or "").strip()
    if not name or len(name) > 50:
        message = _("Name the inspector in 1 to 50 characters.")
        raise ValidationFailed(message, {"inspector": [message]})
    return _record(actor, round_, f"i:{name}", target_compound_id, values, inspector=name,
                   now=now)


def scores_of(round_: ScoringRound, scorer_key: str, target_compound_id: int
              ) -> dict[int, Fraction]:
    """A scorer's points for a compound, by criterion."""
    return {s.criterion_id: Fraction(s.points_centi, 100) for s in db.session.scalars(
        select(Score).where(Score.round_id == round_.id, Score.scorer_key == scorer_key,
                            Score.target_compound_id == target_compound_id))}


def inspectors_of(round_: ScoringRound) -> list[str]:
    return list(db.session.scalars(select(Score.inspector).distinct().where(
        Score.round_id == round_.id, Score.inspector.is_not(None)).order_by(Score.inspector)))


# --- progress, closing and the ranking ----------------------------------------------------------


@dataclass(frozen=True)
class Progress:
    """Where a round stands: what closing it now would count on."""

    compounds: int
    criteria: int
    scorers: int            # compounds that entered at least one score, and inspectors
    inspectors: int
    expected: int           # scores the compounds owe: n × (n − 1) × criteria
    recorded: int           # of those, entered
    missing: int
    sheets_done: dict[int, int]  # scoring compound → compounds it scored completely


def progress(round_: ScoringRound) -> Progress:
    """Counts for the round page and the confirmation before closing."""
    n, k = len(round_.participants), len(round_.criteria)
    rows = db.session.execute(
        select(Score.scorer_compound_id, Score.target_compound_id, func.count(Score.id))
        .where(Score.round_id == round_.id, Score.scorer_compound_id.is_not(None))
        .group_by(Score.scorer_compound_id, Score.target_compound_id)).all()
    recorded = sum(count for _s, _t, count in rows)
    done: dict[int, int] = defaultdict(int)
    for scorer, _target, count in rows:
        if scorer is not None and count == k:
            done[scorer] += 1
    inspectors = len(inspectors_of(round_))
    expected = n * (n - 1) * k
    return Progress(n, k, len({s for s, _t, _c in rows}) + inspectors, inspectors, expected,
                    recorded, expected - recorded, dict(done))


def _sheets(round_: ScoringRound) -> dict[int, list[compute.Sheet]]:
    points: dict[tuple[int, str], dict[int, Fraction]] = defaultdict(dict)
    for score in db.session.scalars(select(Score).where(Score.round_id == round_.id)):
        points[(score.target_compound_id, score.scorer_key)][score.criterion_id] = Fraction(
            score.points_centi, 100)
    sheets: dict[int, list[compute.Sheet]] = defaultdict(list)
    for (target, key), given in sorted(points.items()):
        sheets[target].append(compute.Sheet(key, key.startswith("i:"), given))
    return sheets


def compute_results(round_: ScoringRound) -> tuple[list[compute.Outcome], list[compute.Outlier]]:
    """Every compound's exact scores and rank, and the outlying sheets (``compute``)."""
    criteria = [compute.Criterion(c.id, c.weight, c.max_points) for c in round_.criteria]
    results = compute.outcomes(criteria, [p.compound_id for p in round_.participants],
                               _sheets(round_), Fraction(round_.inspector_weight_pct, 100),
                               round_.honour_count)
    return results, compute.outliers(results, Fraction(round_.outlier_points))


def _scorer_name(key: str, names: dict[int, str]) -> str:
    kind, _sep, rest = key.partition(":")
    return names.get(int(rest), rest) if kind == "c" else rest


def ranking_content(round_: ScoringRound) -> dict[str, Any]:
    """What the ranking notice shows, frozen at closing: the sheet, the rule, each compound's
    scores (exact fractions alongside the rounded figures) and the flagged sheets."""
    results, flagged = compute_results(round_)
    compounds = {p.compound_id: p.compound for p in round_.participants}
    names = {cid: c.name for cid, c in compounds.items()}
    shown = compute.shown
    return {
        "kind": "ranking",
        "round": {"id": round_.id, "name": round_.name,
                  "period_start": round_.period_start.isoformat(),
                  "period_end": round_.period_end.isoformat()},
        "sheet": [{"name": c.name, "weight": c.weight, "max_points": c.max_points}
                  for c in round_.criteria],
        "inspector_weight_pct": round_.inspector_weight_pct,
        "honour_count": round_.honour_count,
        "outlier_points": round_.outlier_points,
        "ranking": [{
            "rank": r.rank, "compound_id": r.compound_id, "compound": names[r.compound_id],
            "community": compounds[r.compound_id].community.name,
            "score": shown(r.score), "peer": shown(r.peer), "inspectors": shown(r.inspectors),
            "exact": f"{r.score.numerator}/{r.score.denominator}" if r.score is not None
            else None,
            "peer_sheets": r.peer_sheets, "inspector_sheets": r.inspector_sheets,
            "honour": r.honour,
        } for r in results],
        "outliers": [{"compound": names[o.compound_id], "scorer": _scorer_name(o.scorer, names),
                      "inspector": o.scorer.startswith("i:"), "total": shown(o.total),
                      "median": shown(o.median), "deviation": shown(o.deviation)}
                     for o in flagged],
    }


def close_round(actor: Any, round_: ScoringRound, now: datetime | None = None) -> Notice:
    """Close the round: no score changes after this; compute, rank and publish the ranking as
    a notice (verification code, SHA-256, audit chain head)."""
    now = now or utcnow()
    if not round_.is_open:
        raise Conflict(_("This round is closed already."))
    counts = progress(round_)
    if counts.recorded == 0 and counts.inspectors == 0:
        raise Conflict(_("No scores have been entered yet."))
    content = ranking_content(round_)
    round_.status = RoundStatus.CLOSED.value
    round_.closed_at = now
    round_.result_json = json.dumps(content, ensure_ascii=False, sort_keys=True)
    db.session.flush()
    audit.record(actor, "scoring.round_closed", round_, {
        "compounds": counts.compounds, "scorers": counts.scorers, "missing": counts.missing,
        "ranking": [[r["compound_id"], r["rank"], r["score"]] for r in content["ranking"]],
        "outliers": len(content["outliers"]),
    })
    return notices.publish_ranking(actor, round_.id, round_.locale, content, now,
                                   now + timedelta(days=RANKING_PUBLICITY_DAYS))


def ranking_notice(round_: ScoringRound) -> Notice | None:
    return db.session.scalar(select(Notice).where(
        Notice.scoring_round_id == round_.id, Notice.superseded_at.is_(None)))


# --- finding rounds ---------------------------------------------------------------------------


def get_round_or_404(round_id: int) -> ScoringRound:
    round_ = db.session.get(ScoringRound, round_id, options=[
        selectinload(ScoringRound.criteria), selectinload(ScoringRound.participants)
        .joinedload(ScoringParticipant.compound).joinedload(Compound.community)])
    if round_ is None:
        raise NotFound(_("No such scoring round."))
    return round_


def visible_round(user: Any, round_id: int, action: str = "scoring.view") -> ScoringRound:
    """A round, if ``user`` may ``action`` in one of its compounds (staff see the rounds their
    compounds take part in; the office sees all)."""
    round_ = get_round_or_404(round_id)
    scope = compound_scope(user, action)
    if scope is not None and not scope & {p.compound_id for p in round_.participants}:
        raise PermissionDenied(_("None of your compounds takes part in this round."))
    return round_


def rounds_for(user: Any) -> list[ScoringRound]:
    """The rounds ``user`` may see, newest first."""
    stmt = select(ScoringRound).order_by(ScoringRound.id.desc())
    scope = compound_scope(user, "scoring.view")
    if scope is not None:
        stmt = stmt.where(ScoringRound.id.in_(select(ScoringParticipant.round_id).where(
            ScoringParticipant.compound_id.in_(scope))))
    return list(db.session.scalars(stmt))


def compound_choices() -> list[Compound]:
    """Every compound, to choose a round's participants from."""
    return list(db.session.scalars(select(Compound).options(
        selectinload(Compound.community)).order_by(Compound.community_id, Compound.name)))


def round_of_notice(notice: Notice) -> ScoringRound:
    if notice.scoring_round_id is None:
        raise NotFound(_("No such notice."))
    return get_round_or_404(notice.scoring_round_id)
