"""Registry operations. Every function flushes (never commits) and records its audit event."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_babel import ngettext
from sqlalchemy import Select, func, insert, or_, select, update
from sqlalchemy.orm import joinedload

from consult.audit import service as audit
from consult.audit.actions import describe, describe_objects
from consult.core import sorting
from consult.core.errors import CellError, Conflict, ImportRejected, NotFound, ValidationFailed
from consult.core.models import utcnow
from consult.core.policy import can
from consult.core.sorting import Sort
from consult.core.tabular import Column, Table, read_table, write_csv, write_xlsx
from consult.core.text import strip_suffix
from consult.core.validation import clean_text
from consult.extensions import db
from consult.registry.models import (
    Building,
    Community,
    Compound,
    Household,
    Relation,
    Resident,
    household_sort_key,
)

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
})

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
        clean_text(unit, max_length=20, required=False, what=_("Unit")), "单元"))
    check("floor", lambda: clean_floor(floor))
    check("room", lambda: strip_suffix(
        clean_text(room, max_length=20, required=True, what=_("Room")), "室", "号"))
    check("area_dm2", lambda: area if isinstance(area, int) else parse_area(area))
    check("owner_name", lambda: clean_text(owner_name, max_length=100, required=True,
                                           what=_("Owner name")))
    check("owner_key", lambda: clean_text(owner_key, max_length=128, required=False,
                                          what=_("Owner key")) or None)
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


def compounds_in_scope(scope: frozenset[int] | None, *, offset: int = 0,
                       limit: int | None = None) -> list[Compound]:
    """Compounds the caller may see (``scope`` None = all), with their communities loaded, in
    order; ``offset`` and ``limit`` select a page of them."""
    stmt = (select(Compound).join(Compound.community).options(joinedload(Compound.community))
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
                     sort: Sort | None = None) -> Select[tuple[Household]]:
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
_CHUNK = 1000


@dataclass
class ImportSummary:
    """What an import did, per compound name."""

    rows: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    compounds: list[str] = field(default_factory=list)
    buildings_created: list[str] = field(default_factory=list)


@dataclass
class _Row:
    line: int
    compound: Compound
    building_name: str
    data: HouseholdData


def import_households(
    actor: Any,
    data: bytes,
    filename: str,
    *,
    compound: Compound | None = None,
    scope: frozenset[int] | None = None,
    create_buildings: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> ImportSummary:
    """Import a households file, all or nothing.

    Rows are matched to existing households by building, unit and room and updated; other rows
    are created. ``compound`` fills an empty or missing compound column; ``scope`` limits the
    compounds the file may touch (None = any). Every problem in the file is collected and
    raised together as ImportRejected, with nothing written. ``progress(advance, total)`` is
    told how many steps were done since its last call; there are two steps per row (checking,
    then writing).
    """
    table = read_table(data, filename, HOUSEHOLD_COLUMNS)
    if compound is None and "compound" not in table.headers:
        raise ImportRejected(_("The file has no compound column; choose the compound."), [
            CellError(1, "compound", _("Required column missing; accepted headers: %(names)s",
                                       names="compound / 小区 / 楼院"))])
    total = 2 * len(table.rows)
    tick = (lambda n: progress(n, total)) if progress else None
    rows, errors, buildings = _validate_rows(table, compound, scope, create_buildings, tick)
    if errors:
        errors.sort(key=lambda e: e.line)
        raise ImportRejected(
            ngettext("%(num)s problem found; nothing was imported.",
                     "%(num)s problems found; nothing was imported.", len(errors)), errors)

    summary = ImportSummary(rows=len(rows))
    digest = hashlib.sha256(data).hexdigest()
    per_compound: dict[int, dict[str, Any]] = {}
    for (compound_id, name), building in list(buildings.items()):
        if building is None:
            target = next(r.compound for r in rows if r.compound.id == compound_id)
            building = Building(compound=target, name=name)
            db.session.add(building)
            buildings[(compound_id, name)] = building
            summary.buildings_created.append(f"{target.name} {name}")
            per_compound.setdefault(compound_id, _counts()).setdefault(
                "buildings_created", []).append(name)
    db.session.flush()

    existing = _existing_households([b.id for b in buildings.values() if b is not None])
    new_rows: list[dict[str, Any]] = []
    changed_rows: list[dict[str, Any]] = []
    now = utcnow()
    for row in rows:
        building = buildings[(row.compound.id, row.building_name)]
        assert building is not None
        values = row.data.as_dict()
        counts = per_compound.setdefault(row.compound.id, _counts())
        current = existing.get((building.id, row.data.unit, row.data.room))
        if current is None:
            new_rows.append({**values, "building_id": building.id, "created_at": now,
                             "updated_at": now,
                             "sort_key": household_sort_key(row.data.unit, row.data.room)})
            counts["created"] += 1
        elif any(current[key] != value for key, value in values.items()):
            changed_rows.append({**values, "id": current["id"], "updated_at": now})
            counts["updated"] += 1
        else:
            counts["unchanged"] += 1
    for start in range(0, len(new_rows), _CHUNK):
        chunk = new_rows[start:start + _CHUNK]
        db.session.execute(insert(Household), chunk)
        if tick:
            tick(len(chunk))
    for start in range(0, len(changed_rows), _CHUNK):
        chunk = changed_rows[start:start + _CHUNK]
        db.session.execute(update(Household), chunk)
        if tick:
            tick(len(chunk))
    if tick:
        # Unchanged rows need no writing; the rows dropped as errors never get here.
        tick(len(table.rows) - len(new_rows) - len(changed_rows))
    db.session.expire_all()  # bulk statements bypass the identity map

    names = {r.compound.id: r.compound.name for r in rows}
    for compound_id, counts in sorted(per_compound.items()):
        summary.created += counts["created"]
        summary.updated += counts["updated"]
        summary.unchanged += counts["unchanged"]
        summary.compounds.append(names[compound_id])
        audit.record(actor, "registry.households.imported", ("compound", compound_id, compound_id),
                     {**counts, "file": filename[:200], "sha256": digest})
    return summary


def _counts() -> dict[str, Any]:
    return {"created": 0, "updated": 0, "unchanged": 0}


def _validate_rows(
    table: Table, default: Compound | None, scope: frozenset[int] | None,
    create_buildings: bool, progress: Callable[[int], None] | None,
) -> tuple[list[_Row], list[CellError], dict[tuple[int, str], Building | None]]:
    errors: list[CellError] = []
    compounds = _compounds_by_name(table, default)
    compound_ids = {c.id for c in compounds.values() if c is not None}
    if default is not None:
        compound_ids.add(default.id)
    buildings: dict[tuple[int, str], Building | None] = {
        (b.compound_id, b.name): b
        for b in db.session.scalars(select(Building).where(Building.compound_id.in_(compound_ids)))
    }
    seen: dict[tuple[int | None, str, str, str], int] = {}
    rows: list[_Row] = []
    for done, (line, cells) in enumerate(table.rows, start=1):
        if progress and done % 500 == 0:
            progress(500)
        compound = _row_compound(cells, default, compounds, table, line, errors)
        if compound is not None and scope is not None and compound.id not in scope:
            errors.append(CellError(line, table.where("compound"), _(
                "“%(name)s” is outside the compounds assigned to you.", name=compound.name)))
            compound = None
        building_name = cells["building"].strip()
        if not building_name:
            errors.append(CellError(line, table.where("building"), _("The building is missing.")))
        elif compound is not None and (compound.id, building_name) not in buildings:
            if create_buildings:
                buildings[(compound.id, building_name)] = None  # created on write
            else:
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
        if compound is not None and building_name and duplicate_of == line:
            rows.append(_Row(line, compound, building_name, data))
    if progress:
        progress(len(table.rows) % 500)
    return rows, errors, buildings


def _compounds_by_name(table: Table, default: Compound | None) -> dict[str, Compound | None]:
    names = {cells.get("compound", "").strip() for _line, cells in table.rows} - {""}
    found: dict[str, Compound | None] = {}
    for name in names:
        if default is not None and name in (default.name, default.full_name):
            found[name] = default
            continue
        try:
            found[name] = find_compound(name)
        except (NotFound, ValidationFailed):
            found[name] = None
    return found


def _row_compound(cells: dict[str, str], default: Compound | None,
                  compounds: dict[str, Compound | None], table: Table, line: int,
                  errors: list[CellError]) -> Compound | None:
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
               Household.phone)
    result: dict[tuple[int, str, str], dict[str, Any]] = {}
    for start in range(0, len(building_ids), 500):
        for row in db.session.execute(select(*columns).where(
                Household.building_id.in_(building_ids[start:start + 500]))):
            values = row._asdict()
            result[(row.building_id, row.unit, row.room)] = values
    return result


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

