"""Fixtures of the account tests."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from consult.accounts import lockout, sessions
from consult.accounts import service as accounts
from consult.core.models import utcnow


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Any:
    """Move the time seen by sign-in, lockout and sessions."""

    class Clock:
        offset = timedelta(0)

        def now(self) -> Any:
            return utcnow() + self.offset

        def advance(self, **kwargs: float) -> None:
            self.offset += timedelta(**kwargs)

    c = Clock()
    for module in (accounts, lockout, sessions):
        monkeypatch.setattr(module, "utcnow", c.now)
    return c
