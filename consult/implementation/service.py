"""Implementation (实施) and evaluation (群众评判): progress entries with photos, the item
checklist (清单销号), supervisors' inspection notes, the content of the result notice, and the
households' ratings of the works.

Every function flushes (never commits), takes the acting user explicitly, checks the stage and
records its audit event. Stages are never set here: that is ``workflow.apply``'s job.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from flask import current_app
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import func, select
from sqlalchemy.orm import selectinload
from werkzeug.datastructures import FileStorage

from consult.audit import service as audit
from consult.audit.actions import describe, describe_kinds, describe_objects
from consult.ballots import service as ballots
from consult.ballots.models import RollEntry
from consult.ballots.tally import largest_remainder
from consult.consultations import service as consultations
from consult.consultations.models import Consultation, Item
from consult.consultations.states import Stage, stage_label
from consult.core.database import insert_or_lock
from consult.core.errors import Conflict, ValidationFailed
from consult.core.models import utcnow
from consult.core.validation import enum_member, field_text
from consult.extensions import db
from consult.implementation.models import (
    RATING_LABELS,
    Evaluation,
    Inspection,
    ProgressEntry,
    Rating,
)
from consult.notices import service as notices
from consult.notices.models import Notice, NoticeKind
from consult.registry.models import Household
from consult.uploads import service as uploads
from consult.uploads.models import Attachment

describe({
    "implementation.progress_added": _l("Progress recorded"),
    "implementation.item_completed": _l("Item ticked off"),
    "implementation.item_corrected": _l("Ticked-off item corrected"),
    "implementation.inspection_added": _l("Inspection note added"),
    "implementation.evaluated": _l("Works rated"),
    "implementation.evaluation_changed": _l("Rating of the works changed"),
}, kind="implementation")
describe_kinds({"implementation": _l("Implementation")})
describe_objects({
    "progress_entry": _l("Progress entry"),
    "inspection": _l("Inspection note"),
    "evaluation": _l("Rating of the works"),
})

MAX_PHOTOS = 6
MAX_NOTE_LENGTH = 2000
MAX_INSPECTION_LENGTH = 2000
MAX_COMMENT_LENGTH = 500
NOT_RATED = "not_rated"

# Stages after which the works page has something to show.
_WORKS_STAGES = frozenset({Stage.IMPLEMENTING, Stage.RESULT_PUBLIC})
_INSPECTION_STAGES = frozenset({Stage.IMPLEMENTING, Stage.RESULT_PUBLIC})


# --- stages -----------------------------------------------------------------------------------


def works_started(consultation: Consultation) -> bool:
    """Whether the works began: implementing, result published, or closed after the result."""
    stage = consultation.stage_enum
    if stage in _WORKS_STAGES:
        return True
    return stage is Stage.CLOSED and notices.current_notice(
        consultation, NoticeKind.RESULT) is not None


def check_works_started(consultation: Consultation) -> None:
    if not works_started(consultation):
        raise Conflict(_("The works of this consultation have not started yet."))


def check_logging_open(consultation: Consultation) -> None:
    """Progress and ticks are recorded only while the works are under way."""
    if consultation.stage != Stage.IMPLEMENTING:
        raise Conflict(_("Progress and ticks can only be recorded while the works are under "
                         "way (now: %(stage)s).",
                         stage=stage_label(consultation.stage)))


def check_inspection_open(consultation: Consultation) -> None:
    if consultation.stage_enum not in _INSPECTION_STAGES:
        raise Conflict(_("Inspection notes can be added while the works are under way or their "
                         "result is published (now: %(stage)s).",
                         stage=stage_label(consultation.stage)))


# --- helpers ----------------------------------------------------------------------------------


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def implementable_items(consultation: Consultation) -> list[Item]:
    """The items to be implemented (they passed the vote, or all of a survey): the checklist."""
    tally = ballots.frozen_tally(consultation)
    if tally is None:
        return []
    passed = {item["number"] for item in tally["items"] if item["passed"] is not False}
    return [item for item in consultation.items if item.number in passed]


def _implementable_item(consultation: Consultation, item_id: int | None, field: str
                        ) -> Item | None:
    """None for the whole works, else an item of this consultation that is to be implemented."""
    if not item_id:
        return None
    for item in implementable_items(consultation):
        if item.id == item_id:
            return item
    message = _("Choose one of the items that are being implemented.")
    raise ValidationFailed(message, {field: [message]})


def chosen_files(files: Iterable[FileStorage | None] | FileStorage | None) -> list[FileStorage]:
    """The files actually chosen in a form (a browser sends an empty part when there is none)."""
    if files is None:
        return []
    if isinstance(files, FileStorage):
        files = [files]
    return [f for f in files if f is not None and f.filename]


def check_photos(files: Sequence[FileStorage], field: str, limit: int = MAX_PHOTOS) -> None:
    """Check every photo (count, size, real type) before anything is stored.

    Raises ValidationFailed naming each bad file.
    """
    if len(files) > limit:
        message = _("At most %(n)s photos at a time.", n=limit)
        raise ValidationFailed(message, {field: [message]})
    max_bytes = int(current_app.config["UPLOAD_MAX_BYTES"])
    problems = []
    for upload in files:
        data = upload.stream.read(max_bytes + 1)
        upload.stream.seek(0)
        name = upload.filename or ""
        if not data:
            problems.append(_("%(name)s: the file is empty.", name=name))
        elif len(data) > max_bytes:
            problems.append(_("%(name)s: the file is larger than %(mb)s MB.", name=name,
                              mb=max_bytes // (1024 * 1024)))
        elif uploads.sniff(data) not in uploads.IMAGE_TYPES:
            problems.append(_("%(name)s is not a photo: upload JPEG, PNG or WebP pictures.",
                              name=name))
    if problems:
        raise ValidationFailed(" ".join(problems), {field: problems})


def _store_photos(actor: Any, consultation: Consultation, files: Sequence[FileStorage],
                  field: str) -> list[Attachment]:
    checked = []
    for upload in files:  # every photo is checked before any is written
        try:
            checked.append(uploads.check(upload, images_only=True))
        except ValidationFailed as exc:
            message = f"{upload.filename}: {exc.message}"
            raise ValidationFailed(message, {field: [message]}) from exc
    return [uploads.save(actor, c, consultation=consultation) for c in checked]


# --- progress ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class ProgressData:
    item_id: int | None
    percent: int
    spend_fen: int
    note: str
    is_final: bool


def progress_data(*, item_id: int | None, percent: str | int | None, spend: str | None,
                  note: str | None, is_final: bool) -> ProgressData:
    """Validate a progress entry's fields; raises ValidationFailed per field."""
    errors: dict[str, list[str]] = {}
    text = str(percent if percent is not None else "").strip().removesuffix("%").strip()
    value = int(text) if text.isdecimal() and len(text) <= 3 else -1
    if not 0 <= value <= 100:
        errors["percent"] = [_("The progress is a whole number from 0 to 100.")]
    spend_fen = 0
    try:
        spend_fen = consultations.parse_money(spend, _("The amount spent"))
    except ValueError as exc:
        errors["spend"] = [str(exc)]
    clean_note = ""
    try:
        clean_note = field_text(note, field="note", what=_("The note"),
                                max_length=MAX_NOTE_LENGTH, multiline=True)
    except ValidationFailed as exc:
        errors.update(exc.errors)
    if is_final and not errors and (item_id or value != 100):
        errors["is_final"] = [_("The final report concerns the whole works at 100 %.")]
    if errors:
        raise ValidationFailed(_("Please correct the marked fields."), errors)
    return ProgressData(item_id or None, value, spend_fen, clean_note, bool(is_final))


def add_progress(actor: Any, consultation: Consultation, data: ProgressData,
                 photos: Iterable[FileStorage] | None = (), now: datetime | None = None
                 ) -> ProgressEntry:
    """Record how far the works are and what was spent since the previous entry, with up to
    six photos. Every photo is checked before anything is stored."""
    check_logging_open(consultation)
    item = _implementable_item(consultation, data.item_id, "item_id")
    files = chosen_files(photos)
    check_photos(files, "photos")
    stored = _store_photos(actor, consultation, files, "photos")
    entry = ProgressEntry(consultation_id=consultation.id, item_id=item.id if item else None,
                          percent=data.percent, spend_fen=data.spend_fen, note=data.note,
                          is_final=data.is_final, author_id=getattr(actor, "id", None),
                          created_at=now or utcnow())
    entry.photos.extend(stored)
    db.session.add(entry)
    db.session.flush()
    audit.record(actor, "implementation.progress_added", entry, {
        "consultation_id": consultation.id, "item": item.number if item else None,
        "percent": data.percent, "spend_fen": data.spend_fen, "is_final": data.is_final,
        "photos": [a.id for a in stored], "note_length": len(data.note)})
    return entry


def progress_query(consultation: Consultation) -> Any:
    """Progress entries, newest first, with their photos and items."""
    return (select(ProgressEntry)
            .options(selectinload(ProgressEntry.photos), selectinload(ProgressEntry.item))
            .where(ProgressEntry.consultation_id == consultation.id)
            .order_by(ProgressEntry.created_at.desc(), ProgressEntry.id.desc()))


def overall_percent(consultation: Consultation) -> int | None:
    """The progress of the whole works: the latest entry not about a single item."""
    return db.session.scalar(
        select(ProgressEntry.percent)
        .where(ProgressEntry.consultation_id == consultation.id,
               ProgressEntry.item_id.is_(None))
        .order_by(ProgressEntry.created_at.desc(), ProgressEntry.id.desc()).limit(1))


def item_percents(consultation: Consultation) -> dict[int, int]:
    """The latest progress per item (item id → percent)."""
    latest: dict[int, int] = {}
    rows = db.session.execute(
        select(ProgressEntry.item_id, ProgressEntry.percent)
        .where(ProgressEntry.consultation_id == consultation.id,
               ProgressEntry.item_id.isnot(None))
        .order_by(ProgressEntry.created_at, ProgressEntry.id))
    for item_id, percent in rows:
        if item_id is not None:  # the query leaves out the entries of no item
            latest[item_id] = percent
    return latest


def item_spends(consultation: Consultation) -> dict[int, int]:
    """What was spent per item (item id → 分), from the progress entries about one item."""
    rows = db.session.execute(
        select(ProgressEntry.item_id, func.sum(ProgressEntry.spend_fen))
        .where(ProgressEntry.consultation_id == consultation.id,
               ProgressEntry.item_id.isnot(None))
        .group_by(ProgressEntry.item_id))
    return {item_id: int(total or 0) for item_id, total in rows if item_id is not None}


def total_spent(consultation: Consultation) -> int:
    return int(db.session.scalar(
        select(func.coalesce(func.sum(ProgressEntry.spend_fen), 0))
        .where(ProgressEntry.consultation_id == consultation.id)) or 0)


# --- the checklist (清单销号) ------------------------------------------------------------------


def check_item_can_be_ticked(consultation: Consultation, item: Item) -> None:
    check_logging_open(consultation)
    if item not in implementable_items(consultation):
        raise Conflict(_("Item %(n)s is not among the items to implement, so it cannot be "
                         "ticked off.", n=item.number))


def final_cost(text: str | None) -> int:
    """The final cost in yuan as typed → 分; required (0 is a valid cost)."""
    if not (text or "").strip():
        message = _("Give the final cost (0 if it cost nothing).")
        raise ValidationFailed(message, {"final_cost": [message]})
    try:
        return consultations.parse_money(text, _("The final cost"))
    except ValueError as exc:
        raise ValidationFailed(str(exc), {"final_cost": [str(exc)]}) from None


def complete_item(actor: Any, item: Item, final_cost_fen: int, note: str | None = "",
                  now: datetime | None = None) -> Item:
    """Tick an item off with its final cost, or correct an earlier tick."""
    consultation = item.consultation
    check_item_can_be_ticked(consultation, item)
    if not 0 <= final_cost_fen <= consultations.MAX_COST_FEN:
        message = _("The final cost is out of range.")
        raise ValidationFailed(message, {"final_cost": [message]})
    note = field_text(note, field="note", what=_("The note"), max_length=MAX_NOTE_LENGTH,
                      multiline=True)
    if item.completed_at is None:
        item.completed_at = now or utcnow()
        item.completed_by_id = getattr(actor, "id", None)
        item.final_cost_fen = final_cost_fen
        item.completion_note = note
        db.session.flush()
        audit.record(actor, "implementation.item_completed", item, {
            "consultation_id": consultation.id, "number": item.number,
            "final_cost_fen": final_cost_fen, "estimated_cost_fen": item.estimated_cost_fen})
        return item
    if (item.final_cost_fen, item.completion_note) == (final_cost_fen, note):
        return item
    before = item.final_cost_fen
    note_changed = item.completion_note != note
    item.final_cost_fen = final_cost_fen
    item.completion_note = note
    db.session.flush()
    audit.record(actor, "implementation.item_corrected", item, {
        "consultation_id": consultation.id, "number": item.number,
        "final_cost_fen": {"from": before, "to": final_cost_fen}, "note_changed": note_changed})
    return item


@dataclass(frozen=True)
class Difference:
    """How far an amount is from its estimate: in 分 (positive: over) and in percent of the
    estimate (one decimal; None when the estimate is 0)."""

    fen: int
    percent: Decimal | None

    @property
    def over(self) -> bool:
        return self.fen > 0

    @property
    def amount_fen(self) -> int:
        return abs(self.fen)

    @property
    def abs_percent(self) -> Decimal | None:
        return None if self.percent is None else abs(self.percent)


def difference(amount_fen: int, estimate_fen: int) -> Difference | None:
    """``amount_fen`` against ``estimate_fen``; None when they are equal."""
    if amount_fen == estimate_fen:
        return None
    diff = amount_fen - estimate_fen
    percent = None
    if estimate_fen:
        percent = (Decimal(diff) * 100 / Decimal(estimate_fen)).quantize(
            Decimal("0.1"), rounding=ROUND_HALF_UP)
    return Difference(diff, percent)


@dataclass(frozen=True)
class ChecklistRow:
    item: Item
    implemented: bool
    percent: int | None  # the latest progress entry for this item, if any
    spent_fen: int = 0   # the spends of the progress entries about this item

    @property
    def done(self) -> bool:
        return self.item.completed_at is not None

    @property
    def final_difference(self) -> Difference | None:
        """How far the final cost of a ticked-off item is from its estimate (None: equal)."""
        if not self.done or self.item.final_cost_fen is None:
            return None
        return difference(self.item.final_cost_fen, self.item.estimated_cost_fen)

    @property
    def overspent(self) -> Difference | None:
        """What was spent on the item beyond its estimate, if more was spent."""
        found = difference(self.spent_fen, self.item.estimated_cost_fen)
        return found if found is not None and found.over else None


def checklist(consultation: Consultation) -> list[ChecklistRow]:
    """Every item, whether it is to be implemented, its latest progress and its spends."""
    planned = {item.id for item in implementable_items(consultation)}
    percents = item_percents(consultation)
    spends = item_spends(consultation)
    return [ChecklistRow(item, item.id in planned, percents.get(item.id),
                         spends.get(item.id, 0))
            for item in consultation.items]


@dataclass(frozen=True)
class ChecklistProgress:
    """The progress the checklist shows: items ticked off of those to implement."""

    done: int
    total: int

    @property
    def percent(self) -> int:
        return self.done * 100 // self.total if self.total else 0


def checklist_progress(rows: Sequence[ChecklistRow]) -> ChecklistProgress:
    """How many of the items to implement are ticked off."""
    planned = [row for row in rows if row.implemented]
    return ChecklistProgress(sum(1 for row in planned if row.done), len(planned))


def has_final_report(consultation: Consultation) -> bool:
    """Whether the final progress report (the completion report) was recorded."""
    return db.session.scalar(select(ProgressEntry.id).where(
        ProgressEntry.consultation_id == consultation.id,
        ProgressEntry.is_final.is_(True)).limit(1)) is not None


# --- inspections ------------------------------------------------------------------------------


def add_inspection(actor: Any, consultation: Consultation, text: str | None,
                   item_id: int | None = None, photo: FileStorage | None = None,
                   now: datetime | None = None) -> Inspection:
    """A supervisor's inspection note, optionally about one item and with one photo."""
    check_inspection_open(consultation)
    errors: dict[str, list[str]] = {}
    clean = ""
    try:
        clean = field_text(text, field="text", what=_("The inspection note"),
                           max_length=MAX_INSPECTION_LENGTH, required=True, multiline=True)
    except ValidationFailed as exc:
        errors.update(exc.errors)
    item = None
    try:
        item = _implementable_item(consultation, item_id, "item_id")
    except ValidationFailed as exc:
        errors.update(exc.errors)
    files = chosen_files(photo)
    try:
        check_photos(files, "photo", limit=1)
    except ValidationFailed as exc:
        errors.update(exc.errors)
    if errors:
        raise ValidationFailed(_("Please correct the marked fields."), errors)
    stored = _store_photos(actor, consultation, files, "photo")
    inspection = Inspection(consultation_id=consultation.id, item_id=item.id if item else None,
                            text=clean, photo_id=stored[0].id if stored else None,
                            author_id=getattr(actor, "id", None), created_at=now or utcnow())
    db.session.add(inspection)
    db.session.flush()
    audit.record(actor, "implementation.inspection_added", inspection, {
        "consultation_id": consultation.id, "item": item.number if item else None,
        "photo": inspection.photo_id, "length": len(clean)})
    return inspection


def inspections(consultation: Consultation) -> list[Inspection]:
    return list(db.session.scalars(
        select(Inspection).options(selectinload(Inspection.item))
        .where(Inspection.consultation_id == consultation.id)
        .order_by(Inspection.created_at.desc(), Inspection.id.desc())))


# --- the result notice ------------------------------------------------------------------------


@dataclass(frozen=True)
class Totals:
    estimated_fen: int  # the items to implement
    final_fen: int      # the final costs of the items ticked off
    spent_fen: int      # the spends of every progress entry
    done_estimated_fen: int = 0  # the estimates of the items ticked off

    @property
    def overspent(self) -> Difference | None:
        """Spending beyond the estimate of the works, if more was spent."""
        found = difference(self.spent_fen, self.estimated_fen)
        return found if found is not None and found.over else None

    @property
    def final_difference(self) -> Difference | None:
        """The final costs of the items ticked off against their estimates (None: equal)."""
        return difference(self.final_fen, self.done_estimated_fen)


def totals(consultation: Consultation) -> Totals:
    planned = implementable_items(consultation)
    return Totals(
        estimated_fen=sum(item.estimated_cost_fen for item in planned),
        final_fen=sum(item.final_cost_fen or 0 for item in planned
                      if item.completed_at is not None),
        spent_fen=total_spent(consultation),
        done_estimated_fen=sum(item.estimated_cost_fen for item in planned
                               if item.completed_at is not None))


def result_summary(consultation: Consultation) -> dict[str, Any]:
    """What the result notice (实施结果公示) shows, as JSON-serialisable values.

    Frozen by ``notices.publish`` when the result is published. Names no resident and no
    author, and carries no phone number.
    """
    planned = {item.id for item in implementable_items(consultation)}
    sums = totals(consultation)
    entries = list(db.session.scalars(
        select(ProgressEntry).options(selectinload(ProgressEntry.photos),
                                      selectinload(ProgressEntry.item))
        .where(ProgressEntry.consultation_id == consultation.id)
        .order_by(ProgressEntry.created_at, ProgressEntry.id)))
    notes = db.session.scalars(
        select(Inspection).options(selectinload(Inspection.item))
        .where(Inspection.consultation_id == consultation.id)
        .order_by(Inspection.created_at, Inspection.id))
    return {
        "kind": NoticeKind.RESULT.value,
        **notices.notice_heading(consultation),
        "items": [{
            "number": item.number, "title": item.title, "implemented": item.id in planned,
            "estimated_cost_fen": item.estimated_cost_fen,
            "final_cost_fen": item.final_cost_fen, "completed_at": _iso(item.completed_at),
            "completion_note": item.completion_note,
        } for item in consultation.items],
        "totals": {"estimated_fen": sums.estimated_fen, "final_fen": sums.final_fen,
                   "spent_fen": sums.spent_fen},
        "percent": overall_percent(consultation),
        "progress": [{
            "date": _iso(entry.created_at), "item": entry.item.number if entry.item else None,
            "percent": entry.percent, "spend_fen": entry.spend_fen, "note": entry.note,
            "is_final": entry.is_final, "photos": [photo.id for photo in entry.photos],
        } for entry in entries],
        "inspections": [{
            "date": _iso(note.created_at), "item": note.item.number if note.item else None,
            "text": note.text, "photo": note.photo_id,
        } for note in notes],
    }


# --- evaluation (群众评判) --------------------------------------------------------------------


def result_notice(consultation: Consultation) -> Notice | None:
    return notices.current_notice(consultation, NoticeKind.RESULT)


def evaluation_open(consultation: Consultation, now: datetime | None = None) -> bool:
    """Households rate the works while the result notice is up."""
    if consultation.stage != Stage.RESULT_PUBLIC:
        return False
    notice = result_notice(consultation)
    return notice is not None and notices.in_period(notice, now or utcnow())


def check_evaluation_open(consultation: Consultation, now: datetime) -> None:
    if consultation.stage != Stage.RESULT_PUBLIC:
        raise Conflict(_("The works can be rated once their result is published, while the "
                         "result notice is up."))
    notice = result_notice(consultation)
    if notice is None or not notices.in_period(notice, now):
        if notice is not None and now < notice.published_at:
            raise Conflict(_("The result notice is not up yet."))
        raise Conflict(_("The rating closed with the end of the result notice's publicity "
                         "period."))


def evaluation_of(consultation: Consultation, household: Household) -> Evaluation | None:
    return db.session.scalar(select(Evaluation).where(
        Evaluation.consultation_id == consultation.id,
        Evaluation.household_id == household.id))


def evaluate(actor: Any, consultation: Consultation, household: Household, rating: str | None,
             comment: str | None = "", now: datetime | None = None) -> Evaluation:
    """A household's rating of the works; a later rating replaces the earlier one while the
    result notice is up."""
    now = now or utcnow()
    check_evaluation_open(consultation, now)
    if not consultations.household_in_scope(consultation, household):
        raise Conflict(_("This household is not among those this consultation concerns."))
    try:
        chosen = enum_member(Rating, rating)
    except ValueError:
        message = _("Choose how satisfied you are.")
        raise ValidationFailed(message, {"rating": [message]}) from None
    comment = field_text(comment, field="comment", what=_("The comment"),
                         max_length=MAX_COMMENT_LENGTH, multiline=True)
    # Concurrent first ratings of one household queue on the unique key instead of failing.
    evaluation, created = insert_or_lock(
        Evaluation, {"consultation_id": consultation.id, "household_id": household.id},
        {"rating": chosen.value, "comment": comment, "created_at": now, "updated_at": now})
    data: dict[str, Any] = {"consultation_id": consultation.id, "household_id": household.id}
    if created:
        audit.record(actor, "implementation.evaluated", evaluation,
                     {**data, "rating": chosen.value, "comment": bool(comment)},
                     compound_id=consultation.compound_id)
        return evaluation
    if (evaluation.rating, evaluation.comment) == (chosen.value, comment):
        return evaluation
    before = evaluation.rating
    comment_changed = evaluation.comment != comment
    evaluation.rating = chosen.value
    evaluation.comment = comment
    evaluation.updated_at = now
    db.session.flush()
    audit.record(actor, "implementation.evaluation_changed", evaluation,
                 {**data, "rating": {"from": before, "to": chosen.value},
                  "comment_changed": comment_changed},
                 compound_id=consultation.compound_id)
    return evaluation


def evaluation_tally(consultation: Consultation) -> dict[str, Any]:
    """Households per rating, households on the latest roll that did not rate, and
    percentages of all of them (largest remainder, one decimal, summing to 100.0)."""
    counts: dict[str, int] = {rating.value: 0 for rating in Rating}
    for rating, n in db.session.execute(
            select(Evaluation.rating, func.count(Evaluation.id))
            .where(Evaluation.consultation_id == consultation.id)
            .group_by(Evaluation.rating)):
        counts[rating] = n
    roll = ballots.roll_totals(consultation).households
    rated_on_roll = db.session.scalar(
        select(func.count(Evaluation.id))
        .join(RollEntry, (RollEntry.household_id == Evaluation.household_id)
              & (RollEntry.consultation_id == Evaluation.consultation_id))
        .where(Evaluation.consultation_id == consultation.id,
               RollEntry.round == consultation.round)) or 0
    counts[NOT_RATED] = max(roll - rated_on_roll, 0)
    total = sum(counts.values())
    rated = total - counts[NOT_RATED]
    percentages = largest_remainder(counts, total)
    return {
        "counts": counts,
        "rated": rated,
        "roll_households": roll,
        "total": total,
        "percentages": {key: str(value) for key, value in percentages.items()},
    }


def evaluation_comments(consultation: Consultation) -> list[tuple[Evaluation, Household]]:
    """The ratings that came with a comment, newest first, for the committee and supervisors."""
    rows = db.session.execute(
        select(Evaluation, Household).join(Household, Household.id == Evaluation.household_id)
        .where(Evaluation.consultation_id == consultation.id, Evaluation.comment != "")
        .order_by(Evaluation.updated_at.desc(), Evaluation.id.desc()))
    return [(evaluation, household) for evaluation, household in rows]


def rating_label(value: str) -> str:
    """The translated label of a rating value (or "not rated")."""
    if value == NOT_RATED:
        return _("Not rated")
    return str(RATING_LABELS[Rating(value)])
