"""Publishing notices and handling objections. Functions flush and record their audit event."""

from __future__ import annotations

import hashlib
import json
import secrets
from datetime import datetime, timedelta
from typing import Any

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import func, select
from sqlalchemy.orm import selectinload

from consult.audit import service as audit
from consult.audit.actions import describe, describe_kinds, describe_objects
from consult.ballots import service as ballots
from consult.ballots.explain import rule_label, rule_sentences
from consult.ballots.models import Ballot, BallotChoice, RollEntry
from consult.consultations.models import Consultation, Secrecy
from consult.core.errors import Conflict, NotFound, ValidationFailed
from consult.core.models import utcnow
from consult.core.times import format_datetime
from consult.extensions import db
from consult.notices.models import Notice, NoticeKind, Objection
from consult.notifications import events
from consult.notifications import service as notifications
from consult.registry.models import Household

describe({
    "notice.published": _l("Notice published"),
    "notice.objection_filed": _l("Objection filed"),
    "notice.objection_answered": _l("Objection answered"),
}, kind="notices")
describe_kinds({"notices": _l("Notices")})
describe_objects({"notice": _l("Notice"), "objection": _l("Objection")})

_CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
MAX_OBJECTION_LENGTH = 2000


def canonical(content: dict[str, Any]) -> str:
    return json.dumps(content, ensure_ascii=False, sort_keys=True, separators=(",", ":"))


def _verify_code() -> str:
    while True:
        code = "".join(secrets.choice(_CODE_ALPHABET) for _ in range(8))
        if not db.session.scalar(select(Notice.id).where(Notice.verify_code == code)):
            return code


def _household_votes(consultation: Consultation) -> list[dict[str, Any]]:
    """Every household's answers by address and area (never names): for open ballots only."""
    numbers = {item.id: item.number for item in consultation.items}
    rows = db.session.execute(
        select(RollEntry.building_name, RollEntry.unit, RollEntry.room, RollEntry.area_dm2,
               RollEntry.household_id, BallotChoice.item_id, BallotChoice.choice)
        .outerjoin(Ballot, (Ballot.consultation_id == RollEntry.consultation_id)
                   & (Ballot.round == RollEntry.round)
                   & (Ballot.household_id == RollEntry.household_id))
        .outerjoin(BallotChoice, BallotChoice.ballot_id == Ballot.id)
        .where(RollEntry.consultation_id == consultation.id,
               RollEntry.round == consultation.round)
        .order_by(RollEntry.building_sort, RollEntry.household_sort)).all()
    households: dict[int, dict[str, Any]] = {}
    for building, unit, room, area, household_id, item_id, choice in rows:
        entry = households.setdefault(household_id, {
            "building": building, "unit": unit, "room": room, "area_dm2": area, "choices": {}})
        if item_id in numbers:
            entry["choices"][str(numbers[item_id])] = choice
    return list(households.values())


def notice_heading(consultation: Consultation, **extra: Any) -> dict[str, Any]:
    """What every notice's content starts with: which consultation (plus ``extra`` about it),
    of which compound."""
    return {
        "consultation": {"id": consultation.id, "title": consultation.title,
                         "round": consultation.round, **extra},
        "compound": {"name": consultation.compound.name,
                     "community": consultation.compound.community.name},
    }


def resolution_content(consultation: Consultation) -> dict[str, Any]:
    """What the resolution notice shows, frozen at publication: with the root of the tree of
    the counted ballots (``ballots.proofs``), by which each household can check its own."""
    result = ballots.vote_result(consultation)
    if result is None:
        raise Conflict(_("The vote has not been counted yet."))
    tally = json.loads(result.tally_json)
    rule = ballots.rule_of(consultation)
    return {
        "kind": NoticeKind.RESOLUTION.value,
        **notice_heading(consultation, secrecy=consultation.secrecy),
        "items": [{"number": i.number, "title": i.title, "description": i.description,
                   "estimated_cost_fen": i.estimated_cost_fen} for i in consultation.items],
        "rule": {"code": rule.code, "label": rule_label(rule), "sentences": rule_sentences(rule)},
        "vote": {"opened_at": _iso(consultation.vote_opened_at),
                 "closed_at": _iso(consultation.vote_closed_at)},
        "tally": tally,
        "households": (_household_votes(consultation)
                       if consultation.secrecy == Secrecy.OPEN else None),
        # None for a round counted before ballot trees existed.
        "proof": ({"round": result.round, "root": result.tree_root, "size": result.tree_size,
                   "tree": "RFC 6962, SHA-256"} if result.tree_root else None),
    }


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def current_notice(consultation: Consultation, kind: NoticeKind) -> Notice | None:
    """The notice of this kind that is still in force (not superseded)."""
    return db.session.scalar(select(Notice).where(
        Notice.consultation_id == consultation.id, Notice.kind == kind.value,
        Notice.superseded_at.is_(None)).order_by(Notice.id.desc()))


def publish(actor: Any, consultation: Consultation, kind: NoticeKind, now: datetime,
            content: dict[str, Any] | None = None,
            period_ends_at: datetime | None = None) -> Notice:
    """Freeze a notice: its content, its SHA-256, and the audit chain head it was issued at.

    An earlier notice of the same kind (an earlier round, a reissue) is marked superseded.
    The publicity period is the consultation's unless ``period_ends_at`` says otherwise.
    """
    if content is None:
        if kind is not NoticeKind.RESOLUTION:
            raise ValueError("result notices are published with their content")
        content = resolution_content(consultation)
    earlier = current_notice(consultation, kind)
    notice = _freeze(actor, Notice(consultation_id=consultation.id, round=consultation.round,
                                   kind=kind.value, locale=consultation.locale),
                     content, now, period_ends_at or now + timedelta(
                         days=consultation.publicity_days), earlier,
                     {"consultation_id": consultation.id, "round": consultation.round})
    return notice


def publish_ranking(actor: Any, scoring_round_id: int, locale: str, content: dict[str, Any],
                    now: datetime, period_ends_at: datetime) -> Notice:
    """Freeze the ranking of a scoring round (several compounds, no consultation) as a notice,
    with the same verification code, SHA-256, audit chain head and event as every notice."""
    earlier = db.session.scalar(select(Notice).where(
        Notice.scoring_round_id == scoring_round_id, Notice.superseded_at.is_(None)))
    return _freeze(actor, Notice(scoring_round_id=scoring_round_id, round=1,
                                 kind=NoticeKind.RANKING.value, locale=locale),
                   content, now, period_ends_at, earlier,
                   {"scoring_round_id": scoring_round_id})


def _freeze(actor: Any, notice: Notice, content: dict[str, Any], now: datetime,
            period_ends_at: datetime, earlier: Notice | None,
            subject: dict[str, Any]) -> Notice:
    """Fill in ``notice``'s frozen content, fingerprint and chain head; supersede ``earlier``;
    record the publication."""
    text = canonical(content)
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
    if earlier is not None:
        earlier.superseded_at = now
    # The head of the chain the publication is appended to: the consultation's own.
    chain = notice.consultation_id or audit.GLOBAL_CHAIN
    chain_seq, chain_hash = audit.chain_head(chain=chain)
    notice.published_at = now
    notice.period_ends_at = period_ends_at
    notice.content_json = text
    notice.content_sha256 = digest
    notice.verify_code = _verify_code()
    notice.chain_id = chain
    notice.chain_seq = chain_seq
    notice.chain_hash = chain_hash
    db.session.add(notice)
    db.session.flush()
    audit.record(actor, "notice.published", notice, {
        **subject, "kind": notice.kind, "sha256": digest, "verify_code": notice.verify_code,
        "chain_id": chain, "chain_seq": chain_seq, "chain_hash": chain_hash,
        "period_ends_at": notice.period_ends_at,
        "supersedes": earlier.id if earlier else None,
    })
    return notice


def notices_of(consultation: Consultation) -> list[Notice]:
    """Every notice of the consultation, newest first (superseded ones too: they stay on
    record)."""
    return list(db.session.scalars(select(Notice).where(
        Notice.consultation_id == consultation.id).order_by(Notice.id.desc())))


def content_of(notice: Notice) -> dict[str, Any]:
    return json.loads(notice.content_json)


def in_period(notice: Notice, now: datetime) -> bool:
    return notice.superseded_at is None and notice.published_at <= now < notice.period_ends_at


def file_objection(actor: Any, notice: Notice, household: Household, text: str,
                   now: datetime | None = None) -> Objection:
    """A household objects to a notice, during its publicity period only."""
    now = now or utcnow()
    if notice.kind == NoticeKind.VOTE:
        raise Conflict(_("A vote notice announces the vote; objections are made to the "
                         "resolution notice."))
    if not in_period(notice, now):
        raise Conflict(_("Objections can only be filed while the notice is up, until %(end)s.",
                         end=format_datetime(notice.period_ends_at, "short")))
    if notice.consultation is None:
        raise Conflict(_("Objections are made to a consultation's notices."))
    if household.scope_compound_id != notice.consultation.compound_id:
        raise Conflict(_("Only households of this compound can object to its notice."))
    text = (text or "").strip()
    if not text or len(text) > MAX_OBJECTION_LENGTH:
        message = _("Write your objection in 1 to %(n)s characters.", n=MAX_OBJECTION_LENGTH)
        raise ValidationFailed(message, {"text": [message]})
    objection = Objection(notice=notice, household_id=household.id,
                          author_id=getattr(actor, "id", None), text=text, created_at=now)
    db.session.add(objection)
    db.session.flush()
    audit.record(actor, "notice.objection_filed", objection,
                 {"notice_id": notice.id, "household_id": household.id},
                 chain=notice.consultation_id or audit.GLOBAL_CHAIN)
    return objection


def answer_objection(actor: Any, objection: Objection, text: str) -> Objection:
    """The committee's public answer to an objection (it may be revised; each is recorded)."""
    text = (text or "").strip()
    if not text or len(text) > MAX_OBJECTION_LENGTH:
        message = _("Write the answer in 1 to %(n)s characters.", n=MAX_OBJECTION_LENGTH)
        raise ValidationFailed(message, {"text": [message]})
    objection.answer = text
    objection.answered_by_id = getattr(actor, "id", None)
    objection.answered_at = utcnow()
    db.session.flush()
    audit.record(actor, "notice.objection_answered", objection, {"notice_id": objection.notice_id},
                 chain=objection.notice.consultation_id or audit.GLOBAL_CHAIN)
    consultation = objection.notice.consultation
    # A revised answer is news again: the key names the answer's time.
    notifications.notify(
        events.OBJECTION_ANSWERED, notifications.household_accounts([objection.household_id]),
        {"consultation": consultation.title if consultation else "",
         "locale": consultation.locale if consultation else None},
        notifications.path_for("notices.show", notice_id=objection.notice_id),
        f"objection_answered:{objection.id}:{objection.answered_at.isoformat()}",
        now=objection.answered_at)
    return objection


def unanswered_objections(notice: Notice) -> int:
    return db.session.scalar(select(func.count(Objection.id)).where(
        Objection.notice_id == notice.id, Objection.answered_at.is_(None))) or 0


def objections_of(notice: Notice) -> list[Objection]:
    """A notice's objections in order, with the households (and buildings) they name."""
    return list(db.session.scalars(
        select(Objection).options(selectinload(Objection.household)
                                  .joinedload(Household.building))
        .where(Objection.notice_id == notice.id).order_by(Objection.id)))


def get_notice_or_404(notice_id: int) -> Notice:
    notice = db.session.get(Notice, notice_id)
    if notice is None:
        raise NotFound(_("No such notice."))
    return notice


def get_objection_or_404(objection_id: int) -> Objection:
    objection = db.session.get(Objection, objection_id)
    if objection is None:
        raise NotFound(_("No such objection."))
    return objection


def by_verify_code(code: str) -> Notice | None:
    return db.session.scalar(select(Notice).where(
        Notice.verify_code == (code or "").strip().upper()[:16]))
