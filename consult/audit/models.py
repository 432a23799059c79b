"""Audit events and the head rows that serialise appends, one per chain.

Chain 0 is the global chain (accounts, registry, sign-ins, … and the anchors of the other
chains); every other chain is one consultation's, keyed by the consultation's id.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from consult.core.models import UTCDateTime
from consult.extensions import Model

GENESIS_HASH = "0" * 64
GLOBAL_CHAIN = 0
# SQLite numbers rows itself only for an INTEGER PRIMARY KEY (the rowid).
_EVENT_NUMBER = BigInteger().with_variant(Integer(), "sqlite")


class AuditEvent(Model):
    """One recorded change. ``hash`` covers every other column but ``seq`` and the hash of the
    previous event of the same chain.

    ``seq`` is the event's number: global and increasing, given by the database at insert
    (gaps after a rollback are harmless: it is not hashed). ``chain_seq`` is the gapless
    position in the chain ``chain_id``.
    """

    __tablename__ = "audit_event"
    __table_args__ = (
        Index("ix_audit_event_object", "object_type", "object_id"),
        Index("ix_audit_event_compound_seq", "compound_id", "seq"),
        UniqueConstraint("chain_id", "chain_seq"),
    )

    seq: Mapped[int] = mapped_column(_EVENT_NUMBER, primary_key=True, autoincrement=True)
    chain_id: Mapped[int] = mapped_column(BigInteger, default=GLOBAL_CHAIN)
    chain_seq: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    actor_id: Mapped[int | None] = mapped_column(default=None)
    actor_label: Mapped[str] = mapped_column(String(100))
    action: Mapped[str] = mapped_column(String(64), index=True)
    object_type: Mapped[str] = mapped_column(String(40))
    object_id: Mapped[str | None] = mapped_column(String(64), default=None)
    # The compound the event concerns, so supervisors see the events of their scope.
    compound_id: Mapped[int | None] = mapped_column(default=None)
    payload: Mapped[str] = mapped_column(Text)  # canonical JSON
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64), unique=True)

    @property
    def scope_compound_id(self) -> int | None:
        return self.compound_id


class AuditHead(Model):
    """One chain's last position (``seq`` is the ``chain_seq`` of its last event) and hash;
    appenders to that chain lock it."""

    __tablename__ = "audit_head"

    chain_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    seq: Mapped[int] = mapped_column(BigInteger)
    hash: Mapped[str] = mapped_column(String(64))
