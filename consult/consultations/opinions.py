"""一征: opinions collected online and offline, their supports, categories, merges, and the
items of the proposal they led to.

Every function flushes (never commits), checks the stage and records its audit event. Opinions
name their household by building, unit and room only: owner names and phones never leave the
registry, neither on pages nor in audit payloads.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import ScalarSelect, Select, delete, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import selectinload
from werkzeug.datastructures import FileStorage

from consult.accounts.models import User
from consult.audit import service as audit
from consult.audit.actions import describe, describe_kinds, describe_objects
from consult.consultations import service
from consult.consultations.models import (
    CATEGORY_LABELS,
    Category,
    Channel,
    Consultation,
    Item,
    Opinion,
    OpinionSupport,
    item_opinion,
)
from consult.consultations.states import EDITABLE_PROPOSAL_STAGES, Stage
from consult.core.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from consult.core.models import utcnow
from consult.core.text import strip_suffix
from consult.core.validation import clean_text, enum_member
from consult.extensions import db
from consult.registry.models import Building, Household
from consult.uploads import service as uploads
from consult.uploads.models import Attachment

describe({
    "opinion.submitted": _l("Opinion submitted"),
    "opinion.recorded": _l("Offline opinion recorded"),
    "opinion.supported": _l("Opinion supported"),
    "opinion.categorised": _l("Opinion categorised"),
    "opinion.merged": _l("Duplicate opinion merged"),
    "consultation.item_opinions_set": _l("Opinions linked to an item"),
    "opinion.withdrawn": _l("Opinion withdrawn by its household"),
    "opinion.support_withdrawn": _l("Support withdrawn"),
}, kind="opinions")
describe_kinds({"opinions": _l("Opinions and discussion")})
describe_objects({"opinion": _l("Opinion")})

MAX_TEXT = 2000
OFFLINE_CHANNELS = tuple(c for c in Channel if c is not Channel.ONLINE)
# Sorting, merging and linking opinions goes on while the proposal is being written.
CURATION_STAGES = EDITABLE_PROPOSAL_STAGES - {Stage.DRAFT}


# --- values -----------------------------------------------------------------------------------


def text_digest(text: str) -> str:
    """What audit payloads keep of a free text: its SHA-256, proof without republishing it."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def category_label(value: str) -> str:
    try:
        return str(CATEGORY_LABELS[Category(value)])
    except ValueError:
        return value


@dataclass(frozen=True)
class OpinionData:
    category: Category
    text: str


def _category(value: str | None, errors: dict[str, list[str]]) -> Category | None:
    try:
        return enum_member(Category, value)
    except ValueError:
        errors["category"] = [_("Choose what the opinion is about.")]
        return None


def opinion_data(*, category: str | None, text: str | None) -> OpinionData:
    """Validate an opinion's category and text; raises ValidationFailed per field."""
    errors: dict[str, list[str]] = {}
    chosen = _category(category, errors)
    cleaned = ""
    try:
        cleaned = clean_text(text, what=_("Your opinion"), max_length=MAX_TEXT, required=True,
                             multiline=True)
    except ValueError as exc:
        errors["text"] = [str(exc)]
    if errors or chosen is None:
        raise ValidationFailed(_("Please correct the marked fields."), errors)
    return OpinionData(chosen, cleaned)


@dataclass(frozen=True)
class OfflineData:
    """An opinion the committee collected away from the site, validated."""

    opinion: OpinionData
    channel: Channel
    household: Household | None


def find_household(consultation: Consultation, building_id: int | None, unit: str | None,
                   room: str | None) -> Household | None:
    """The household at an address of the consultation's compound; None when no building and
    no room are given (an anonymous opinion). Raises ValidationFailed per field."""
    room = strip_suffix((room or "").strip(), "室", "号")
    unit = strip_suffix((unit or "").strip(), "单元")
    if not building_id and not room and not unit:
        return None
    building = db.session.get(Building, building_id) if building_id else None
    if building is None or building.compound_id != consultation.compound_id:
        message = _("Choose a building of this compound.")
        raise ValidationFailed(message, {"building_id": [message]})
    if not room:
        message = _("Give the room, or choose no building for an anonymous opinion.")
        raise ValidationFailed(message, {"room": [message]})
    household = db.session.scalar(select(Household).where(
        Household.building_id == building.id, Household.unit == unit, Household.room == room))
    if household is None:
        message = _("There is no room %(room)s (unit %(unit)s) in %(building)s.", room=room,
                    unit=unit or "—", building=building.name)
        raise ValidationFailed(message, {"room": [message]})
    if not service.household_in_scope(consultation, household):
        message = _("This household is not among those the consultation concerns.")
        raise ValidationFailed(message, {"room": [message]})
    return household


def offline_data(consultation: Consultation, *, category: str | None, text: str | None,
                 channel: str | None, building_id: int | None, unit: str | None,
                 room: str | None) -> OfflineData:
    """Validate an offline opinion, every field at once; raises ValidationFailed per field."""
    errors: dict[str, list[str]] = {}
    data = household = chosen = None
    try:
        data = opinion_data(category=category, text=text)
    except ValidationFailed as exc:
        errors.update(exc.errors)
    try:
        chosen = enum_member(Channel, channel)
        if chosen not in OFFLINE_CHANNELS:
            raise ValueError
    except ValueError:
        errors["channel"] = [_("Choose how the opinion reached the committee.")]
    try:
        household = find_household(consultation, building_id, unit, room)
    except ValidationFailed as exc:
        errors.update(exc.errors)
    if errors or data is None or chosen is None:
        raise ValidationFailed(_("Please correct the marked fields."), errors)
    return OfflineData(data, chosen, household)


# --- writing ----------------------------------------------------------------------------------


def _check_stage(consultation: Consultation, stages: Iterable[Stage], message: str) -> None:
    if consultation.stage_enum not in set(stages):
        raise Conflict(message)


def check_collecting(consultation: Consultation) -> None:
    """Raise Conflict unless opinions are being collected."""
    _check_stage(consultation, {Stage.SOLICITING},
                 _("Opinions are collected only while the consultation is asking for them."))


def _store_photo(actor: Any, consultation: Consultation, photo: FileStorage | None
                 ) -> Attachment | None:
    if photo is None or not getattr(photo, "filename", ""):
        return None
    try:
        return uploads.store(actor, photo, consultation=consultation,
                             images_only=True)
    except ValidationFailed as exc:
        raise ValidationFailed(exc.message, {"photo": [exc.message]}) from exc


def _create(actor: Any, consultation: Consultation, data: OpinionData, channel: Channel,
            household: Household | None, photo: FileStorage | None, action: str) -> Opinion:
    attachment = _store_photo(actor, consultation, photo)  # the last check that can fail
    opinion = Opinion(consultation_id=consultation.id,
                      household_id=household.id if household else None,
                      author_id=getattr(actor, "id", None), channel=channel.value,
                      category=data.category.value, text=data.text,
                      photo_id=attachment.id if attachment else None)
    db.session.add(opinion)
    db.session.flush()
    audit.record(actor, action, opinion, {
        "consultation_id": consultation.id, "category": data.category.value,
        "channel": channel.value, "household_id": household.id if household else None,
        "text_sha256": text_digest(data.text), "text_length": len(data.text),
        "photo_id": attachment.id if attachment else None})
    return opinion


def submit(actor: Any, consultation: Consultation, household: Household, data: OpinionData,
           photo: FileStorage | None = None) -> Opinion:
    """A resident's opinion, online, for their household."""
    check_collecting(consultation)
    if not service.household_in_scope(consultation, household):
        raise PermissionDenied(_("Your household is not among those this consultation "
                                 "concerns."))
    return _create(actor, consultation, data, Channel.ONLINE, household, photo,
                   "opinion.submitted")


def record_offline(actor: Any, consultation: Consultation, values: OfflineData,
                   photo: FileStorage | None = None) -> Opinion:
    """An opinion the committee collected door to door, on a questionnaire, at a small-stool
    talk or on the hotline; its household may be unknown."""
    check_collecting(consultation)
    return _create(actor, consultation, values.opinion, values.channel, values.household,
                   photo, "opinion.recorded")


def support(actor: Any, opinion: Opinion, household: Household) -> bool:
    """A household's +1. Returns False (and writes nothing) if it was already counted."""
    consultation = opinion.consultation
    _check_stage(consultation, {Stage.SOLICITING},
                 _("Opinions can be supported only while they are being collected."))
    if not service.household_in_scope(consultation, household):
        raise PermissionDenied(_("Your household is not among those this consultation "
                                 "concerns."))
    if opinion.withdrawn_at is not None:
        raise Conflict(_("This opinion was withdrawn by its household."))
    if opinion.merged_into_id is not None:
        raise Conflict(_("This opinion was merged into opinion #%(n)s; support that one.",
                         n=opinion.merged_into_id))
    if opinion.household_id == household.id:
        raise Conflict(_("This is your household's own opinion; it already counts."))
    if _supports(opinion.id, household.id):
        return False
    try:
        with db.session.begin_nested():
            db.session.add(OpinionSupport(opinion_id=opinion.id, household_id=household.id))
    except IntegrityError:  # a second click that raced the first one
        return False
    audit.record(actor, "opinion.supported", opinion, {"household_id": household.id})
    return True


def check_withdrawable(opinion: Opinion) -> None:
    """Raise Conflict unless the household may still take its opinion back: while opinions
    are collected, and before the committee merged it or drew an item from it."""
    _check_stage(opinion.consultation, {Stage.SOLICITING},
                 _("Opinions can be withdrawn only while they are being collected."))
    if opinion.withdrawn_at is not None:
        raise Conflict(_("This opinion was already withdrawn."))
    if opinion.merged_into_id is not None or opinion.items or merged_here(opinion):
        raise Conflict(_("The committee has already used this opinion for the proposal; ask "
                         "the committee if it should be set aside."))


def withdraw(actor: Any, opinion: Opinion, household: Household) -> Opinion:
    """A household takes back its own opinion: it leaves every list and count (its supports
    with it); the row and the audit trail keep it."""
    if opinion.household_id != household.id:
        raise PermissionDenied(_("Only the household that gave an opinion can withdraw it."))
    check_withdrawable(opinion)
    opinion.withdrawn_at = utcnow()
    db.session.flush()
    audit.record(actor, "opinion.withdrawn", opinion, {
        "consultation_id": opinion.consultation_id, "household_id": household.id,
        "supports": support_counts([opinion.id]).get(opinion.id, 0),
        "text_sha256": text_digest(opinion.text)})
    return opinion


def check_support_withdrawable(opinion: Opinion, household: Household | None = None) -> None:
    """Raise Conflict unless supports may still be taken back (while opinions are collected)
    and, when ``household`` is given, unless it supports ``opinion``."""
    _check_stage(opinion.consultation, {Stage.SOLICITING},
                 _("Supports can be withdrawn only while opinions are being collected."))
    if household is not None and not supported_by(household, [opinion.id]):
        raise Conflict(_("Your household does not support opinion #%(n)s.", n=opinion.id))


def withdraw_support(actor: Any, opinion: Opinion, household: Household) -> bool:
    """A household takes back its +1. Returns False (and writes nothing) when it had none
    on this opinion (one that came with a merged duplicate is the committee's to keep)."""
    check_support_withdrawable(opinion)
    row = db.session.scalar(select(OpinionSupport).where(
        OpinionSupport.opinion_id == opinion.id, OpinionSupport.household_id == household.id))
    if row is None:
        return False
    db.session.delete(row)
    db.session.flush()
    audit.record(actor, "opinion.support_withdrawn", opinion, {"household_id": household.id})
    return True


def _supports(opinion_id: int, household_id: int) -> bool:
    return db.session.scalar(select(OpinionSupport.id).where(
        OpinionSupport.opinion_id == opinion_id,
        OpinionSupport.household_id == household_id)) is not None


def categorise(actor: Any, opinion: Opinion, category: str | None) -> Opinion:
    """File an opinion under another category."""
    _check_stage(opinion.consultation, CURATION_STAGES,
                 _("Opinions can no longer be sorted at this stage."))
    if opinion.withdrawn_at is not None:
        raise Conflict(_("This opinion was withdrawn by its household."))
    errors: dict[str, list[str]] = {}
    chosen = _category(category, errors)
    if chosen is None:
        raise ValidationFailed(_("Please correct the marked fields."), errors)
    if chosen.value == opinion.category:
        return opinion
    before = opinion.category
    opinion.category = chosen.value
    db.session.flush()
    audit.record(actor, "opinion.categorised", opinion, {"from": before, "to": chosen.value})
    return opinion


def merge(actor: Any, duplicate: Opinion, target_id: int | None) -> Opinion:
    """Merge a duplicate into another opinion of the same consultation.

    The duplicate stays visible as "merged into #n". Its supports move to the target; a
    household that already supports the target, or wrote it, is not counted twice. The
    duplicate's own household now counts as supporting the target (it asked for the same
    thing), the items the duplicate led to are linked to the target, and earlier duplicates
    of the duplicate point at the target too. Returns the target.
    """
    _check_stage(duplicate.consultation, CURATION_STAGES,
                 _("Opinions can no longer be merged at this stage."))
    if duplicate.withdrawn_at is not None:
        raise Conflict(_("This opinion was withdrawn by its household."))
    if duplicate.merged_into_id is not None:
        raise Conflict(_("This opinion was already merged into opinion #%(n)s.",
                         n=duplicate.merged_into_id))
    target = db.session.get(Opinion, target_id) if target_id else None
    if (target is None or target.consultation_id != duplicate.consultation_id
            or target.withdrawn_at is not None):
        message = _("There is no opinion #%(n)s in this consultation.", n=target_id or "?")
        raise ValidationFailed(message, {"target": [message]})
    if target.id == duplicate.id:
        message = _("An opinion cannot be merged into itself.")
        raise ValidationFailed(message, {"target": [message]})
    if target.merged_into_id is not None:
        message = _("Opinion #%(n)s was itself merged into opinion #%(m)s; choose that one.",
                    n=target.id, m=target.merged_into_id)
        raise ValidationFailed(message, {"target": [message]})

    counted = set(db.session.scalars(select(OpinionSupport.household_id).where(
        OpinionSupport.opinion_id == target.id)))
    if target.household_id is not None:
        counted.add(target.household_id)
    moved = dropped = 0
    for support_row in list(db.session.scalars(select(OpinionSupport).where(
            OpinionSupport.opinion_id == duplicate.id).order_by(OpinionSupport.id))):
        if support_row.household_id in counted:
            db.session.delete(support_row)
            dropped += 1
        else:
            support_row.opinion_id = target.id
            counted.add(support_row.household_id)
            moved += 1
    db.session.flush()
    author_counted = False
    if duplicate.household_id is not None and duplicate.household_id not in counted:
        db.session.add(OpinionSupport(opinion_id=target.id, household_id=duplicate.household_id))
        author_counted = True
    db.session.execute(update(Opinion).where(Opinion.merged_into_id == duplicate.id)
                       .values(merged_into_id=target.id))
    for item in list(duplicate.items):
        if item not in target.items:
            target.items.append(item)
    duplicate.items.clear()
    duplicate.merged_into_id = target.id
    db.session.flush()
    db.session.expire(target, ["items"])
    audit.record(actor, "opinion.merged", duplicate, {
        "into": target.id, "supports_moved": moved, "supports_already_counted": dropped,
        "author_household_counted": author_counted})
    return target


def set_item_opinions(actor: Any, item: Item, opinion_ids: Sequence[int]) -> Item:
    """Say which opinions an item came from ("from 37 opinions"); replaces the earlier set."""
    consultation = item.consultation
    _check_stage(consultation, EDITABLE_PROPOSAL_STAGES,
                 _("The proposal cannot change once voting has started."))
    wanted = set(opinion_ids)
    found = {o.id: o for o in db.session.scalars(select(Opinion).where(
        Opinion.id.in_(wanted), Opinion.consultation_id == consultation.id,
        Opinion.merged_into_id.is_(None), Opinion.withdrawn_at.is_(None)))} if wanted else {}
    if set(found) != wanted:
        message = _("Choose among the opinions of this consultation.")
        raise ValidationFailed(message, {"opinion_ids": [message]})
    current = {o.id for o in item.opinions}
    if current == wanted:
        return item
    db.session.execute(delete(item_opinion).where(item_opinion.c.item_id == item.id))
    if wanted:
        db.session.execute(item_opinion.insert(),
                           [{"item_id": item.id, "opinion_id": i} for i in sorted(wanted)])
    db.session.flush()
    db.session.expire(item, ["opinions"])
    audit.record(actor, "consultation.item_opinions_set", item, {
        "number": item.number, "added": sorted(wanted - current),
        "removed": sorted(current - wanted), "count": len(wanted)})
    return item


# --- reading ----------------------------------------------------------------------------------


def get_opinion_or_404(consultation: Consultation, opinion_id: int) -> Opinion:
    opinion = db.session.get(Opinion, opinion_id)
    if opinion is None or opinion.consultation_id != consultation.id:
        raise NotFound(_("No such opinion."))
    return opinion


def _support_count() -> ScalarSelect[int]:
    return (select(func.count(OpinionSupport.id))
            .where(OpinionSupport.opinion_id == Opinion.id).correlate(Opinion)
            .scalar_subquery())


# The orders the opinions list offers; merged duplicates always sink to the end.
OPINION_ORDERS: dict[str, Any] = {
    "support": lambda: (_support_count().desc(), Opinion.id),
    "newest": lambda: (Opinion.id.desc(),),
    "oldest": lambda: (Opinion.id,),
}
OPINION_ORDER_LABELS = {
    "support": _l("Most supported first"), "newest": _l("Newest first"),
    "oldest": _l("Oldest first"),
}


def listing(consultation: Consultation, *, category: str | None = None,
            item: Item | None = None, order: str = "support") -> Select[Any]:
    """The consultation's opinions, most supported first (or newest or oldest first, by
    ``order``); merged duplicates sink to the end, withdrawn ones are left out."""
    stmt = (select(Opinion).where(Opinion.consultation_id == consultation.id,
                                  Opinion.withdrawn_at.is_(None))
            .options(selectinload(Opinion.household).selectinload(Household.building),
                     selectinload(Opinion.photo))
            .order_by(Opinion.merged_into_id.isnot(None),
                      *OPINION_ORDERS.get(order, OPINION_ORDERS["support"])()))
    if category:
        stmt = stmt.where(Opinion.category == category)
    if item is not None:
        stmt = stmt.where(Opinion.id.in_(select(item_opinion.c.opinion_id)
                                         .where(item_opinion.c.item_id == item.id)))
    return stmt


def support_counts(opinion_ids: Iterable[int]) -> dict[int, int]:
    ids = list(opinion_ids)
    if not ids:
        return {}
    rows = db.session.execute(select(OpinionSupport.opinion_id, func.count(OpinionSupport.id))
                              .where(OpinionSupport.opinion_id.in_(ids))
                              .group_by(OpinionSupport.opinion_id))
    return {opinion_id: n for opinion_id, n in rows}


def supported_by(household: Household | None, opinion_ids: Iterable[int]) -> set[int]:
    """Which of these opinions the household has supported."""
    ids = list(opinion_ids)
    if household is None or not ids:
        return set()
    return set(db.session.scalars(select(OpinionSupport.opinion_id).where(
        OpinionSupport.household_id == household.id, OpinionSupport.opinion_id.in_(ids))))


def own_opinions(consultation: Consultation, household: Household) -> list[Opinion]:
    """The household's own opinions in this consultation (not withdrawn), oldest first."""
    return list(db.session.scalars(select(Opinion).where(
        Opinion.consultation_id == consultation.id, Opinion.household_id == household.id,
        Opinion.withdrawn_at.is_(None)).order_by(Opinion.id)))


def own_supports(consultation: Consultation, household: Household) -> list[Opinion]:
    """The opinions of this consultation the household supports (not withdrawn ones)."""
    return list(db.session.scalars(
        select(Opinion).join(OpinionSupport, OpinionSupport.opinion_id == Opinion.id)
        .where(Opinion.consultation_id == consultation.id, Opinion.withdrawn_at.is_(None),
               OpinionSupport.household_id == household.id).order_by(Opinion.id)))


def authors(user_ids: Iterable[int | None]) -> dict[int, User]:
    """Who entered these records (for committee and supervisors), by user id."""
    ids = {i for i in user_ids if i is not None}
    if not ids:
        return {}
    return {u.id: u for u in db.session.scalars(select(User).where(User.id.in_(ids)))}


def author(user_id: int | None) -> User | None:
    """Who entered one record (None: nobody recorded, e.g. a household's own)."""
    return db.session.get(User, user_id) if user_id is not None else None


def merged_here(opinion: Opinion) -> list[int]:
    """The ids of the duplicates merged into this opinion."""
    return list(db.session.scalars(select(Opinion.id).where(
        Opinion.merged_into_id == opinion.id).order_by(Opinion.id)))


def item_choices(consultation: Consultation) -> list[tuple[Opinion, int]]:
    """The opinions an item may come from (no merged duplicates), by category and support."""
    count = _support_count()
    rows = db.session.execute(
        select(Opinion, count).where(Opinion.consultation_id == consultation.id,
                                     Opinion.merged_into_id.is_(None),
                                     Opinion.withdrawn_at.is_(None))
        .options(selectinload(Opinion.household).selectinload(Household.building))
        .order_by(Opinion.category, count.desc(), Opinion.id)).all()
    return [(opinion, n) for opinion, n in rows]


@dataclass(frozen=True)
class CategoryRow:
    category: str
    label: str
    opinions: int
    supports: int


@dataclass(frozen=True)
class BuildingRow:
    building: str  # "" for opinions without a household
    opinions: int
    households: int


@dataclass(frozen=True)
class Summary:
    by_category: list[CategoryRow]
    by_building: list[BuildingRow]
    received: int
    merged: int
    supports: int
    households: int


def summary(consultation: Consultation) -> Summary:
    """Counts by category (merged duplicates left out, their supports moved) and by building
    (every opinion received, and how many households gave one); withdrawn opinions count
    nowhere."""
    open_rows = db.session.execute(
        select(Opinion.category, func.count(func.distinct(Opinion.id)),
               func.count(OpinionSupport.id))
        .outerjoin(OpinionSupport, OpinionSupport.opinion_id == Opinion.id)
        .where(Opinion.consultation_id == consultation.id, Opinion.merged_into_id.is_(None),
               Opinion.withdrawn_at.is_(None))
        .group_by(Opinion.category)).all()
    counts = {category: (n, s) for category, n, s in open_rows}
    by_category = [CategoryRow(c.value, str(CATEGORY_LABELS[c]), *counts[c.value])
                   for c in Category if c.value in counts]
    by_category.sort(key=lambda r: (-r.opinions, -r.supports))
    building_rows = db.session.execute(
        select(Building.name, Building.sort_key, func.count(Opinion.id),
               func.count(func.distinct(Opinion.household_id)))
        .select_from(Opinion)
        .outerjoin(Household, Household.id == Opinion.household_id)
        .outerjoin(Building, Building.id == Household.building_id)
        .where(Opinion.consultation_id == consultation.id, Opinion.withdrawn_at.is_(None))
        .group_by(Building.id, Building.name, Building.sort_key)).all()
    by_building = [BuildingRow(name or "", n, households) for name, _key, n, households
                   in sorted(building_rows, key=lambda r: (r[0] is None, r[1] or ""))]
    totals = db.session.execute(
        select(func.count(Opinion.id), func.count(Opinion.merged_into_id),
               func.count(func.distinct(Opinion.household_id)))
        .where(Opinion.consultation_id == consultation.id,
               Opinion.withdrawn_at.is_(None))).one()
    supports = sum(r.supports for r in by_category)
    return Summary(by_category, by_building, received=totals[0], merged=totals[1],
                   supports=supports, households=totals[2])

