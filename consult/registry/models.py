"""Registry models: StreetOffice → Community → Grid → Compound → Building → Household, and a
household's Residents."""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import (
    CheckConstraint,
    ForeignKey,
    Index,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from consult.core.models import TimestampMixin, UTCDateTime, utcnow
from consult.core.text import natural_key
from consult.extensions import Model

if TYPE_CHECKING:
    from consult.accounts.models import User

# Natural sort keys compare byte-wise; PostgreSQL's default collation would ignore the padding.
SortKey = String(120).with_variant(String(120, collation="C"), "postgresql")


class StreetOffice(TimestampMixin, Model):
    """街道办事处: the sub-district office that runs the method across its communities."""

    __tablename__ = "street_office"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)

    communities: Mapped[list[Community]] = relationship(
        back_populates="street_office", order_by="Community.name"
    )


class Community(TimestampMixin, Model):
    """社区: a neighbourhood committee's area."""

    __tablename__ = "community"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    street: Mapped[str] = mapped_column(String(100), default="")  # 街道 (sub-district)
    # Communities registered before street offices existed have none until one is named.
    street_office_id: Mapped[int | None] = mapped_column(
        ForeignKey("street_office.id"), index=True, default=None
    )

    street_office: Mapped[StreetOffice | None] = relationship(back_populates="communities")
    grids: Mapped[list[Grid]] = relationship(back_populates="community", order_by="Grid.name")
    compounds: Mapped[list[Compound]] = relationship(
        back_populates="community", order_by="Compound.name"
    )


class Grid(TimestampMixin, Model):
    """网格: a part of a community that one grid worker looks after; holds whole compounds."""

    __tablename__ = "grid"
    __table_args__ = (UniqueConstraint("community_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    community_id: Mapped[int] = mapped_column(ForeignKey("community.id"), index=True)
    name: Mapped[str] = mapped_column(String(100))

    community: Mapped[Community] = relationship(back_populates="grids")
    compounds: Mapped[list[Compound]] = relationship(
        back_populates="grid", order_by="Compound.name"
    )

    @property
    def full_name(self) -> str:
        return f"{self.community.name} / {self.name}"


class Compound(TimestampMixin, Model):
    """小区 / 楼院: the unit a consultation is usually about."""

    __tablename__ = "compound"
    __table_args__ = (UniqueConstraint("community_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    community_id: Mapped[int] = mapped_column(ForeignKey("community.id"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    address: Mapped[str] = mapped_column(String(200), default="")
    # A compound belongs to at most one grid, and that grid is in the compound's community.
    grid_id: Mapped[int | None] = mapped_column(ForeignKey("grid.id"), index=True, default=None)

    community: Mapped[Community] = relationship(back_populates="compounds")
    grid: Mapped[Grid | None] = relationship(back_populates="compounds")
    buildings: Mapped[list[Building]] = relationship(
        back_populates="compound", order_by="Building.sort_key"
    )

    @property
    def scope_compound_id(self) -> int:
        return self.id

    @property
    def full_name(self) -> str:
        return f"{self.community.name} / {self.name}"


class Building(TimestampMixin, Model):
    """楼栋."""

    __tablename__ = "building"
    __table_args__ = (UniqueConstraint("compound_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    compound_id: Mapped[int] = mapped_column(ForeignKey("compound.id"), index=True)
    name: Mapped[str] = mapped_column(String(50))
    sort_key: Mapped[str] = mapped_column(SortKey)

    compound: Mapped[Compound] = relationship(back_populates="buildings")
    households: Mapped[list[Household]] = relationship(
        back_populates="building", order_by="Household.sort_key"
    )

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)
        self.sort_key = natural_key(self.name or "")

    def rename(self, name: str) -> None:
        self.name = name
        self.sort_key = natural_key(name)

    @property
    def scope_compound_id(self) -> int:
        return self.compound_id


class Household(TimestampMixin, Model):
    """户: one exclusive part (专有部分) of a building.

    ``area_dm2`` is the registered exclusive area in whole square decimetres, i.e. 0.01 m²,
    so 85.32 m² is stored as 8532 and sums stay exact.
    ``owner_key`` identifies the owner across households (e.g. a hashed ID number); households
    with the same key belong to one owner, who is one head in owner counts. When empty the
    household is its own owner.
    """

    __tablename__ = "household"
    __table_args__ = (
        UniqueConstraint("building_id", "unit", "room"),
        CheckConstraint("area_dm2 > 0", name="area_positive"),
        Index("ix_household_building_sort", "building_id", "sort_key"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    building_id: Mapped[int] = mapped_column(ForeignKey("building.id"))
    unit: Mapped[str] = mapped_column(String(20), default="")
    floor: Mapped[int | None] = mapped_column(default=None)
    room: Mapped[str] = mapped_column(String(20))
    area_dm2: Mapped[int]
    owner_name: Mapped[str] = mapped_column(String(100))
    owner_key: Mapped[str | None] = mapped_column(String(128), index=True, default=None)
    phone: Mapped[str | None] = mapped_column(String(30), default=None)
    sort_key: Mapped[str] = mapped_column(SortKey)

    building: Mapped[Building] = relationship(back_populates="households")
    residents: Mapped[list[Resident]] = relationship(
        back_populates="household", order_by="Resident.id", cascade="all, delete-orphan"
    )

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)
        self.refresh_sort_key()

    def refresh_sort_key(self) -> None:
        self.sort_key = household_sort_key(self.unit or "", self.room or "")

    @property
    def scope_compound_id(self) -> int:
        return self.building.compound_id

    @property
    def scope_household_id(self) -> int:
        return self.id

    @property
    def owner_identity(self) -> str:
        """The key that makes one head in owner counts."""
        return self.owner_key or f"household:{self.id}"

    @property
    def label(self) -> str:
        """Building, unit and room, as printed on notices (never the owner's name)."""
        return household_label(self.building.name, self.unit, self.room)


def household_sort_key(unit: str, room: str) -> str:
    return f"{natural_key(unit)}/{natural_key(room)}"


def household_label(building: str, unit: str, room: str) -> str:
    if unit:
        return _("%(building)s, unit %(unit)s, room %(room)s", building=building, unit=unit,
                 room=room)
    return _("%(building)s, room %(room)s", building=building, room=room)


class Relation(StrEnum):
    OWNER = "owner"
    FAMILY = "family"
    TENANT = "tenant"
    OTHER = "other"


RELATION_LABELS = {
    Relation.OWNER: _l("Owner"),
    Relation.FAMILY: _l("Family member"),
    Relation.TENANT: _l("Tenant"),
    Relation.OTHER: _l("Other"),
}


class Resident(TimestampMixin, Model):
    """A person living in or owning a household; one of them may be its representative (户代表)."""

    __tablename__ = "resident"
    __table_args__ = (
        CheckConstraint("relation IN ('owner', 'family', 'tenant', 'other')", name="relation"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    household_id: Mapped[int] = mapped_column(ForeignKey("household.id"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    phone: Mapped[str | None] = mapped_column(String(30), default=None)
    relation: Mapped[str] = mapped_column(String(10), default=Relation.OWNER.value)
    is_representative: Mapped[bool] = mapped_column(default=False)

    household: Mapped[Household] = relationship(back_populates="residents")

    @property
    def scope_compound_id(self) -> int:
        return self.household.scope_compound_id

    @property
    def scope_household_id(self) -> int:
        return self.household_id


# A job untouched for this long was cut off (its process stopped): it will not finish by itself.
IMPORT_JOB_STALLED_AFTER = timedelta(minutes=10)


class ImportJob(Model):
    """One households file being imported: checked, staged and then written in one go.

    A file uploaded on the web is kept here (``data``) until the job ends, so whichever
    process runs the job can read it; the command line imports through a job too, without the
    file. ``problems`` holds every problem found (JSON ``[[line, column, message], …]``) when
    the file is refused, ``summary`` what the import did (JSON) once it is done.
    """

    __tablename__ = "import_job"
    __table_args__ = (
        CheckConstraint("status IN ('queued', 'checking', 'writing', 'done', 'failed')",
                        name="status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    compound_id: Mapped[int | None] = mapped_column(ForeignKey("compound.id"), index=True,
                                                    default=None)
    status: Mapped[str] = mapped_column(String(10), default="queued")
    filename: Mapped[str] = mapped_column(String(200))
    data: Mapped[bytes | None] = mapped_column(LargeBinary, default=None, deferred=True)
    create_buildings: Mapped[bool] = mapped_column(default=False)
    locale: Mapped[str] = mapped_column(String(10), default="zh_Hans")
    done: Mapped[int] = mapped_column(default=0)
    total: Mapped[int] = mapped_column(default=0)
    message: Mapped[str] = mapped_column(String(500), default="")
    problems: Mapped[str | None] = mapped_column(Text, default=None, deferred=True)
    summary: Mapped[str | None] = mapped_column(Text, default=None)
    requested_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"),
                                                        default=None)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    # Touched at every step; see IMPORT_JOB_STALLED_AFTER.
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    compound: Mapped[Compound | None] = relationship()
    # Named, not imported: accounts builds on the registry, not the other way round.
    requested_by: Mapped[User | None] = relationship("User")

    @property
    def stalled(self) -> bool:
        """Not finished, but untouched for longer than any step takes: the process running it
        stopped (a restart), so it never will finish. Nothing of it was written."""
        return (self.status in ("queued", "checking", "writing")
                and utcnow() - self.updated_at > IMPORT_JOB_STALLED_AFTER)

    @property
    def in_progress(self) -> bool:
        return self.status in ("queued", "checking", "writing") and not self.stalled

    @property
    def scope_compound_id(self) -> int | None:
        return self.compound_id


class StagedHousehold(Model):
    """A checked row of an import waiting to be written: the households file is copied here
    in short transactions, then into ``household`` by one short transaction (or thrown away).

    ``household_id`` is the household the row updates (None: a new one), as it stood when the
    file was checked (``seen_updated_at``); ``building_id`` is None for a building the import
    creates (``building_name`` in ``compound_id``). Rows are deleted once their job ends.
    """

    __tablename__ = "import_staged_household"

    id: Mapped[int] = mapped_column(primary_key=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("import_job.id"), index=True)
    line: Mapped[int]
    compound_id: Mapped[int]
    building_id: Mapped[int | None] = mapped_column(default=None)
    building_name: Mapped[str] = mapped_column(String(50))
    unit: Mapped[str] = mapped_column(String(20))
    floor: Mapped[int | None] = mapped_column(default=None)
    room: Mapped[str] = mapped_column(String(20))
    area_dm2: Mapped[int]
    owner_name: Mapped[str] = mapped_column(String(100))
    owner_key: Mapped[str | None] = mapped_column(String(128), default=None)
    phone: Mapped[str | None] = mapped_column(String(30), default=None)
    sort_key: Mapped[str] = mapped_column(SortKey)
    household_id: Mapped[int | None] = mapped_column(default=None)
    seen_updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    changed: Mapped[bool] = mapped_column(default=False)
