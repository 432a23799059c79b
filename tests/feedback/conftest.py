"""Fixtures of defect feedback: a consultation whose works are finished and whose result
notice is published, residents, a committee member, and the feedback service's clock."""

from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import pytest
from PIL import Image

from consult.consultations.states import Action
from consult.core.models import utcnow
from consult.implementation import service as works
from consult.process import workflow
from tests import factories


@dataclass
class Finished:
    consultation: Any
    compound: Any
    mine: Any       # the signed-in resident's household (building 2)
    neighbour: Any  # another household (building 1)
    resident: Any   # the account of ``mine``
    neighbour_account: Any
    committee: Any


def finish(consultation: Any) -> None:
    """Take a consultation through its works to the published result notice (now)."""
    now = factories.walk_to(consultation, "implementing")
    works.add_progress(None, consultation, works.progress_data(
        item_id=None, percent="100", spend="100", note="完工", is_final=True), now=now)
    for item in works.implementable_items(consultation):
        works.complete_item(None, item, 1000, "完成", now=now)
    workflow.apply(consultation, Action.PUBLISH_RESULT, None, now=utcnow())


@pytest.fixture
def finished(compound: Any) -> Finished:
    consultation = factories.make_consultation(compound)
    finish(consultation)
    mine = compound.buildings[1].households[0]
    neighbour = compound.buildings[0].households[0]
    return Finished(consultation, compound, mine, neighbour,
                    factories.make_user("resident", household=mine),
                    factories.make_user("resident", household=neighbour),
                    factories.make_user("committee", compound=compound))


class Clock:
    """The feedback service's time, frozen at ``at`` until moved."""

    def __init__(self, at: datetime) -> None:
        self.at = at

    def now(self) -> datetime:
        return self.at

    def advance(self, **kwargs: float) -> None:
        self.at += timedelta(**kwargs)


@pytest.fixture
def frozen(monkeypatch: pytest.MonkeyPatch) -> Clock:
    """Freeze the clock defect reports are timed and judged overdue by, and the one the
    committee's to-do list and the dashboard read."""
    from consult.feedback import service
    from consult.process import dashboard, todo

    clock = Clock(utcnow())
    for module in (service, todo, dashboard):
        monkeypatch.setattr(module, "utcnow", clock.now)
    return clock


def png(color: str = "red") -> tuple[io.BytesIO, str]:
    """A small real PNG, as a form's file part."""
    buffer = io.BytesIO()
    Image.new("RGB", (40, 30), color).save(buffer, format="PNG")
    buffer.seek(0)
    return buffer, f"{color}.png"
