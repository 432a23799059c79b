"""Ballot models: the frozen roll of a voting round, one current ballot per household, the
committee's entries of paper ballots, and the frozen result of each closed round."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from flask_babel import lazy_gettext as _l
from sqlalchemy import CheckConstraint, ForeignKey, Index, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from consult.consultations.models import Consultation
from consult.core.models import UTCDateTime, utcnow
from consult.extensions import Model
from consult.uploads.models import Attachment


class BallotChannel(StrEnum):
    ONLINE = "online"
    PAPER = "paper"                # 书面
    DOOR_TO_DOOR = "door_to_door"  # 入户
    PROXY = "proxy"                # 委托


BALLOT_CHANNEL_LABELS = {
    BallotChannel.ONLINE: _l("Online"),
    BallotChannel.PAPER: _l("Paper ballot"),
    BallotChannel.DOOR_TO_DOOR: _l("Door-to-door"),
    BallotChannel.PROXY: _l("By proxy"),
}


class RollEntry(Model):
    """表决名册: a household as it stood when the vote opened. Later registry edits do not
    reach a running vote."""

    __tablename__ = "roll_entry"
    __table_args__ = (
        UniqueConstraint("consultation_id", "round", "household_id"),
        # The roll in address order (ballot list pages, the notice appendix, the per-building
        # counts of the tally) without sorting the whole roll.
        Index("ix_roll_entry_address", "consultation_id", "round", "building_sort",
              "household_sort"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    consultation_id: Mapped[int] = mapped_column(ForeignKey("consultation.id"))
    round: Mapped[int]
    household_id: Mapped[int] = mapped_column(ForeignKey("household.id"))
    building_name: Mapped[str] = mapped_column(String(50))
    building_sort: Mapped[str] = mapped_column(String(120))
    unit: Mapped[str] = mapped_column(String(20))
    room: Mapped[str] = mapped_column(String(20))
    household_sort: Mapped[str] = mapped_column(String(120))
    area_dm2: Mapped[int]
    # One head per owner: the owner key, or the household itself when it has none.
    owner_identity: Mapped[str] = mapped_column(String(140))
    owner_name: Mapped[str] = mapped_column(String(100))  # never shown on public pages


class Ballot(Model):
    """表决票: the current ballot of a household in a round. Changing it updates this row;
    every version is in the audit trail. The unique constraint is what guarantees one ballot
    per household, also under concurrent submissions."""

    __tablename__ = "ballot"
    __table_args__ = (
        UniqueConstraint("consultation_id", "round", "household_id"),
        CheckConstraint("channel IN ('online', 'paper', 'door_to_door', 'proxy')",
                        name="channel"),
        Index("ix_ballot_proxy", "consultation_id", "round", "proxy_identity"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    consultation_id: Mapped[int] = mapped_column(ForeignKey("consultation.id"))
    round: Mapped[int]
    household_id: Mapped[int] = mapped_column(ForeignKey("household.id"))
    channel: Mapped[str] = mapped_column(String(15))
    entered_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"),
                                                      default=None)
    serial: Mapped[str | None] = mapped_column(String(40), default=None)  # paper ballot number
    proxy_name: Mapped[str | None] = mapped_column(String(100), default=None)
    proxy_identity: Mapped[str | None] = mapped_column(String(140), default=None)
    proxy_document_id: Mapped[int | None] = mapped_column(ForeignKey("attachment.id"),
                                                          default=None)
    # Shown to the household only (public records carry its hash, see ``records``):
    # "K7QX-3MPA-9RTV-W2HC", or "K7QX-3MPA" for ballots cast before receipts were lengthened.
    receipt: Mapped[str] = mapped_column(String(24))
    # The one-time token of the submission that produced this version: a second submission
    # with the same token (a double click, a resent form) is recognised and writes nothing.
    submission: Mapped[str | None] = mapped_column(String(64), default=None)
    version: Mapped[int] = mapped_column(default=1)
    cast_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    choices: Mapped[list[BallotChoice]] = relationship(
        back_populates="ballot", cascade="all, delete-orphan", order_by="BallotChoice.item_id")
    proxy_document: Mapped[Attachment | None] = relationship()


class BallotChoice(Model):
    __tablename__ = "ballot_choice"
    __table_args__ = (
        CheckConstraint(
            "choice IN ('agree', 'disagree', 'abstain', 'undecided', 'not_reached')",
            name="choice"),
    )

    ballot_id: Mapped[int] = mapped_column(ForeignKey("ballot.id"), primary_key=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("item.id"), primary_key=True)
    choice: Mapped[str] = mapped_column(String(15))

    ballot: Mapped[Ballot] = relationship(back_populates="choices")


class EntryState(StrEnum):
    """Where a committee member's entry of a ballot stands.

    The first entry of a paper (the *lead*, ``first_id`` None) carries the state of the whole
    case; later entries of the same paper point at it and say how they compared.
    """

    # Of a lead entry:
    AWAITING_SECOND = "awaiting_second"  # double entry: a second, independent entry is due
    DIFFERS = "differs"                  # the entries disagree: a third member decides
    AWAITING_AUTHORISATION = "awaiting_authorisation"  # a proxy ballot without its 委托书
    COUNTED = "counted"                  # it became the household's ballot
    SET_ASIDE = "set_aside"              # it never counted (the household voted itself, …)
    # Of a later entry of the same paper:
    MATCHED = "matched"                  # agreed with the first entry
    DECISION = "decision"                # the paper as read by the member who decided


ENTRY_STATE_LABELS = {
    EntryState.AWAITING_SECOND: _l("awaits its second entry"),
    EntryState.DIFFERS: _l("entries differ: awaits a decision"),
    EntryState.AWAITING_AUTHORISATION: _l("awaits the written authorisation"),
    EntryState.COUNTED: _l("counted"),
    EntryState.SET_ASIDE: _l("set aside, never counted"),
    EntryState.MATCHED: _l("agreed with the first entry"),
    EntryState.DECISION: _l("the paper as read by the deciding member"),
}

# A lead entry in one of these states stands in the way of any other entry for its household.
OPEN_ENTRY_STATES = (EntryState.AWAITING_SECOND, EntryState.DIFFERS,
                     EntryState.AWAITING_AUTHORISATION)
# These keep the vote from being counted.
UNSETTLED_ENTRY_STATES = (EntryState.AWAITING_SECOND, EntryState.DIFFERS)
_ENTRY_STATES = ", ".join(f"'{s.value}'" for s in EntryState)
_OPEN_STATES = ", ".join(f"'{s.value}'" for s in OPEN_ENTRY_STATES)


class BallotEntry(Model):
    """A paper, door-to-door or proxy ballot as one committee member typed it in (by hand or
    from a file).

    Entries are kept as typed and never changed but for their state: a ballot is recorded
    from an entry once the consultation's rules allow (a second, matching entry by another
    member under double entry; the written authorisation of a proxy where it is required;
    the reason and evidence of a correction over a ballot the household already has).
    """

    __tablename__ = "ballot_entry"
    __table_args__ = (
        CheckConstraint(f"state IN ({_ENTRY_STATES})", name="state"),
        CheckConstraint("channel IN ('paper', 'door_to_door', 'proxy')", name="channel"),
        CheckConstraint("source IN ('form', 'import', 'decision')", name="source"),
        Index("ix_ballot_entry_household", "consultation_id", "round", "household_id"),
        Index("ix_ballot_entry_state", "consultation_id", "round", "state"),
        # One open case per household: two members entering a first entry at once cannot
        # both start one (the second gets an error and enters again as the second entry).
        Index("uq_ballot_entry_open_case", "consultation_id", "round", "household_id",
              unique=True,
              sqlite_where=text(f"first_id IS NULL AND state IN ({_OPEN_STATES})"),
              postgresql_where=text(f"first_id IS NULL AND state IN ({_OPEN_STATES})")),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    consultation_id: Mapped[int] = mapped_column(ForeignKey("consultation.id"))
    round: Mapped[int]
    household_id: Mapped[int] = mapped_column(ForeignKey("household.id"))
    # The first entry of the same paper, for every later one (None: this is the first).
    first_id: Mapped[int | None] = mapped_column(ForeignKey("ballot_entry.id"), default=None)
    state: Mapped[str] = mapped_column(String(25))
    source: Mapped[str] = mapped_column(String(10), default="form")
    channel: Mapped[str] = mapped_column(String(15))
    serial: Mapped[str | None] = mapped_column(String(40), default=None)
    proxy_name: Mapped[str | None] = mapped_column(String(100), default=None)
    proxy_identity: Mapped[str | None] = mapped_column(String(140), default=None)
    proxy_document_id: Mapped[int | None] = mapped_column(ForeignKey("attachment.id"),
                                                          default=None)
    # Item id → choice, canonical JSON.
    choices_json: Mapped[str] = mapped_column(Text)
    # A correction of a ballot the household already had: why, and the scan that shows it.
    correction_reason: Mapped[str | None] = mapped_column(String(500), default=None)
    evidence_id: Mapped[int | None] = mapped_column(ForeignKey("attachment.id"), default=None)
    entered_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"),
                                                      default=None)
    entered_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Of a lead entry: who settled the case and when (counted, decided, set aside), which
    # entry's answers counted, the ballot version they became, and for a correction the
    # ballot as it stood before (canonical JSON).
    settled_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    settled_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"),
                                                      default=None)
    counted_id: Mapped[int | None] = mapped_column(ForeignKey("ballot_entry.id"), default=None)
    ballot_version: Mapped[int | None] = mapped_column(default=None)
    replaced_json: Mapped[str | None] = mapped_column(Text, default=None)
    note: Mapped[str] = mapped_column(String(500), default="")

    proxy_document: Mapped[Attachment | None] = relationship(foreign_keys=[proxy_document_id])
    evidence: Mapped[Attachment | None] = relationship(foreign_keys=[evidence_id])

    @property
    def is_correction(self) -> bool:
        return self.correction_reason is not None

    @property
    def scope_household_id(self) -> int:
        return self.household_id


class VoteResult(Model):
    """The tally of a closed round, frozen when the vote closed."""

    __tablename__ = "vote_result"
    __table_args__ = (UniqueConstraint("consultation_id", "round"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    consultation_id: Mapped[int] = mapped_column(ForeignKey("consultation.id"))
    round: Mapped[int]
    closed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    tally_json: Mapped[str] = mapped_column(Text)
    # True/False when every item passed/any item failed; None for a survey.
    passed: Mapped[bool | None] = mapped_column(default=None)
    # The root (hex) of the tree over the round's counted ballots and how many leaves it has
    # (``consult.ballots.proofs``); None for a round counted before ballot trees existed.
    tree_root: Mapped[str | None] = mapped_column(String(64), default=None)
    tree_size: Mapped[int | None] = mapped_column(default=None)


class BallotLeaf(Model):
    """One counted ballot as a leaf of its round's tree, frozen with the tally: its position
    (leaves sorted by their hash), its receipt's hash (to find it) and the leaf's data, from
    which the leaf's hash is computed. Nothing here names the household."""

    __tablename__ = "ballot_leaf"
    __table_args__ = (
        UniqueConstraint("consultation_id", "round", "position"),
        Index("ix_ballot_leaf_receipt", "consultation_id", "round", "receipt_hash"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    consultation_id: Mapped[int] = mapped_column(ForeignKey("consultation.id"))
    round: Mapped[int]
    position: Mapped[int]
    receipt_hash: Mapped[str] = mapped_column(String(64))
    data: Mapped[str] = mapped_column(Text)  # records.leaf_data, as UTF-8 text


# --- door-to-door follow-up (再入户) ---------------------------------------------------------


class VisitOutcome(StrEnum):
    ANSWERED = "answered"      # answer taken: a ballot entered through the entry rules
    NOT_HOME = "not_home"
    REFUSED = "refused"
    MOVED = "moved"


VISIT_OUTCOME_LABELS = {
    VisitOutcome.ANSWERED: _l("Answer taken"),
    VisitOutcome.NOT_HOME: _l("Not at home"),
    VisitOutcome.REFUSED: _l("Refused"),
    VisitOutcome.MOVED: _l("Moved away"),
}


class VisitList(Model):
    """再入户名单: the households of a running vote or survey to be visited again, split
    among named teams. Its filters are kept as chosen (comma-separated reason codes)."""

    __tablename__ = "visit_list"

    id: Mapped[int] = mapped_column(primary_key=True)
    consultation_id: Mapped[int] = mapped_column(ForeignKey("consultation.id"), index=True)
    round: Mapped[int]
    reasons: Mapped[str] = mapped_column(String(80))
    building: Mapped[str | None] = mapped_column(String(50), default=None)
    mode: Mapped[str] = mapped_column(String(10))  # "building" or "count"
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"),
                                                      default=None)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    consultation: Mapped[Consultation] = relationship()
    teams: Mapped[list[VisitTeam]] = relationship(
        back_populates="visit_list", order_by="VisitTeam.position")

    @property
    def scope_compound_id(self) -> int:
        return self.consultation.compound_id


class VisitTeam(Model):
    """入户小组: a named team; its members are names as typed (they need no account)."""

    __tablename__ = "visit_team"
    __table_args__ = (UniqueConstraint("visit_list_id", "position"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    visit_list_id: Mapped[int] = mapped_column(ForeignKey("visit_list.id"))
    position: Mapped[int]
    name: Mapped[str] = mapped_column(String(60))
    members: Mapped[str] = mapped_column(String(300), default="")

    visit_list: Mapped[VisitList] = relationship(back_populates="teams")

    @property
    def scope_compound_id(self) -> int:
        return self.visit_list.scope_compound_id


class Visit(Model):
    """One household to visit, the team it is assigned to, and what the visit found."""

    __tablename__ = "visit"
    __table_args__ = (
        UniqueConstraint("visit_list_id", "household_id"),
        CheckConstraint("outcome IS NULL OR outcome IN ('answered', 'not_home', 'refused', "
                        "'moved')", name="outcome"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    visit_list_id: Mapped[int] = mapped_column(ForeignKey("visit_list.id"), index=True)
    team_id: Mapped[int] = mapped_column(ForeignKey("visit_team.id"), index=True)
    household_id: Mapped[int] = mapped_column(ForeignKey("household.id"))
    position: Mapped[int]  # address order within the list
    reasons: Mapped[str] = mapped_column(String(80))  # why it is on the list
    outcome: Mapped[str | None] = mapped_column(String(15), default=None)
    note: Mapped[str | None] = mapped_column(String(500), default=None)
    entry_id: Mapped[int | None] = mapped_column(ForeignKey("ballot_entry.id"), default=None)
    recorded_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"),
                                                       default=None)
    recorded_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)

    visit_list: Mapped[VisitList] = relationship()
    team: Mapped[VisitTeam] = relationship()

    @property
    def scope_compound_id(self) -> int:
        return self.visit_list.scope_compound_id


class LiveTally(Model):
    """The live count of a running round as last counted, kept between page views so that
    the results page does not count every ballot on each request (``ballots.live``).

    Only sums (what ``service.aggregates`` returns) are kept: the rule, the item titles and
    the words are applied when the page is shown. ``version`` says which ballots were counted
    (their number, the sum of their versions and the highest id: every ballot written moves
    it). ``claimed_until``: a request is counting anew until then; the others show the last
    count meanwhile. Never read for the published result, which ``VoteResult`` freezes."""

    __tablename__ = "live_tally"
    __table_args__ = (UniqueConstraint("consultation_id", "round"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    consultation_id: Mapped[int] = mapped_column(ForeignKey("consultation.id"))
    round: Mapped[int]
    version: Mapped[str | None] = mapped_column(String(80), default=None)
    data: Mapped[str | None] = mapped_column(Text, default=None)
    counted_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    claimed_until: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
