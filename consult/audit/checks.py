"""Checks of stored rows against the audit chain, supplied by the domains.

The chain's own check (``service.verify_chain``) shows that no event was changed; a domain's
check shows that its rows were not changed behind their events' back (the ballots: every
stored ballot is what its latest event says). The audit trail knows no domain, so a domain
registers its check with the app at start-up (``register``), and ``service.verify`` shows it
the events it asks for, in seq order, while it walks the chain; once the chain holds, it asks
each check what it found.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Protocol

from flask import Flask, current_app
from sqlalchemy.orm import Session

if TYPE_CHECKING:
    from consult.audit.service import EventFields

_EXTENSION = "consult.audit_checks"


class CheckOutcome(Protocol):
    """What a check found, once it has seen the whole chain."""

    @property
    def checked(self) -> int:
        """How many stored rows were compared with the chain."""
        ...

    @property
    def problems(self) -> Sequence[object]:
        """Every disagreement found; empty when the rows agree with the chain."""
        ...

    def lines(self) -> list[str]:
        """The outcome in words, in the current language: a line saying what agrees, or a
        heading followed by the problems."""
        ...


class ChainCheck(Protocol):
    """A check that rides along the walk over the chain: one instance per verification."""

    @property
    def actions(self) -> frozenset[str]:
        """The event actions the check is shown."""
        ...

    def event(self, fields: EventFields) -> None:
        """One event of ``actions``, in seq order, before the chain's check has judged it."""
        ...

    def finish(self, session: Session) -> CheckOutcome:
        """Compare the stored rows with the events seen; called only if the chain holds."""
        ...


CheckFactory = Callable[[], ChainCheck]


def register(app: Flask, name: str, factory: CheckFactory) -> None:
    """Have every verification of ``app``'s chain run a new ``factory()`` as check ``name``."""
    app.extensions.setdefault(_EXTENSION, {})[name] = factory


def registered(app: Flask | None = None) -> Mapping[str, CheckFactory]:
    """The checks registered with ``app`` (the current app by default), by name."""
    extensions = (app or current_app).extensions
    return dict(extensions.get(_EXTENSION, {}))
