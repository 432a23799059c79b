"""The committee's entries of paper, door-to-door and proxy ballots.

Three rules stand between what a committee member types in and a household's ballot:

- **Channel precedence.** A ballot the household already has (voted online, or a paper it
  signed) is replaced only by an explicit correction, which names its reason and carries its
  evidence: a scan of the signed paper ballot, or the proxy's written authorisation (委托书).
  "Not reached" and "undecided" never replace a ballot. The household sees the correction,
  and its own later online vote counts again (``service.cast`` sets aside whatever entry
  still waits for it).
- **Double entry** (a consultation setting, on for the Civil Code's rules): a paper counts once
  two different members entered it alike, the second without seeing the first; entries that
  differ wait for a member who made neither to decide against the paper.
- **Written authorisation** (a setting): a proxy ballot counts once its 委托书 is attached.

Every entry is kept as typed (``BallotEntry``); the first entry of a paper (the *lead*) holds
the state of the case. The ballot itself is recorded by ``service.cast`` from the entry that
counts, so the tally, the audit cross-check and the recount see only ballots that count.
Every function flushes (never commits) and records its audit events.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import and_, func, or_, select
from sqlalchemy.exc import IntegrityError
from werkzeug.datastructures import FileStorage

from consult.accounts.models import User
from consult.audit import service as audit
from consult.audit.actions import describe, describe_objects
from consult.ballots import service as ballots
from consult.ballots import tally as t
from consult.ballots.models import (
    OPEN_ENTRY_STATES,
    UNSETTLED_ENTRY_STATES,
    Ballot,
    BallotChannel,
    BallotEntry,
    EntryState,
    RollEntry,
)
from consult.consultations.models import Consultation, Secrecy
from consult.core.database import lock_row
from consult.core.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from consult.core.models import utcnow
from consult.core.policy import authorize, can
from consult.extensions import db
from consult.notifications import events
from consult.notifications import service as notifications
from consult.registry.models import Household
from consult.uploads import service as uploads
from consult.uploads.models import Attachment, Visibility

describe({
    "ballot.entry_recorded": _l("Ballot entered"),
    "ballot.entries_decided": _l("Differing ballot entries decided"),
    "ballot.corrected": _l("Ballot corrected by the committee"),
    "ballot.authorisation_attached": _l("Written authorisation attached"),
}, kind="ballots")
describe({
    "ballot.count_waiting": _l("Vote closed; its count waits for paper ballots to be settled"),
}, kind="stages")
describe_objects({"ballot_entry": _l("Ballot entry")})

MAX_REASON = 500
# Answers that never replace a ballot the household has: they say nothing the household chose.
NEVER_REPLACE = frozenset({t.Choice.NOT_REACHED, t.Choice.UNDECIDED})
# Channels a correction may come by: each has a signed paper to show for it.
CORRECTION_CHANNELS = (BallotChannel.PAPER, BallotChannel.PROXY)
# What staff holding ``ballot.visit`` but not ``ballot.enter`` (grid workers) may record.
VISIT_CHANNELS = (BallotChannel.DOOR_TO_DOOR,)


@dataclass(frozen=True)
class Paper:
    """What one member read off a paper ballot."""

    channel: BallotChannel
    choices: Mapping[int, str]  # item id → choice, as submitted
    serial: str | None = None
    proxy_name: str | None = None


# --- reading ------------------------------------------------------------------------------


def open_case(consultation: Consultation, household_id: int) -> BallotEntry | None:
    """The household's entry still waiting for something (a second entry, a decision, its
    written authorisation), in the current round; at most one."""
    return db.session.scalar(select(BallotEntry).where(
        BallotEntry.consultation_id == consultation.id,
        BallotEntry.round == consultation.round, BallotEntry.household_id == household_id,
        BallotEntry.first_id.is_(None),
        BallotEntry.state.in_([s.value for s in OPEN_ENTRY_STATES])))


@dataclass(frozen=True)
class Pending:
    """Entries of the current round that do not count yet, by what they wait for."""

    awaiting_second: int = 0
    differs: int = 0
    awaiting_authorisation: int = 0

    @property
    def unsettled(self) -> int:
        """Those that keep the vote from being closed early and counted."""
        return self.awaiting_second + self.differs

    @property
    def total(self) -> int:
        return self.unsettled + self.awaiting_authorisation


def pending(consultation: Consultation) -> Pending:
    """How many papers of the current round wait, and for what (one query)."""
    counts = dict(db.session.execute(
        select(BallotEntry.state, func.count(BallotEntry.id)).where(
            BallotEntry.consultation_id == consultation.id,
            BallotEntry.round == consultation.round, BallotEntry.first_id.is_(None),
            BallotEntry.state.in_([s.value for s in OPEN_ENTRY_STATES]))
        .group_by(BallotEntry.state)).all())
    return Pending(counts.get(EntryState.AWAITING_SECOND.value, 0),
                   counts.get(EntryState.DIFFERS.value, 0),
                   counts.get(EntryState.AWAITING_AUTHORISATION.value, 0))


def unsettled(consultation: Consultation) -> int:
    """Papers entered once under double entry, or whose entries differ: the vote is not
    counted while there are any."""
    return db.session.scalar(select(func.count(BallotEntry.id)).where(
        BallotEntry.consultation_id == consultation.id, BallotEntry.round == consultation.round,
        BallotEntry.first_id.is_(None),
        BallotEntry.state.in_([s.value for s in UNSETTLED_ENTRY_STATES]))) or 0


def choices_of(entry: BallotEntry) -> dict[int, str]:
    """An entry's answers, item id → choice."""
    return {int(item_id): choice for item_id, choice in json.loads(entry.choices_json).items()}


def case_entries(lead: BallotEntry) -> list[BallotEntry]:
    """The lead entry and every later entry of the same paper, in the order they were made."""
    later = db.session.scalars(select(BallotEntry).where(BallotEntry.first_id == lead.id)
                               .order_by(BallotEntry.id))
    return [lead, *later]


def same_person(a: int | None, b: Any) -> bool:
    """Whether an entry made by user id ``a`` was made by ``b`` (a user or None): two entries
    from the command line (no user) count as one person's."""
    return a == getattr(b, "id", None)


def next_action(lead: BallotEntry, actor: Any, *, can_enter: bool, can_decide: bool
                ) -> str | None:
    """What a waiting paper asks of ``actor`` (the waiting page and the API alike):
    "second_entry", "wait_for_another" (they made the first entry), "decide",
    "attach_authorisation", or None."""
    if lead.state == EntryState.AWAITING_SECOND and can_enter:
        return "wait_for_another" if same_person(lead.entered_by_id, actor) else "second_entry"
    if lead.state == EntryState.DIFFERS and can_decide:
        return "decide"
    if lead.state == EntryState.AWAITING_AUTHORISATION and can_enter:
        return "attach_authorisation"
    return None


@dataclass
class EntryPage:
    """What the entry form of one household offers, and why."""

    ballot: Ballot | None
    own: bool             # the ballot is the household's own answer: only a correction
    case: BallotEntry | None
    mode: str             # "enter", "correct", "second", "own_first", "differs",
    #                       "authorisation", "closed"
    double_entry: bool
    # Who made the first entry, when a second one is due (the answers stay hidden).
    first_by: User | None = None
    entered_by: User | None = None  # of the current ballot


def entry_page(consultation: Consultation, household_id: int, user: Any) -> EntryPage:
    """What a member may do on a household's entry form now."""
    ballot = ballots.ballot_of(consultation, household_id)
    case = open_case(consultation, household_id)
    own = ballots.is_households_own(ballot)
    page = EntryPage(ballot, own, case, "enter", ballots.double_entry_on(consultation))
    if ballot is not None and ballot.entered_by_id is not None:
        page.entered_by = db.session.get(User, ballot.entered_by_id)
    if case is not None:
        page.first_by = db.session.get(User, case.entered_by_id) if case.entered_by_id else None
        if case.state == EntryState.DIFFERS:
            page.mode = "differs"
        elif case.state == EntryState.AWAITING_AUTHORISATION:
            page.mode = "authorisation"
        elif same_person(case.entered_by_id, user):
            page.mode = "own_first"
        else:
            page.mode = "second"
        if page.mode == "second":
            try:
                ballots.check_can_settle(consultation, case.entered_at)
            except Conflict:
                page.mode = "closed"
        return page
    if not consultation.vote_is_open():
        page.mode = "closed"
    elif own:
        page.mode = "correct"
    return page


def next_to_enter(consultation: Consultation, after: RollEntry, user: Any) -> RollEntry | None:
    """The next household on the roll after ``after`` (building, unit, room) that has no
    ballot and whose paper ``user`` can enter now: no entry waits for it, or only a first
    entry by another member that awaits its second (once the vote is closed, only such a
    one). None at the end of the roll."""
    ballot = select(Ballot.id).where(
        Ballot.consultation_id == consultation.id, Ballot.round == consultation.round,
        Ballot.household_id == RollEntry.household_id)
    # Waiting entries this member cannot add to: their own first entry, a paper whose entries
    # differ, a proxy's awaiting its written authorisation.
    blocked = select(BallotEntry.id).where(
        BallotEntry.consultation_id == consultation.id,
        BallotEntry.round == consultation.round,
        BallotEntry.household_id == RollEntry.household_id, BallotEntry.first_id.is_(None),
        BallotEntry.state.in_([s.value for s in OPEN_ENTRY_STATES]),
        or_(BallotEntry.state != EntryState.AWAITING_SECOND.value,
            BallotEntry.entered_by_id == getattr(user, "id", None)
            if getattr(user, "id", None) is not None else BallotEntry.entered_by_id.is_(None)))
    conditions = [~ballot.exists(), ~blocked.exists()]
    if not consultation.vote_is_open():
        # Closed, the count waiting: only second entries are still made.
        conditions.append(select(BallotEntry.id).where(
            BallotEntry.consultation_id == consultation.id,
            BallotEntry.round == consultation.round,
            BallotEntry.household_id == RollEntry.household_id, BallotEntry.first_id.is_(None),
            BallotEntry.state == EntryState.AWAITING_SECOND.value).exists())
    later = or_(RollEntry.building_sort > after.building_sort,
                and_(RollEntry.building_sort == after.building_sort,
                     or_(RollEntry.household_sort > after.household_sort,
                         and_(RollEntry.household_sort == after.household_sort,
                              RollEntry.household_id > after.household_id))))
    return db.session.scalars(
        select(RollEntry).where(RollEntry.consultation_id == consultation.id,
                                RollEntry.round == consultation.round, later, *conditions)
        .order_by(RollEntry.building_sort, RollEntry.household_sort, RollEntry.household_id)
        .limit(1)).first()


# --- entering -----------------------------------------------------------------------------


def enter(actor: Any, consultation: Consultation, household: Household, paper: Paper, *,
          reason: str = "", evidence: FileStorage | None = None,
          proxy_document: FileStorage | None = None,
          now: datetime | None = None) -> BallotEntry:
    """Record one member's entry of a paper ballot for ``household``; returns the case's lead
    entry, whose state says what became of it (counted, awaiting a second entry, differing,
    awaiting the written authorisation).

    With no entry waiting for the household, this is a first entry: over a ballot the
    household already has it must be a correction (paper or proxy, a reason, the evidence,
    no "not reached" or "undecided" answer). With a first entry waiting for its second, this
    is that second entry: it must come from another member, and is compared with the first
    (channel, answers, serial number, proxy); the second sees neither answer of the first.

    Raises ValidationFailed (by field), Conflict (the vote is closed, the paper waits for a
    decision or its authorisation) or PermissionDenied (the first entry was one's own).
    """
    now = now or utcnow()
    if (actor is not None and paper.channel not in VISIT_CHANNELS
            and not can(actor, "ballot.enter", consultation)):
        # Answers taken at the door are all a grid worker records; paper is the committee's.
        # (No actor: the command line, run by whoever operates the server.)
        authorize(actor, "ballot.enter", consultation)
    if ballots.roll_entry_for(consultation, household.id) is None:
        raise Conflict(_("This household is not on the electoral roll of this vote."))
    # Ballots and closing the vote hold the consultation the same way (see service.cast).
    lock_row(consultation, shared=True)
    case = open_case(consultation, household.id)
    if case is not None:
        lock_row(case)  # two second entries at once: the later one sees the first's outcome
        if case.state in {s.value for s in OPEN_ENTRY_STATES}:
            return _later_entry(actor, consultation, household, case, paper, proxy_document,
                                now)
    ballots.check_vote_open(consultation, now)
    return _first_entry(actor, consultation, household, paper, reason, evidence,
                        proxy_document, now)


def _validated(consultation: Consultation, household: Household, paper: Paper,
               exclude_case: BallotEntry | None = None) -> tuple[dict[int, str], str | None,
                                                               ballots.Proxy | None]:
    """The paper's answers (by item id), serial number and proxy, checked; raises
    ValidationFailed by field."""
    chosen = ballots._parse_choices(consultation, paper.choices, paper.channel)
    serial = (paper.serial or "").strip()[:40] or None
    proxy = None
    if paper.channel is BallotChannel.PROXY:
        name = (paper.proxy_name or "").strip()[:100]
        proxy = ballots.Proxy(name, ballots.proxy_identity(name), None)
        ballots._check_proxy(consultation, household, proxy)
    if serial:
        ballots._check_serial_free(consultation, household, serial)
        other = db.session.scalar(select(BallotEntry.id).where(
            BallotEntry.consultation_id == consultation.id,
            BallotEntry.round == consultation.round, BallotEntry.serial == serial,
            BallotEntry.household_id != household.id, BallotEntry.first_id.is_(None),
            BallotEntry.state.in_([s.value for s in OPEN_ENTRY_STATES])))
        if other is not None:
            message = _("Paper ballot %(serial)s has already been entered for another "
                        "household.", serial=serial)
            raise ValidationFailed(message, {"serial": [message]})
    return {item.id: choice.value for item, choice in chosen.items()}, serial, proxy


def _check_replacing(paper: Paper, chosen: Mapping[int, str]) -> None:
    """What may replace the household's own ballot: a signed paper or a proxy's, answering
    every item; raises ValidationFailed."""
    if paper.channel not in CORRECTION_CHANNELS:
        message = _("A door-to-door visit cannot replace the ballot the household already "
                    "has. Correct it with the signed paper ballot or the proxy's written "
                    "authorisation.")
        raise ValidationFailed(message, {"channel": [message]})
    never = [choice for choice in chosen.values() if choice in NEVER_REPLACE]
    if never:
        raise ValidationFailed(_("“Not reached” and “undecided” never replace a ballot the "
                                 "household already has."))


def _check_correction(paper: Paper, chosen: Mapping[int, str], reason: str,
                      evidence: FileStorage | None,
                      proxy_document: FileStorage | None) -> None:
    """What a correction over the household's own ballot needs; raises ValidationFailed."""
    _check_replacing(paper, chosen)
    errors: dict[str, list[str]] = {}
    if not reason:
        errors["reason"] = [_("Say why the household's ballot is corrected.")]
    if evidence is None and not (paper.channel is BallotChannel.PROXY and proxy_document):
        errors["evidence"] = [_("Attach the evidence: a scan of the paper ballot the household "
                                "signed, or the proxy's written authorisation.")]
    if errors:
        raise ValidationFailed(_("A correction needs its reason and its evidence."), errors)


def _store(actor: Any, consultation: Consultation, upload: FileStorage | None,
           field_name: str) -> Attachment | None:
    """A checked file kept for staff only, or None; its problem goes next to its field."""
    if upload is None:
        return None
    try:
        return uploads.store(actor, upload, consultation=consultation,
                             visibility=Visibility.STAFF)
    except ValidationFailed as exc:
        raise ValidationFailed(exc.message, {field_name: [exc.message]}) from None


def _first_entry(actor: Any, consultation: Consultation, household: Household, paper: Paper,
                 reason: str, evidence: FileStorage | None,
                 proxy_document: FileStorage | None, now: datetime) -> BallotEntry:
    current = ballots.ballot_of(consultation, household.id)
    correcting = ballots.is_households_own(current)
    chosen, serial, proxy = _validated(consultation, household, paper)
    reason = " ".join((reason or "").split())[:MAX_REASON]
    if correcting:
        _check_correction(paper, chosen, reason, evidence, proxy_document)
    # The files last, once everything else is known to be right.
    evidence_file = _store(actor, consultation, evidence, "evidence") if correcting else None
    document = _store(actor, consultation, proxy_document, "proxy_document")
    if correcting and paper.channel is BallotChannel.PROXY:
        # The 委托书 is the evidence of a proxy's correction, whichever field brought it.
        document = document or evidence_file
        evidence_file = evidence_file or document
    lead = BallotEntry(
        consultation_id=consultation.id, round=consultation.round, household_id=household.id,
        state=EntryState.AWAITING_SECOND.value, source="form", channel=paper.channel.value,
        serial=serial, proxy_name=proxy.name if proxy else None,
        proxy_identity=proxy.identity if proxy else None,
        proxy_document_id=document.id if document else None,
        choices_json=_json(chosen), correction_reason=reason if correcting else None,
        evidence_id=evidence_file.id if evidence_file else None,
        entered_by_id=getattr(actor, "id", None), entered_at=now)
    try:
        with db.session.begin_nested():
            db.session.add(lead)
            db.session.flush()
    except IntegrityError:
        # PostgreSQL: another member started this household's entry at the same moment.
        raise Conflict(_("Another member entered a ballot for this household at the same "
                         "moment. Open the form again.")) from None
    _record_entry(actor, consultation, lead)
    if not ballots.double_entry_on(consultation):
        _count(actor, consultation, lead, lead, now)
    return lead


def _later_entry(actor: Any, consultation: Consultation, household: Household,
                 lead: BallotEntry, paper: Paper, proxy_document: FileStorage | None,
                 now: datetime) -> BallotEntry:
    if lead.state == EntryState.DIFFERS:
        raise Conflict(_("The two entries of this paper ballot differ: a member who made "
                         "neither decides which is right."))
    if lead.state == EntryState.AWAITING_AUTHORISATION:
        raise Conflict(_("This proxy ballot is entered; it counts once the written "
                         "authorisation (委托书) is attached."))
    if same_person(lead.entered_by_id, actor):
        raise PermissionDenied(_("You made the first entry of this paper ballot. Its second "
                                 "entry must be made by another member, without looking at "
                                 "the first."))
    ballots.check_can_settle(consultation, lead.entered_at)
    chosen, serial, proxy = _validated(consultation, household, paper)
    document = _store(actor, consultation, proxy_document, "proxy_document")
    second = BallotEntry(
        consultation_id=consultation.id, round=consultation.round, household_id=household.id,
        first_id=lead.id, source="form", channel=paper.channel.value, serial=serial,
        proxy_name=proxy.name if proxy else None,
        proxy_identity=proxy.identity if proxy else None,
        proxy_document_id=document.id if document else None, choices_json=_json(chosen),
        entered_by_id=getattr(actor, "id", None), entered_at=now,
        state=(EntryState.MATCHED if agree(lead, paper.channel.value, chosen, serial,
                                           proxy.identity if proxy else None)
               else EntryState.DIFFERS).value)
    db.session.add(second)
    db.session.flush()
    _record_entry(actor, consultation, second)
    if second.state == EntryState.MATCHED:
        if lead.proxy_document_id is None and document is not None:
            lead.proxy_document_id = document.id
        _count(actor, consultation, lead, lead, now)
    else:
        lead.state = EntryState.DIFFERS.value
        db.session.flush()
    return lead


def agree(lead: BallotEntry, channel: str, chosen: Mapping[int, str], serial: str | None,
          proxy_identity: str | None) -> bool:
    """Whether a second entry reads the paper as the first did: the same channel, answers,
    serial number and proxy."""
    return (lead.channel == channel and choices_of(lead) == dict(chosen)
            and (lead.serial or None) == (serial or None)
            and (lead.proxy_identity or None) == (proxy_identity or None))


def _json(chosen: Mapping[int, str]) -> str:
    return json.dumps({str(k): v for k, v in sorted(chosen.items())}, sort_keys=True)


def _by_number(consultation: Consultation, chosen: Mapping[int, str]) -> dict[str, str]:
    numbers = {item.id: item.number for item in consultation.items}
    return {str(numbers[item_id]): choice for item_id, choice in chosen.items()
            if item_id in numbers}


def _record_entry(actor: Any, consultation: Consultation, entry: BallotEntry) -> None:
    """That an entry was made, in the audit trail (the household only for open ballots, as a
    ballot's own events do). Not its answers nor its serial number: members read the audit
    trail, and the second entry of a paper must not see what the first one typed. The
    entry itself keeps them, and the ballot's own event has the answers that count."""
    open_ballot = consultation.secrecy == Secrecy.OPEN
    payload: dict[str, Any] = {
        "consultation_id": consultation.id, "round": consultation.round, "entry": entry.id,
        "first": entry.first_id, "household_id": entry.household_id if open_ballot else None,
        "channel": entry.channel, "proxy": entry.proxy_identity is not None,
        "source": entry.source, "correction": entry.is_correction,
        "double_entry": ballots.double_entry_on(consultation),
    }
    if entry.first_id is not None:
        payload["matches"] = entry.state == EntryState.MATCHED
    if entry.is_correction:
        payload["reason"] = entry.correction_reason
        payload["evidence"] = _file_ref(entry.evidence)
    audit.record(actor, "ballot.entry_recorded", ("ballot_entry", entry.id),
                 payload, compound_id=consultation.compound_id, chain=consultation.id)


def _file_ref(attachment: Attachment | None) -> dict[str, Any] | None:
    if attachment is None:
        return None
    return {"attachment_id": attachment.id, "sha256": attachment.sha256}


def _snapshot(consultation: Consultation, ballot: Ballot) -> dict[str, Any]:
    """A ballot as it stands, for the record of a correction."""
    return {"version": ballot.version, "channel": ballot.channel,
            "cast_at": audit.format_time(ballot.cast_at),
            # The receipt itself is its holder's key to the proof page: only its hash is kept.
            "receipt_hash": ballots.receipt_hash(consultation, ballot.receipt),
            "entered_by_id": ballot.entered_by_id, "serial": ballot.serial,
            "proxy": ballot.proxy_identity is not None,
            "choices": _by_number(consultation, {c.item_id: c.choice for c in ballot.choices})}


def _count(actor: Any, consultation: Consultation, lead: BallotEntry, chosen: BallotEntry,
           now: datetime) -> None:
    """Record the household's ballot from ``chosen`` (the lead or a later entry of its
    paper), unless it is a proxy ballot that still lacks its required authorisation."""
    household = db.session.get(Household, lead.household_id)
    assert household is not None
    current = ballots.ballot_of(consultation, household.id)
    if ballots.is_households_own(current):
        if not lead.is_correction:
            # Cannot happen through the pages (the household's online vote sets waiting
            # entries aside, and a ballot over one of its own is entered as a correction);
            # refused rather than replacing the household's own ballot silently.
            raise Conflict(_("The household has a ballot of its own; only a correction with "
                             "its reason and evidence can replace it."))
        # Whichever entry of a correction counts, it must be one that may replace a ballot.
        _check_replacing(Paper(BallotChannel(chosen.channel), choices_of(chosen)),
                         choices_of(chosen))
    document_id = (chosen.proxy_document_id or lead.proxy_document_id
                   or next((e.proxy_document_id for e in case_entries(lead)
                            if e.proxy_document_id), None))
    lead.counted_id = chosen.id if chosen.id != lead.id else None
    if (chosen.channel == BallotChannel.PROXY and consultation.proxy_document_required
            and document_id is None):
        lead.state = EntryState.AWAITING_AUTHORISATION.value
        db.session.flush()
        return
    before = _snapshot(consultation, current) if current is not None else None
    proxy = None
    if chosen.channel == BallotChannel.PROXY:
        proxy = ballots.Proxy(chosen.proxy_name or "", chosen.proxy_identity or "",
                              db.session.get(Attachment, document_id) if document_id else None)
    ballot = ballots.cast(actor, consultation, household, choices_of(chosen),
                          BallotChannel(chosen.channel), serial=chosen.serial, proxy=proxy,
                          entered_at=lead.entered_at)
    lead.state = EntryState.COUNTED.value
    lead.ballot_version = ballot.version
    lead.settled_at = now
    lead.settled_by_id = getattr(actor, "id", None)
    if lead.is_correction and before is not None:
        lead.replaced_json = json.dumps(before, sort_keys=True)
        open_ballot = consultation.secrecy == Secrecy.OPEN
        payload: dict[str, Any] = {
            "consultation_id": consultation.id, "round": consultation.round,
            "household_id": household.id if open_ballot else None, "entry": lead.id,
            "version_before": before["version"], "version": ballot.version,
            "channel_before": before["channel"], "channel": ballot.channel,
            "reason": lead.correction_reason, "evidence": _file_ref(lead.evidence),
            "corrected_by": lead.entered_by_id,
        }
        if open_ballot:
            payload["choices_before"] = before["choices"]
            payload["choices"] = _by_number(consultation, choices_of(chosen))
        audit.record(actor, "ballot.corrected", ballot, payload,
                     compound_id=consultation.compound_id)
        # The household is told, whatever the ballot's secrecy: it is its own ballot.
        notifications.notify(
            events.BALLOT_CORRECTED, notifications.household_accounts([household.id]),
            {"consultation": consultation.title, "locale": consultation.locale},
            notifications.path_for("consultations.show", consultation_id=consultation.id),
            f"ballot_corrected:{ballot.id}:{ballot.version}", now=now)
    db.session.flush()


# --- deciding, authorisations -------------------------------------------------------------


def get_case_or_404(consultation: Consultation, entry_id: int) -> BallotEntry:
    """A paper's first entry in the consultation's current round."""
    case = db.session.get(BallotEntry, entry_id)
    if (case is None or case.consultation_id != consultation.id
            or case.round != consultation.round or case.first_id is not None):
        raise NotFound(_("No such ballot entry."))
    return case


def decide(actor: Any, consultation: Consultation, lead: BallotEntry, pick: str,
           paper: Paper | None = None, note: str = "", now: datetime | None = None
           ) -> BallotEntry:
    """Settle a paper whose entries differ: ``pick`` is the id of the entry that reads the
    paper right, or "paper" to count ``paper`` as the deciding member reads it. Only a member
    who made none of its entries decides. Returns the lead entry."""
    now = now or utcnow()
    lock_row(consultation, shared=True)
    lock_row(lead)
    if lead.state != EntryState.DIFFERS:
        raise Conflict(_("This paper ballot does not wait for a decision."))
    entries = case_entries(lead)
    if any(same_person(entry.entered_by_id, actor) for entry in entries):
        raise PermissionDenied(_("You entered this paper ballot; a member who made neither "
                                 "entry decides."))
    ballots.check_can_settle(consultation, lead.entered_at)
    household = db.session.get(Household, lead.household_id)
    assert household is not None
    note = " ".join((note or "").split())[:MAX_REASON]
    if pick == "paper":
        if paper is None:
            raise ValidationFailed(_("Enter the answers as the paper ballot gives them."))
        chosen_answers, serial, proxy = _validated(consultation, household, paper)
        if lead.is_correction:
            _check_replacing(paper, chosen_answers)
        chosen = BallotEntry(
            consultation_id=consultation.id, round=consultation.round,
            household_id=household.id, first_id=lead.id, state=EntryState.DECISION.value,
            source="decision", channel=paper.channel.value, serial=serial,
            proxy_name=proxy.name if proxy else None,
            proxy_identity=proxy.identity if proxy else None, choices_json=_json(chosen_answers),
            entered_by_id=getattr(actor, "id", None), entered_at=now)
        db.session.add(chosen)
        db.session.flush()
    else:
        found = next((entry for entry in entries if str(entry.id) == pick), None)
        if found is None:
            raise ValidationFailed(_("Choose one of the entries, or enter the paper ballot."),
                                   {"pick": [_("Choose one of the entries, or enter the "
                                               "paper ballot.")]})
        chosen = found
    lead.note = note
    lead.settled_by_id = getattr(actor, "id", None)
    open_ballot = consultation.secrecy == Secrecy.OPEN
    payload: dict[str, Any] = {
        "consultation_id": consultation.id, "round": consultation.round, "entry": lead.id,
        "entries": [entry.id for entry in entries], "chosen": chosen.id,
        "from_paper": pick == "paper", "note": note,
        "household_id": household.id if open_ballot else None}
    audit.record(actor, "ballot.entries_decided", ("ballot_entry", lead.id), payload,
                 compound_id=consultation.compound_id, chain=consultation.id)
    _count(actor, consultation, lead, chosen, now)
    return lead


def attach_authorisation(actor: Any, consultation: Consultation, household: Household,
                         upload: FileStorage | None, now: datetime | None = None) -> str:
    """Attach a proxy's written authorisation (委托书) to the household's proxy ballot, or to
    its entry still waiting; a proxy ballot that waited only for it is counted now. Returns
    "counted", "attached" (to a ballot or an entry that still waits for something else)."""
    now = now or utcnow()
    if upload is None:
        message = _("Choose the scan or photo of the written authorisation.")
        raise ValidationFailed(message, {"document": [message]})
    lock_row(consultation, shared=True)
    case = open_case(consultation, household.id)
    ballot = ballots.ballot_of(consultation, household.id)
    if case is not None:
        lock_row(case)
    if case is not None and case.state in {s.value for s in OPEN_ENTRY_STATES} and (
            case.channel == BallotChannel.PROXY or any(
                e.channel == BallotChannel.PROXY for e in case_entries(case))):
        document = _store(actor, consultation, upload, "document")
        assert document is not None
        case.proxy_document_id = document.id
        target: tuple[str, int] = ("ballot_entry", case.id)
        outcome = "attached"
        if case.state == EntryState.AWAITING_AUTHORISATION:
            chosen = db.session.get(BallotEntry, case.counted_id) if case.counted_id else case
            assert chosen is not None
            _count(actor, consultation, case, chosen, now)
            outcome = "counted"
    elif ballot is not None and ballot.channel == BallotChannel.PROXY:
        document = _store(actor, consultation, upload, "document")
        assert document is not None
        ballot.proxy_document_id = document.id
        target = ("ballot", ballot.id)
        outcome = "attached"
    else:
        raise Conflict(_("This household has no proxy ballot to attach a written "
                         "authorisation to."))
    audit.record(actor, "ballot.authorisation_attached", target, {
        "consultation_id": consultation.id, "round": consultation.round,
        "document": _file_ref(document), "counted": outcome == "counted"},
        compound_id=consultation.compound_id, chain=consultation.id)
    db.session.flush()
    return outcome


def set_aside_at_count(consultation: Consultation, now: datetime) -> int:
    """When the vote is counted, proxy ballots still without their required authorisation
    are set aside for good (they did not count); returns how many."""
    waiting = list(db.session.scalars(select(BallotEntry).where(
        BallotEntry.consultation_id == consultation.id, BallotEntry.round == consultation.round,
        BallotEntry.first_id.is_(None),
        BallotEntry.state == EntryState.AWAITING_AUTHORISATION.value)))
    for entry in waiting:
        entry.state = EntryState.SET_ASIDE.value
        entry.settled_at = now
        entry.note = ballots.SET_ASIDE_NOT_COUNTED
        audit.record(None, "ballot.entry_set_aside", ("ballot_entry", entry.id), {
            "consultation_id": consultation.id, "round": consultation.round, "entry": entry.id,
            "reason": ballots.SET_ASIDE_NOT_COUNTED}, compound_id=consultation.compound_id)
    db.session.flush()
    return len(waiting)


# --- lists --------------------------------------------------------------------------------


@dataclass
class CaseRow:
    """One paper in the lists of waiting entries and of corrections."""

    lead: BallotEntry
    roll: RollEntry | None
    entries: list[BallotEntry] = field(default_factory=list)
    before: dict[str, Any] | None = None   # a correction: the ballot it replaced
    after: dict[str, str] | None = None    # a correction: the answers that counted

    @property
    def label(self) -> str:
        from consult.registry.models import household_label

        if self.roll is None:
            return "—"
        return household_label(self.roll.building_name, self.roll.unit, self.roll.room)


def _rows(consultation: Consultation, leads: list[BallotEntry]) -> list[CaseRow]:
    """Leads with their roll entries and later entries, in few queries."""
    if not leads:
        return []
    rounds = {lead.round for lead in leads}
    households = {lead.household_id for lead in leads}
    roll = {(r.round, r.household_id): r for r in db.session.scalars(select(RollEntry).where(
        RollEntry.consultation_id == consultation.id, RollEntry.round.in_(rounds),
        RollEntry.household_id.in_(households)))}
    later: dict[int, list[BallotEntry]] = {}
    for entry in db.session.scalars(select(BallotEntry).where(
            BallotEntry.first_id.in_([lead.id for lead in leads])).order_by(BallotEntry.id)):
        later.setdefault(entry.first_id or 0, []).append(entry)
    return [CaseRow(lead, roll.get((lead.round, lead.household_id)),
                    [lead, *later.get(lead.id, [])]) for lead in leads]


def waiting(consultation: Consultation) -> list[CaseRow]:
    """Every paper of the current round that does not count yet, in address order."""
    leads = list(db.session.scalars(
        select(BallotEntry).join(RollEntry, (RollEntry.consultation_id
                                             == BallotEntry.consultation_id)
                                 & (RollEntry.round == BallotEntry.round)
                                 & (RollEntry.household_id == BallotEntry.household_id))
        .where(BallotEntry.consultation_id == consultation.id,
               BallotEntry.round == consultation.round, BallotEntry.first_id.is_(None),
               BallotEntry.state.in_([s.value for s in OPEN_ENTRY_STATES]))
        .order_by(RollEntry.building_sort, RollEntry.household_sort)))
    return _rows(consultation, leads)


def corrections(consultation: Consultation) -> list[CaseRow]:
    """Every correction of the consultation (all rounds), newest first, with what it
    replaced and what counted; answers only for an open ballot."""
    leads = list(db.session.scalars(select(BallotEntry).where(
        BallotEntry.consultation_id == consultation.id,
        BallotEntry.correction_reason.isnot(None), BallotEntry.first_id.is_(None))
        .order_by(BallotEntry.entered_at.desc(), BallotEntry.id.desc())))
    rows = _rows(consultation, leads)
    if consultation.secrecy == Secrecy.OPEN:
        for row in rows:
            if row.lead.replaced_json:
                row.before = json.loads(row.lead.replaced_json)
            counted = next((e for e in row.entries if e.id == (row.lead.counted_id
                                                               or row.lead.id)), row.lead)
            if row.lead.state == EntryState.COUNTED:
                row.after = _by_number(consultation, choices_of(counted))
    return rows


def household_entries(consultation: Consultation, household_id: int) -> list[CaseRow]:
    """Every paper entered for a household in the current round, newest first."""
    leads = list(db.session.scalars(select(BallotEntry).where(
        BallotEntry.consultation_id == consultation.id, BallotEntry.round == consultation.round,
        BallotEntry.household_id == household_id, BallotEntry.first_id.is_(None))
        .order_by(BallotEntry.id.desc())))
    return _rows(consultation, leads)


@dataclass(frozen=True)
class Correction:
    """What a household is told of a correction of its ballot: when and why (the committee
    corrected it; staff names are not shown to residents)."""

    at: datetime
    reason: str
    version: int


def corrections_of(consultation: Consultation, household_id: int) -> list[Correction]:
    """The corrections that counted for a household in the current round, newest first."""
    return [Correction(at, reason or "", version or 0) for at, reason, version in
            db.session.execute(select(BallotEntry.settled_at, BallotEntry.correction_reason,
                                      BallotEntry.ballot_version).where(
                BallotEntry.consultation_id == consultation.id,
                BallotEntry.round == consultation.round,
                BallotEntry.household_id == household_id, BallotEntry.first_id.is_(None),
                BallotEntry.correction_reason.isnot(None),
                BallotEntry.state == EntryState.COUNTED.value)
                .order_by(BallotEntry.settled_at.desc()))
            if at is not None]  # always: a counted entry was settled


def users(ids: set[int | None]) -> dict[int, User]:
    """The accounts that entered or settled entries, by id (one query)."""
    wanted = {i for i in ids if i is not None}
    if not wanted:
        return {}
    return {u.id: u for u in db.session.scalars(select(User).where(User.id.in_(wanted)))}
