"""Who may open which route, per domain. Each module in this package adds its routes to
EXPECTED and, if its routes need objects, a builder to WORLD_BUILDERS that creates them and
puts their ids into the world under the names of the URL rule's arguments."""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from typing import Any

ROLES = ("anonymous", "resident", "committee", "committee_elsewhere", "supervisor", "admin",
         "grid_worker")
EVERYONE = frozenset(ROLES)
SIGNED_IN = EVERYONE - {"anonymous"}
STAFF_ROLE = frozenset({"committee", "committee_elsewhere", "supervisor", "admin",
                        "grid_worker"})
# In the test compound's scope (the grid worker through the compound's grid).
READERS = frozenset({"committee", "supervisor", "admin", "grid_worker"})
EDITORS = frozenset({"committee", "admin"})
# Who records what residents said away from the site: offline opinions, door-to-door answers.
RECORDERS = EDITORS | {"grid_worker"}
ADMIN = frozenset({"admin"})
RESIDENT = frozenset({"resident"})  # the signed-in household, acting for itself

# endpoint → (method, roles that get in)
EXPECTED: dict[str, tuple[str, frozenset[str]]] = {}
# Endpoints whose refusal is 404, not 403: another person's object is answered as one that
# does not exist (a notification), so its id tells nothing.
REFUSED_AS: dict[str, int] = {}
# Each builder gets the world (with "compound", "compound_id", "household" — the resident's
# household — and the other base objects) and adds what its routes need.
WORLD_BUILDERS: list[Callable[[dict[str, Any]], None]] = []
# Builders that work on what the others made (e.g. a ballot in their consultation): run last.
LATE_BUILDERS: list[Callable[[dict[str, Any]], None]] = []


def load_expectations() -> None:
    """Import every module of this package, each of which adds its routes to EXPECTED."""
    for module in pkgutil.iter_modules(__path__):
        importlib.import_module(f"{__name__}.{module.name}")


def build_world() -> dict[str, Any]:
    """An object for every URL argument: a compound with households, a resident, a committee
    member with a scope, an audit event, and whatever the modules' builders add."""
    from consult.audit import service as audit
    from consult.extensions import db
    from consult.registry.models import Resident
    from tests import factories

    load_expectations()
    compound = factories.make_compound_with_households(per_building=2)
    household = compound.buildings[0].households[0]
    resident = Resident(household=household, name="甲", relation="owner")
    db.session.add(resident)
    staff = factories.make_user("committee", compound=compound)
    db.session.flush()
    event = audit.record(None, "registry.household.updated", household, {})
    world: dict[str, Any] = {
        "compound": compound, "compound_id": compound.id,
        "building_id": compound.buildings[0].id, "household_id": household.id,
        "resident_id": resident.id, "user_id": staff.id, "scope_id": staff.scopes[0].id,
        "seq": event.seq,
        # The signed-in resident's own household.
        "household": compound.buildings[1].households[0],
    }
    for build in [*WORLD_BUILDERS, *LATE_BUILDERS]:
        build(world)
    return world
