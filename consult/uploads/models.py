"""An uploaded file: the bytes live under UPLOAD_PATH, named by their SHA-256."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING

from sqlalchemy import CheckConstraint, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from consult.core.models import UTCDateTime, utcnow
from consult.extensions import Model

if TYPE_CHECKING:
    from consult.consultations.models import Consultation


class Visibility(StrEnum):
    PUBLIC = "public"  # e.g. progress photos shown on the result notice
    STAFF = "staff"    # e.g. a proxy's written authorisation: committee and supervisors only


class Attachment(Model):
    __tablename__ = "attachment"
    __table_args__ = (CheckConstraint("visibility IN ('public', 'staff')", name="visibility"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    filename: Mapped[str] = mapped_column(String(200))
    mimetype: Mapped[str] = mapped_column(String(100))
    size: Mapped[int]
    # Every file belongs to a consultation, whose visibility (a draft is hidden) it shares.
    consultation_id: Mapped[int] = mapped_column(ForeignKey("consultation.id"), index=True)
    visibility: Mapped[str] = mapped_column(String(10), default=Visibility.PUBLIC.value)
    uploaded_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"),
                                                       default=None)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    consultation: Mapped[Consultation] = relationship()

    @property
    def scope_compound_id(self) -> int:
        return self.consultation.compound_id

    @property
    def is_image(self) -> bool:
        return self.mimetype.startswith("image/")

    @property
    def kind(self) -> str:
        """What the file is, as a reader knows it: "PDF", "JPEG", "PNG", "WEBP"."""
        return self.mimetype.rpartition("/")[2].upper()

    @property
    def size_label(self) -> str:
        """The size as readers take it in: "820 KB", "3.4 MB" (at least 1 KB)."""
        if self.size >= 1024 * 1024:
            return f"{self.size / (1024 * 1024):.1f} MB"
        return f"{max(1, round(self.size / 1024))} KB"
