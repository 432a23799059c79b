"""Cross-checking the stored ballots against the audit chain.

The hash chain shows that no event was changed; this check shows that no ballot was changed
behind the events' back. Every stored ballot, with its choices, must be what the latest
``ballot.cast``/``ballot.changed`` event of that ballot says, and every ballot such an event
names must still be stored. So a choice, channel, version or time changed directly in the
database, a ballot moved to another household, a deleted or inserted ballot or choice, are all
named by ``flask audit verify``. So is a ballot tree (``ballots.proofs``) whose stored leaves no
longer give the root frozen when its vote closed, or whose root differs from the one its audit
event recorded. The check rides along the chain's own (``BallotCheck``, registered with the app
by ``init_app``: the audit trail knows no ballots).

Cheap enough for millions of events: the pass over the events only keeps each ballot's latest
payload as its raw text (parsed once, at the end); the ballots are then read once, in id order,
a page at a time, with their choices.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple

from flask import Flask
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_babel import ngettext
from sqlalchemy import DateTime, and_, select, type_coerce
from sqlalchemy.orm import Session

from consult.audit import checks
from consult.audit.models import AuditEvent
from consult.audit.service import EventFields
from consult.ballots import merkle, records
from consult.ballots.explain import CHOICE_LABELS
from consult.ballots.models import (
    BALLOT_CHANNEL_LABELS,
    Ballot,
    BallotChannel,
    BallotChoice,
    BallotLeaf,
    RollEntry,
    VoteResult,
)
from consult.ballots.service import owner_token
from consult.consultations.models import Consultation, Item

BALLOT_ACTIONS = frozenset({"ballot.cast", "ballot.changed"})
# The ballot columns an event records, in the order problems are reported. Events record the
# receipt's hash and a keyed owner token; those written before recorded the receipt itself
# and an unkeyed token (``is_legacy``).
FIELDS = ("consultation_id", "round", "household_id", "area_dm2", "owner", "channel",
          "version", "receipt", "receipt_hash", "serial", "proxy", "cast_at")
FIELD_LABELS = {
    "consultation_id": _l("the consultation"),
    "round": _l("the voting round"),
    "household_id": _l("the household"),
    "area_dm2": _l("the household's area (0.01 m²)"),
    "owner": _l("the owner token"),
    "channel": _l("the channel"),
    "version": _l("the version"),
    "receipt": _l("the receipt code"),
    "receipt_hash": _l("the receipt code's hash"),
    "serial": _l("the paper serial number"),
    "proxy": _l("the proxy mark"),
    "cast_at": _l("the time it was cast"),
}


class StoredBallot(NamedTuple):
    """A ballot row as the database holds it, in the terms of its audit event."""

    id: int
    consultation_id: int
    round: int
    household_id: int
    channel: str
    version: int
    receipt: str
    serial: str | None
    proxy: bool
    cast_at: str          # as the event writes it (``format_time``)
    area_dm2: int | None  # the household's area on the roll; None: not on the roll
    owner: str | None     # the owner token of its roll entry; None: not on the roll
    # Item number → choice; a choice for an item of another consultation as "#<item id>".
    choices: Mapping[str, str]
    receipt_hash: str = ""             # what events record in place of the receipt
    legacy_owner: str | None = None    # the unkeyed owner token of events written before


def is_legacy(payload: Mapping[str, Any]) -> bool:
    """Whether a ballot event was written before events recorded the receipt's hash and a
    keyed owner token (it records the receipt itself)."""
    return "receipt" in payload


def _stored(ballot: StoredBallot, legacy: bool) -> dict[str, Any]:
    """The stored ballot in the terms of an event of its format."""
    values = ballot._asdict()
    if legacy:
        values["owner"] = ballot.legacy_owner
    return values


@dataclass(frozen=True)
class BallotProblem:
    """One way a stored ballot disagrees with the audit chain."""

    ballot_id: str
    # "deleted", "unrecorded", "field", "choice", "unreadable"; for a ballot tree (``name``
    # "<consultation>/<round>", no ballot id) "tree_unrecorded", "tree_event", "tree_leaves"
    kind: str
    seq: int | None = None  # the ballot's latest event
    name: str = ""          # the field, or the item number
    expected: Any = None    # what the event says
    found: Any = None       # what the database holds


def _item_key(number: str) -> tuple[int, str]:
    return (int(number), "") if number.isdigit() else (1 << 62, number)


def _matches(ballot: StoredBallot, payload: dict[str, Any]) -> bool:
    """The common case, quickly: the event says exactly what is stored. (False only means
    that ``compare`` must look closer: a field may be missing from an older event.)"""
    legacy = is_legacy(payload)
    return (payload.get("choices") == ballot.choices
            and payload.get("version") == ballot.version
            and (payload.get("receipt") == ballot.receipt if legacy
                 else payload.get("receipt_hash") == ballot.receipt_hash)
            and payload.get("channel") == ballot.channel
            and payload.get("cast_at", ballot.cast_at) == ballot.cast_at
            and payload.get("area_dm2") == ballot.area_dm2
            and payload.get("owner") == (ballot.legacy_owner if legacy else ballot.owner)
            and payload.get("serial") == ballot.serial
            and payload.get("proxy") == ballot.proxy
            and payload.get("round") == ballot.round
            and payload.get("consultation_id") == ballot.consultation_id
            and payload.get("household_id") in (None, ballot.household_id))


def compare(ballot: StoredBallot, seq: int, payload_text: str) -> list[BallotProblem]:
    """Every difference between a stored ballot and its latest event (pure)."""
    ballot_id = str(ballot.id)
    try:
        payload = json.loads(payload_text)
        if _matches(ballot, payload):
            return []
        expected_choices = {str(k): v for k, v in payload["choices"].items()}
    except (ValueError, KeyError, TypeError, AttributeError):
        return [BallotProblem(ballot_id, "unreadable", seq)]
    problems = []
    stored = _stored(ballot, is_legacy(payload))
    for name in FIELDS:
        if name not in payload:  # events written before the field was recorded
            continue
        expected = payload[name]
        if name == "household_id" and expected is None:  # confidential: not recorded
            continue
        found = stored[name]
        if expected != found:
            problems.append(BallotProblem(ballot_id, "field", seq, name, expected, found))
    for number in sorted(set(expected_choices) | set(ballot.choices), key=_item_key):
        expected, found = expected_choices.get(number), ballot.choices.get(number)
        if expected != found:
            problems.append(BallotProblem(ballot_id, "choice", seq, number, expected, found))
    return problems


def _event_time(stored: datetime) -> str:
    """``format_time`` of a stored (naive UTC) time, several times faster."""
    return stored.isoformat(timespec="microseconds") + "Z"


def stored_ballots(session: Session, batch: int = 5000) -> Iterator[StoredBallot]:
    """Every stored ballot in id order, with its roll entry's area and owner token and its
    choices; two plain (Core) queries per ``batch`` ballots."""
    consultations: dict[int, Any] = {}
    connection = session.connection()
    last = 0
    while True:
        # More columns than ``select``'s typed forms take: the rows are plain tuples.
        rows: Sequence[Any] = connection.execute(
            select(Ballot.id, Ballot.consultation_id, Ballot.round, Ballot.household_id,
                   Ballot.channel, Ballot.version, Ballot.receipt, Ballot.serial,
                   Ballot.proxy_name, type_coerce(Ballot.cast_at, DateTime()),
                   RollEntry.area_dm2,
                   RollEntry.owner_identity)
            .outerjoin(RollEntry, and_(RollEntry.consultation_id == Ballot.consultation_id,
                                       RollEntry.round == Ballot.round,
                                       RollEntry.household_id == Ballot.household_id))
            .where(Ballot.id > last).order_by(Ballot.id).limit(batch)).all()
        if not rows:
            return
        consultation_of = {row[0]: row[1] for row in rows}
        choices: dict[int, dict[str, str]] = defaultdict(dict)
        for ballot_id, item_id, number, item_consultation, choice in connection.execute(
                select(BallotChoice.ballot_id, BallotChoice.item_id, Item.number,
                       Item.consultation_id, BallotChoice.choice)
                .join(Item, Item.id == BallotChoice.item_id)
                .where(BallotChoice.ballot_id.between(rows[0][0], rows[-1][0]))).all():
            if ballot_id in consultation_of:
                key = (str(number) if item_consultation == consultation_of[ballot_id]
                       else f"#{item_id}")
                choices[ballot_id][key] = choice
        for (ballot_id, consultation_id, round_, household_id, channel, version, receipt,
             serial, proxy_name, cast_at, area_dm2, owner_identity) in rows:
            if consultation_id not in consultations:
                consultations[consultation_id] = session.get(Consultation, consultation_id)
            yield StoredBallot(
                id=ballot_id, consultation_id=consultation_id, round=round_,
                household_id=household_id, channel=channel, version=version, receipt=receipt,
                serial=serial, proxy=proxy_name is not None, cast_at=_event_time(cast_at),
                area_dm2=area_dm2,
                owner=(owner_token(consultations[consultation_id], owner_identity)
                       if owner_identity is not None else None),
                choices=choices.get(ballot_id, {}),
                receipt_hash=records.receipt_hash(consultation_id, round_, receipt),
                legacy_owner=(records.legacy_owner_token(consultation_id, owner_identity)
                              if owner_identity is not None else None))
        last = rows[-1][0]


def check_ballots(session: Session, latest: dict[str, tuple[int, str]]
                  ) -> tuple[list[BallotProblem], int]:
    """Compare every stored ballot with ``latest`` (ballot id → its latest event's seq and
    payload, as the pass over the chain keeps them); returns the problems and how many ballots
    were checked. ``latest`` is consumed."""
    problems: list[BallotProblem] = []
    checked = 0
    for ballot in stored_ballots(session):
        checked += 1
        event = latest.pop(str(ballot.id), None)
        if event is None:
            problems.append(BallotProblem(str(ballot.id), "unrecorded"))
        else:
            problems.extend(compare(ballot, *event))
    # What is left was recorded by the chain but is no longer stored.
    for ballot_id, (seq, _payload) in sorted(latest.items(), key=lambda pair: pair[1][0]):
        problems.append(BallotProblem(ballot_id, "deleted", seq))
    problems.extend(check_trees(session))
    return problems, checked


def check_trees(session: Session) -> list[BallotProblem]:
    """Every frozen ballot tree (``ballots.proofs``): its root and size as the closing audit
    event recorded them, as the frozen result holds them, and as its stored leaves give them.
    A leaf changed, added or removed, or a root rewritten, is named. One read of each round's
    leaves."""
    recorded: dict[tuple[int, int], tuple[int, Any]] = {}
    for event_seq, object_id, payload in session.execute(
            select(AuditEvent.seq, AuditEvent.object_id, AuditEvent.payload)
            .where(AuditEvent.action == "ballot.result_frozen").order_by(AuditEvent.seq)):
        # A damaged event is skipped: the chain's own check names it.
        if object_id is None:
            continue
        try:
            data = json.loads(payload)
            recorded[int(object_id), int(data["round"])] = (event_seq, data.get("tree"))
        except (ValueError, KeyError, TypeError):
            continue
    frozen = {(c, r): (root, size) for c, r, root, size in session.execute(
        select(VoteResult.consultation_id, VoteResult.round, VoteResult.tree_root,
               VoteResult.tree_size))}
    problems: list[BallotProblem] = []
    for key in sorted(set(frozen) | {k for k, (_s, tree) in recorded.items() if tree}):
        name = f"{key[0]}/{key[1]}"
        root, size = frozen.get(key, (None, None))
        seq, tree = recorded.get(key) or (None, None)
        if tree is None and root is not None:
            problems.append(BallotProblem("", "tree_unrecorded", seq, name, None, root))
        elif tree is not None and (tree.get("root"), tree.get("size")) != (root, size):
            problems.append(BallotProblem("", "tree_event", seq, name, tree.get("root"), root))
        if root is None:
            continue
        hashes = [merkle.leaf_hash(data.encode("utf-8")) for data in session.scalars(
            select(BallotLeaf.data).where(BallotLeaf.consultation_id == key[0],
                                          BallotLeaf.round == key[1])
            .order_by(BallotLeaf.position))]
        computed = merkle.root(hashes).hex()
        if (computed, len(hashes)) != (root, size):
            problems.append(BallotProblem("", "tree_leaves", seq, name, root, computed))
    return problems


def _value_text(name: str, value: Any) -> str:
    if value is None:
        return _("nothing")
    if name == "channel" and value in {c.value for c in BallotChannel}:
        return f"“{BALLOT_CHANNEL_LABELS[BallotChannel(value)]}”"
    if name not in FIELDS and value in CHOICE_LABELS:  # an item's answer
        return f"“{CHOICE_LABELS[value]}”"
    return f"“{value}”"


def describe(problem: BallotProblem) -> str:
    """A problem in words, in the current language."""
    if problem.kind.startswith("tree"):
        return _describe_tree(problem)
    if problem.kind == "deleted":
        return _("ballot #%(id)s is recorded by audit event #%(seq)s but is no longer in the "
                 "database (deleted)", id=problem.ballot_id, seq=problem.seq)
    if problem.kind == "unrecorded":
        return _("ballot #%(id)s is in the database but no audit event records it (inserted "
                 "behind the application's back)", id=problem.ballot_id)
    if problem.kind == "unreadable":
        return _("ballot #%(id)s: its latest audit event #%(seq)s cannot be read",
                 id=problem.ballot_id, seq=problem.seq)
    found = _value_text(problem.name, problem.found)
    expected = _value_text(problem.name, problem.expected)
    if problem.kind == "choice":
        item = problem.name if not problem.name.startswith("#") else _(
            "%(item)s (of another consultation)", item=problem.name)
        return _("ballot #%(id)s: the answer on item %(item)s is %(found)s in the database but "
                 "%(expected)s in audit event #%(seq)s", id=problem.ballot_id, item=item,
                 found=found, expected=expected, seq=problem.seq)
    return _("ballot #%(id)s: %(field)s is %(found)s in the database but %(expected)s in "
             "audit event #%(seq)s", id=problem.ballot_id, field=FIELD_LABELS[problem.name],
             found=found, expected=expected, seq=problem.seq)


def _describe_tree(problem: BallotProblem) -> str:
    consultation, round_ = problem.name.split("/")
    if problem.kind == "tree_unrecorded":
        return _("consultation %(consultation)s, round %(round)s: the ballot tree's root "
                 "%(found)s is in the database, but no audit event records it",
                 consultation=consultation, round=round_, found=problem.found)
    if problem.kind == "tree_event":
        return _("consultation %(consultation)s, round %(round)s: the ballot tree's root is "
                 "%(found)s in the database but %(expected)s in audit event #%(seq)s",
                 consultation=consultation, round=round_,
                 found=problem.found or _("nothing"), expected=problem.expected,
                 seq=problem.seq)
    return _("consultation %(consultation)s, round %(round)s: the stored leaves of the ballot "
             "tree give the root %(found)s, not %(expected)s, which was frozen when the vote "
             "closed (a leaf was changed, added or removed)", consultation=consultation,
             round=round_, found=problem.found, expected=problem.expected)


# --- the check of the audit chain -------------------------------------------------------------

# ``flask audit verify`` names this many problems, then how many more there are.
SHOWN_PROBLEMS = 20


@dataclass(frozen=True)
class BallotOutcome:
    """What the cross-check found (a ``consult.audit.checks.CheckOutcome``)."""

    checked: int  # stored ballots
    problems: tuple[BallotProblem, ...]

    def lines(self) -> list[str]:
        """The outcome in words, as ``flask audit verify`` prints it."""
        if not self.problems:
            return [ngettext("%(num)s stored ballot matches the audit trail.",
                             "%(num)s stored ballots match the audit trail.", self.checked)]
        lines = [ngettext("The stored ballots disagree with the audit trail (%(num)s problem):",
                          "The stored ballots disagree with the audit trail (%(num)s problems):",
                          len(self.problems))]
        lines += [f"- {describe(p)}" for p in self.problems[:SHOWN_PROBLEMS]]
        if len(self.problems) > SHOWN_PROBLEMS:
            lines.append(_("… and %(n)s more.", n=len(self.problems) - SHOWN_PROBLEMS))
        return lines


class BallotCheck:
    """The cross-check as a check of the audit chain (a ``consult.audit.checks.ChainCheck``):
    shown every ballot event while the chain is walked, it keeps each ballot's latest; then it
    compares every stored ballot, and every ballot tree, with them."""

    actions = BALLOT_ACTIONS

    def __init__(self) -> None:
        # Ballot id → the seq and (raw) payload of its latest event.
        self.latest: dict[str, tuple[int, str]] = {}

    def event(self, fields: EventFields) -> None:
        # A ballot's events are all in its consultation's chain, shown in chain order: the
        # last one seen is the latest, whatever the order of the other chains.
        if fields.object_id is not None:
            self.latest[fields.object_id] = (fields.seq or 0, fields.payload)

    def finish(self, session: Session) -> BallotOutcome:
        problems, checked = check_ballots(session, self.latest)
        return BallotOutcome(checked, tuple(problems))


def init_app(app: Flask) -> None:
    """Have every verification of the app's audit chain cross-check the stored ballots."""
    checks.register(app, "ballots", BallotCheck)
