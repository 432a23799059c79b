"""Notices and objections."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import CheckConstraint, ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from consult.consultations.models import Consultation
from consult.core.models import UTCDateTime, utcnow
from consult.extensions import db
from consult.registry.models import Household


class NoticeKind(StrEnum):
    RESOLUTION = "resolution"  # 决议公示
    RESULT = "result"          # 实施结果公示


class Notice(db.Model):
    """A frozen public notice: its content never changes after publication.

    ``content_json`` holds everything the notice shows; ``content_sha256`` fingerprints it and,
    with the audit chain head at publication, is recorded in the audit trail.
    """

    __tablename__ = "notice"
    __table_args__ = (CheckConstraint("kind IN ('resolution', 'result')", name="kind"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    consultation_id: Mapped[int] = mapped_column(ForeignKey("consultation.id"), index=True)
    round: Mapped[int]
    kind: Mapped[str] = mapped_column(String(15))
    locale: Mapped[str] = mapped_column(String(10))
    published_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    period_ends_at: Mapped[datetime] = mapped_column(UTCDateTime)
    content_json: Mapped[str] = mapped_column(Text)
    content_sha256: Mapped[str] = mapped_column(String(64))
    verify_code: Mapped[str] = mapped_column(String(16), unique=True)
    chain_seq: Mapped[int]
    chain_hash: Mapped[str] = mapped_column(String(64))
    superseded_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)

    consultation: Mapped[Consultation] = relationship()
    objections: Mapped[list[Objection]] = relationship(back_populates="notice",
                                                       order_by="Objection.id")

    @property
    def scope_compound_id(self) -> int:
        return self.consultation.compound_id


class Objection(db.Model):
    """异议: filed by a household during the publicity period, answered publicly."""

    __tablename__ = "objection"

    id: Mapped[int] = mapped_column(primary_key=True)
    notice_id: Mapped[int] = mapped_column(ForeignKey("notice.id"), index=True)
    household_id: Mapped[int] = mapped_column(ForeignKey("household.id"))
    author_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"), default=None)
    text: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    answer: Mapped[str] = mapped_column(Text, default="")
    answered_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"),
                                                       default=None)
    answered_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)

    notice: Mapped[Notice] = relationship(back_populates="objections")
    household: Mapped[Household] = relationship()

    @property
    def scope_compound_id(self) -> int:
        return self.notice.scope_compound_id
