"""Checks of stored rows against the audit chain, supplied by the domains.

The chain's own check (``service.verify_chain``) shows that no event was changed; a domain's
check shows that its rows were not changed behind their events' back (the ballots: every
stored ballot is what its latest event says). The audit trail knows no domain, so a domain
registers its check with the app at start-up (``register``), and ``service.verify`` shows it
the events it asks for while it walks the chains; once they hold, it asks each check what it
found.

The events come chain by chain (ascending ``chain_id``), each chain in its order, which is also
``seq`` order within the chain (the event number is given while the chain's head is held). The
order of events of *different* chains is not kept, so a check must not depend on it: key what
is kept by consultation or object, as the ballots' check does (a ballot's events are all in its
consultation's chain).
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
        """One event of ``actions``, in its chain's order, before the chain's check has judged
        it."""
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
