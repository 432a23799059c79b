"""Unit tests exercise pure code: no app, no database. Messages come out as English msgids."""

from collections.abc import Iterator

import pytest


@pytest.fixture(autouse=True)
def _isolation() -> Iterator[None]:
    """Replaces the database transaction of the main conftest: unit tests have none."""
    yield
