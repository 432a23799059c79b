"""Accounts: users with a role, their compound scopes, and household access codes."""

from __future__ import annotations

from datetime import datetime

from flask_babel import force_locale
from flask_login import UserMixin
from sqlalchemy import CheckConstraint, ForeignKey, String, UniqueConstraint, or_, select
from sqlalchemy.orm import Mapped, mapped_column, relationship
from werkzeug.security import check_password_hash

from consult.core.i18n import SUPPORTED_LOCALES
from consult.core.models import TimestampMixin, UTCDateTime, utcnow
from consult.core.policy import STORED_ROLES, Role
from consult.extensions import Model, db
from consult.registry.models import Community, Compound, Grid, Household

_ROLE_VALUES = ", ".join(f"'{r.value}'" for r in STORED_ROLES)
# A scope names exactly one of a community, a compound or a grid.
ONE_TARGET = ("(CASE WHEN community_id IS NULL THEN 0 ELSE 1 END"
              " + CASE WHEN compound_id IS NULL THEN 0 ELSE 1 END"
              " + CASE WHEN grid_id IS NULL THEN 0 ELSE 1 END) = 1")


class User(UserMixin, TimestampMixin, Model):
    """A person who signs in. Residents act for exactly one household."""

    __tablename__ = "user_account"
    __table_args__ = (
        CheckConstraint(f"role IN ({_ROLE_VALUES})", name="role"),
        CheckConstraint(
            "(role = 'resident') = (household_id IS NOT NULL)", name="resident_household"
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(String(100))
    password_hash: Mapped[str | None] = mapped_column(String(255), default=None)
    role: Mapped[str] = mapped_column(String(20))
    # One account per household: it is the household's representative (户代表).
    household_id: Mapped[int | None] = mapped_column(
        ForeignKey("household.id"), unique=True, default=None
    )
    active: Mapped[bool] = mapped_column(default=True)
    locale: Mapped[str | None] = mapped_column(String(10), default=None)
    last_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    # Wrong passwords since the last sign-in or lock; at the threshold the account is locked
    # until ``locked_until`` (consult.accounts.lockout).
    failed_logins: Mapped[int] = mapped_column(default=0)
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    # Raised to end every session of the account at once (consult.accounts.sessions): a
    # session is valid only while its own epoch equals this one.
    session_epoch: Mapped[int] = mapped_column(default=0, server_default="0")

    household: Mapped[Household | None] = relationship()
    scopes: Mapped[list[UserScope]] = relationship(
        back_populates="user", cascade="all, delete-orphan", order_by="UserScope.id"
    )

    @property
    def is_active(self) -> bool:  # Flask-Login refuses inactive users
        return self.active

    @property
    def role_enum(self) -> Role:
        return Role(self.role)

    @property
    def shown_name(self) -> str:
        """The name to show. A household's account is named after its address when it is
        made, in the language of whoever made it; shown again, that address is written in the
        reader's language, like every other address on the page. A name someone typed in
        for the account is shown as it was typed."""
        household = self.household
        if household is None:
            return self.display_name
        label = household.label
        if self.display_name != label:
            for locale in SUPPORTED_LOCALES:
                with force_locale(locale):
                    if self.display_name == household.label:
                        return label
            return self.display_name
        return label

    def check_password(self, password: str) -> bool:
        if not self.password_hash:
            return False
        return check_password_hash(self.password_hash, password)

    def scoped_compound_ids(self) -> frozenset[int]:
        """Compounds this user is scoped to, directly, through a whole community or through
        a grid (at most one query, whatever the number of scopes)."""
        cached = self.__dict__.get("_scope_cache")
        if cached is not None:
            return cached
        compound_ids = {s.compound_id for s in self.scopes if s.compound_id is not None}
        community_ids = [s.community_id for s in self.scopes if s.community_id is not None]
        grid_ids = [s.grid_id for s in self.scopes if s.grid_id is not None]
        conditions = []
        if community_ids:
            conditions.append(Compound.community_id.in_(community_ids))
        if grid_ids:
            conditions.append(Compound.grid_id.in_(grid_ids))
        if conditions:
            compound_ids.update(db.session.scalars(select(Compound.id).where(or_(*conditions))))
        result = frozenset(compound_ids)
        self.__dict__["_scope_cache"] = result
        return result

    def forget_scope_cache(self) -> None:
        self.__dict__.pop("_scope_cache", None)


class UserScope(Model):
    """A compound, a whole community or a grid that a staff member works in (exactly one of
    the three)."""

    __tablename__ = "user_scope"
    __table_args__ = (
        CheckConstraint(ONE_TARGET, name="one_target"),
        UniqueConstraint("user_id", "community_id", "compound_id"),
        UniqueConstraint("user_id", "grid_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user_account.id"), index=True)
    community_id: Mapped[int | None] = mapped_column(ForeignKey("community.id"), default=None)
    compound_id: Mapped[int | None] = mapped_column(ForeignKey("compound.id"), default=None)
    grid_id: Mapped[int | None] = mapped_column(ForeignKey("grid.id"), index=True, default=None)

    user: Mapped[User] = relationship(back_populates="scopes")
    community: Mapped[Community | None] = relationship()
    compound: Mapped[Compound | None] = relationship()
    grid: Mapped[Grid | None] = relationship()

    @property
    def label(self) -> str:
        if self.compound is not None:
            return self.compound.full_name
        if self.grid is not None:
            return self.grid.full_name
        assert self.community is not None
        return self.community.name


class AccessCode(Model):
    """A household access code, printed on a letter. Only keyed hashes of it are stored.

    A code works once: redeeming it signs the household's account in and marks it used.
    Issuing a new code revokes the household's earlier unused ones.

    Codes issued since selectors exist also store a keyed hash of their first digits (the
    selector), unique among open codes, so that a wrong code whose selector names an open code
    counts against that code (``failures``, ``pauses``, ``paused_until``), whoever sends it.
    The selector hash is cleared when the code is used or revoked. Older codes have none.
    """

    __tablename__ = "access_code"

    id: Mapped[int] = mapped_column(primary_key=True)
    household_id: Mapped[int] = mapped_column(ForeignKey("household.id"), index=True)
    code_hash: Mapped[str] = mapped_column(String(64), unique=True)
    selector_hash: Mapped[str | None] = mapped_column(String(64), unique=True, default=None)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"), default=None)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    # A keyed hash of the address and browser that used the code: the same code signs in
    # again from there alone, for a short grace period.
    used_by_client: Mapped[str | None] = mapped_column(String(64), default=None)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    # Wrong codes with this code's selector since its last pause, the pauses so far, and
    # the end of the current one.
    failures: Mapped[int] = mapped_column(default=0, server_default="0")
    pauses: Mapped[int] = mapped_column(default=0, server_default="0")
    paused_until: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)

    household: Mapped[Household] = relationship()

    @property
    def is_usable(self) -> bool:
        return self.used_at is None and self.revoked_at is None

    def paused_at(self, now: datetime) -> bool:
        return self.paused_until is not None and self.paused_until > now

    @property
    def scope_compound_id(self) -> int:
        return self.household.scope_compound_id


class ClientLock(Model):
    """Wrong access codes from one client address (kept as a keyed hash), and the pause of
    code sign-in they earned. The row keyed ``GLOBAL_KEY`` counts wrong codes from every
    address for the alarm; its ``locked_until`` is the end of the alarm's window."""

    __tablename__ = "client_lock"

    id: Mapped[int] = mapped_column(primary_key=True)
    client_key: Mapped[str] = mapped_column(String(64), unique=True)
    failures: Mapped[int] = mapped_column(default=0)
    window_started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)


GLOBAL_KEY = "*"  # ClientLock.client_key of the all-clients counter (a hash never is "*")


class UserSession(Model):
    """One sign-in: the browser's signed cookie carries a random token whose hash names this
    row, so a session can be ended for every copy of its cookie.

    A session is valid while it is not ended and its epoch equals its account's
    ``session_epoch``; raising the account's epoch ends all its sessions at once.
    """

    __tablename__ = "user_session"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user_account.id"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    epoch: Mapped[int] = mapped_column(default=0)
    method: Mapped[str] = mapped_column(String(20))  # password, access_code, …
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    # A fresh access-code sign-in may choose a password once without the current one
    # (/welcome) until this time; when it did.
    welcome_until: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    welcome_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    access_code_id: Mapped[int | None] = mapped_column(ForeignKey("access_code.id"),
                                                       default=None)


class ApiToken(Model):
    """A bearer token of the JSON API: short-lived access, or a refresh token that gives the
    next pair once. Only the token's SHA-256 is stored.

    Every token belongs to a session row, so whatever ends the account's sessions (signing out
    everywhere, a new password, a change of role or scope, switching the account off) ends its
    tokens too; signing out of the API ends its session row.
    """

    __tablename__ = "api_token"

    id: Mapped[int] = mapped_column(primary_key=True)
    session_id: Mapped[int] = mapped_column(
        ForeignKey("user_session.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(10))  # access, refresh
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # A refresh token is used once: the time it gave the next pair.
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
