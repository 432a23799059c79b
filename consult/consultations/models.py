"""Consultation models: the consultation, its scope and items, the proposal's revisions,
opinions and their supports, comments, and meetings."""

from __future__ import annotations

import secrets
from datetime import datetime
from enum import StrEnum

from flask_babel import lazy_gettext as _l
from sqlalchemy import (
    CheckConstraint,
    Column,
    ForeignKey,
    Index,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy import false as sa_false
from sqlalchemy.orm import Mapped, mapped_column, relationship

from consult.consultations import states
from consult.consultations.states import Stage
from consult.core.models import TimestampMixin, UTCDateTime, utcnow
from consult.extensions import Model, db
from consult.registry.models import Building, Compound, Household
from consult.uploads.models import Attachment

_STAGES = ", ".join(f"'{s.value}'" for s in Stage)


class Secrecy(StrEnum):
    OPEN = "open"                  # 实名: the per-household list is published
    CONFIDENTIAL = "confidential"  # only counts are published


SECRECY_LABELS = {
    Secrecy.OPEN: _l("Open ballot (each household's vote is published)"),
    Secrecy.CONFIDENTIAL: _l("Confidential ballot (only the counts are published)"),
}


class Consultation(TimestampMixin, Model):
    """议题: one question put to the households of a compound (or of some of its buildings)."""

    __tablename__ = "consultation"
    __table_args__ = (
        CheckConstraint(f"stage IN ({_STAGES})", name="stage"),
        CheckConstraint("secrecy IN ('open', 'confidential')", name="secrecy"),
        CheckConstraint("round >= 1", name="round_positive"),
        Index("ix_consultation_compound_stage", "compound_id", "stage"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    compound_id: Mapped[int] = mapped_column(ForeignKey("compound.id"))
    title: Mapped[str] = mapped_column(String(200))
    summary: Mapped[str] = mapped_column(Text, default="")  # Markdown, sanitised when shown
    stage: Mapped[str] = mapped_column(String(20), default=Stage.DRAFT.value)
    round: Mapped[int] = mapped_column(default=1)
    # The decision rule: a preset's code (or "custom") and its conditions as canonical JSON.
    rule_code: Mapped[str] = mapped_column(String(40))
    rule_json: Mapped[str] = mapped_column(Text)
    secrecy: Mapped[str] = mapped_column(String(15), default=Secrecy.OPEN.value)
    locale: Mapped[str] = mapped_column(String(10), default="zh_Hans")
    solicitation_deadline: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    # When voting is planned to open (announced on the vote notice) and when it closes.
    vote_opens_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    vote_deadline: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    vote_opened_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    vote_closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    publicity_days: Mapped[int] = mapped_column(default=7)
    # A local rule may cap how many households one person may represent by proxy.
    proxy_cap: Mapped[int | None] = mapped_column(default=None)
    # Paper ballots count only once two members entered them alike: None follows the rule
    # (on for the Civil Code's rules), True/False as chosen. Fixed once the vote opens.
    double_entry: Mapped[bool | None] = mapped_column(default=None)
    # A proxy ballot counts only with its written authorisation (委托书) attached.
    proxy_document_required: Mapped[bool] = mapped_column(default=False,
                                                          server_default=sa_false())
    # When the closed vote was counted: a vote closed at its deadline while paper ballots
    # still awaited their second entry or a decision is counted once they are settled.
    vote_counted_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    # The warranty period of the finished works (保修期), in months from the first result
    # notice: residents report defects during it (consult/feedback/).
    warranty_months: Mapped[int] = mapped_column(default=24, server_default="24")
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"),
                                                      default=None)
    # The secret that keys the owner tokens of this consultation's ballot records
    # (``ballots.records.owner_token``): never exported, never shown, so that nobody can test
    # an ID number against a published token.
    owner_token_key: Mapped[str] = mapped_column(
        String(64), default=lambda: secrets.token_hex(32))

    compound: Mapped[Compound] = relationship()
    items: Mapped[list[Item]] = relationship(back_populates="consultation",
                                             order_by="Item.number")
    scopes: Mapped[list[ConsultationScope]] = relationship(
        back_populates="consultation", cascade="all, delete-orphan")
    attachments: Mapped[list[Attachment]] = relationship(secondary="consultation_attachment",
                                                         order_by="Attachment.id")

    @property
    def scope_compound_id(self) -> int:
        return self.compound_id

    @property
    def stage_enum(self) -> Stage:
        return Stage(self.stage)

    def vote_is_open(self, now: datetime | None = None) -> bool:
        """Whether a ballot may be cast now (``states.vote_is_open``: the stage and deadline)."""
        return states.vote_is_open(self.stage, self.vote_deadline, now or utcnow())

    @property
    def vote_counted(self) -> bool:
        """Whether the current round's vote has been counted (its result frozen)."""
        return self.stage_enum in states.COUNTED_STAGES


class ConsultationScope(Model):
    """Part of a compound a consultation concerns: a building, or one unit (stairwell) of it.

    A consultation without scope rows concerns the whole compound.
    """

    __tablename__ = "consultation_scope"
    __table_args__ = (UniqueConstraint("consultation_id", "building_id", "unit"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    consultation_id: Mapped[int] = mapped_column(ForeignKey("consultation.id"), index=True)
    building_id: Mapped[int] = mapped_column(ForeignKey("building.id"))
    unit: Mapped[str | None] = mapped_column(String(20), default=None)  # None: whole building

    consultation: Mapped[Consultation] = relationship(back_populates="scopes")
    building: Mapped[Building] = relationship()


# Papers of the proposal (plans, drawings, quotes), for the whole of it or for one item.
consultation_attachment = Table(
    "consultation_attachment",
    db.metadata,
    Column("consultation_id", ForeignKey("consultation.id"), primary_key=True),
    Column("attachment_id", ForeignKey("attachment.id"), primary_key=True),
)
item_attachment = Table(
    "item_attachment",
    db.metadata,
    Column("item_id", ForeignKey("item.id"), primary_key=True),
    Column("attachment_id", ForeignKey("attachment.id"), primary_key=True),
)


item_opinion = Table(
    "item_opinion",
    db.metadata,
    Column("item_id", ForeignKey("item.id"), primary_key=True),
    Column("opinion_id", ForeignKey("opinion.id"), primary_key=True),
)


class Item(TimestampMixin, Model):
    """议项: one piece of the proposal, voted on separately."""

    __tablename__ = "item"
    __table_args__ = (
        UniqueConstraint("consultation_id", "number"),
        CheckConstraint("estimated_cost_fen >= 0", name="cost_not_negative"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    consultation_id: Mapped[int] = mapped_column(ForeignKey("consultation.id"))
    number: Mapped[int]
    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")  # Markdown
    estimated_cost_fen: Mapped[int] = mapped_column(default=0)
    # The cost is paid by the households in scope in proportion to their floor area.
    cost_split_by_area: Mapped[bool] = mapped_column(default=False, server_default=sa_false())
    # 清单销号: ticked off when the work is done, with its final cost.
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    completed_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"),
                                                        default=None)
    final_cost_fen: Mapped[int | None] = mapped_column(default=None)
    completion_note: Mapped[str] = mapped_column(Text, default="")

    consultation: Mapped[Consultation] = relationship(back_populates="items")
    opinions: Mapped[list[Opinion]] = relationship(secondary=item_opinion,
                                                   back_populates="items")
    # Loaded with the items in one statement: pages list each item's attachments.
    attachments: Mapped[list[Attachment]] = relationship(secondary=item_attachment,
                                                         order_by="Attachment.id",
                                                         lazy="selectin")

    @property
    def scope_compound_id(self) -> int:
        return self.consultation.compound_id


class Revision(Model):
    """A numbered version of the proposal: its title, summary and items at one moment."""

    __tablename__ = "revision"
    __table_args__ = (UniqueConstraint("consultation_id", "number"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    consultation_id: Mapped[int] = mapped_column(ForeignKey("consultation.id"), index=True)
    number: Mapped[int]
    snapshot: Mapped[str] = mapped_column(Text)  # canonical JSON of the proposal
    note: Mapped[str] = mapped_column(String(300), default="")
    author_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"), default=None)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    consultation: Mapped[Consultation] = relationship()


class Channel(StrEnum):
    """How an opinion or a ballot reached the committee."""

    ONLINE = "online"
    DOOR_TO_DOOR = "door_to_door"  # 入户
    QUESTIONNAIRE = "questionnaire"
    MEETING = "meeting"            # 小板凳恳谈会
    HOTLINE = "hotline"


CHANNEL_LABELS = {
    Channel.ONLINE: _l("Online"),
    Channel.DOOR_TO_DOOR: _l("Door-to-door visit"),
    Channel.QUESTIONNAIRE: _l("Questionnaire"),
    Channel.MEETING: _l("Small-stool talk"),
    Channel.HOTLINE: _l("Hotline"),
}


class Category(StrEnum):
    PIPES = "pipes"
    ROADS = "roads"
    CABLES = "cables"
    CHARGING = "charging"
    FIRE_SAFETY = "fire_safety"
    SECURITY = "security"
    LIGHTING = "lighting"
    GREENERY = "greenery"
    PARKING = "parking"
    BUILDINGS = "buildings"
    FACILITIES = "facilities"
    OTHER = "other"


CATEGORY_LABELS = {
    Category.PIPES: _l("Water and drainage pipes"),
    Category.ROADS: _l("Roads and paths"),
    Category.CABLES: _l("Overhead cables"),
    Category.CHARGING: _l("E-bike charging"),
    Category.FIRE_SAFETY: _l("Fire safety"),
    Category.SECURITY: _l("Gatehouse and security"),
    Category.LIGHTING: _l("Lighting"),
    Category.GREENERY: _l("Greenery"),
    Category.PARKING: _l("Parking"),
    Category.BUILDINGS: _l("Roofs, walls and stairwells"),
    Category.FACILITIES: _l("Notice boards and shared facilities"),
    Category.OTHER: _l("Other"),
}
_CATEGORIES = ", ".join(f"'{c.value}'" for c in Category)
_CHANNELS = ", ".join(f"'{c.value}'" for c in Channel)


class Opinion(TimestampMixin, Model):
    """征集意见: a need or suggestion, from a household online or entered by the committee."""

    __tablename__ = "opinion"
    __table_args__ = (
        CheckConstraint(f"category IN ({_CATEGORIES})", name="category"),
        CheckConstraint(f"channel IN ({_CHANNELS})", name="channel"),
        Index("ix_opinion_consultation_category", "consultation_id", "category"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    consultation_id: Mapped[int] = mapped_column(ForeignKey("consultation.id"))
    household_id: Mapped[int | None] = mapped_column(ForeignKey("household.id"), index=True,
                                                     default=None)
    author_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"), default=None)
    channel: Mapped[str] = mapped_column(String(20), default=Channel.ONLINE.value)
    category: Mapped[str] = mapped_column(String(20), default=Category.OTHER.value)
    text: Mapped[str] = mapped_column(Text)
    photo_id: Mapped[int | None] = mapped_column(ForeignKey("attachment.id"), default=None)
    # A duplicate points at the opinion it was merged into; its supports moved there.
    merged_into_id: Mapped[int | None] = mapped_column(ForeignKey("opinion.id"), default=None)
    # Withdrawn by its household while opinions were collected: out of every list and count,
    # the row kept for the audit trail.
    withdrawn_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)

    consultation: Mapped[Consultation] = relationship()
    household: Mapped[Household | None] = relationship()
    photo: Mapped[Attachment | None] = relationship()
    items: Mapped[list[Item]] = relationship(secondary=item_opinion, back_populates="opinions")

    @property
    def scope_compound_id(self) -> int:
        return self.consultation.compound_id

    @property
    def scope_household_id(self) -> int | None:
        """The household whose own opinion this is (None: anonymous or the committee's)."""
        return self.household_id


class OpinionSupport(Model):
    """A household's +1 on an opinion; one per household and opinion."""

    __tablename__ = "opinion_support"
    __table_args__ = (UniqueConstraint("opinion_id", "household_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    opinion_id: Mapped[int] = mapped_column(ForeignKey("opinion.id"), index=True)
    household_id: Mapped[int] = mapped_column(ForeignKey("household.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Comment(TimestampMixin, Model):
    """A comment on an item during discussion; replies go one level deep."""

    __tablename__ = "comment"
    __table_args__ = (Index("ix_comment_item_parent", "item_id", "parent_id", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("item.id"))
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("comment.id"), default=None)
    household_id: Mapped[int | None] = mapped_column(ForeignKey("household.id"), default=None)
    author_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"), default=None)
    text: Mapped[str] = mapped_column(Text)
    # Moderation hides the text but keeps the reason visible to everyone.
    moderated_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    moderated_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"),
                                                        default=None)
    moderation_reason: Mapped[str] = mapped_column(String(300), default="")
    # Withdrawn by its household while the proposal was discussed: out of lists and counts
    # (a thread keeps its place, marked, while it has replies), the row kept for the audit.
    withdrawn_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)

    item: Mapped[Item] = relationship()
    household: Mapped[Household | None] = relationship()
    replies: Mapped[list[Comment]] = relationship(order_by="Comment.id")

    @property
    def scope_compound_id(self) -> int:
        return self.item.scope_compound_id

    @property
    def scope_household_id(self) -> int | None:
        """The household that wrote this comment (None: the committee's)."""
        return self.household_id


meeting_attachment = Table(
    "meeting_attachment",
    db.metadata,
    Column("meeting_id", ForeignKey("meeting.id"), primary_key=True),
    Column("attachment_id", ForeignKey("attachment.id"), primary_key=True),
)


class Meeting(TimestampMixin, Model):
    """议事会 / 联席会议 / 恳谈会: when, where, who, what was said and decided."""

    __tablename__ = "meeting"

    id: Mapped[int] = mapped_column(primary_key=True)
    consultation_id: Mapped[int] = mapped_column(ForeignKey("consultation.id"), index=True)
    held_at: Mapped[datetime] = mapped_column(UTCDateTime)
    place: Mapped[str] = mapped_column(String(200))
    # Attendees by role, as canonical JSON: {"community": "...", "residents": "...", ...}
    attendees_json: Mapped[str] = mapped_column(Text, default="{}")
    minutes: Mapped[str] = mapped_column(Text, default="")    # Markdown
    decisions: Mapped[str] = mapped_column(Text, default="")  # Markdown
    author_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"), default=None)

    consultation: Mapped[Consultation] = relationship()
    attachments: Mapped[list[Attachment]] = relationship(secondary=meeting_attachment)

    @property
    def scope_compound_id(self) -> int:
        return self.consultation.compound_id
