from typing import Any

from tests import factories
from tests.access import EVERYONE, EXPECTED, RESIDENT, WORLD_BUILDERS

EXPECTED.update({
    # Public once the works have started (anonymous visitors included).
    "implementation.works": ("GET", EVERYONE),
    # The committee (in scope) and administrators record progress and tick items off.
    "implementation.progress_new": ("GET", frozenset({"committee", "admin"})),
    "implementation.item_complete": ("GET", frozenset({"committee", "admin"})),
    # Supervisors (in scope) and administrators add inspection notes.
    "implementation.inspection_new": ("GET", frozenset({"supervisor", "admin"})),
    # A household rates the works for itself.
    "implementation.evaluate": ("GET", RESIDENT),
})


def build(world: dict[str, Any]) -> None:
    """A consultation of the test compound whose works are under way."""
    if "consultation_id" in world and "item_id" in world:
        return
    if "consultation_id" not in world:
        consultation = factories.make_consultation(world["compound"])
        factories.walk_to(consultation, "implementing")
        world["consultation_id"] = consultation.id
        world.setdefault("item_id", consultation.items[0].id)
        return
    # Another module's consultation: use its first item so the URL stays consistent.
    from consult.consultations.models import Item
    from consult.extensions import db

    item = db.session.scalar(db.select(Item).where(
        Item.consultation_id == world["consultation_id"]).order_by(Item.number).limit(1))
    if item is not None:
        world.setdefault("item_id", item.id)


WORLD_BUILDERS.append(build)
