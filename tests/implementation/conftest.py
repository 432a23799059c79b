"""Consultations whose works are under way, and small helpers for the implementation tests."""

from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pytest
from PIL import Image
from sqlalchemy import func, select
from werkzeug.datastructures import FileStorage

from consult.audit.models import AuditEvent
from consult.ballots import service as ballots
from consult.ballots.models import BallotChannel
from consult.consultations.models import Consultation
from consult.extensions import db
from consult.registry.models import Household
from tests import factories


@dataclass
class Works:
    consultation: Consultation
    now: datetime  # the time walk_to reached; continue from here


@pytest.fixture
def works(compound: Any) -> Works:
    """A two-item consultation of ``compound`` that passed and whose works have started."""
    consultation = factories.make_consultation(compound)
    now = factories.walk_to(consultation, "implementing")
    return Works(consultation, now)


@pytest.fixture
def works_with_failed_item(compound: Any) -> Works:
    """Item 1 passed, item 2 was voted down: only item 1 is to be implemented."""
    consultation = factories.make_consultation(compound)
    now = factories.walk_to(consultation, "voting")
    first, second = consultation.items
    for entry in db.session.scalars(ballots.roll_entries(consultation)):
        household = db.session.get(Household, entry.household_id)
        ballots.cast(None, consultation, household, {first.id: "agree", second.id: "disagree"},
                     BallotChannel.PAPER, now=now)
    now = factories.walk_to(consultation, "implementing")
    return Works(consultation, now)


def image_bytes(fmt: str = "PNG", size: tuple[int, int] = (40, 30), color: str = "red") -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, format=fmt)
    return buffer.getvalue()


def upload(name: str = "photo.png", data: bytes | None = None) -> FileStorage:
    return FileStorage(stream=io.BytesIO(image_bytes() if data is None else data),
                       filename=name, content_type="image/png")


def audit_seq() -> int:
    return db.session.scalar(select(func.coalesce(func.max(AuditEvent.seq), 0)))


def actions_since(seq: int) -> list[str]:
    return list(db.session.scalars(select(AuditEvent.action).where(AuditEvent.seq > seq)
                                   .order_by(AuditEvent.seq)))


def payload_since(seq: int, action: str) -> list[str]:
    return list(db.session.scalars(select(AuditEvent.payload).where(
        AuditEvent.seq > seq, AuditEvent.action == action).order_by(AuditEvent.seq)))
