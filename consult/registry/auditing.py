"""How the audit trail reads the registry's events: households by their address in the
reader's language, buildings, compounds and communities by name, and the registry's fields.
Owners' names and phones are never copied into events (``service._audit_changes``), so
nothing here names a person."""

from __future__ import annotations

from collections.abc import Callable, Collection

from flask_babel import lazy_gettext as _l
from sqlalchemy import or_, select
from sqlalchemy.orm import joinedload

from consult.audit.presenting import Field, describe_fields, name_objects
from consult.extensions import db
from consult.registry.models import Building, Community, Compound, Household, household_label

# Searching the audit trail by room shows at most this many households to choose from.
MAX_MATCHES = 30


def _ids(ids: Collection[str]) -> list[int]:
    return [int(one) for one in ids if one.isdigit()]


def household_names(ids: Collection[str]) -> dict[str, str]:
    """Household id → building, unit and room, in the reader's language."""
    rows = db.session.execute(
        select(Household.id, Building.name, Household.unit, Household.room)
        .join(Household.building).where(Household.id.in_(_ids(ids)))).all()
    return {str(hid): household_label(building, unit, room)
            for hid, building, unit, room in rows}


def _names_of(model: type[Building] | type[Compound] | type[Community]
              ) -> Callable[[Collection[str]], dict[str, str]]:
    def names(ids: Collection[str]) -> dict[str, str]:
        rows = db.session.execute(select(model.id, model.name).where(model.id.in_(_ids(ids))))
        return {str(one): name for one, name in rows}
    return names


def households_by_room(scope: frozenset[int] | None, text: str) -> list[tuple[int, str]]:
    """Households in the ``scope`` compounds (None = all) whose room is ``text``, or whose
    address ends with it ("3-101", "1号楼 101"): (id, address), in address order, at most
    ``MAX_MATCHES``."""
    words = text.replace("-", " ").replace("/", " ").split()
    if not words:
        return []
    room, rest = words[-1], words[:-1]
    stmt = (select(Household).join(Household.building).options(joinedload(Household.building))
            .where(Household.room == room)
            .order_by(Building.sort_key, Household.sort_key).limit(MAX_MATCHES))
    if scope is not None:
        stmt = stmt.where(Building.compound_id.in_(scope))
    if rest:
        stmt = stmt.where(or_(Building.name.contains(rest[0], autoescape=True),
                              Household.unit == rest[0]))
    if len(rest) > 1:
        stmt = stmt.where(Household.unit == rest[1])
    return [(household.id, household.label) for household in db.session.scalars(stmt)]


name_objects("household", household_names)
name_objects("building", _names_of(Building))
name_objects("compound", _names_of(Compound))
name_objects("community", _names_of(Community))
describe_fields({
    "household_id": Field(_l("Household"), refers_to="household"),
    "compound_id": Field(_l("Compound"), refers_to="compound"),
    "community_id": Field(_l("Community"), refers_to="community"),
    "area_dm2": Field(_l("Area")),
    "unit": Field(_l("Unit")),
    "room": Field(_l("Room")),
    "floor": Field(_l("Floor")),
    "owner_name": Field(_l("Owner")),
    "owner_key": Field(_l("Owner key")),
    "phone": Field(_l("Phone")),
    "street": Field(_l("Street")),
    "address": Field(_l("Address")),
    "buildings_created": Field(_l("Buildings created")),
    "created": Field(_l("Created")),
    "updated": Field(_l("Updated")),
    "unchanged": Field(_l("Unchanged")),
    "file": Field(_l("File")),
    "format": Field(_l("Format")),
})
describe_fields({"name": Field(_l("Name"))})
describe_fields({"from": Field(_l("Name")), "to": Field(_l("Name"))},
                actions=["registry.building.renamed"])


def household_in_scope(scope: frozenset[int] | None, household_id: int) -> str | None:
    """The address of a household in the ``scope`` compounds (None = all), else None: a
    filter by a household outside one's area names nothing."""
    stmt = (select(Building.name, Household.unit, Household.room).join(Household.building)
            .where(Household.id == household_id))
    if scope is not None:
        stmt = stmt.where(Building.compound_id.in_(scope))
    row = db.session.execute(stmt).first()
    return household_label(*row) if row is not None else None
