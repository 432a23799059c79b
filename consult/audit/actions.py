"""Human labels for audit action codes, the kinds of change they belong to and object types;
each domain registers its own."""

from __future__ import annotations

from typing import Any

from flask_babel import lazy_gettext as _l

_ACTIONS: dict[str, Any] = {}
_ACTION_KINDS: dict[str, str] = {}
_KINDS: dict[str, Any] = {}
_OBJECTS: dict[str, Any] = {"system": _l("System")}
SYSTEM_ACTOR_LABEL = _l("system")
HOUSEHOLD_ACTOR_LABEL = _l("the household itself")


def describe(labels: dict[str, Any], kind: str) -> None:
    """Register (lazy) labels for stable action codes, and the kind of change they are (a
    code ``describe_kinds`` names), by which the audit trail can be filtered."""
    _ACTIONS.update(labels)
    _ACTION_KINDS.update(dict.fromkeys(labels, kind))


def describe_kinds(labels: dict[str, Any]) -> None:
    """Register (lazy) labels for kinds of change (``"ballots"``: "Ballots")."""
    _KINDS.update(labels)


def describe_objects(labels: dict[str, Any]) -> None:
    """Register (lazy) labels for the object types events refer to."""
    _OBJECTS.update(labels)


# The audit trail's own event: a consultation chain's head recorded in the global chain.
describe({"audit.anchor": _l("Chain head anchored")}, kind="audit")
describe_kinds({"audit": _l("Audit trail")})
describe_objects({"audit_chain": _l("Audit chain")})


def action_label(action: str) -> str:
    """The translated label of an action code, or the code itself if none is registered."""
    label = _ACTIONS.get(action)
    return str(label) if label is not None else action


def action_kind(action: str) -> str | None:
    """The kind of change an action code is, if registered."""
    return _ACTION_KINDS.get(action)


def kind_label(kind: str) -> str:
    label = _KINDS.get(kind)
    return str(label) if label is not None else kind


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


def known_kinds() -> list[str]:
    """The kinds of change, in the order of their labels in the current language."""
    return sorted(_KINDS, key=lambda kind: str(_KINDS[kind]))


def actions_of_kind(kind: str) -> list[str]:
    return sorted(action for action, its in _ACTION_KINDS.items() if its == kind)


def known_objects() -> list[str]:
    return sorted(_OBJECTS)
