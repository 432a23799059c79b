"""Who may open which route, per domain. Each module in this package adds its routes to
EXPECTED and, if its routes need objects, a builder to WORLD_BUILDERS that creates them and
puts their ids into the world under the names of the URL rule's arguments."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

ROLES = ("anonymous", "resident", "committee", "committee_elsewhere", "supervisor", "admin")
EVERYONE = frozenset(ROLES)
SIGNED_IN = EVERYONE - {"anonymous"}
STAFF_ROLE = frozenset({"committee", "committee_elsewhere", "supervisor", "admin"})
READERS = frozenset({"committee", "supervisor", "admin"})  # in the test compound's scope
EDITORS = frozenset({"committee", "admin"})
ADMIN = frozenset({"admin"})
RESIDENT = frozenset({"resident"})  # the signed-in household, acting for itself

# endpoint → (method, roles that get in)
EXPECTED: dict[str, tuple[str, frozenset[str]]] = {}
# Each builder gets the world (with "compound", "compound_id", "household" — the resident's
# household — and the other base objects) and adds what its routes need.
WORLD_BUILDERS: list[Callable[[dict[str, Any]], None]] = []
