"""Implementation models."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from flask_babel import lazy_gettext as _l
from sqlalchemy import CheckConstraint, Column, ForeignKey, String, Table, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from consult.consultations.models import Consultation, Item
from consult.core.models import TimestampMixin, UTCDateTime, utcnow
from consult.extensions import Model, db
from consult.uploads.models import Attachment

progress_photo = Table(
    "progress_photo",
    db.metadata,
    Column("entry_id", ForeignKey("progress_entry.id"), primary_key=True),
    Column("attachment_id", ForeignKey("attachment.id"), primary_key=True),
)


class ProgressEntry(Model):
    """实施进度: how far the works are, what has been spent, with photos."""

    __tablename__ = "progress_entry"
    __table_args__ = (
        CheckConstraint("percent >= 0 AND percent <= 100", name="percent_range"),
        CheckConstraint("spend_fen >= 0", name="spend_not_negative"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    consultation_id: Mapped[int] = mapped_column(ForeignKey("consultation.id"), index=True)
    item_id: Mapped[int | None] = mapped_column(ForeignKey("item.id"), default=None)
    percent: Mapped[int]
    spend_fen: Mapped[int] = mapped_column(default=0)  # spent since the previous entry
    note: Mapped[str] = mapped_column(Text, default="")
    is_final: Mapped[bool] = mapped_column(default=False)  # the final report
    author_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"), default=None)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    consultation: Mapped[Consultation] = relationship()
    item: Mapped[Item | None] = relationship()
    photos: Mapped[list[Attachment]] = relationship(secondary=progress_photo)

    @property
    def scope_compound_id(self) -> int:
        return self.consultation.compound_id


class Inspection(Model):
    """A supervisor's inspection note (监督检查)."""

    __tablename__ = "inspection"

    id: Mapped[int] = mapped_column(primary_key=True)
    consultation_id: Mapped[int] = mapped_column(ForeignKey("consultation.id"), index=True)
    item_id: Mapped[int | None] = mapped_column(ForeignKey("item.id"), default=None)
    text: Mapped[str] = mapped_column(Text)
    photo_id: Mapped[int | None] = mapped_column(ForeignKey("attachment.id"), default=None)
    author_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"), default=None)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    consultation: Mapped[Consultation] = relationship()
    item: Mapped[Item | None] = relationship()
    photo: Mapped[Attachment | None] = relationship()

    @property
    def scope_compound_id(self) -> int:
        return self.consultation.compound_id


class Rating(StrEnum):
    SATISFIED = "satisfied"
    BASICALLY_SATISFIED = "basically_satisfied"
    DISSATISFIED = "dissatisfied"


RATING_LABELS = {
    Rating.SATISFIED: _l("Satisfied"),
    Rating.BASICALLY_SATISFIED: _l("Basically satisfied"),
    Rating.DISSATISFIED: _l("Dissatisfied"),
}


class Evaluation(TimestampMixin, Model):
    """群众评判: one per household, changeable while the result notice is up."""

    __tablename__ = "evaluation"
    __table_args__ = (
        UniqueConstraint("consultation_id", "household_id"),
        CheckConstraint("rating IN ('satisfied', 'basically_satisfied', 'dissatisfied')",
                        name="rating"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    consultation_id: Mapped[int] = mapped_column(ForeignKey("consultation.id"))
    household_id: Mapped[int] = mapped_column(ForeignKey("household.id"))
    rating: Mapped[str] = mapped_column(String(20))
    comment: Mapped[str] = mapped_column(Text, default="")
