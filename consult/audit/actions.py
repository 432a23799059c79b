"""Human labels for audit action codes and object types; each domain registers its own."""

from __future__ import annotations

from typing import Any

from flask_babel import lazy_gettext as _l

_ACTIONS: dict[str, Any] = {}
_OBJECTS: dict[str, Any] = {"system": _l("System")}
SYSTEM_ACTOR_LABEL = _l("system")
HOUSEHOLD_ACTOR_LABEL = _l("the household itself")


def describe(labels: dict[str, Any]) -> None:
    """Register (lazy) labels for stable action codes."""
    _ACTIONS.update(labels)


def describe_objects(labels: dict[str, Any]) -> None:
    """Register (lazy) labels for the object types events refer to."""
    _OBJECTS.update(labels)


def action_label(action: str) -> str:
    """The translated label of an action code, or the code itself if none is registered."""
    label = _ACTIONS.get(action)
    return str(label) if label is not None else action


def object_label(object_type: str) -> str:
    label = _OBJECTS.get(object_type)
    return str(label) if label is not None else object_type


def actor_label(label: str) -> str:
    """Events by no signed-in user (commands, sign-in attempts) read as "system"; a household
    voting online reads as the household itself (its account is not named)."""
    if label == "system":
        return str(SYSTEM_ACTOR_LABEL)
    if label == "(household)":
        return str(HOUSEHOLD_ACTOR_LABEL)
    return label


def known_actions() -> list[str]:
    return sorted(_ACTIONS)


def known_objects() -> list[str]:
    return sorted(_OBJECTS)
