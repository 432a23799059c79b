"""Registry operations. Every function flushes (never commits) and records its audit event."""

from __future__ import annotations

import hashlib
import json
import logging
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from flask_babel import force_locale, get_locale, ngettext
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import Select, and_, func, literal, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import joinedload

from consult.audit import service as audit
from consult.audit.actions import describe, describe_kinds, describe_objects
from consult.core import sorting
from consult.core.database import affected_rows, intend_write, lock_row, reading, table_of
from consult.core.errors import CellError, Conflict, ImportRejected, NotFound, ValidationFailed
from consult.core.models import UTCDateTime, utcnow
from consult.core.policy import can
from consult.core.sorting import Sort
from consult.core.tabular import (
    Column,
    Table,
    check_header,
    read_table,
    write_csv,
    write_xlsx,
)
from consult.core.text import natural_key, strip_suffix
from consult.core.validation import clean_text
from consult.extensions import db
from consult.registry.models import (
    IMPORT_JOB_STALLED_AFTER,
    Building,
    Community,
    Compound,
    Household,
    ImportJob,
    Relation,
    Resident,
    StagedHousehold,
    household_sort_key,
)

log = logging.getLogger(__name__)

describe({
    "registry.community.created": _l("Community created"),
    "registry.compound.created": _l("Compound created"),
    "registry.building.created": _l("Building created"),
    "registry.building.renamed": _l("Building renamed"),
    "registry.household.created": _l("Household created"),
    "registry.household.updated": _l("Household updated"),
    "registry.households.imported": _l("Households imported"),
    "registry.households.exported": _l("Households exported"),
    "registry.resident.added": _l("Resident added"),
    "registry.resident.updated": _l("Resident updated"),
    "registry.resident.removed": _l("Resident removed"),
}, kind="registry")
describe_kinds({"registry": _l("Registry")})

describe_objects({
    "community": _l("Community"),
    "compound": _l("Compound"),
    "building": _l("Building"),
    "household": _l("Household"),
    "resident": _l("Resident"),
})

MAX_AREA_DM2 = 100_000_00  # 100,000 m²: far above any exclusive part
# Personal fields are named in audit payloads but their values are not copied there: the
# audit trail is meant to be exportable, owner names and phones are not.
PERSONAL_FIELDS = frozenset({"owner_name", "owner_key", "phone"})
_PHONE = re.compile(r"^\+?[\d\s()\-]{5,30}$")


# --- values -----------------------------------------------------------------------------------


def parse_area(text: str) -> int:
    """'85.32' (m², up to two decimals) → 8532 (0.01 m²). Raises ValueError with a message."""
    text = text.strip().replace(",", "").removesuffix("m²").removesuffix("㎡").strip()
    if not text:
        raise ValueError(_("The area is missing."))
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise ValueError(_("“%(value)s” is not a number.", value=text)) from None
    if not value.is_finite():
        raise ValueError(_("“%(value)s” is not a number.", value=text))
    if value <= 0:
        raise ValueError(_("The area must be greater than zero."))
    hundredths = value * 100
    if hundredths != hundredths.to_integral_value():
        raise ValueError(_("Give the area with at most two decimal places."))
    if hundredths > MAX_AREA_DM2:
        raise ValueError(_("The area is implausibly large."))
    return int(hundredths)


def address_for(reader: Any, household: Household) -> str:
    """A household's address as ``reader`` may see it beside what the household wrote (an
    opinion, a comment, an objection, an evaluation).

    In full (building, unit, room) for those who may read the registry of its compound (its
    committee members and supervisors, administrators) and for the household itself; for
    everyone else, visitors and neighbours alike, only its building, so that nobody can tell
    which flat said what.
    """
    if getattr(reader, "household_id", None) == household.id or can(
            reader, "registry.view", household):
        return household.label
    return _("a household of %(building)s", building=household.building.name)


def format_area(area_dm2: int) -> str:
    """8532 → '85.32' (m², exactly two decimals, no rounding)."""
    return f"{area_dm2 // 100}.{area_dm2 % 100:02d}"


def clean_phone(value: str | None) -> str | None:
    value = (value or "").strip()
    if not value:
        return None
    if not _PHONE.match(value) or sum(ch.isdigit() for ch in value) < 5:
        raise ValueError(_("“%(value)s” is not a phone number.", value=value))
    return value


def clean_floor(value: str | int | None) -> int | None:
    if value is None or value == "":
        return None
    text = strip_suffix(str(value), "楼", "层", "F", "f")
    try:
        floor = int(text)
    except ValueError:
        raise ValueError(_("The floor must be a whole number.")) from None
    if not -10 <= floor <= 300:
        raise ValueError(_("The floor must be between -10 and 300."))
    return floor


# Field names for messages, translated only when a message needs one: translating them for
# every row was most of the time a big import took to check.
_UNIT, _ROOM = _l("Unit"), _l("Room")
_OWNER_NAME, _OWNER_KEY = _l("Owner name"), _l("Owner key")


@dataclass(frozen=True)
class HouseholdData:
    """The editable fields of a household, already validated."""

    unit: str
    floor: int | None
    room: str
    area_dm2: int
    owner_name: str
    owner_key: str | None
    phone: str | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "unit": self.unit, "floor": self.floor, "room": self.room,
            "area_dm2": self.area_dm2, "owner_name": self.owner_name,
            "owner_key": self.owner_key, "phone": self.phone,
        }


def household_data(
    *, unit: str | None, floor: str | int | None, room: str | None, area: str | int,
    owner_name: str | None, owner_key: str | None, phone: str | None,
) -> HouseholdData:
    """Validate raw values (area as m² text, or an int of 0.01 m²) into HouseholdData.

    Raises ValidationFailed with a message per field.
    """
    errors: dict[str, list[str]] = {}
    values: dict[str, Any] = {}

    def check(name: str, fn: Callable[[], Any]) -> None:
        try:
            values[name] = fn()
        except ValueError as exc:
            errors.setdefault(name, []).append(str(exc))

    check("unit", lambda: strip_suffix(
        clean_text(unit, max_length=20, required=False, what=_UNIT), "单元"))
    check("floor", lambda: clean_floor(floor))
    check("room", lambda: strip_suffix(
        clean_text(room, max_length=20, required=True, what=_ROOM), "室", "号"))
    check("area_dm2", lambda: area if isinstance(area, int) else parse_area(area))
    check("owner_name", lambda: clean_text(owner_name, max_length=100, required=True,
                                           what=_OWNER_NAME))
    check("owner_key", lambda: clean_text(owner_key, max_length=128, required=False,
                                          what=_OWNER_KEY) or None)
    check("phone", lambda: clean_phone(phone))
    if errors:
        raise ValidationFailed(_("Please correct the marked fields."), errors)
    return HouseholdData(**values)


def _audit_changes(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    """Changed fields for an audit payload; personal values are named but not copied."""
    changes: dict[str, Any] = {}
    for key, new in after.items():
        old = before.get(key)
        if old == new:
            continue
        changes[key] = "changed" if key in PERSONAL_FIELDS else {"from": old, "to": new}
    return changes


# --- structure --------------------------------------------------------------------------------


def create_community(actor: Any, name: str, street: str = "") -> Community:
    """Create a community (社区)."""
    name = clean_name(name, _("Community name"))
    if db.session.scalar(select(Community.id).where(Community.name == name)):
        raise Conflict(_("A community named “%(name)s” already exists.", name=name))
    community = Community(name=name, street=(street or "").strip()[:100])
    db.session.add(community)
    db.session.flush()
    audit.record(actor, "registry.community.created", community,
                 {"name": name, "street": community.street})
    return community


def create_compound(actor: Any, community: Community, name: str, address: str = "") -> Compound:
    """Create a compound (小区) in a community."""
    name = clean_name(name, _("Compound name"))
    exists = db.session.scalar(select(Compound.id).where(
        Compound.community_id == community.id, Compound.name == name))
    if exists:
        raise Conflict(_("“%(name)s” already exists in this community.", name=name))
    compound = Compound(community=community, name=name, address=(address or "").strip()[:200])
    db.session.add(compound)
    db.session.flush()
    audit.record(actor, "registry.compound.created", compound,
                 {"name": name, "community_id": community.id, "address": compound.address})
    return compound


def create_building(actor: Any, compound: Compound, name: str) -> Building:
    """Add a building (楼栋) to a compound."""
    name = clean_name(name, _("Building name"), max_length=50)
    if _building_named(compound.id, name) is not None:
        raise Conflict(_("Building “%(name)s” already exists in this compound.", name=name))
    building = Building(compound=compound, name=name)
    db.session.add(building)
    db.session.flush()
    audit.record(actor, "registry.building.created", building, {"name": name})
    return building


def rename_building(actor: Any, building: Building, name: str) -> Building:
    """Rename a building; households keep their rooms."""
    name = clean_name(name, _("Building name"), max_length=50)
    if name == building.name:
        return building
    if _building_named(building.compound_id, name) is not None:
        raise Conflict(_("Building “%(name)s” already exists in this compound.", name=name))
    old = building.name
    building.rename(name)
    db.session.flush()
    audit.record(actor, "registry.building.renamed", building, {"from": old, "to": name})
    return building


def clean_name(value: str | None, what: str, max_length: int = 100) -> str:
    try:
        return clean_text(value, max_length=max_length, required=True, what=what)
    except ValueError as exc:
        raise ValidationFailed(str(exc), {"name": [str(exc)]}) from None


def _building_named(compound_id: int, name: str) -> Building | None:
    return db.session.scalar(
        select(Building).where(Building.compound_id == compound_id, Building.name == name))


# --- households and residents -----------------------------------------------------------------


def _ensure_room_free(building: Building, data: HouseholdData, exclude_id: int | None) -> None:
    clash = db.session.scalar(select(Household.id).where(
        Household.building_id == building.id, Household.unit == data.unit,
        Household.room == data.room, Household.id != (exclude_id or 0)))
    if clash:
        raise Conflict(_("%(building)s already has unit “%(unit)s”, room “%(room)s”.",
                         building=building.name, unit=data.unit or "-", room=data.room))


def create_household(actor: Any, building: Building, data: HouseholdData) -> Household:
    """Add a household to a building."""
    _ensure_room_free(building, data, None)
    household = Household(building=building, **data.as_dict())
    db.session.add(household)
    db.session.flush()
    audit.record(actor, "registry.household.created", household,
                 _audit_changes({}, data.as_dict()))
    return household


def update_household(actor: Any, household: Household, data: HouseholdData) -> Household:
    """Change a household's fields; records which fields changed."""
    _ensure_room_free(household.building, data, household.id)
    before = {key: getattr(household, key) for key in data.as_dict()}
    changes = _audit_changes(before, data.as_dict())
    if not changes:
        return household
    for key, value in data.as_dict().items():
        setattr(household, key, value)
    household.refresh_sort_key()
    db.session.flush()
    audit.record(actor, "registry.household.updated", household, {"changes": changes})
    return household


def _resident_values(name: str, phone: str | None, relation: str) -> dict[str, Any]:
    errors: dict[str, list[str]] = {}
    values: dict[str, Any] = {}
    try:
        values["name"] = clean_text(name, max_length=100, required=True, what=_("Name"))
    except ValueError as exc:
        errors["name"] = [str(exc)]
    try:
        values["phone"] = clean_phone(phone)
    except ValueError as exc:
        errors["phone"] = [str(exc)]
    if relation not in {r.value for r in Relation}:
        errors["relation"] = [_("Choose a relation from the list.")]
    values["relation"] = relation
    if errors:
        raise ValidationFailed(_("Please correct the marked fields."), errors)
    return values


def add_resident(actor: Any, household: Household, name: str, phone: str | None,
                 relation: str, is_representative: bool) -> Resident:
    """Record a person living in or owning a household."""
    values = _resident_values(name, phone, relation)
    if is_representative:
        _clear_representative(household)
    resident = Resident(household=household, is_representative=is_representative, **values)
    db.session.add(resident)
    db.session.flush()
    audit.record(actor, "registry.resident.added", resident,
                 {"household_id": household.id, "relation": relation,
                  "is_representative": is_representative})
    return resident


def update_resident(actor: Any, resident: Resident, name: str, phone: str | None,
                    relation: str, is_representative: bool) -> Resident:
    """Change a resident's details."""
    values = _resident_values(name, phone, relation)
    if is_representative and not resident.is_representative:
        _clear_representative(resident.household)
    before = {"name": resident.name, "phone": resident.phone, "relation": resident.relation,
              "is_representative": resident.is_representative}
    after = {**values, "is_representative": is_representative}
    for key, value in after.items():
        setattr(resident, key, value)
    db.session.flush()
    changes = _audit_changes(before, after)
    if changes:
        audit.record(actor, "registry.resident.updated", resident, {"changes": changes})
    return resident


def remove_resident(actor: Any, resident: Resident) -> None:
    """Remove a person from a household's list of residents."""
    target = ("resident", resident.id, resident.scope_compound_id)
    household_id = resident.household_id
    resident.household.residents.remove(resident)  # delete-orphan removes the row
    db.session.flush()
    audit.record(actor, "registry.resident.removed", target, {"household_id": household_id})


def _clear_representative(household: Household) -> None:
    for other in household.residents:
        other.is_representative = False


# --- queries ----------------------------------------------------------------------------------


def get_or_404(model: type, object_id: int) -> Any:
    """Load a registry object by id or raise NotFound."""
    obj = db.session.get(model, object_id)
    if obj is None:
        raise NotFound(_("No such record."))
    return obj


def building_of(compound: Compound, building_id: int) -> Building:
    """A building chosen in a form, which must belong to the compound being edited."""
    building = get_or_404(Building, building_id)
    if building.compound_id != compound.id:
        raise NotFound(_("No such record."))
    return building


def communities() -> list[Community]:
    """Every community, by name."""
    return list(db.session.scalars(select(Community).order_by(Community.name)))


def compounds_in_scope(scope: frozenset[int] | None, *, offset: int = 0,
                       limit: int | None = None) -> list[Compound]:
    """Compounds the caller may see (``scope`` None = all), with their communities and grids
    loaded, in order; ``offset`` and ``limit`` select a page of them."""
    stmt = (select(Compound).join(Compound.community)
            .options(joinedload(Compound.community), joinedload(Compound.grid))
            .order_by(Community.name, Compound.name, Compound.id))
    if scope is not None:
        stmt = stmt.where(Compound.id.in_(scope))
    return list(db.session.scalars(stmt.offset(offset).limit(limit)))


def household_counts(compound_ids: Sequence[int]) -> dict[int, tuple[int, int]]:
    """compound id → (households, total area in 0.01 m²)."""
    if not compound_ids:
        return {}
    rows = db.session.execute(
        select(Building.compound_id, func.count(Household.id), func.sum(Household.area_dm2))
        .join(Household.building).where(Building.compound_id.in_(compound_ids))
        .group_by(Building.compound_id)
    ).all()
    return {row[0]: (row[1], int(row[2] or 0)) for row in rows}


# How the households register can be sorted; each key ends with the address as tie-breaker.
HOUSEHOLD_SORTS: dict[str, tuple[Any, ...]] = {
    "address": (Building.sort_key, Household.sort_key),
    "area": (Household.area_dm2, Building.sort_key, Household.sort_key),
    "owner": (Household.owner_name, Building.sort_key, Household.sort_key),
}


def household_search(compound: Compound, q: str = "", building_id: int | None = None,
                     sort: Sort | None = None) -> Select[Household]:
    """Households of a compound, in building/unit/room order (or ``sort``), filtered by a
    search text.

    The text matches a room, a unit, an owner name, an owner key, or the last digits of a
    phone number.
    """
    stmt = sorting.order(
        select(Household).join(Household.building).options(joinedload(Household.building))
        .where(Building.compound_id == compound.id),
        sort or Sort("address"), HOUSEHOLD_SORTS)
    if building_id:
        stmt = stmt.where(Household.building_id == building_id)
    q = (q or "").strip()[:50]
    if q:
        like = f"%{_escape_like(q)}%"
        stmt = stmt.where(or_(
            Household.room.like(like, escape="\\"), Household.unit == q,
            Household.owner_name.like(like, escape="\\"), Household.owner_key == q,
            Household.phone.like(f"%{_escape_like(q)}", escape="\\"),
        ))
    return stmt


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def find_compound(name: str) -> Compound:
    """A compound by its name, or 'community/compound' when the name alone is ambiguous."""
    name = (name or "").strip()
    if "/" in name:
        community_name, compound_name = (p.strip() for p in name.split("/", 1))
        stmt = select(Compound).join(Compound.community).where(
            Community.name == community_name, Compound.name == compound_name)
    else:
        stmt = select(Compound).where(Compound.name == name)
    found = list(db.session.scalars(stmt))
    if not found:
        raise NotFound(_("There is no compound named “%(name)s”.", name=name))
    if len(found) > 1:
        raise ValidationFailed(_("Several communities have a compound named “%(name)s”; write "
                                 "it as “community/compound”.", name=name))
    return found[0]


# --- import and export ------------------------------------------------------------------------

# Headers in English, Simplified or Traditional Chinese.
HOUSEHOLD_COLUMNS = (
    Column("compound", ("compound", "小区", "楼院", "小區", "樓院"), required=False),
    Column("building", ("building", "楼栋", "楼号", "樓棟", "樓號")),
    Column("unit", ("unit", "单元", "單元"), required=False),
    Column("floor", ("floor", "楼层", "樓層"), required=False),
    Column("room", ("room", "房号", "室", "房號")),
    Column("area_m2", ("area_m2", "专有部分面积", "面积", "專有部分面積", "面積")),
    Column("owner_name", ("owner_name", "业主姓名", "业主", "業主姓名", "業主")),
    Column("owner_key", ("owner_key", "业主标识", "证件号", "業主標識", "證件號"),
           required=False),
    Column("phone", ("phone", "联系电话", "电话", "聯絡電話", "聯繫電話", "電話"),
           required=False),
)
EXPORT_HEADERS = {
    "en": [c.key for c in HOUSEHOLD_COLUMNS],
    "zh": ["小区", "楼栋", "单元", "楼层", "房号", "专有部分面积", "业主姓名", "业主标识",
           "联系电话"],
}
_FIELD_COLUMN = {"unit": "unit", "floor": "floor", "room": "room", "area_dm2": "area_m2",
                 "owner_name": "owner_name", "owner_key": "owner_key", "phone": "phone"}
# Rows copied into the staging table per transaction, each of which holds SQLite's write lock
# for a few milliseconds; rows checked between two progress reports.
_STAGE_CHUNK = 1000
_PROGRESS_EVERY = 2000
# Rows of staging deleted per transaction once a job is over.
_DROP_CHUNK = 5000
# What an import changes in a household it matched by building, unit and room.
_UPDATED_COLUMNS = ("floor", "area_dm2", "owner_name", "owner_key", "phone")
# At most this many rows are named when the registry changed under an import.
_CONFLICTS_SHOWN = 500


@dataclass
class ImportSummary:
    """What an import did, per compound name."""

    rows: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    compounds: list[str] = field(default_factory=list)
    buildings_created: list[str] = field(default_factory=list)


def import_report(summary: ImportSummary) -> list[str]:
    """What an import did, in lines for the reader (``flask registry import-households``)."""
    lines = [_("Imported %(rows)s rows: %(created)s new, %(updated)s changed, %(unchanged)s "
               "unchanged.", rows=summary.rows, created=summary.created,
               updated=summary.updated, unchanged=summary.unchanged)]
    if summary.buildings_created:
        lines.append(_("New buildings: %(names)s", names=", ".join(summary.buildings_created)))
    return lines


@dataclass(frozen=True)
class _CompoundRef:
    """A compound as read while the file was checked (plain values: no lazy loads later)."""

    id: int
    name: str


@dataclass
class _Row:
    line: int
    compound: _CompoundRef
    building_name: str
    data: HouseholdData
    building_id: int | None = None  # None: a building this import creates
    household_id: int | None = None  # the household the row updates; None: a new one
    seen_updated_at: datetime | None = None  # that household as it stood when checked
    changed: bool = False


@dataclass
class HouseholdPlan:
    """A households file checked against the registry as it stood: what writing it will do.

    ``buildings`` maps each existing building the rows name to its (compound id, name) when
    the file was checked; ``new_buildings`` are those the import creates.
    """

    filename: str
    sha256: str
    rows: list[_Row]
    buildings: dict[int, tuple[int, str]]
    new_buildings: list[tuple[_CompoundRef, str]]
    building_column: str
    room_column: str
    # compound id → (name, households created/updated/unchanged and buildings created)
    counts: dict[int, tuple[str, dict[str, Any]]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for compound, name in self.new_buildings:
            self._count(compound).setdefault("buildings_created", []).append(name)
        for row in self.rows:
            kind = ("created" if row.household_id is None
                    else "updated" if row.changed else "unchanged")
            self._count(row.compound)[kind] += 1

    def _count(self, compound: _CompoundRef) -> dict[str, Any]:
        counts = {"created": 0, "updated": 0, "unchanged": 0}
        return self.counts.setdefault(compound.id, (compound.name, counts))[1]


def import_households(
    actor: Any,
    data: bytes,
    filename: str,
    *,
    compound: Compound | None = None,
    scope: frozenset[int] | None = None,
    create_buildings: bool = False,
    progress: Callable[[int, int], None] | None = None,
    job: ImportJob | None = None,
) -> ImportSummary:
    """Import a households file, all or nothing, without holding up anybody else's writes.

    Rows are matched to existing households by building, unit and room and updated; other rows
    are created. ``compound`` fills an empty or missing compound column; ``scope`` limits the
    compounds the file may touch (None = any). Every problem in the file is collected and
    raised together as ImportRejected, with nothing written. ``progress(advance, total)`` is
    told how many steps were done since its last call; there are two steps per row (checking,
    then staging).

    Unlike other services this one commits, phase by phase, because one transaction for the
    whole import would hold SQLite's write lock (and so every ballot) for as long as the file
    takes to check and write: seconds for a big file. Instead:

    1. the file is parsed and checked against the registry read in a read transaction
       (``check_households``; no write lock);
    2. the checked rows are copied into ``import_staged_household``, 1,000 per transaction
       (``stage_households``; a few milliseconds of write lock each);
    3. one transaction checks that the households the file depends on have not changed since
       step 1, and moves the rows into ``household`` with ``INSERT … SELECT`` and
       ``UPDATE … FROM`` plus one audit event per compound (``apply_households``).

    Measured on the 2-core development machine (``python -m bench imports``,
    bench/results/imports.md): 100,000 new households are read in 0.7 s and checked in 1.3 s
    without the write lock, staged in 1.1 s by 100 transactions of at most 20 ms each, and
    written by step 3 holding SQLite's write lock for 0.4 s (as much to change all of them, 0.1 s
    when nothing changes). Before, the whole import ran in one transaction: 4.3 s of checking
    and 2.1 s of writing from Python, all under the write lock. On PostgreSQL step 3 lasts about
    2 s but holds the audit chain head, the only lock a ballot meets, for 0.01 s.

    Nothing reaches ``household`` before step 3 commits, so a process that dies at any point
    leaves the registry as it was; ``cleanup_imports`` deletes what it left staged. The job
    (``job``, or one made here) records the import's progress and outcome.
    """
    job = job or _new_job(actor, compound, filename, create_buildings)
    total = 0

    def tick(advance: int) -> None:
        job.done += advance
        db.session.commit()
        if progress:
            progress(advance, total)

    def read_so_far(rows: int) -> None:
        job.done = rows  # rows read so far; the total is not known yet
        db.session.commit()

    try:
        _job_status(job, "checking")
        table = read_table(data, filename, HOUSEHOLD_COLUMNS, progress=read_so_far)
        total = job.total = 2 * len(table.rows)
        job.done = 0
        plan = check_households(table, data, filename, compound=compound, scope=scope,
                                create_buildings=create_buildings, progress=tick)
        del table  # the plan holds what is left to write; a big file's cells can go
        _job_status(job, "writing")
        cleanup_imports()
        stage_households(job, plan, tick)
        summary = apply_households(actor, job, plan)
        db.session.commit()
    except ImportRejected as exc:
        # Refused before anything was written: the transaction under way wrote nothing.
        _job_failed(job, exc.message, exc.errors)
        drop_staged(job.id)
        raise
    except BaseException:
        db.session.rollback()
        failed = db.session.get(ImportJob, job.id) or job
        _job_failed(failed, _("The import failed; nothing was imported. Please try again."), [])
        drop_staged(failed.id)
        raise
    drop_staged(job.id)
    return summary


def _new_job(actor: Any, compound: Compound | None, filename: str,
             create_buildings: bool) -> ImportJob:
    job = ImportJob(compound_id=compound.id if compound is not None else None,
                    filename=filename[:200], create_buildings=create_buildings,
                    locale=str(get_locale() or "zh_Hans"),
                    requested_by_id=getattr(actor, "id", None))
    db.session.add(job)
    db.session.commit()
    return job


def _job_status(job: ImportJob, status: str) -> None:
    job.status = status
    db.session.commit()


def _job_failed(job: ImportJob, message: str, errors: Sequence[CellError]) -> None:
    """Record why a job wrote nothing, with every problem."""
    job.status, job.finished_at, job.data = "failed", utcnow(), None
    job.message = message[:500]
    job.problems = json.dumps([[e.line, e.column, e.message] for e in errors],
                              ensure_ascii=False)
    db.session.commit()


def check_households(
    table: Table, data: bytes, filename: str, *, compound: Compound | None = None,
    scope: frozenset[int] | None = None, create_buildings: bool = False,
    progress: Callable[[int], None] | None = None,
) -> HouseholdPlan:
    """Check every row of a parsed households file against the registry; writes nothing.

    The registry (compounds, buildings and the households of the buildings the file names) is
    read in one read transaction, which holds no write lock; the rows are then checked in
    memory, and ``progress(rows)`` is told how many since its last call. Raises
    ImportRejected with every problem found.
    """
    if compound is None and "compound" not in table.headers:
        raise ImportRejected(_("The file has no compound column; choose the compound."), [
            CellError(1, "compound", _("Required column missing; accepted headers: %(names)s",
                                       names="compound / 小区 / 楼院"))])
    with reading():
        default = _compound_ref(compound) if compound is not None else None
        compounds = _compounds_by_name(table, compound)
        compound_ids = {c.id for c in compounds.values() if c is not None}
        if default is not None:
            compound_ids.add(default.id)
        buildings = {(compound_id, name): building_id for building_id, compound_id, name in
                     db.session.execute(select(Building.id, Building.compound_id, Building.name)
                                        .where(Building.compound_id.in_(compound_ids)))}
        named: set[int] = set()
        for _line, cells in table.rows:
            name = cells.get("compound", "").strip()
            ref = compounds.get(name) if name else default
            building_id = buildings.get((ref.id, cells["building"].strip())) if ref else None
            if building_id is not None:
                named.add(building_id)
        existing = _existing_households(sorted(named))
    rows, errors, new_buildings = _validate_rows(table, default, compounds, buildings,
                                                 existing, scope, create_buildings, progress)
    if errors:
        errors.sort(key=lambda e: e.line)
        raise ImportRejected(
            ngettext("%(num)s problem found; nothing was imported.",
                     "%(num)s problems found; nothing was imported.", len(errors)), errors)
    by_id = {building_id: key for key, building_id in buildings.items()}
    return HouseholdPlan(
        filename=filename, sha256=hashlib.sha256(data).hexdigest(),
        rows=rows, buildings={r.building_id: by_id[r.building_id] for r in rows
                              if r.building_id is not None},
        new_buildings=new_buildings, building_column=table.where("building"),
        room_column=table.where("room"))


def _compound_ref(compound: Compound) -> _CompoundRef:
    return _CompoundRef(compound.id, compound.name)


def _validate_rows(
    table: Table, default: _CompoundRef | None, compounds: dict[str, _CompoundRef | None],
    buildings: dict[tuple[int, str], int], existing: dict[tuple[int, str, str], dict[str, Any]],
    scope: frozenset[int] | None, create_buildings: bool,
    progress: Callable[[int], None] | None,
) -> tuple[list[_Row], list[CellError], list[tuple[_CompoundRef, str]]]:
    errors: list[CellError] = []
    new_buildings: dict[tuple[int, str], _CompoundRef] = {}
    seen: dict[tuple[int | None, str, str, str], int] = {}
    rows: list[_Row] = []
    for done, (line, cells) in enumerate(table.rows, start=1):
        if progress and done % _PROGRESS_EVERY == 0:
            progress(_PROGRESS_EVERY)
        compound = _row_compound(cells, default, compounds, table, line, errors)
        if compound is not None and scope is not None and compound.id not in scope:
            errors.append(CellError(line, table.where("compound"), _(
                "“%(name)s” is outside the compounds assigned to you.", name=compound.name)))
            compound = None
        building_name = cells["building"].strip()
        building_id = None
        if not building_name:
            errors.append(CellError(line, table.where("building"), _("The building is missing.")))
        elif compound is not None:
            building_id = buildings.get((compound.id, building_name))
            if building_id is None and create_buildings:
                new_buildings.setdefault((compound.id, building_name), compound)
            elif building_id is None:
                errors.append(CellError(line, table.where("building"), _(
                    "“%(building)s” is not a building of %(compound)s. Add the building first "
                    "(or allow new buildings).", building=building_name, compound=compound.name)))
        # Duplicates are found on the address alone, so a row with other errors still counts.
        key = (compound.id if compound else None, building_name,
               strip_suffix(cells.get("unit", ""), "单元"),
               strip_suffix(cells.get("room", ""), "室", "号"))
        duplicate_of = seen.setdefault(key, line)
        if duplicate_of != line:
            errors.append(CellError(line, table.where("room"), _(
                "Duplicate of line %(line)s (same building, unit and room).", line=duplicate_of)))
        try:
            data = household_data(
                unit=cells.get("unit"), floor=cells.get("floor"), room=cells.get("room"),
                area=cells.get("area_m2", ""), owner_name=cells.get("owner_name"),
                owner_key=cells.get("owner_key"), phone=cells.get("phone"))
        except ValidationFailed as exc:
            for name, messages in exc.errors.items():
                column = table.where(_FIELD_COLUMN[name])
                errors.extend(CellError(line, column, m) for m in messages)
            continue
        if compound is None or not building_name or duplicate_of != line:
            continue
        row = _Row(line, compound, building_name, data, building_id)
        current = (existing.get((building_id, data.unit, data.room))
                   if building_id is not None else None)
        if current is not None:
            row.household_id, row.seen_updated_at = current["id"], current["updated_at"]
            row.changed = any(current[key] != value for key, value in data.as_dict().items())
        rows.append(row)
    if progress:
        progress(len(table.rows) % _PROGRESS_EVERY)
    return rows, errors, [(ref, name) for (_id, name), ref in new_buildings.items()]


def _compounds_by_name(table: Table, default: Compound | None) -> dict[str, _CompoundRef | None]:
    names = {cells.get("compound", "").strip() for _line, cells in table.rows} - {""}
    found: dict[str, _CompoundRef | None] = {}
    for name in names:
        if default is not None and name in (default.name, default.full_name):
            found[name] = _compound_ref(default)
            continue
        try:
            found[name] = _compound_ref(find_compound(name))
        except (NotFound, ValidationFailed):
            found[name] = None
    return found


def _row_compound(cells: dict[str, str], default: _CompoundRef | None,
                  compounds: dict[str, _CompoundRef | None], table: Table, line: int,
                  errors: list[CellError]) -> _CompoundRef | None:
    name = cells.get("compound", "").strip()
    if not name:
        if default is None:
            errors.append(CellError(line, table.where("compound"), _("The compound is missing.")))
        return default
    compound = compounds.get(name)
    if compound is None:
        errors.append(CellError(line, table.where("compound"), _(
            "There is no compound named “%(name)s” (or the name is ambiguous; write it as "
            "“community/compound”).", name=name)))
        return None
    if default is not None and compound.id != default.id:
        errors.append(CellError(line, table.where("compound"), _(
            "This row is for “%(name)s”, but the import is for “%(chosen)s”.",
            name=name, chosen=default.name)))
        return None
    return compound


def _existing_households(building_ids: list[int]) -> dict[tuple[int, str, str], dict[str, Any]]:
    if not building_ids:
        return {}
    columns = (Household.id, Household.building_id, Household.unit, Household.floor,
               Household.room, Household.area_dm2, Household.owner_name, Household.owner_key,
               Household.phone, Household.updated_at)
    result: dict[tuple[int, str, str], dict[str, Any]] = {}
    for start in range(0, len(building_ids), 500):
        for row in db.session.execute(select(*columns).where(
                Household.building_id.in_(building_ids[start:start + 500]))):
            result[(row.building_id, row.unit, row.room)] = row._asdict()
    return result


def stage_households(job: ImportJob, plan: HouseholdPlan,
                     progress: Callable[[int], None] | None = None) -> None:
    """Copy a checked file's rows into the staging table, committing every 1,000 rows.

    Staged rows are seen by nobody but ``apply_households``; ``progress(rows)`` is called
    before each commit."""
    staged = table_of(StagedHousehold)
    for start in range(0, len(plan.rows), _STAGE_CHUNK):
        chunk = plan.rows[start:start + _STAGE_CHUNK]
        db.session.execute(staged.insert(), [{
            "job_id": job.id, "line": row.line, "compound_id": row.compound.id,
            "building_id": row.building_id, "building_name": row.building_name,
            **row.data.as_dict(), "sort_key": household_sort_key(row.data.unit, row.data.room),
            "household_id": row.household_id, "seen_updated_at": row.seen_updated_at,
            "changed": row.changed} for row in chunk])
        if progress:
            progress(len(chunk))
        db.session.commit()


def apply_households(actor: Any, job: ImportJob, plan: HouseholdPlan) -> ImportSummary:
    """Write a staged import into the registry in one transaction (flushed, not committed).

    Everything the writes depend on is read again first, under the write lock (SQLite) or
    with the households' rows locked (PostgreSQL, ``FOR NO KEY UPDATE``, which a ballot's
    foreign-key check does not wait for): a household the file creates that was added
    meanwhile, one it matched that was changed or removed, a building it creates that now
    exists or one it names that was renamed. Any of those raises ImportRejected naming the
    rows, with nothing written. The audit events come last, so on PostgreSQL the chain head
    (which every write appends to) stays locked only for the end of the transaction.
    """
    lock_row(job)
    if job.status != "writing":
        raise ImportRejected(_("This import was stopped before it was written; nothing was "
                               "imported. Please import the file again."), [])
    staged = table_of(StagedHousehold)
    households = table_of(Household)
    ours = staged.c.job_id == job.id
    if db.session.get_bind().dialect.name == "postgresql":
        db.session.execute(select(households.c.id).where(households.c.id.in_(
            select(staged.c.household_id).where(ours, staged.c.household_id.isnot(None))))
            .with_for_update(key_share=True)).all()
    conflicts = _changed_meanwhile(job, plan)
    if conflicts:
        raise ImportRejected(ngettext(
            "The registry changed while the file was being checked (%(num)s row); nothing "
            "was imported. Please import the file again.",
            "The registry changed while the file was being checked (%(num)s rows); nothing "
            "was imported. Please import the file again.", len(conflicts)), conflicts)

    now = utcnow()
    summary = ImportSummary(rows=len(plan.rows), buildings_created=[
        f"{compound.name} {name}" for compound, name in plan.new_buildings])
    building = table_of(Building)
    try:
        with db.session.begin_nested():
            if plan.new_buildings:
                db.session.execute(building.insert(), [
                    {"compound_id": compound.id, "name": name, "sort_key": natural_key(name),
                     "created_at": now, "updated_at": now}
                    for compound, name in plan.new_buildings])
            columns = ["unit", "floor", "room", "area_dm2", "owner_name", "owner_key", "phone",
                       "sort_key"]
            db.session.execute(households.insert().from_select(
                ["building_id", *columns, "created_at", "updated_at"],
                select(func.coalesce(staged.c.building_id, building.c.id),
                       *(staged.c[name] for name in columns),
                       literal(now, UTCDateTime()), literal(now, UTCDateTime()))
                .select_from(staged.outerjoin(building, and_(
                    staged.c.building_id.is_(None), building.c.compound_id == staged.c.compound_id,
                    building.c.name == staged.c.building_name)))
                .where(ours, staged.c.household_id.is_(None))))
            # A matched household keeps its building, unit and room (and so its sort key):
            # setting only the other columns spares the address indexes.
            db.session.execute(
                update(households).where(households.c.id == staged.c.household_id, ours,
                                         staged.c.changed.is_(True))
                .values({**{name: staged.c[name] for name in _UPDATED_COLUMNS},
                         "updated_at": now}))
    except IntegrityError:
        # PostgreSQL only: a household the file adds was added by someone else meanwhile
        # (SQLite's write lock keeps that out, and the check above caught it).
        raise ImportRejected(_("The registry changed while the file was being written; nothing "
                               "was imported. Please import the file again."), []) from None
    db.session.expire_all()  # bulk statements bypass the identity map

    for compound_id, (name, count) in sorted(plan.counts.items()):
        summary.created += count["created"]
        summary.updated += count["updated"]
        summary.unchanged += count["unchanged"]
        summary.compounds.append(name)
        audit.record(actor, "registry.households.imported", ("compound", compound_id, compound_id),
                     {**count, "file": plan.filename[:200], "sha256": plan.sha256})
    job.status, job.finished_at, job.data, job.done = "done", utcnow(), None, job.total
    job.summary = json.dumps(asdict(summary), ensure_ascii=False)
    db.session.flush()
    return summary


def _changed_meanwhile(job: ImportJob, plan: HouseholdPlan) -> list[CellError]:
    """The rows whose household or building changed since the file was checked."""
    errors: list[CellError] = []
    first_line: dict[tuple[int, str], int] = {}
    for row in plan.rows:
        first_line.setdefault((row.compound.id, row.building_name), row.line)
    now_buildings = {building_id: (compound_id, name) for building_id, compound_id, name in
                     db.session.execute(select(Building.id, Building.compound_id, Building.name)
                                        .where(Building.id.in_(list(plan.buildings))))}
    for building_id, (compound_id, name) in plan.buildings.items():
        if now_buildings.get(building_id) != (compound_id, name):
            errors.append(CellError(first_line[(compound_id, name)], plan.building_column, _(
                "Building “%(name)s” was renamed or removed meanwhile.", name=name)))
    wanted = {(compound.id, name) for compound, name in plan.new_buildings}
    if wanted:
        added_buildings = db.session.execute(
            select(Building.compound_id, Building.name).where(
                Building.compound_id.in_({compound_id for compound_id, _name in wanted}),
                Building.name.in_({name for _compound_id, name in wanted}))).all()
        for compound_id, name in added_buildings:
            if (compound_id, name) in wanted:
                errors.append(CellError(first_line[(compound_id, name)], plan.building_column, _(
                    "Building “%(name)s” was added meanwhile.", name=name)))
    staged = table_of(StagedHousehold)
    households = table_of(Household)
    ours = staged.c.job_id == job.id
    added: Select[int] = (select(staged.c.line).select_from(staged.join(households, and_(
        households.c.building_id == staged.c.building_id, households.c.unit == staged.c.unit,
        households.c.room == staged.c.room))).where(ours, staged.c.household_id.is_(None))
        .order_by(staged.c.line).limit(_CONFLICTS_SHOWN))
    errors.extend(CellError(line, plan.room_column, _(
        "Someone added this household while the file was being checked.")) for line in
        db.session.scalars(added))
    changed: Select[int] = (select(staged.c.line).select_from(staged.outerjoin(
        households, households.c.id == staged.c.household_id))
        .where(ours, staged.c.household_id.isnot(None), or_(
            households.c.id.is_(None), households.c.updated_at != staged.c.seen_updated_at))
        .order_by(staged.c.line).limit(_CONFLICTS_SHOWN))
    errors.extend(CellError(line, plan.room_column, _(
        "Someone changed or removed this household while the file was being checked."))
        for line in db.session.scalars(changed))
    errors.sort(key=lambda e: e.line)
    return errors


def drop_staged(job_id: int) -> None:
    """Delete a job's staged rows, a few thousand per transaction (each committed)."""
    staged = table_of(StagedHousehold)
    while True:
        ids = select(staged.c.id).where(staged.c.job_id == job_id).limit(_DROP_CHUNK)
        deleted = affected_rows(db.session.execute(staged.delete().where(staged.c.id.in_(ids))))
        db.session.commit()
        if not deleted:
            return


def cleanup_imports() -> int:
    """Clear what interrupted imports left behind; returns how many jobs were cleared.

    A job whose process stopped (``ImportJob.stalled``) is marked failed; every job that is
    over loses its uploaded file and its staged rows. Nothing an interrupted job staged was
    ever written to the registry. Runs at the start of every import.
    """
    staged = set(db.session.scalars(select(StagedHousehold.job_id).distinct()))
    with_files = set(db.session.scalars(select(ImportJob.id).where(
        ImportJob.data.isnot(None), ImportJob.status.in_(("done", "failed")))))
    stalled = set(db.session.scalars(select(ImportJob.id).where(
        ImportJob.status.in_(("queued", "checking", "writing")),
        ImportJob.updated_at < utcnow() - IMPORT_JOB_STALLED_AFTER)))
    cleared = 0
    for job_id in sorted(staged | with_files | stalled):
        job = db.session.get(ImportJob, job_id)
        if job is None or job.in_progress:
            continue
        if job.stalled:
            job.status, job.finished_at = "failed", utcnow()
            job.message = _("This import stopped before anything was written (the server was "
                            "restarted). Please import the file again.")[:500]
        job.data = None
        db.session.commit()
        drop_staged(job_id)
        cleared += 1
    return cleared


# --- import jobs (the web) --------------------------------------------------------------------


def request_import(actor: Any, compound: Compound, data: bytes, filename: str, *,
                   create_buildings: bool, locale: str) -> ImportJob:
    """Keep an uploaded households file to be imported after the request (flushed).

    A file that is no households table at all (empty, unreadable, damaged, a wrong header row,
    no rows) is refused at once with ImportRejected; its rows are checked by the job. The
    upload page starts reading (``starts_reading``): the write lock is taken here, only to
    store the file, not while it arrived."""
    check_header(data, filename, HOUSEHOLD_COLUMNS)
    lock_row(compound)
    job = ImportJob(compound_id=compound.id, filename=filename[:200], data=data,
                    create_buildings=create_buildings, locale=locale,
                    requested_by_id=getattr(actor, "id", None))
    db.session.add(job)
    db.session.flush()
    return job


def run_import_job(job_id: int) -> None:
    """Import an uploaded file (the job after the request), in the language it was sent in.

    Its outcome, a refusal with every problem or a failure, is recorded on the job."""
    from consult.core.policy import compound_scope

    job = db.session.get(ImportJob, job_id)
    if job is None or job.status != "queued":
        return
    actor = job.requested_by
    scope = compound_scope(actor, "registry.import") if actor is not None else None
    intend_write()  # run within a request (JOBS_INLINE), its transactions write
    with force_locale(job.locale):
        try:
            import_households(actor, job.data or b"", job.filename, compound=job.compound,
                              scope=scope, create_buildings=job.create_buildings, job=job)
        except ImportRejected:
            return  # recorded on the job, with every problem
        except Exception:
            log.exception("import job %s failed", job_id)  # recorded on the job too


def get_import_or_404(job_id: int) -> ImportJob:
    job = db.session.get(ImportJob, job_id)
    if job is None:
        raise NotFound(_("No such import."))
    return job


def import_problems(job: ImportJob) -> ImportRejected | None:
    """Why a job imported nothing, with every problem by line and column (None: it did not
    fail, or not yet)."""
    if job.stalled:
        return ImportRejected(_("This import stopped before anything was written (the server "
                                "was restarted). Please import the file again."), [])
    if job.status != "failed":
        return None
    errors = [CellError(line, column, message)
              for line, column, message in json.loads(job.problems or "[]")]
    return ImportRejected(job.message, errors)


def import_summary(job: ImportJob) -> ImportSummary | None:
    """What a finished job imported (None until it is done)."""
    if job.status != "done" or not job.summary:
        return None
    return ImportSummary(**json.loads(job.summary))


def export_rows(compound_ids: Sequence[int]) -> Iterator[list[Any]]:
    """Rows of the households file for the given compounds, in registry order."""
    stmt = (select(Compound.name, Building.name, Household.unit, Household.floor,
                   Household.room, Household.area_dm2, Household.owner_name,
                   Household.owner_key, Household.phone)
            .select_from(Household).join(Household.building).join(Building.compound)
            .join(Compound.community)
            .where(Compound.id.in_(compound_ids))
            .order_by(Community.name, Compound.name, Building.sort_key, Household.sort_key)
            .execution_options(yield_per=2000))
    for row in db.session.execute(stmt):
        yield [row[0], row[1], row[2], "" if row[3] is None else row[3], row[4],
               format_area(row[5]), row[6], row[7] or "", row[8] or ""]


def export_households(actor: Any, compounds: Sequence[Compound], fmt: str,
                      headers: str = "zh") -> bytes:
    """The households file (csv or xlsx) for ``compounds``; records who downloaded it."""
    if fmt not in ("csv", "xlsx"):
        raise ValidationFailed(_("Choose CSV or XLSX."))
    header = EXPORT_HEADERS["en" if headers == "en" else "zh"]
    ids = [c.id for c in compounds]
    rows = export_rows(ids)
    payload = (write_csv(header, rows) if fmt == "csv"
               else write_xlsx(header, rows, title=_("Households")))
    for compound in compounds:
        audit.record(actor, "registry.households.exported", compound, {"format": fmt})
    return payload

