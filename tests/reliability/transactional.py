"""The suite's rolled-back transaction, for the reliability tests that use the in-process app.

``tests/reliability/conftest.py`` switches the per-test transaction off (its tests drive a live
server on a database of their own). The access and operations tests also use the suite's app
and factories, so their modules put it back with ``rolled_back``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from flask import Flask

from consult.extensions import limiter
from tests import conftest


@contextmanager
def rolled_back(app: Flask) -> Iterator[None]:
    """The suite's per-test arrangement (tests/conftest.py): fresh rate limits, and everything
    written through ``db.session`` rolled back afterwards."""
    limiter.reset()
    with conftest.rolled_back(app):
        yield
