"""Ballots: freezing the roll, casting and entering ballots, and counting them.

Every function flushes (never commits) and records its audit event.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum
from typing import Any

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_babel import ngettext
from sqlalchemy import (
    String,
    and_,
    bindparam,
    case,
    false,
    func,
    insert,
    literal,
    or_,
    select,
    update,
)
from sqlalchemy import cast as sql_cast
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import selectinload
from sqlalchemy.sql import Select

from consult.audit import service as audit
from consult.audit.actions import describe, describe_kinds, describe_objects
from consult.ballots import records
from consult.ballots import tally as t
from consult.ballots.models import (
    BALLOT_CHANNEL_LABELS,
    OPEN_ENTRY_STATES,
    Ballot,
    BallotChannel,
    BallotChoice,
    BallotEntry,
    EntryState,
    RollEntry,
    VoteResult,
)
from consult.consultations.models import Consultation, Item, Secrecy
from consult.consultations.states import UNCOUNTED_VOTE_STAGES, VOTE_STAGES
from consult.core import sorting
from consult.core.database import insert_or_lock, lock_row, reading, table_of
from consult.core.errors import (
    CellError,
    Conflict,
    ImportRejected,
    NotFound,
    ValidationFailed,
    VoteClosed,
)
from consult.core.models import utcnow
from consult.core.sorting import Sort
from consult.core.tabular import Column, Table, read_table, write_csv, write_xlsx
from consult.core.times import format_datetime
from consult.extensions import db
from consult.registry.models import Building, Household, household_label
from consult.uploads.models import Attachment

describe({
    "ballot.cast": _l("Ballot cast"),
    "ballot.changed": _l("Ballot changed"),
    "ballot.roll_frozen": _l("Electoral roll frozen"),
    "ballot.result_frozen": _l("Vote counted"),
    "ballot.imported": _l("Ballots imported"),
    "ballot.roll_exported": _l("Electoral roll downloaded"),
    "ballot.entry_set_aside": _l("Ballot entry set aside"),
}, kind="ballots")
describe_kinds({"ballots": _l("Ballots")})
describe_objects({"ballot": _l("Ballot"), "consultation": _l("Consultation")})


def rule_of(consultation: Consultation) -> t.Rule:
    return t.Rule.from_json(consultation.rule_json)


# Paper ballots of a consultation decided by one of the Civil Code's rules are entered twice,
# unless its settings say otherwise.
DOUBLE_ENTRY_RULES = frozenset({"civil_code_278_general", "civil_code_278_major"})


def double_entry_default(rule_code: str) -> bool:
    return rule_code in DOUBLE_ENTRY_RULES


def double_entry_on(consultation: Consultation) -> bool:
    """Whether a ballot the committee enters counts only once two members entered it alike."""
    if consultation.double_entry is not None:
        return consultation.double_entry
    return double_entry_default(consultation.rule_code)


def is_households_own(ballot: Ballot | None) -> bool:
    """Whether a ballot is the household's own answer: anything but a door-to-door visit that
    found nobody ("not reached" on every item), which is the committee's note, not a vote."""
    return ballot is not None and any(c.choice != t.Choice.NOT_REACHED for c in ballot.choices)


def allowed_choices(consultation: Consultation, channel: BallotChannel) -> tuple[t.Choice, ...]:
    """What a ballot may say: a vote offers agree/disagree/abstain, a survey agree/disagree/
    undecided; only a door-to-door visit can record that nobody was reached."""
    base = t.SURVEY_CHOICES[:3] if rule_of(consultation).is_survey else t.VOTE_CHOICES
    if channel is BallotChannel.DOOR_TO_DOOR:
        return (*base, t.Choice.NOT_REACHED)
    return base


# --- the roll ---------------------------------------------------------------------------------


def households_in_scope(consultation: Consultation) -> Any:
    """A select of the households a consultation concerns (its compound, or its scope rows)."""
    stmt = (select(Household).join(Household.building)
            .where(Building.compound_id == consultation.compound_id))
    scopes = consultation.scopes
    if scopes:
        stmt = stmt.where(or_(*[
            and_(Household.building_id == s.building_id,
                 Household.unit == s.unit) if s.unit is not None
            else Household.building_id == s.building_id
            for s in scopes]))
    return stmt


def count_in_scope(consultation: Consultation) -> int:
    return db.session.scalar(
        select(func.count()).select_from(households_in_scope(consultation).subquery())) or 0


def freeze_roll(actor: Any, consultation: Consultation) -> int:
    """Copy the households in scope into the roll of the current round; returns how many."""
    if db.session.scalar(select(func.count(RollEntry.id)).where(
            RollEntry.consultation_id == consultation.id,
            RollEntry.round == consultation.round)):
        raise Conflict(_("The electoral roll of this round is already frozen."))
    rows = db.session.execute(
        households_in_scope(consultation).with_only_columns(
            Household.id, Building.name, Building.sort_key, Household.unit, Household.room,
            Household.sort_key, Household.area_dm2, Household.owner_key, Household.owner_name)
    ).all()
    entries = [{
        "consultation_id": consultation.id, "round": consultation.round, "household_id": r[0],
        "building_name": r[1], "building_sort": r[2], "unit": r[3], "room": r[4],
        "household_sort": r[5], "area_dm2": r[6],
        "owner_identity": r[7] or f"household:{r[0]}", "owner_name": r[8],
    } for r in rows]
    for start in range(0, len(entries), 1000):
        db.session.execute(table_of(RollEntry).insert(), entries[start:start + 1000])
    totals = roll_totals(consultation)
    audit.record(actor, "ballot.roll_frozen", consultation, {
        "round": consultation.round, "households": totals.households, "owners": totals.owners,
        "area_dm2": totals.area_dm2})
    return len(entries)


def roll_entries(consultation: Consultation, round_: int | None = None) -> Any:
    """A select of the roll of a round (the current one by default), in address order."""
    return (select(RollEntry)
            .where(RollEntry.consultation_id == consultation.id,
                   RollEntry.round == (round_ or consultation.round))
            .order_by(RollEntry.building_sort, RollEntry.household_sort))


def scope_totals(consultation: Consultation) -> t.Totals:
    """Households, owners and area in scope as the registry stands now (before the roll)."""
    scope = households_in_scope(consultation).subquery()
    owner = func.coalesce(scope.c.owner_key, literal("household:") + sql_cast(scope.c.id, String))
    row = db.session.execute(select(func.count(), func.count(func.distinct(owner)),
                                    func.coalesce(func.sum(scope.c.area_dm2), 0))).one()
    return t.Totals(row[0], row[1], int(row[2]))


def roll_totals(consultation: Consultation, round_: int | None = None) -> t.Totals:
    row = db.session.execute(
        select(func.count(RollEntry.id), func.count(func.distinct(RollEntry.owner_identity)),
               func.coalesce(func.sum(RollEntry.area_dm2), 0))
        .where(RollEntry.consultation_id == consultation.id,
               RollEntry.round == (round_ or consultation.round))).one()
    return t.Totals(row[0], row[1], int(row[2]))


# Statements on every vote's path are built once: building and keying a statement costs
# about twice what running it does (bench/results/profile-vote.md).
_ROLL_ENTRY = select(RollEntry).where(
    RollEntry.consultation_id == bindparam("consultation"), RollEntry.round == bindparam("round"),
    RollEntry.household_id == bindparam("household"))


def roll_entry_for(consultation: Consultation, household_id: int) -> RollEntry | None:
    return db.session.scalar(_ROLL_ENTRY, {"consultation": consultation.id,
                                           "round": consultation.round,
                                           "household": household_id})


def roll_household_or_404(consultation: Consultation,
                          household_id: int) -> tuple[RollEntry, Household]:
    """A household on the consultation's roll, with its roll entry (the roll says it is the
    consultation's)."""
    roll = roll_entry_for(consultation, household_id)
    household = db.session.get(Household, household_id) if roll is not None else None
    if roll is None or household is None:
        raise NotFound(_("This household is not on the electoral roll."))
    return roll, household


ROLL_HEADERS = {
    "en": ["building", "unit", "floor", "room", "area_m2", "owner_name", "owner_key"],
    "zh": ["楼栋", "单元", "楼层", "房号", "专有部分面积", "业主姓名", "业主标识"],
}


def export_roll(actor: Any, consultation: Consultation, fmt: str, headers: str = "zh") -> bytes:
    """The frozen roll in the households file format, for paper-ballot logistics."""
    from consult.registry.service import format_area

    if fmt not in ("csv", "xlsx"):
        raise ValidationFailed(_("Choose CSV or XLSX."))
    entries = list(db.session.scalars(roll_entries(consultation)))
    if not entries:
        raise Conflict(_("The electoral roll is frozen when the vote opens."))
    floors = dict(db.session.execute(select(Household.id, Household.floor).where(
        Household.id.in_([e.household_id for e in entries]))).all())
    rows = [[e.building_name, e.unit, floors.get(e.household_id) or "", e.room,
             format_area(e.area_dm2), e.owner_name,
             "" if e.owner_identity.startswith("household:") else e.owner_identity]
            for e in entries]
    header = ROLL_HEADERS["en" if headers == "en" else "zh"]
    data = (write_csv(header, rows) if fmt == "csv"
            else write_xlsx(header, rows, title=_("Electoral roll")))
    audit.record(actor, "ballot.roll_exported", consultation,
                 {"round": consultation.round, "format": fmt, "households": len(rows)})
    return data


# --- casting ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Proxy:
    """A proxy vote: who held the written authorisation (委托书), and the scanned document."""

    name: str
    identity: str
    document: Attachment | None


def new_receipt(pick: Callable[[str], str] = secrets.choice) -> str:
    """A receipt like "K7QX-3MPA-9RTV-W2HC" (80 bits, see ``records``); ``pick`` chooses each
    character (a seeded one for data generated to be reproducible)."""
    return records.format_receipt("".join(
        pick(records.RECEIPT_ALPHABET) for _ in range(records.RECEIPT_LENGTH)))


def owner_token(consultation: Consultation, owner_identity: str) -> str:
    """A stable pseudonym of an owner within one consultation, for public audit payloads:
    keyed with the consultation's secret, so it cannot be traced back to an owner key."""
    return records.owner_token(consultation.owner_token_key, owner_identity)


def receipt_hash(consultation: Consultation, receipt: str) -> str:
    """What public records carry in place of a receipt of the current round."""
    return records.receipt_hash(consultation.id, consultation.round, receipt)


def check_vote_open(consultation: Consultation, now: datetime) -> None:
    """Refuse unless the vote of the current round is open at ``now``."""
    if consultation.vote_is_open(now):
        return
    if consultation.stage_enum in VOTE_STAGES:
        raise VoteClosed(_("Voting has closed; no more ballots can be accepted."))
    raise VoteClosed(_("Voting is not open for this consultation."))


def _parse_choices(consultation: Consultation, raw: Mapping[int, str],
                   channel: BallotChannel) -> dict[Item, t.Choice]:
    items = {item.id: item for item in consultation.items}
    allowed = allowed_choices(consultation, channel)
    errors: dict[str, list[str]] = {}
    chosen: dict[Item, t.Choice] = {}
    for item_id in raw:
        if item_id not in items:
            raise ValidationFailed(_("The ballot names an item that is not part of this "
                                     "consultation."))
    for item in items.values():
        value = raw.get(item.id)
        try:
            choice = t.Choice(value) if value else None
        except ValueError:
            choice = None
        if choice is None or choice not in allowed:
            errors[f"item_{item.id}"] = [_("Choose an answer for item %(n)s.", n=item.number)]
            continue
        chosen[item] = choice
    if errors:
        raise ValidationFailed(_("Please answer every item."), errors)
    return chosen


def review(consultation: Consultation, raw_choices: Mapping[int, str], channel: BallotChannel
           ) -> list[tuple[Item, t.Choice]]:
    """Check a ballot without recording it (the review screen); raises ValidationFailed."""
    return list(_parse_choices(consultation, raw_choices, channel).items())


def answers_of(consultation: Consultation, ballot: Ballot | None) -> list[tuple[Item, str]]:
    """A ballot's answers in item order."""
    if ballot is None:
        return []
    by_item = {c.item_id: c.choice for c in ballot.choices}
    return [(item, by_item[item.id]) for item in consultation.items if item.id in by_item]


def proxy_identity(name: str) -> str:
    """One person's proxies are counted together however their name was typed."""
    return " ".join(unicodedata.normalize("NFKC", name).split()).lower()[:140]


class AlreadyRecorded(Conflict):
    """The same submission arrived twice (a double click); the first one counts, nothing else
    was written."""

    def __init__(self, ballot: Ballot) -> None:
        super().__init__(_("This ballot was already recorded; it was not counted twice."))
        self.ballot = ballot


def new_submission_token() -> str:
    return secrets.token_urlsafe(24)


def check_can_settle(consultation: Consultation, entered_at: datetime) -> None:
    """Refuse unless a ballot entered by the committee at ``entered_at`` may still be recorded:
    entered while the vote was open, and the vote not counted yet (its second entry or a
    decision may come after the close, before the count)."""
    if (consultation.stage_enum not in UNCOUNTED_VOTE_STAGES
            or consultation.vote_opened_at is None):
        raise Conflict(_("The vote of this round has been counted; no ballot can be recorded "
                         "any more."))
    if entered_at < consultation.vote_opened_at or any(
            end is not None and entered_at >= end
            for end in (consultation.vote_closed_at, consultation.vote_deadline)):
        raise Conflict(_("Voting has closed; no more ballots can be accepted."))


def cast(actor: Any, consultation: Consultation, household: Household,
         raw_choices: Mapping[int, str], channel: BallotChannel, *, now: datetime | None = None,
         serial: str | None = None, proxy: Proxy | None = None,
         submission: str | None = None, entered_at: datetime | None = None,
         roll_entry: RollEntry | None = None) -> Ballot:
    """Record a household's answers on every item; a later ballot replaces the earlier one.

    ``raw_choices`` maps item ids to choice values as submitted; ``submission`` is the one-time
    token of the form that sent them. Raises Conflict when the vote is not open or the
    household is not on the roll, AlreadyRecorded for a repeated submission, ValidationFailed
    for bad answers.

    This records what it is given. Ballots the committee enters reach it through
    ``ballots.entries``, which keeps a household's own ballot from being replaced without a
    correction, and applies double entry: ``entered_at`` is then the time the paper was first
    entered, which becomes the ballot's time, so that a paper entered before the close may
    still be recorded after it, until the vote is counted. A household's own online ballot
    sets aside every entry of the committee still waiting for it: its own last ballot counts.
    ``roll_entry`` is the household's, when the caller read it before taking the lock.
    """
    now = now or utcnow()
    # Read before the lock: the roll is frozen while the vote is open.
    entry = roll_entry if roll_entry is not None else roll_entry_for(consultation, household.id)
    if entry is not None and (entry.consultation_id, entry.round, entry.household_id) != (
            consultation.id, consultation.round, household.id):
        raise ValueError("the roll entry given is another household's or round's")
    # Everything that needs no current state is made ready before the lock: the answers
    # checked (a refusal waits until the vote is known to be open, which it reports first),
    # the receipt, the row's values and the audit payload but for the version.
    try:
        chosen, invalid = _parse_choices(consultation, raw_choices, channel), None
    except ValidationFailed as exc:
        chosen, invalid = {}, exc
    if entered_at is not None:
        now = entered_at
    serial = (serial or "").strip()[:40] or None
    values = {
        "channel": channel.value, "entered_by_id": getattr(actor, "id", None), "serial": serial,
        "proxy_name": proxy.name if proxy else None,
        "proxy_identity": proxy.identity if proxy else None,
        "proxy_document_id": proxy.document.id if proxy and proxy.document else None,
        "receipt": new_receipt(), "cast_at": now, "created_at": now,
        "submission": (submission or "")[:64] or None,
    }
    # A household voting online is not named by its account: in a confidential vote the
    # account would say whose ballot it is, and the public audit export must not carry it.
    online = channel is BallotChannel.ONLINE
    payload = {
        "consultation_id": consultation.id,
        "household_id": household.id if consultation.secrecy == Secrecy.OPEN else None,
        "owner": owner_token(consultation, entry.owner_identity) if entry else None,
        "area_dm2": entry.area_dm2 if entry else None, "channel": channel.value,
        "serial": serial, "proxy": bool(proxy), "cast_at": now,
        "choices": {str(item.number): choice.value for item, choice in chosen.items()},
    }
    # Hold the consultation as it stands (PostgreSQL: FOR SHARE; ballots do not wait for each
    # other) until this ballot commits: closing the vote waits for it, so the frozen tally
    # counts every ballot acknowledged, and a ballot arriving after the close sees it closed.
    lock_row(consultation, shared=True)
    if entered_at is None:
        check_vote_open(consultation, now)
    else:
        check_can_settle(consultation, entered_at)
    if entry is None:
        raise Conflict(_("This household is not on the electoral roll of this vote."))
    if invalid is not None:
        raise invalid
    if channel is BallotChannel.PROXY:
        _check_proxy(consultation, household, proxy)
    if serial:
        _check_serial_free(consultation, household, serial)
    ballot, created = insert_or_lock(Ballot, {
        "consultation_id": consultation.id, "round": consultation.round,
        "household_id": household.id}, {**values, "version": 1})
    if not created and submission and ballot.submission == values["submission"]:
        raise AlreadyRecorded(ballot)
    if not created:
        for key in ("channel", "entered_by_id", "serial", "proxy_name", "proxy_identity",
                    "proxy_document_id", "receipt", "cast_at", "submission"):
            setattr(ballot, key, values[key])
        ballot.version += 1
    if created:  # one multi-row INSERT, without the unit of work: the first ballot is the rush
        db.session.connection().execute(_CHOICES_INSERT, [
            {"ballot_id": ballot.id, "item_id": item.id, "choice": choice.value}
            for item, choice in chosen.items()])
    else:
        current = {c.item_id: c for c in ballot.choices}
        for item, choice in chosen.items():
            if item.id in current:
                current[item.id].choice = choice.value
            else:
                ballot.choices.append(BallotChoice(item_id=item.id, choice=choice.value))
        db.session.flush()
    # The round as the lock holds it (the receipt's hash is of this round's receipt).
    payload.update(round=consultation.round, version=ballot.version,
                   receipt_hash=receipt_hash(consultation, ballot.receipt))
    audit.record(None if online else actor, "ballot.cast" if created else "ballot.changed",
                 ballot, payload, compound_id=consultation.compound_id,
                 actor_label=audit.HOUSEHOLD_ACTOR if online else None)
    if online:
        _set_aside_entries(consultation, household.id, now)
    return ballot


def _set_aside_entries(consultation: Consultation, household_id: int, now: datetime) -> None:
    """The household voted online itself: whatever the committee entered for it and still
    waits (a second entry, a decision, an authorisation) will never count."""
    ids = list(db.session.connection().scalars(_SET_ASIDE, {
        "b_consultation": consultation.id, "b_round": consultation.round,
        "b_household": household_id, "b_now": now}))
    for entry_id in ids:
        audit.record(None, "ballot.entry_set_aside", ("ballot_entry", entry_id),
                     {"consultation_id": consultation.id, "round": consultation.round,
                      "entry": entry_id, "reason": SET_ASIDE_OWN_VOTE},
                     compound_id=consultation.compound_id, actor_label=audit.HOUSEHOLD_ACTOR,
                     chain=consultation.id)


# Why an entry was set aside (``BallotEntry.note``), as stored.
SET_ASIDE_OWN_VOTE = "household_voted"
# On every online ballot's path, inside the serialised section: a plain statement built once
# and run on the session's connection, past the ORM's execution layers (the loaded entries, if
# any, are not updated by it; none are loaded on that path).
_entries = table_of(BallotEntry)
_SET_ASIDE = (
    update(_entries).where(
        _entries.c.consultation_id == bindparam("b_consultation"),
        _entries.c.round == bindparam("b_round"),
        _entries.c.household_id == bindparam("b_household"),
        _entries.c.first_id.is_(None),
        _entries.c.state.in_([s.value for s in OPEN_ENTRY_STATES]))
    .values(state=EntryState.SET_ASIDE.value, settled_at=bindparam("b_now"),
            note=SET_ASIDE_OWN_VOTE)
    .returning(_entries.c.id))
SET_ASIDE_NOT_COUNTED = "not_authorised_at_count"


def _check_serial_free(consultation: Consultation, household: Household, serial: str) -> None:
    """A paper ballot's serial number belongs to one household: entering it twice is a mistake."""
    other = db.session.scalar(select(Ballot.household_id).where(
        Ballot.consultation_id == consultation.id, Ballot.round == consultation.round,
        Ballot.serial == serial, Ballot.household_id != household.id))
    if other is not None:
        message = _("Paper ballot %(serial)s has already been entered for another household.",
                    serial=serial)
        raise ValidationFailed(message, {"serial": [message]})


def _check_proxy(consultation: Consultation, household: Household, proxy: Proxy | None) -> None:
    if proxy is None or not proxy.name.strip():
        message = _("Give the name of the person holding the written authorisation.")
        raise ValidationFailed(message, {"proxy_name": [message]})
    if consultation.proxy_cap:
        held = db.session.scalar(select(func.count(Ballot.id)).where(
            Ballot.consultation_id == consultation.id, Ballot.round == consultation.round,
            Ballot.proxy_identity == proxy.identity, Ballot.household_id != household.id)) or 0
        if held >= consultation.proxy_cap:
            message = _("%(name)s already represents %(n)s households, the most this "
                        "consultation allows.", name=proxy.name, n=held)
            raise ValidationFailed(message, {"proxy_name": [message]})


_CHOICES_INSERT = insert(table_of(BallotChoice))
_BALLOT_OF = select(Ballot).options(selectinload(Ballot.choices)).where(
    Ballot.consultation_id == bindparam("consultation"), Ballot.round == bindparam("round"),
    Ballot.household_id == bindparam("household"))


def ballot_of(consultation: Consultation, household_id: int) -> Ballot | None:
    """The household's current ballot in the current round."""
    return db.session.scalar(_BALLOT_OF, {"consultation": consultation.id,
                                          "round": consultation.round,
                                          "household": household_id})


# How the committee's ballot list can be sorted; each key ends with the address as tie-breaker.
BALLOT_LIST_SORTS: dict[str, tuple[Any, ...]] = {
    "address": (RollEntry.building_sort, RollEntry.household_sort),
    "area": (RollEntry.area_dm2, RollEntry.building_sort, RollEntry.household_sort),
    "owner": (RollEntry.owner_name, RollEntry.building_sort, RollEntry.household_sort),
    # Households without a ballot come before every ballot, so "latest first" starts with the
    # newest ballot and ends with the households still missing (on every database alike).
    "cast": (Ballot.cast_at.isnot(None), Ballot.cast_at, RollEntry.building_sort,
             RollEntry.household_sort),
    "channel": (func.coalesce(Ballot.channel, ""), RollEntry.building_sort,
                RollEntry.household_sort),
}


# How building names end in the registry ("1号楼", "3栋"): "1-101" finds 1号楼 room 101.
_BUILDING_SUFFIXES = ("", "号楼", "号", "栋", "幢", "座")


def room_search(query: str) -> tuple[Any, Any]:
    """The roll entries a room search finds, as two conditions: the exact match ("101",
    "1-101" for unit or building 1, "1-1-101" for building, unit and room) and the wider
    list (rooms that start with a lone number typed). Text that names no room finds none."""
    text = unicodedata.normalize("NFKC", query)
    for dash in "—–－/ ":
        text = text.replace(dash, "-")
    parts = [part for part in text.split("-") if part]
    if not parts or len(parts) > 3:
        return false(), false()
    *place, room = parts

    def building_is(name: str) -> Any:
        return RollEntry.building_name.in_([name + suffix for suffix in _BUILDING_SUFFIXES])

    exact = RollEntry.room == room
    if len(place) == 1:
        exact = and_(exact, or_(RollEntry.unit == place[0], building_is(place[0])))
    elif len(place) == 2:
        exact = and_(exact, building_is(place[0]), RollEntry.unit == place[1])
    wider = or_(exact, RollEntry.room.startswith(room, autoescape=True)) if not place else exact
    return exact, wider


def ballots_page_query(consultation: Consultation, *, status: str | None = None,
                       building: str | None = None, sort: Sort | None = None,
                       room: Any = None) -> Any:
    """Roll entries with their ballots and their entries still waiting (if any), for the
    committee's entry list, in address order (or ``sort``).

    ``status`` "voted" or "missing" filters by whether a ballot exists, "waiting" keeps the
    households with an entry that does not count yet; ``room`` is a condition of
    ``room_search``.
    """
    stmt = (select(RollEntry, Ballot, BallotEntry)
            .outerjoin(Ballot, and_(Ballot.consultation_id == RollEntry.consultation_id,
                                    Ballot.round == RollEntry.round,
                                    Ballot.household_id == RollEntry.household_id))
            .outerjoin(BallotEntry, and_(
                BallotEntry.consultation_id == RollEntry.consultation_id,
                BallotEntry.round == RollEntry.round,
                BallotEntry.household_id == RollEntry.household_id,
                BallotEntry.first_id.is_(None),
                BallotEntry.state.in_([s.value for s in OPEN_ENTRY_STATES])))
            .options(selectinload(Ballot.choices))
            .where(RollEntry.consultation_id == consultation.id,
                   RollEntry.round == consultation.round))
    stmt = sorting.order(stmt, sort or Sort("address"), BALLOT_LIST_SORTS)
    if status == "voted":
        stmt = stmt.where(Ballot.id.isnot(None))
    elif status == "missing":
        stmt = stmt.where(Ballot.id.is_(None))
    elif status == "waiting":
        stmt = stmt.where(BallotEntry.id.isnot(None))
    if building:
        stmt = stmt.where(RollEntry.building_name == building)
    if room is not None:
        stmt = stmt.where(room)
    return stmt


def roll_buildings(consultation: Consultation) -> list[str]:
    """The buildings on the current roll, in order."""
    return list(db.session.scalars(
        select(RollEntry.building_name).where(
            RollEntry.consultation_id == consultation.id, RollEntry.round == consultation.round)
        .group_by(RollEntry.building_name, RollEntry.building_sort)
        .order_by(RollEntry.building_sort)))


# --- counting ---------------------------------------------------------------------------------


def compute(consultation: Consultation, round_: int | None = None) -> t.TallyResult:
    """Count the ballots of a round with the consultation's rule.

    The database does the counting (GROUP BY per item × choice, and per owner for the heads);
    only the sums reach Python, where the pure rule module turns them into the result.
    """
    round_ = round_ or consultation.round
    items = list(consultation.items)
    return t.tally_aggregates(aggregates(consultation, round_, items), rule_of(consultation))


def compute_reference(consultation: Consultation, round_: int | None = None) -> t.TallyResult:
    """The tally as the rule states it: every roll entry and every answer of the round loaded
    and counted by ``tally.tally``, the one statement of the counting rule.

    ``compute`` must always give the same result (``flask ballots tally --check`` and the
    random-round tests compare them); this is slower and loads the whole round into memory.
    """
    round_ = round_ or consultation.round
    voters = [t.Voter(e.household_id, e.owner_identity, e.area_dm2, e.building_name,
                      e.building_sort)
              for e in db.session.scalars(roll_entries(consultation, round_))]
    numbers = {item.id: item.number for item in consultation.items}
    choices: dict[int, dict[int, t.Choice]] = {}
    order: dict[int, int] = {}  # household → rank of its ballot (one per round) in casting order
    rows = db.session.execute(
        select(Ballot.household_id, BallotChoice.item_id, BallotChoice.choice)
        .join(BallotChoice, BallotChoice.ballot_id == Ballot.id)
        .where(Ballot.consultation_id == consultation.id, Ballot.round == round_)
        .order_by(Ballot.cast_at, Ballot.id))
    for household_id, item_id, choice in rows:
        if item_id in numbers:
            choices.setdefault(household_id, {})[numbers[item_id]] = t.Choice(choice)
            order.setdefault(household_id, len(order))
    votes = [t.Vote(household, answers, order[household])
             for household, answers in choices.items()]
    questions = [t.Question(item.number, item.title) for item in consultation.items]
    return t.tally(voters, votes, questions, rule_of(consultation))


def aggregates(consultation: Consultation, round_: int, items: list[Item]) -> t.Aggregates:
    """The counts of a round, in a fixed number of aggregate queries whatever its size: an
    implementation of ``tally.tally``'s counting rule in SQL, for speed, held to it by
    ``compute_reference``.

    Only ballots of households on the roll, and only answers on the consultation's items,
    count; an owner's head goes by their most recent ballot (``cast_at``, then id) that took
    part on the item, or failing that by any answer (not reached).
    """
    on_roll = and_(RollEntry.consultation_id == consultation.id, RollEntry.round == round_)
    item_ids = [item.id for item in items]
    numbers = {item.id: item.number for item in items}
    answered = (select(RollEntry.household_id, RollEntry.owner_identity, RollEntry.area_dm2,
                       RollEntry.building_sort, RollEntry.building_name, Ballot.id.label("bid"),
                       Ballot.cast_at, BallotChoice.item_id, BallotChoice.choice)
                .join(Ballot, and_(Ballot.consultation_id == RollEntry.consultation_id,
                                   Ballot.round == RollEntry.round,
                                   Ballot.household_id == RollEntry.household_id))
                .join(BallotChoice, BallotChoice.ballot_id == Ballot.id)
                .where(on_roll, BallotChoice.item_id.in_(item_ids))
                .subquery())

    buildings = {(sort, name): n for sort, name, n in db.session.execute(
        select(RollEntry.building_sort, RollEntry.building_name, func.count())
        .where(on_roll).group_by(RollEntry.building_sort, RollEntry.building_name))}
    # The roll and those who returned a ballot, in one pass: a household did when its ballot
    # takes part on at least one item (one index probe each); a door-to-door record of "not
    # reached" on every item is no returned ballot.
    took = and_(Ballot.id.isnot(None),
                select(BallotChoice.ballot_id).where(
                    BallotChoice.ballot_id == Ballot.id, BallotChoice.item_id.in_(item_ids),
                    BallotChoice.choice.in_(sorted(c.value for c in t.PARTICIPATING)))
                .exists())
    row = db.session.execute(
        select(func.count(RollEntry.id), func.count(func.distinct(RollEntry.owner_identity)),
               func.coalesce(func.sum(RollEntry.area_dm2), 0),
               func.count(case((took, 1))),
               func.count(func.distinct(case((took, RollEntry.owner_identity)))),
               func.coalesce(func.sum(case((took, RollEntry.area_dm2), else_=0)), 0))
        .outerjoin(Ballot, and_(Ballot.consultation_id == RollEntry.consultation_id,
                                Ballot.round == RollEntry.round,
                                Ballot.household_id == RollEntry.household_id))
        .where(on_roll)).one()
    roll = t.Totals(row[0], row[1], int(row[2]))
    participation = t.Totals(row[3], row[4], int(row[5]))

    households: dict[int, dict[tuple[str, str], dict[str, int]]] = {i: {} for i in item_ids}
    area: dict[int, dict[str, int]] = {i: {} for i in item_ids}
    # item, choice, building (sort key and name), households, their area in dm²
    per_building: Select[int, str, str, str, int, int] = (
        select(answered.c.item_id, answered.c.choice, answered.c.building_sort,
               answered.c.building_name, func.count(), func.sum(answered.c.area_dm2))
        .group_by(answered.c.item_id, answered.c.choice, answered.c.building_sort,
                  answered.c.building_name))
    for item_id, choice, sort, name, n, dm2 in db.session.execute(per_building):
        households[item_id].setdefault((sort, name), {})[choice] = n
        area[item_id][choice] = area[item_id].get(choice, 0) + int(dm2)

    # One head per owner. An owner with a single household on the roll counts like that
    # household, so only the (few) owners of several households need ranking: their deciding
    # answer on each item is the most recent one that takes part, else the most recent one.
    several = (select(RollEntry.owner_identity).where(on_roll)
               .group_by(RollEntry.owner_identity).having(func.count() > 1))
    participating = [c.value for c in t.PARTICIPATING]
    takes_part = case((answered.c.choice.in_(participating), 1), else_=0)
    answer_taking_part = case((answered.c.choice.in_(participating), answered.c.choice))
    per_owner = (answered.c.item_id, answered.c.owner_identity)
    ranked = (select(
        answered.c.item_id, answered.c.choice,
        func.row_number().over(
            partition_by=per_owner,
            order_by=(takes_part.desc(), answered.c.cast_at.desc(), answered.c.bid.desc()),
        ).label("rank"),
        # Two different answers taking part, among the owner's households: a conflict.
        func.min(answer_taking_part).over(partition_by=per_owner).label("low"),
        func.max(answer_taking_part).over(partition_by=per_owner).label("high"))
        .where(answered.c.owner_identity.in_(several)).subquery())
    deciding = ranked.c.rank == 1
    # Heads per choice = households answering it, less those of owners of several households,
    # plus those owners' deciding answers.
    owners: dict[int, dict[str, int]] = {i: {} for i in item_ids}
    for item_id, choice in {(i, c) for i, per in area.items() for c in per}:
        owners[item_id][choice] = sum(per.get(choice, 0)
                                      for per in households[item_id].values())
    conflicts: dict[int, int] = {}
    # item, choice, answers of owners of several households, deciding ones, conflicting ones
    of_several: Select[int, str, int, int, int] = (
        select(ranked.c.item_id, ranked.c.choice, func.count(),
               func.sum(case((deciding, 1), else_=0)),
               func.sum(case((and_(deciding, ranked.c.low != ranked.c.high), 1), else_=0)))
        .group_by(ranked.c.item_id, ranked.c.choice))
    for item_id, choice, n, heads, conflicting in db.session.execute(of_several):
        owners[item_id][choice] += int(heads) - n
        conflicts[item_id] = conflicts.get(item_id, 0) + int(conflicting)

    counted = [t.ItemCounts(numbers[i], item.title, households[i], area[i], owners[i],
                            conflicts.get(i, 0))
               for i, item in zip(item_ids, items, strict=True)]
    return t.Aggregates(roll, participation, buildings, counted)


def freeze_result(actor: Any, consultation: Consultation, now: datetime) -> VoteResult:
    """Count the closed round and keep the result as it stands, with the tree of its counted
    ballots (``proofs``)."""
    from consult.ballots import proofs
    from consult.ballots.explain import tally_json

    result = compute(consultation)
    data = tally_json(consultation, result, provisional=False)
    frozen = VoteResult(consultation_id=consultation.id, round=consultation.round,
                        closed_at=now, tally_json=json.dumps(data, ensure_ascii=False,
                                                             sort_keys=True),
                        passed=result.passed)
    # The tree over the counted ballots is frozen with the tally, and its root goes into the
    # same audit event: one transaction, so neither exists without the other.
    tree = proofs.freeze_tree(consultation, consultation.round)
    frozen.tree_root, frozen.tree_size = tree.root, tree.size
    db.session.add(frozen)
    db.session.flush()
    audit.record(actor, "ballot.result_frozen", consultation, {
        "round": consultation.round, "passed": result.passed,
        "items": {str(i.number): {"counts": i.counts, "passed": i.passed} for i in result.items},
        "tree": {"root": tree.root, "size": tree.size},
    })
    return frozen


def vote_result(consultation: Consultation, round_: int | None = None) -> VoteResult | None:
    return db.session.scalar(select(VoteResult).where(
        VoteResult.consultation_id == consultation.id,
        VoteResult.round == (round_ or consultation.round)))


def counted_rounds(consultation: Consultation) -> list[int]:
    """The rounds of the consultation whose result is frozen."""
    return sorted(db.session.scalars(select(VoteResult.round).where(
        VoteResult.consultation_id == consultation.id)))


def frozen_tally(consultation: Consultation, round_: int | None = None) -> dict[str, Any] | None:
    result = vote_result(consultation, round_)
    return json.loads(result.tally_json) if result else None


def current_tally(consultation: Consultation, *, live: bool = False) -> dict[str, Any] | None:
    """The tally as it stands: frozen once the vote closed, provisional while it runs, None
    before it opens. ``stage`` is the consultation's stage now.

    ``live``: the provisional count may be the one kept between page views
    (``ballots.live``), recounted when ballots changed, at most every LIVE_TALLY_MAX_AGE_S
    seconds; it then says when it was counted (``counted_at``) and whether every ballot
    recorded so far is in it (``up_to_date``). The frozen result is never affected."""
    from consult.ballots import live as live_count
    from consult.ballots.explain import tally_json

    data = frozen_tally(consultation)
    if data is None:
        if consultation.vote_opened_at is None:
            return None
        if live:
            items = list(consultation.items)
            kept = live_count.count(consultation, items)
            result = t.tally_aggregates(kept.aggregates, rule_of(consultation))
            data = {**tally_json(consultation, result, provisional=True),
                    "counted_at": kept.counted_at.isoformat(), "up_to_date": kept.up_to_date}
        else:
            data = tally_json(consultation, compute(consultation), provisional=True)
    return {**data, "stage": consultation.stage}


def get_ballot_or_404(ballot_id: int) -> Ballot:
    ballot = db.session.get(Ballot, ballot_id)
    if ballot is None:
        raise NotFound(_("No such ballot."))
    return ballot


def households_for_entry(consultation: Consultation, building: str, unit: str, room: str
                         ) -> RollEntry | None:
    """Find a roll entry by address (as printed on a paper ballot)."""
    from consult.core.text import strip_suffix

    return db.session.scalar(select(RollEntry).where(
        RollEntry.consultation_id == consultation.id, RollEntry.round == consultation.round,
        RollEntry.building_name == building.strip(),
        RollEntry.unit == strip_suffix(unit or "", "单元"),
        RollEntry.room == strip_suffix(room or "", "室", "号")))


def all_voted(consultation: Consultation) -> bool:
    """Whether every household on the current roll has a ballot."""
    totals = roll_totals(consultation)
    return totals.households > 0 and sum(counts_by_channel(consultation).values()) >= (
        totals.households)


def counts_by_channel(consultation: Consultation) -> dict[str, int]:
    rows = db.session.execute(
        select(Ballot.channel, func.count(Ballot.id))
        .where(Ballot.consultation_id == consultation.id, Ballot.round == consultation.round)
        .group_by(Ballot.channel)).all()
    return {channel: n for channel, n in rows}



# --- import -----------------------------------------------------------------------------------

BALLOT_COLUMNS = (
    Column("building", ("building", "楼栋", "楼号", "樓棟")),
    Column("unit", ("unit", "单元", "單元"), required=False),
    Column("room", ("room", "房号", "室", "房號")),
    Column("item", ("item", "议项", "議項")),
    Column("choice", ("choice", "表决意见", "意见", "選擇")),
    Column("channel", ("channel", "方式", "渠道")),
    Column("serial", ("serial", "编号", "編號"), required=False),
    Column("proxy", ("proxy", "受托人", "委托人"), required=False),
)
_CHOICE_WORDS = {
    "agree": t.Choice.AGREE, "同意": t.Choice.AGREE, "赞成": t.Choice.AGREE, "贊成": t.Choice.AGREE,
    "disagree": t.Choice.DISAGREE, "反对": t.Choice.DISAGREE, "反對": t.Choice.DISAGREE,
    "abstain": t.Choice.ABSTAIN, "弃权": t.Choice.ABSTAIN, "棄權": t.Choice.ABSTAIN,
    "undecided": t.Choice.UNDECIDED, "观望": t.Choice.UNDECIDED, "觀望": t.Choice.UNDECIDED,
    "not_reached": t.Choice.NOT_REACHED, "未见到": t.Choice.NOT_REACHED,
    "未見到": t.Choice.NOT_REACHED,
}
_CHANNEL_WORDS = {
    "paper": BallotChannel.PAPER, "书面": BallotChannel.PAPER, "書面": BallotChannel.PAPER,
    "door_to_door": BallotChannel.DOOR_TO_DOOR, "入户": BallotChannel.DOOR_TO_DOOR,
    "入戶": BallotChannel.DOOR_TO_DOOR,
    "proxy": BallotChannel.PROXY, "委托": BallotChannel.PROXY, "委託": BallotChannel.PROXY,
}


@dataclass
class BallotImportSummary:
    rows: int = 0
    households: int = 0
    new: int = 0
    changed: int = 0
    # Households whose ballot the file gives exactly as it is recorded: nothing written.
    unchanged: int = 0
    # Entries that do not count yet: first entries under double entry, second entries that
    # differ from the first, proxy ballots without a required written authorisation.
    awaiting_second: int = 0
    differs: int = 0
    awaiting_authorisation: int = 0


def import_report(summary: BallotImportSummary) -> list[str]:
    """What a ballot import did, in lines for the reader (``flask ballots import``): what was
    recorded, then, if any, what does not count yet and what was already recorded so."""
    lines = [_("Recorded the ballots of %(n)s households (%(new)s new, %(changed)s changed) "
               "from %(rows)s rows.", n=summary.households, new=summary.new,
               changed=summary.changed, rows=summary.rows)]
    waiting = summary.awaiting_second + summary.differs + summary.awaiting_authorisation
    if waiting or summary.unchanged:
        lines.append(_("Not counted yet: %(second)s await their second entry, %(differs)s "
                       "differ from their first entry, %(authorisation)s await a written "
                       "authorisation. Already recorded exactly so: %(unchanged)s.",
                       second=summary.awaiting_second, differs=summary.differs,
                       authorisation=summary.awaiting_authorisation,
                       unchanged=summary.unchanged))
    return lines


class FileOutcome(StrEnum):
    """What entering a file does for one of its households."""

    COUNT = "count"                  # recorded as the household's ballot now
    FIRST = "first"                  # a first entry: counts once another member enters it
    SECOND = "second"                # the second entry of a paper: compared when written
    AUTHORISATION = "authorisation"  # a proxy ballot: counts once its 委托书 is attached
    UNCHANGED = "unchanged"          # already recorded exactly so: nothing written


@dataclass
class _Sheet:
    """One household's paper ballot, as the file's rows give it."""

    entry: _RollRef
    first_line: int
    channel: BallotChannel
    serial: str | None
    proxy: str | None
    choices: dict[int, str]
    lines: list[int]

    @property
    def household_id(self) -> int:
        return self.entry.household_id

    @property
    def proxy_identity(self) -> str | None:
        if self.channel is BallotChannel.PROXY and self.proxy:
            return proxy_identity(self.proxy)
        return None


@dataclass(frozen=True)
class _RollRef:
    household_id: int
    owner_identity: str
    area_dm2: int
    label: str = ""


@dataclass(frozen=True)
class _Case:
    """A household's entry still waiting, as the file is checked against it."""

    id: int
    state: str
    entered_by_id: int | None
    entered_at: datetime
    channel: str
    serial: str | None
    proxy_identity: str | None
    proxy_document_id: int | None
    choices: dict[int, str]


@dataclass(frozen=True)
class _Current:
    """A household's ballot as the file is checked against it."""

    id: int
    version: int
    channel: str
    serial: str | None
    proxy_identity: str | None
    cast_at: datetime
    choices: dict[int, str]

    @property
    def own(self) -> bool:
        return any(choice != t.Choice.NOT_REACHED for choice in self.choices.values())


@dataclass
class BallotFile:
    """A ballot file as checked: each household's ballot as the file gives it, what entering
    the file would do for it, and every problem. Checking writes nothing."""

    filename: str
    sha256: str
    rows: int
    items: list[Item]
    sheets: list[_Sheet]
    outcomes: dict[int, FileOutcome]  # household id → outcome
    errors: list[CellError]
    vote_open: bool
    table: Table  # the file as read: its columns name the problems found later
    # Each household's ballot as it would be written (receipt, audit payload), made ready
    # before the write lock is taken.
    prepared: dict[int, _Entry] = field(default_factory=dict)

    def errors_of(self, sheet: _Sheet) -> list[CellError]:
        lines = set(sheet.lines)
        return [error for error in self.errors if error.line in lines]

    def count(self, outcome: FileOutcome) -> int:
        return sum(1 for value in self.outcomes.values() if value is outcome)


def _nothing_recorded(problems: int) -> str:
    return ngettext("%(num)s problem found; no ballot was recorded.",
                    "%(num)s problems found; no ballot was recorded.", problems)


def _import_window(consultation: Consultation, now: datetime) -> bool:
    """True while the vote is open; False once it closed but is not counted yet, when only the
    second entries of papers entered before the close may still come. Raises Conflict when no
    ballot can be entered at all."""
    try:
        check_vote_open(consultation, now)
    except Conflict:
        if consultation.stage_enum in UNCOUNTED_VOTE_STAGES:
            return False
        raise
    return True


def check_ballot_file(actor: Any, consultation: Consultation, data: bytes, filename: str, *,
                      now: datetime | None = None,
                      progress: Callable[[int, int], None] | None = None) -> BallotFile:
    """Read and check a paper-ballot file without writing anything and without the write lock
    (a read transaction, ``reading``): every row against the roll and the items, and every
    household against what is recorded for it (its ballot, its entries waiting, serial
    numbers and proxies in use). Raises ImportRejected only for a file that is no ballot
    table at all; every other problem is in the result, with its line and column."""
    with reading():
        vote_open = _import_window(consultation, now or utcnow())
        table = read_table(data, filename, BALLOT_COLUMNS)
        items = list(consultation.items)
        roll = {(building, unit, room): _RollRef(household_id, owner, area,
                                                 household_label(building, unit, room))
                for household_id, building, unit, room, owner, area in db.session.execute(
                    select(RollEntry.household_id, RollEntry.building_name, RollEntry.unit,
                           RollEntry.room, RollEntry.owner_identity, RollEntry.area_dm2)
                    .where(RollEntry.consultation_id == consultation.id,
                           RollEntry.round == consultation.round))}
        allowed = {channel: allowed_choices(consultation, channel) for channel in BallotChannel}
        total = 2 * len(table.rows)
        sheets, errors = _read_sheets(table, items, roll, allowed, progress, total)
        outcomes, problems = _plan(actor, consultation, sheets, table, vote_open)
        errors += problems
        errors += _ballots_in_the_way(consultation, _writing(sheets, outcomes), table)
        prepared = {} if errors else {
            sheet.household_id: _prepare_sheet(actor, consultation, sheet) for sheet in sheets}
    errors.sort(key=lambda e: e.line)
    return BallotFile(filename, hashlib.sha256(data).hexdigest(), len(table.rows), items,
                      sheets, outcomes, errors, vote_open, table, prepared)


def _writing(sheets: list[_Sheet], outcomes: Mapping[int, FileOutcome]) -> list[_Sheet]:
    return [s for s in sheets if outcomes.get(s.household_id, FileOutcome.UNCHANGED)
            is not FileOutcome.UNCHANGED]


def import_ballots(actor: Any, consultation: Consultation, data: bytes, filename: str, *,
                   now: datetime | None = None,
                   progress: Callable[[int, int], None] | None = None) -> BallotImportSummary:
    """Enter paper, door-to-door and proxy ballots from a file, all or nothing (flushed).

    One row per household and item. Every problem in the file is reported with its line and
    column, and then nothing is recorded. ``progress(advance, total)`` is told how many steps
    were done since its last call: one per row checked, then one per row written.

    Each household's rows are one member's entry of its paper, with the rules of
    ``ballots.entries``: a file never replaces a ballot the household already has (a
    correction needs its reason and evidence, on the household's page); under double entry
    it is a first entry, or the second entry of a paper another member entered first; a
    proxy ballot waits for its written authorisation where the consultation requires one.

    The file is checked without holding up voting (``check_ballot_file``). Only then does one
    transaction take the write lock (shared lock on the consultation on PostgreSQL, and the
    rows of the file's households' ballots), read again what the ballots depend on (the vote
    still open, each household's ballot and waiting entry, the serial numbers and proxies now
    in use), and write every ballot, its answers, the entries and the audit events with a few
    multi-row statements; the audit events come last, so the chain head is locked only at the
    very end. Measured on the development machine (bench/results/imports.md): paper ballots
    of 2,000 households with 10 items each hold SQLite's write lock for 0.2 s (PostgreSQL: the
    audit chain head for 0.09 s); entered one by one through ``cast``, they held it for 6 s
    (PostgreSQL: 16 s).
    """
    checked = check_ballot_file(actor, consultation, data, filename, now=now,
                                progress=progress)
    if checked.errors:
        raise ImportRejected(_nothing_recorded(len(checked.errors)), checked.errors)
    table_rows = checked.rows
    total = 2 * table_rows

    # The write: the consultation is read again under the lock, and so is everything the
    # entries depend on.
    lock_row(consultation, shared=True)
    now = now or utcnow()
    vote_open = _import_window(consultation, now)
    sheets = checked.sheets
    outcomes, errors = _plan(actor, consultation, sheets, checked.table, vote_open)
    if not vote_open and any(outcomes.get(sheet.household_id) not in (
            FileOutcome.SECOND, FileOutcome.UNCHANGED) for sheet in sheets):
        raise Conflict(_("Voting has closed; no more ballots can be accepted."))
    errors += _ballots_in_the_way(consultation, _writing(sheets, outcomes), checked.table)
    if errors:
        errors.sort(key=lambda e: e.line)
        raise ImportRejected(_nothing_recorded(len(errors)), errors)
    try:
        with db.session.begin_nested():
            summary = _write_file(actor, consultation, checked, outcomes, now)
    except IntegrityError:
        # PostgreSQL only: a household of the file cast its first ballot online, or another
        # member started its entry, at this very moment (SQLite's write lock keeps that out).
        raise ImportRejected(_("A household of this file voted or was entered while the file "
                               "was being entered; no ballot was recorded. Please import the "
                               "file again."), []) from None
    summary.rows = table_rows
    summary.unchanged = sum(1 for o in outcomes.values() if o is FileOutcome.UNCHANGED)
    audit.record(actor, "ballot.imported", consultation, {
        "round": consultation.round, "file": filename[:200], "sha256": checked.sha256,
        "households": summary.households, "new": summary.new, "changed": summary.changed,
        "unchanged": summary.unchanged, "awaiting_second": summary.awaiting_second,
        "differs": summary.differs, "awaiting_authorisation": summary.awaiting_authorisation})
    if progress:
        progress(total - table_rows, total)
    return summary


def _read_sheets(table: Table, items: list[Item], roll: dict[tuple[str, str, str], _RollRef],
                 allowed: dict[BallotChannel, tuple[t.Choice, ...]],
                 progress: Callable[[int, int], None] | None,
                 total: int) -> tuple[list[_Sheet], list[CellError]]:
    """The file's rows as one ballot per household, and every problem found in them."""
    from consult.core.text import strip_suffix

    items_by_number = {str(item.number): item for item in items}
    items_by_title = {item.title.strip(): item for item in items}
    sheets: dict[int, _Sheet] = {}
    seen: dict[tuple[int, int], int] = {}
    errors: list[CellError] = []
    for done, (line, cells) in enumerate(table.rows, start=1):
        if progress and done % 1000 == 0:
            progress(1000, total)
        building, unit, room = (cells["building"].strip(),
                                strip_suffix(cells.get("unit", ""), "单元"),
                                strip_suffix(cells["room"], "室", "号"))
        entry = roll.get((building, unit, room))
        if entry is None:
            errors.append(CellError(line, table.where("room"), _(
                "No household %(address)s on this vote's electoral roll.",
                address=" ".join(p for p in (cells["building"], cells.get("unit", ""),
                                             cells["room"]) if p))))
            continue
        item = items_by_number.get(cells["item"].strip()) or items_by_title.get(
            cells["item"].strip())
        if item is None:
            errors.append(CellError(line, table.where("item"), _(
                "“%(value)s” is not an item number or title of this consultation.",
                value=cells["item"])))
        channel = _CHANNEL_WORDS.get(cells["channel"].strip().lower())
        if channel is None:
            errors.append(CellError(line, table.where("channel"), _(
                "Unknown channel “%(value)s”; use paper, door_to_door or proxy.",
                value=cells["channel"])))
        choice = _CHOICE_WORDS.get(cells["choice"].strip().lower())
        if choice is None or (channel and choice not in allowed[channel]):
            errors.append(CellError(line, table.where("choice"), _(
                "“%(value)s” is not an answer this ballot allows.", value=cells["choice"])))
        if channel is BallotChannel.PROXY and not cells.get("proxy", "").strip():
            errors.append(CellError(line, table.where("proxy") if "proxy" in table.headers
                                    else "proxy", _("A proxy ballot needs the proxy's name.")))
        if item is None or channel is None or choice is None:
            continue
        key = (entry.household_id, item.id)
        if key in seen:
            errors.append(CellError(line, table.where("item"), _(
                "Duplicate of line %(line)s (same household and item).", line=seen[key])))
            continue
        seen[key] = line
        serial = cells.get("serial", "").strip()[:40] or None
        sheet = sheets.setdefault(entry.household_id, _Sheet(
            entry, line, channel, serial, cells.get("proxy", "").strip()[:100] or None, {},
            []))
        sheet.lines.append(line)
        if (channel, serial) != (sheet.channel, sheet.serial):
            errors.append(CellError(line, table.where("channel"), _(
                "The household's rows disagree on the channel or the serial (see line "
                "%(line)s).", line=sheet.first_line)))
        sheet.choices[item.id] = choice.value
    if progress:
        progress(len(table.rows) % 1000, total)
    for sheet in sheets.values():
        missing = [str(i.number) for i in items if i.id not in sheet.choices]
        if missing:
            errors.append(CellError(sheet.first_line, table.where("item"), _(
                "This household has no answer for item(s) %(items)s.", items=", ".join(missing))))
    return list(sheets.values()), errors


def _recorded(consultation: Consultation, households: list[int]
              ) -> tuple[dict[int, _Current], dict[int, _Case]]:
    """The ballots of ``households`` and the round's entries still waiting, a few queries."""
    where = (Ballot.consultation_id == consultation.id, Ballot.round == consultation.round)
    current: dict[int, _Current] = {}
    answers: dict[int, dict[int, str]] = {}
    for start in range(0, len(households), 500):
        chunk = households[start:start + 500]
        rows = db.session.execute(select(
            Ballot.household_id, Ballot.id, Ballot.version, Ballot.channel, Ballot.serial,
            Ballot.proxy_identity, Ballot.cast_at).where(*where, Ballot.household_id.in_(chunk)))
        for household, id_, version, channel, serial, proxy_identity, cast_at in rows:
            current[household] = _Current(id_, version, channel, serial, proxy_identity, cast_at,
                                          choices=answers.setdefault(household, {}))
    voted = list(current)  # the answers only of those that have a ballot
    for start in range(0, len(voted), 500):
        for household, item_id, choice in db.session.execute(
                select(Ballot.household_id, BallotChoice.item_id, BallotChoice.choice)
                .join(BallotChoice, BallotChoice.ballot_id == Ballot.id)
                .where(*where, Ballot.household_id.in_(voted[start:start + 500]))):
            answers[household][item_id] = choice
    wanted = set(households)
    cases = {}
    for lead in db.session.scalars(select(BallotEntry).where(
            BallotEntry.consultation_id == consultation.id,
            BallotEntry.round == consultation.round, BallotEntry.first_id.is_(None),
            BallotEntry.state.in_([s.value for s in OPEN_ENTRY_STATES]))):
        if lead.household_id in wanted:
            cases[lead.household_id] = _Case(
                lead.id, lead.state, lead.entered_by_id, lead.entered_at, lead.channel,
                lead.serial, lead.proxy_identity, lead.proxy_document_id,
                {int(k): v for k, v in json.loads(lead.choices_json).items()})
    return current, cases


def _plan(actor: Any, consultation: Consultation, sheets: list[_Sheet], table: Any,
          vote_open: bool) -> tuple[dict[int, FileOutcome], list[CellError]]:
    """What entering each sheet would do, and the sheets it must not be entered for: a file
    never replaces a ballot the household has, nor stands in for a correction; under double
    entry one member's file is never both entries of a paper."""
    from consult.ballots.entries import NEVER_REPLACE

    double = double_entry_on(consultation)
    current, cases = _recorded(consultation, [s.household_id for s in sheets])
    actor_id = getattr(actor, "id", None)
    room, choice_column = table.where("room"), table.where("choice")
    outcomes: dict[int, FileOutcome] = {}
    errors: list[CellError] = []
    for sheet in sheets:
        household = sheet.household_id
        case, ballot = cases.get(household), current.get(household)
        mine = (sheet.channel.value, sheet.serial, sheet.proxy_identity, sheet.choices)
        if case is not None:
            if case.state == EntryState.DIFFERS:
                message = _("The two entries of this household's paper ballot differ and "
                            "await a decision; the file cannot add another.")
            elif case.state == EntryState.AWAITING_AUTHORISATION:
                message = _("This household's proxy ballot is entered and waits for its "
                            "written authorisation (委托书).")
            elif case.entered_by_id == actor_id:
                message = _("You made the first entry of this household's paper ballot; its "
                            "second entry must be made by another member.")
            else:
                outcomes[household] = FileOutcome.SECOND
                continue
            errors.append(CellError(sheet.first_line, room, message))
        elif ballot is not None and (ballot.channel, ballot.serial, ballot.proxy_identity,
                                     ballot.choices) == mine:
            outcomes[household] = FileOutcome.UNCHANGED
        elif not vote_open:
            errors.append(CellError(sheet.first_line, room, _(
                "Voting has closed: only the second entry of a paper ballot entered before "
                "the close can still be made.")))
        elif ballot is not None and ballot.own:
            if any(choice in NEVER_REPLACE for choice in sheet.choices.values()):
                errors.append(CellError(sheet.first_line, choice_column, _(
                    "“Not reached” and “undecided” never replace a ballot the household "
                    "already has.")))
            else:
                errors.append(CellError(sheet.first_line, room, _(
                    "This household already has a ballot (%(channel)s, %(when)s). A file "
                    "cannot replace it: enter a correction on the household's ballot page, "
                    "with its reason and evidence.",
                    channel=BALLOT_CHANNEL_LABELS[BallotChannel(ballot.channel)],
                    when=format_datetime(ballot.cast_at, "short"))))
        elif double:
            outcomes[household] = FileOutcome.FIRST
        elif sheet.proxy_identity and consultation.proxy_document_required:
            outcomes[household] = FileOutcome.AUTHORISATION
        else:
            outcomes[household] = FileOutcome.COUNT
    return outcomes, errors


def _ballots_in_the_way(consultation: Consultation, sheets: list[_Sheet],
                        table: Any) -> list[CellError]:
    """Problems the ballots and entries already recorded make for the file's: a serial
    number another household's ballot or waiting entry carries (or two of the file's
    households), and proxies holding more households than the consultation allows, once the
    file is entered."""
    errors: list[CellError] = []
    mine = {sheet.household_id for sheet in sheets}
    where = (Ballot.consultation_id == consultation.id, Ballot.round == consultation.round)
    column = table.where("serial") if "serial" in table.headers else "serial"
    serials = {sheet.serial for sheet in sheets if sheet.serial}
    taken: dict[str, int] = {}
    if serials:  # one pass over the round's paper ballots, and one over its waiting entries
        taken.update({serial: household for serial, household in db.session.execute(
            select(Ballot.serial, Ballot.household_id).where(*where, Ballot.serial.isnot(None)))
            if serial in serials and household not in mine})
        taken.update({serial: household for serial, household in db.session.execute(
            select(BallotEntry.serial, BallotEntry.household_id).where(
                BallotEntry.consultation_id == consultation.id,
                BallotEntry.round == consultation.round, BallotEntry.first_id.is_(None),
                BallotEntry.serial.isnot(None),
                BallotEntry.state.in_([s.value for s in OPEN_ENTRY_STATES])))
            if serial in serials and household not in mine})
    for sheet in sheets:
        if sheet.serial is None:
            continue
        if taken.setdefault(sheet.serial, sheet.household_id) != sheet.household_id:
            errors.append(CellError(sheet.first_line, column, _(
                "Paper ballot %(serial)s has already been entered for another household.",
                serial=sheet.serial)))
    if consultation.proxy_cap:
        held: dict[str, int] = {}
        for sheet in sheets:
            if sheet.proxy_identity:
                held.setdefault(sheet.proxy_identity, 0)
        if held:  # the households each proxy holds now, but for the file's own
            for identity, household in db.session.execute(
                    select(Ballot.proxy_identity, Ballot.household_id).where(
                        *where, Ballot.proxy_identity.isnot(None))):
                if identity in held and household not in mine:
                    held[identity] += 1
        proxy_column = table.where("proxy") if "proxy" in table.headers else "proxy"
        for sheet in sheets:
            if not sheet.proxy_identity:
                continue
            if held[sheet.proxy_identity] >= consultation.proxy_cap:
                errors.append(CellError(sheet.first_line, proxy_column, _(
                    "%(name)s already represents %(n)s households, the most this "
                    "consultation allows.", name=sheet.proxy, n=held[sheet.proxy_identity])))
            held[sheet.proxy_identity] += 1
    return errors


@dataclass
class _Entry:
    """What a sheet writes as a ballot."""

    household_id: int
    values: dict[str, Any]  # the ballot's columns, but for its version and time
    choices: list[tuple[int, str]]  # (item id, choice)
    payload: dict[str, Any]  # its audit event's, but for the version and time
    choices_json: str  # the answers as its entry keeps them
    cast_at: datetime | None = None  # when the paper was (first) entered


def _prepare_sheet(actor: Any, consultation: Consultation, sheet: _Sheet) -> _Entry:
    """A sheet as the rows and the audit payload ``cast`` would write for it (receipt, owner
    token, answers by item number), so that the write itself has little left to do."""
    numbers = {item.id: item.number for item in consultation.items}
    open_ballot = consultation.secrecy == Secrecy.OPEN
    identity = sheet.proxy_identity
    values: dict[str, Any] = {
        "channel": sheet.channel.value, "entered_by_id": getattr(actor, "id", None),
        "serial": sheet.serial, "proxy_name": sheet.proxy if identity else None,
        "proxy_identity": identity, "proxy_document_id": None,
        "receipt": new_receipt(), "submission": None}
    payload = {
        "consultation_id": consultation.id, "round": consultation.round,
        "household_id": sheet.household_id if open_ballot else None,
        "owner": owner_token(consultation, sheet.entry.owner_identity),
        "area_dm2": sheet.entry.area_dm2, "channel": values["channel"],
        "serial": values["serial"], "proxy": identity is not None,
        "receipt_hash": receipt_hash(consultation, values["receipt"]),
        "choices": {str(numbers[item_id]): choice for item_id, choice in sheet.choices.items()}}
    return _Entry(sheet.household_id, values, list(sheet.choices.items()), payload,
                  json.dumps({str(k): v for k, v in sorted(sheet.choices.items())},
                             sort_keys=True))


_ENTRY_COLUMNS = ("consultation_id", "round", "household_id", "first_id", "state", "source",
                  "channel", "serial", "proxy_name", "proxy_identity", "proxy_document_id",
                  "choices_json", "correction_reason", "evidence_id", "entered_by_id",
                  "entered_at", "settled_at", "settled_by_id", "counted_id", "ballot_version",
                  "replaced_json", "note")


def _write_file(actor: Any, consultation: Consultation, checked: BallotFile,
                outcomes: Mapping[int, FileOutcome], now: datetime) -> BallotImportSummary:
    """Write a checked file: the ballots that count now, every entry as typed, and the waiting
    entries its second entries settle, with their audit events at the very end."""
    sheets = checked.sheets
    _current, cases = _recorded(consultation, [s.household_id for s in sheets
                                               if outcomes[s.household_id]
                                               is FileOutcome.SECOND])
    actor_id = getattr(actor, "id", None)
    summary = BallotImportSummary()
    to_cast: list[_Entry] = []
    rows: list[dict[str, Any]] = []
    leads: list[dict[str, Any]] = []  # waiting entries settled by the file's second entries
    for sheet in sheets:
        outcome = outcomes[sheet.household_id]
        if outcome is FileOutcome.UNCHANGED:
            continue
        prepared = checked.prepared[sheet.household_id]
        row: dict[str, Any] = {
            "household_id": sheet.household_id, "first_id": None, "channel": sheet.channel.value,
            "serial": sheet.serial, "proxy_name": sheet.proxy if sheet.proxy_identity else None,
            "proxy_identity": sheet.proxy_identity, "choices_json": prepared.choices_json,
            "settled_at": None, "settled_by_id": None, "ballot_version": None}
        if outcome is FileOutcome.COUNT:
            row.update(state=EntryState.COUNTED.value, settled_at=now, settled_by_id=actor_id)
            to_cast.append(replace(prepared, cast_at=now))
        elif outcome is FileOutcome.FIRST:
            row["state"] = EntryState.AWAITING_SECOND.value
            summary.awaiting_second += 1
        elif outcome is FileOutcome.AUTHORISATION:
            row["state"] = EntryState.AWAITING_AUTHORISATION.value
            summary.awaiting_authorisation += 1
        else:
            case = cases[sheet.household_id]
            matches = (case.channel, case.serial, case.proxy_identity, case.choices) == (
                sheet.channel.value, sheet.serial, sheet.proxy_identity, sheet.choices)
            row.update(first_id=case.id, state=(EntryState.MATCHED if matches
                                                else EntryState.DIFFERS).value)
            lead: dict[str, Any] = {"lead_id": case.id, "state": EntryState.DIFFERS.value,
                                    "settled_at": None, "settled_by_id": None}
            if not matches:
                summary.differs += 1
            elif (sheet.proxy_identity and consultation.proxy_document_required
                  and case.proxy_document_id is None):
                lead["state"] = EntryState.AWAITING_AUTHORISATION.value
                summary.awaiting_authorisation += 1
            else:
                lead.update(state=EntryState.COUNTED.value, settled_at=now,
                            settled_by_id=actor_id)
                values = {**prepared.values, "proxy_document_id": case.proxy_document_id
                          if sheet.proxy_identity else None}
                to_cast.append(replace(prepared, values=values, cast_at=case.entered_at))
            leads.append(lead)
        rows.append(row)
    versions = _write_sheets(actor, consultation, to_cast, summary)
    for row in rows:
        if row["state"] == EntryState.COUNTED.value:
            row["ballot_version"] = versions[row["household_id"]]
    _insert_entries(actor_id, consultation, rows, now)
    if leads:
        by_id = {lead["lead_id"]: lead for lead in leads}
        for case_household, case in cases.items():
            if case.id in by_id and by_id[case.id]["state"] == EntryState.COUNTED.value:
                by_id[case.id]["ballot_version"] = versions[case_household]
        table = table_of(BallotEntry)
        db.session.execute(
            update(table).where(table.c.id == bindparam("lead_id")),
            [{"ballot_version": None, **lead} for lead in leads])
    db.session.expire_all()  # bulk statements bypass the identity map
    if rows:
        _record_entries(actor, consultation, [r for r in rows
                                              if r["state"] != EntryState.COUNTED.value], now)
    summary.households = len(rows)
    return summary


def _insert_entries(actor_id: int | None, consultation: Consultation,
                    rows: list[dict[str, Any]], now: datetime) -> None:
    """A file's entries, as typed, with one statement straight through the driver (the
    times they share converted once)."""
    if not rows:
        return
    dialect = db.session.get_bind().dialect
    column = table_of(BallotEntry).c.entered_at
    process = column.type.bind_processor(dialect) or (lambda value: value)
    at = process(now)
    fixed = {"consultation_id": consultation.id, "round": consultation.round,
             "source": "import", "proxy_document_id": None, "correction_reason": None,
             "evidence_id": None, "entered_by_id": actor_id, "entered_at": at,
             "counted_id": None, "replaced_json": None, "note": ""}
    _insert_rows(table_of(BallotEntry), _ENTRY_COLUMNS, [
        tuple(at if name == "settled_at" and row[name] is not None
              else fixed[name] if name in fixed else row[name] for name in _ENTRY_COLUMNS)
        for row in rows])


def _record_entries(actor: Any, consultation: Consultation, rows: list[dict[str, Any]],
                    now: datetime) -> None:
    """The audit events of a file's entries that did not count at once (one statement), as
    ``entries`` records them: without their answers."""
    if not rows:
        return
    open_ballot = consultation.secrecy == Secrecy.OPEN
    ids = dict(db.session.execute(select(BallotEntry.household_id, BallotEntry.id).where(
        BallotEntry.consultation_id == consultation.id, BallotEntry.round == consultation.round,
        BallotEntry.household_id.in_([r["household_id"] for r in rows]),
        BallotEntry.source == "import", BallotEntry.entered_at == now)).all())
    events = []
    for row in rows:
        entry_id = ids[row["household_id"]]
        payload: dict[str, Any] = {
            "consultation_id": consultation.id, "round": consultation.round, "entry": entry_id,
            "first": row["first_id"],
            "household_id": row["household_id"] if open_ballot else None,
            "channel": row["channel"], "proxy": row["proxy_identity"] is not None,
            "source": "import", "correction": False,
            "double_entry": double_entry_on(consultation)}
        if row["first_id"] is not None:
            payload["matches"] = row["state"] == EntryState.MATCHED.value
        events.append(("ballot.entry_recorded", ("ballot_entry", entry_id), payload,
                       consultation.compound_id))
    audit.record_many(actor, events, chain=consultation.id)


def _write_sheets(actor: Any, consultation: Consultation, entries: list[_Entry],
                  summary: BallotImportSummary) -> dict[int, int]:
    """Record every prepared sheet as its household's current ballot, as ``cast`` would one
    by one: a new ballot at version 1, or the next version of the one there now, each with
    its answers and its ``ballot.cast``/``ballot.changed`` event (at the very end). Returns
    each household's new ballot version."""
    if not entries:
        return {}
    where = (Ballot.consultation_id == consultation.id, Ballot.round == consultation.round)
    ballots = table_of(Ballot)
    households = [entry.household_id for entry in entries]
    current: dict[int, tuple[int, int]] = {}  # household → (ballot id, version)
    for start in range(0, len(households), 500):
        stmt = select(Ballot.household_id, Ballot.id, Ballot.version).where(
            *where, Ballot.household_id.in_(households[start:start + 500]))
        # PostgreSQL: a household's own online ballot waits for this one, then follows it.
        current.update({h: (b, v) for h, b, v in db.session.execute(stmt.with_for_update())})
    new = [entry for entry in entries if entry.household_id not in current]
    changed = [entry for entry in entries if entry.household_id in current]
    if new:
        db.session.execute(ballots.insert(), [
            {**entry.values, "consultation_id": consultation.id, "round": consultation.round,
             "household_id": entry.household_id, "version": 1, "cast_at": entry.cast_at,
             "created_at": entry.cast_at} for entry in new])
        ids = [entry.household_id for entry in new]
        for start in range(0, len(ids), 500):
            current.update({h: (b, 0) for h, b in db.session.execute(
                select(Ballot.household_id, Ballot.id).where(
                    *where, Ballot.household_id.in_(ids[start:start + 500])))})
    if changed:
        db.session.execute(
            update(ballots).where(ballots.c.id == bindparam("ballot_id")), [
                {**entry.values, "ballot_id": current[entry.household_id][0],
                 "version": current[entry.household_id][1] + 1, "cast_at": entry.cast_at}
                for entry in changed])
        changed_ids = [current[entry.household_id][0] for entry in changed]
        for start in range(0, len(changed_ids), 500):
            db.session.execute(table_of(BallotChoice).delete().where(
                BallotChoice.ballot_id.in_(changed_ids[start:start + 500])))
    _insert_rows(table_of(BallotChoice), ("ballot_id", "item_id", "choice"), [
        (current[entry.household_id][0], item_id, choice)
        for entry in entries for item_id, choice in entry.choices])
    db.session.expire_all()  # bulk statements bypass the identity map
    audit.record_many(actor, [
        ("ballot.changed" if current[entry.household_id][1] else "ballot.cast",
         ("ballot", current[entry.household_id][0]),
         {**entry.payload, "version": current[entry.household_id][1] + 1,
          "cast_at": entry.cast_at}, consultation.compound_id) for entry in entries],
        chain=consultation.id)
    summary.new += len(new)
    summary.changed += len(changed)
    return {entry.household_id: current[entry.household_id][1] + 1 for entry in entries}


def _insert_rows(table: Any, columns: tuple[str, ...], rows: list[tuple[Any, ...]]) -> None:
    """Insert plain rows (no types to convert) straight through the driver: for the answers
    of thousands of ballots SQLAlchemy's handling of each row's parameters took longer than
    the insert itself, all of it under the write lock."""
    if not rows:
        return
    connection = db.session.connection()
    mark = "?" if connection.dialect.paramstyle == "qmark" else "%s"
    connection.exec_driver_sql(
        f"INSERT INTO {table.name} ({', '.join(columns)}) "  # noqa: S608 - fixed names
        f"VALUES ({', '.join([mark] * len(columns))})", rows)
