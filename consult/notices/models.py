"""Notices and objections."""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import StrEnum

from flask_babel import lazy_gettext as _l
from sqlalchemy import BigInteger, CheckConstraint, ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from consult.consultations.models import Consultation
from consult.core.models import UTCDateTime, utcnow
from consult.extensions import Model
from consult.registry.models import Household


class NoticeKind(StrEnum):
    VOTE = "vote"              # 投票公告, before voting opens
    RESOLUTION = "resolution"  # 决议公示
    RESULT = "result"          # 实施结果公示
    RANKING = "ranking"        # 观摩评比排名公示, of a scoring round (no consultation)


# The one name of each kind, on the page, the PDF, its file name and the verify page.
NOTICE_KIND_LABELS = {
    NoticeKind.VOTE: _l("Vote notice"),
    NoticeKind.RESOLUTION: _l("Resolution notice"),
    NoticeKind.RESULT: _l("Notice of the works’ result"),
    NoticeKind.RANKING: _l("Ranking of the scoring round"),
}


class Notice(Model):
    """A frozen public notice: its content never changes after publication.

    ``content_json`` holds everything the notice shows; ``content_sha256`` fingerprints it and,
    with the audit chain head at publication, is recorded in the audit trail.

    A notice belongs to a consultation, or (a ranking) to a scoring round of several compounds:
    exactly one of the two.
    """

    __tablename__ = "notice"
    __table_args__ = (
        CheckConstraint("kind IN ('vote', 'resolution', 'result', 'ranking')", name="kind"),
        CheckConstraint("(consultation_id IS NULL) <> (scoring_round_id IS NULL)",
                        name="subject"),
        CheckConstraint("(kind = 'ranking') = (scoring_round_id IS NOT NULL)",
                        name="ranking_subject"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    consultation_id: Mapped[int | None] = mapped_column(ForeignKey("consultation.id"),
                                                        index=True, default=None)
    scoring_round_id: Mapped[int | None] = mapped_column(ForeignKey("scoring_round.id"),
                                                         index=True, default=None)
    round: Mapped[int]
    kind: Mapped[str] = mapped_column(String(15))
    locale: Mapped[str] = mapped_column(String(10))
    published_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    period_ends_at: Mapped[datetime] = mapped_column(UTCDateTime)
    content_json: Mapped[str] = mapped_column(Text)
    content_sha256: Mapped[str] = mapped_column(String(64))
    verify_code: Mapped[str] = mapped_column(String(16), unique=True)
    # The audit chain's head when the notice was issued: the consultation's chain (0, the
    # global chain, for a scoring round's notice and for notices issued before there were
    # several chains).
    chain_id: Mapped[int] = mapped_column(BigInteger, default=0)
    chain_seq: Mapped[int]
    chain_hash: Mapped[str] = mapped_column(String(64))
    superseded_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)

    consultation: Mapped[Consultation | None] = relationship()
    objections: Mapped[list[Objection]] = relationship(back_populates="notice",
                                                       order_by="Objection.id")

    @property
    def scope_compound_id(self) -> int | None:
        """A consultation's compound; a ranking concerns several, so no one compound."""
        return self.consultation.compound_id if self.consultation is not None else None


class Objection(Model):
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
    def scope_compound_id(self) -> int | None:
        return self.notice.scope_compound_id


class PrintKind(StrEnum):
    """Documents printed one page per household, in batches after the request."""

    BALLOTS = "ballots"                # 表决票
    SOLICITATION = "solicitation"      # 征求意见表
    ACCESS_LETTERS = "access-letters"  # 户访问码通知书


PRINT_JOB_STALLED_AFTER = timedelta(minutes=10)


class PrintJob(Model):
    """A batch of printed pages being made after the request; its file is kept on disk."""

    __tablename__ = "print_job"
    __table_args__ = (
        CheckConstraint("status IN ('queued', 'running', 'done', 'failed')", name="status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    consultation_id: Mapped[int] = mapped_column(ForeignKey("consultation.id"), index=True)
    kind: Mapped[str] = mapped_column(String(20))
    status: Mapped[str] = mapped_column(String(10), default="queued")
    done: Mapped[int] = mapped_column(default=0)
    total: Mapped[int] = mapped_column(default=0)
    error: Mapped[str] = mapped_column(String(500), default="")
    sha256: Mapped[str | None] = mapped_column(String(64), default=None)
    requested_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"),
                                                        default=None)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    # Touched on every step; a job that stops being touched was cut off (e.g. a restart).
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    consultation: Mapped[Consultation] = relationship()

    @property
    def in_progress(self) -> bool:
        return self.status in ("queued", "running") and not self.stalled

    @property
    def stalled(self) -> bool:
        """Queued or running, but untouched for longer than any chunk takes: the process that
        was printing it stopped (a restart), so it will never finish by itself."""
        return (self.status in ("queued", "running")
                and utcnow() - self.updated_at > PRINT_JOB_STALLED_AFTER)

    @property
    def scope_compound_id(self) -> int:
        return self.consultation.compound_id
