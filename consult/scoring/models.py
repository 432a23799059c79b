"""Scoring rounds (观摩评比): the sheet, the compounds taking part, and their scores."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum

from sqlalchemy import CheckConstraint, Date, ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from consult.core.models import UTCDateTime, utcnow
from consult.extensions import Model
from consult.registry.models import Compound


class RoundStatus(StrEnum):
    OPEN = "open"      # scores are taken; the sheet may change until the first score
    CLOSED = "closed"  # computed, ranked and published; nothing changes any more


class ScoringRound(Model):
    """One round of mutual scoring among compounds, opened by the street office."""

    __tablename__ = "scoring_round"
    __table_args__ = (
        CheckConstraint("status IN ('open', 'closed')", name="status"),
        CheckConstraint("inspector_weight_pct >= 0 AND inspector_weight_pct <= 100",
                        name="inspector_weight"),
        CheckConstraint("decimals >= 0 AND decimals <= 2", name="decimals"),
        CheckConstraint("honour_count >= 0", name="honour_count"),
        CheckConstraint("outlier_points > 0", name="outlier_points"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    period_start: Mapped[date] = mapped_column(Date)
    period_end: Mapped[date] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(10), default=RoundStatus.OPEN.value)
    # The inspectors' group's share of a compound's score, in percent (0: peers only).
    inspector_weight_pct: Mapped[int] = mapped_column(default=0)
    # Places after the decimal point a score may have (0, 1 or 2).
    decimals: Mapped[int] = mapped_column(default=1)
    # How many of the top places are named 红旗楼院.
    honour_count: Mapped[int] = mapped_column(default=3)
    # A scorer whose total (out of 100) for a compound is further than this from the median of
    # the other scorers' totals for it is flagged.
    outlier_points: Mapped[int] = mapped_column(default=15)
    locale: Mapped[str] = mapped_column(String(10), default="zh_Hans")
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"),
                                                      default=None)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    result_json: Mapped[str | None] = mapped_column(Text, default=None)

    criteria: Mapped[list[ScoringCriterion]] = relationship(
        back_populates="round", order_by="ScoringCriterion.position",
        cascade="all, delete-orphan")
    participants: Mapped[list[ScoringParticipant]] = relationship(
        back_populates="round", order_by="ScoringParticipant.id", cascade="all, delete-orphan")

    @property
    def is_open(self) -> bool:
        return self.status == RoundStatus.OPEN


class ScoringCriterion(Model):
    """One line of a round's scoring sheet: a relative weight and the most points it gives."""

    __tablename__ = "scoring_criterion"
    __table_args__ = (
        CheckConstraint("weight > 0", name="weight"),
        CheckConstraint("max_points > 0", name="max_points"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    round_id: Mapped[int] = mapped_column(ForeignKey("scoring_round.id"), index=True)
    position: Mapped[int]
    name: Mapped[str] = mapped_column(String(100))
    weight: Mapped[int]
    max_points: Mapped[int]

    round: Mapped[ScoringRound] = relationship(back_populates="criteria")


class ScoringParticipant(Model):
    """A compound taking part in a round: it is scored, and its committee scores the others."""

    __tablename__ = "scoring_participant"
    __table_args__ = (UniqueConstraint("round_id", "compound_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    round_id: Mapped[int] = mapped_column(ForeignKey("scoring_round.id"), index=True)
    compound_id: Mapped[int] = mapped_column(ForeignKey("compound.id"), index=True)

    round: Mapped[ScoringRound] = relationship(back_populates="participants")
    compound: Mapped[Compound] = relationship()

    @property
    def scope_compound_id(self) -> int:
        return self.compound_id


class Score(Model):
    """The points one scorer gave one compound on one criterion, in hundredths of a point.

    The scorer is a participating compound (``scorer_compound_id``, entered by its committee)
    or one of the street office's inspectors (``inspector``, a name, entered by the office);
    ``scorer_key`` ("c:12" or "i:王检查") names either, so one score per scorer stays unique.
    """

    __tablename__ = "scoring_score"
    __table_args__ = (
        UniqueConstraint("round_id", "scorer_key", "target_compound_id", "criterion_id"),
        CheckConstraint("points_centi >= 0", name="points"),
        CheckConstraint("(scorer_compound_id IS NULL) <> (inspector IS NULL)", name="scorer"),
        CheckConstraint("scorer_compound_id IS NULL OR scorer_compound_id <> target_compound_id",
                        name="not_self"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    round_id: Mapped[int] = mapped_column(ForeignKey("scoring_round.id"), index=True)
    criterion_id: Mapped[int] = mapped_column(ForeignKey("scoring_criterion.id"))
    target_compound_id: Mapped[int] = mapped_column(ForeignKey("compound.id"))
    scorer_key: Mapped[str] = mapped_column(String(60))
    scorer_compound_id: Mapped[int | None] = mapped_column(ForeignKey("compound.id"),
                                                           default=None)
    inspector: Mapped[str | None] = mapped_column(String(50), default=None)
    points_centi: Mapped[int]
    entered_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"),
                                                      default=None)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
