"""Human labels for audit action codes; each domain registers its own codes."""

from __future__ import annotations

from typing import Any

_LABELS: dict[str, Any] = {}


def describe(labels: dict[str, Any]) -> None:
    """Register (lazy) labels for stable action codes."""
    _LABELS.update(labels)


def action_label(action: str) -> str:
    """The translated label of an action code, or the code itself if none is registered."""
    label = _LABELS.get(action)
    return str(label) if label is not None else action


def known_actions() -> list[str]:
    return sorted(_LABELS)
