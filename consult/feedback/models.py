"""Defect reports (查漏补缺) on the finished items of a consultation."""

from __future__ import annotations

from datetime import date, datetime
from typing import TYPE_CHECKING

from flask_babel import lazy_gettext as _l
from sqlalchemy import CheckConstraint, Column, Date, ForeignKey, Index, String, Table, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from consult.consultations.models import Consultation, Item
from consult.core.models import UTCDateTime, utcnow
from consult.extensions import Model, db
from consult.feedback.states import Action, State
from consult.registry.models import Building, Household
from consult.uploads.models import Attachment

if TYPE_CHECKING:
    from consult.accounts.models import User

defect_photo = Table(
    "defect_photo",
    db.metadata,
    Column("report_id", ForeignKey("defect_report.id"), primary_key=True),
    Column("attachment_id", ForeignKey("attachment.id"), primary_key=True),
)

STATE_LABELS = {
    State.OPEN: _l("Reported"),
    State.ACCEPTED: _l("Accepted"),
    State.REJECTED: _l("Rejected"),
    State.ASSIGNED: _l("Being fixed"),
    State.FIXED: _l("Fixed"),
    State.CONFIRMED: _l("Fix confirmed"),
}

ACTION_LABELS = {
    Action.ACCEPT: _l("Accept"),
    Action.REJECT: _l("Reject"),
    Action.ASSIGN: _l("Assign"),
    Action.MARK_FIXED: _l("Mark as fixed"),
    Action.CONFIRM: _l("Confirm the fix"),
    Action.REOPEN: _l("Reopen"),
}


class DefectReport(Model):
    """A problem found in a finished item during its warranty period, and what became of it.

    ``household_id`` is the household that reported it (itself, or through a grid worker who
    names it); a supervisor's own report has none. The state only changes through
    ``consult.feedback.service.move``.
    """

    __tablename__ = "defect_report"
    __table_args__ = (
        CheckConstraint("state IN ('open', 'accepted', 'rejected', 'assigned', 'fixed', "
                        "'confirmed')", name="state"),
        Index("ix_defect_report_consultation_state", "consultation_id", "state"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    consultation_id: Mapped[int] = mapped_column(ForeignKey("consultation.id"))
    item_id: Mapped[int] = mapped_column(ForeignKey("item.id"))
    building_id: Mapped[int] = mapped_column(ForeignKey("building.id"))
    household_id: Mapped[int | None] = mapped_column(ForeignKey("household.id"), index=True,
                                                     default=None)
    reporter_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"), default=None)
    reporter_role: Mapped[str] = mapped_column(String(20))
    text: Mapped[str] = mapped_column(Text)
    state: Mapped[str] = mapped_column(String(20), default=State.OPEN.value)
    reason: Mapped[str] = mapped_column(Text, default="")  # of the latest reject or reopen
    assignee: Mapped[str] = mapped_column(String(100), default="")
    due_on: Mapped[date | None] = mapped_column(Date, default=None)  # a day in Beijing time
    fix_note: Mapped[str] = mapped_column(Text, default="")
    fix_photo_id: Mapped[int | None] = mapped_column(ForeignKey("attachment.id"), default=None)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    fixed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)

    consultation: Mapped[Consultation] = relationship()
    item: Mapped[Item] = relationship()
    building: Mapped[Building] = relationship()
    household: Mapped[Household | None] = relationship()
    reporter: Mapped[User | None] = relationship()
    photos: Mapped[list[Attachment]] = relationship(secondary=defect_photo)
    fix_photo: Mapped[Attachment | None] = relationship()

    @property
    def scope_compound_id(self) -> int:
        return self.consultation.compound_id

    @property
    def scope_household_id(self) -> int | None:
        return self.household_id

    @property
    def state_enum(self) -> State:
        return State(self.state)

    @property
    def state_label(self) -> str:
        return str(STATE_LABELS[self.state_enum])
