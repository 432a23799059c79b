"""Ballot proofs: the tree over a round's counted ballots, frozen with its tally, and the proof
that the ballot of a receipt code is in it (Certificate-Transparency style, RFC 6962).

When a vote closes, every counted ballot becomes a leaf (``records.leaf_data``: the
consultation, the round, the receipt's hash and the answers counted), the leaves are put in
the order of their hashes, and the root of the tree over them is frozen with the tally and
written into the ``ballot.result_frozen`` event; the resolution notice prints it. Whoever holds
a receipt code can then ask for its ballot's leaf and audit path (``check_receipt``) and see
that the path leads to that root, here or offline with ``tools/recount.py``. Nothing in a leaf
names the household, so confidential votes get their proofs too: only the receipt's holder can
tell which leaf is theirs.

Receipt codes can be guessed only one at a time: wrong codes are counted per client address in
the database (as wrong access codes are, ``accounts.lockout``), and too many pause the checking
of receipts from that address. The pause holds back the short receipts of earlier ballots
(40 bits), right ones included, since otherwise it would not slow a guesser; a right
full-length receipt (80 bits, beyond any guessing) is answered even then, so one guesser
behind a shared address does not shut out the households behind it. Functions flush, never
commit.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import current_app
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import and_, insert, select

from consult.audit import service as audit
from consult.audit.actions import describe
from consult.ballots import merkle, records
from consult.ballots.models import Ballot, BallotChoice, BallotLeaf, RollEntry, VoteResult
from consult.consultations.models import Consultation
from consult.core.errors import DomainError
from consult.core.models import utcnow
from consult.extensions import db

describe({"ballot.receipts_paused": _l("Receipt checks paused after wrong receipt codes")},
         kind="ballots")


@dataclass(frozen=True)
class TreeHead:
    """The root (hex) of a round's tree and how many ballots it holds."""

    root: str
    size: int


@dataclass(frozen=True)
class PathStep:
    """One hash of an audit path: on which side it joins, and the hash it leads to."""

    side: str  # "left": the path's hash is the left child; "right": the right one
    sibling: str
    result: str


@dataclass(frozen=True)
class Proof:
    """What a receipt's holder is shown: the leaf of their ballot, its audit path, the root
    it leads to and the root frozen when the vote closed."""

    consultation_id: int
    round: int
    index: int             # the leaf's position, from 0
    size: int              # leaves in the tree
    receipt_hash: str
    leaf_data: str         # canonical JSON (records.leaf_data)
    leaf_hash: str
    steps: tuple[PathStep, ...]
    root: str              # where the path leads
    frozen_root: str       # what was frozen with the tally (and is on the notice)
    answers: dict[str, str]  # item number → answer counted

    @property
    def holds(self) -> bool:
        """Whether the path leads to the root frozen when the vote closed."""
        return self.root == self.frozen_root

    @property
    def path(self) -> list[str]:
        return [step.sibling for step in self.steps]


# --- freezing ---------------------------------------------------------------------------------


def counted_ballots(consultation: Consultation, round_: int) -> list[tuple[str, bytes]]:
    """The leaf of every ballot counted in a round (households on the roll): its receipt's
    hash and its ``records.leaf_data``. Two queries, whatever the size."""
    numbers = {item.id: item.number for item in consultation.items}
    on_roll = and_(RollEntry.consultation_id == Ballot.consultation_id,
                   RollEntry.round == Ballot.round, RollEntry.household_id == Ballot.household_id)
    where = (Ballot.consultation_id == consultation.id, Ballot.round == round_)
    receipts = dict(db.session.execute(
        select(Ballot.id, Ballot.receipt).join(RollEntry, on_roll).where(*where)).all())
    answers: dict[int, dict[str, str]] = defaultdict(dict)
    for ballot_id, item_id, choice in db.session.execute(
            select(BallotChoice.ballot_id, BallotChoice.item_id, BallotChoice.choice)
            .join(Ballot, Ballot.id == BallotChoice.ballot_id).where(*where)):
        if ballot_id in receipts and item_id in numbers:
            answers[ballot_id][str(numbers[item_id])] = choice
    leaves = []
    for ballot_id, receipt in receipts.items():
        digest = records.receipt_hash(consultation.id, round_, receipt)
        leaves.append((digest, records.leaf_data(consultation.id, round_, digest,
                                                 answers.get(ballot_id, {}))))
    return leaves


def freeze_tree(consultation: Consultation, round_: int) -> TreeHead:
    """Store the leaves of a closed round's tree, in the order of their hashes, and return
    its root (the caller freezes it with the tally and records it)."""
    leaves = sorted((merkle.leaf_hash(data), digest, data)
                    for digest, data in counted_ballots(consultation, round_))
    rows = [{"consultation_id": consultation.id, "round": round_, "position": position,
             "receipt_hash": digest, "data": data.decode("utf-8")}
            for position, (_hash, digest, data) in enumerate(leaves)]
    for start in range(0, len(rows), 1000):
        db.session.execute(insert(BallotLeaf), rows[start:start + 1000])
    return TreeHead(merkle.root([leaf for leaf, _digest, _data in leaves]).hex(), len(leaves))


# --- proofs -----------------------------------------------------------------------------------


def tree_heads(consultation: Consultation) -> dict[int, TreeHead]:
    """The frozen tree of every counted round that has one, by round."""
    return {round_: TreeHead(root, size) for round_, root, size in db.session.execute(
        select(VoteResult.round, VoteResult.tree_root, VoteResult.tree_size)
        .where(VoteResult.consultation_id == consultation.id,
               VoteResult.tree_root.isnot(None)).order_by(VoteResult.round))
        if root is not None and size is not None}


def prove(consultation: Consultation, round_: int, head: TreeHead, leaf: BallotLeaf) -> Proof:
    """The audit path of a stored leaf, computed again from every stored leaf of its round:
    if any of them changed since the vote closed, the path no longer leads to the frozen
    root, and the page says so."""
    hashes = [merkle.leaf_hash(data.encode("utf-8")) for data in db.session.scalars(
        select(BallotLeaf.data).where(BallotLeaf.consultation_id == consultation.id,
                                      BallotLeaf.round == round_)
        .order_by(BallotLeaf.position))]
    path = merkle.inclusion_path(leaf.position, hashes)
    running = hashes[leaf.position]
    steps = []
    for side, sibling in zip(merkle.path_sides(leaf.position, len(hashes), len(path)), path,
                             strict=True):
        running = (merkle.node_hash(sibling, running) if side == "left"
                   else merkle.node_hash(running, sibling))
        steps.append(PathStep(side, sibling.hex(), running.hex()))
    return Proof(
        consultation_id=consultation.id, round=round_, index=leaf.position, size=len(hashes),
        receipt_hash=leaf.receipt_hash, leaf_data=leaf.data,
        leaf_hash=hashes[leaf.position].hex(), steps=tuple(steps), root=running.hex(),
        frozen_root=head.root, answers=dict(json.loads(leaf.data)["answers"]))


def find_proof(consultation: Consultation, text: str) -> Proof | None:
    """The proof for the ballot whose receipt code is ``text`` (as typed), in whichever
    counted round it was cast, or None."""
    if records.receipt_characters(text) is None:
        return None
    for round_, head in sorted(tree_heads(consultation).items(), reverse=True):
        digest = records.receipt_hash(consultation.id, round_, text)
        leaf = db.session.scalar(select(BallotLeaf).where(
            BallotLeaf.consultation_id == consultation.id, BallotLeaf.round == round_,
            BallotLeaf.receipt_hash == digest).limit(1))
        if leaf is not None:
            return prove(consultation, round_, head, leaf)
    return None


# --- guessing ---------------------------------------------------------------------------------


class ReceiptNotFound(DomainError):
    """No counted ballot has this receipt code (the same answer whatever the code)."""

    status_code = 404
    code = "receipt_not_found"


class ReceiptChecksPaused(DomainError):
    """Too many wrong receipt codes from this client: checking is paused until ``until``."""

    status_code = 429
    code = "locked"

    def __init__(self, message: str, until: datetime) -> None:
        super().__init__(message)
        self.until = until


def client_key(address: str | None) -> str:
    """A keyed hash of the client's address, apart from the keys access codes count under."""
    key = current_app.config["SECRET_KEY"].encode("utf-8")
    return hmac.new(key, f"receipt-client:{address or '-'}".encode(),
                    hashlib.sha256).hexdigest()


def _paused(until: datetime, now: datetime) -> ReceiptChecksPaused:
    from consult.accounts.lockout import wait_text

    return ReceiptChecksPaused(_(
        "Too many wrong receipt codes came from this network, so checking receipts is paused "
        "%(wait)s. Please try again then, or check your ballot with the audit export and "
        "the recount tool.", wait=wait_text(until, now)), until)


def _note_wrong(consultation: Consultation, key: str, now: datetime) -> datetime | None:
    """Count a wrong receipt code from this client; at the threshold pause receipt checks
    from it (audited). Returns the end of the pause this one started, if any."""
    from consult.accounts.lockout import count_client_failure

    config = current_app.config
    until, failures = count_client_failure(
        key, now, threshold=int(config["RECEIPT_LOCKOUT_THRESHOLD"]),
        window=timedelta(minutes=int(config["RECEIPT_LOCKOUT_WINDOW_MINUTES"])),
        pause=timedelta(minutes=int(config["RECEIPT_LOCKOUT_MINUTES"])))
    if until is None:
        return None
    audit.record(None, "ballot.receipts_paused", ("client", None, consultation.compound_id),
                 {"client": key[:12], "failures": failures, "until": audit.format_time(until),
                  "consultation_id": consultation.id}, chain=consultation.id)
    return until


def check_receipt(address: str | None, consultation: Consultation, text: str,
                  now: datetime | None = None) -> Proof:
    """The proof for a receipt code sent from ``address``.

    Raises ``ReceiptChecksPaused`` while checks from the address are paused (whatever the
    code), ``ReceiptNotFound`` for a code no counted ballot has; a wrong code is counted, and
    may start a pause. The caller commits after either, so the count is kept.
    """
    from consult.accounts.models import ClientLock

    now = now or utcnow()
    key = client_key(address)
    until = db.session.scalar(select(ClientLock.locked_until).where(
        ClientLock.client_key == key))
    if until is not None and until <= now:
        until = None  # the pause is over
    characters = records.receipt_characters(text)
    if until is not None and (characters is None or len(characters) != records.RECEIPT_LENGTH):
        raise _paused(until, now)
    proof = find_proof(consultation, text)
    if proof is not None:
        # A full-length receipt (80 bits) cannot be guessed in any number of tries the flood
        # guard allows, so a right one is answered even from a paused address: a household
        # behind a carrier's NAT is not shut out by a neighbour's typos.
        return proof
    if until is not None:
        raise _paused(until, now)
    started = _note_wrong(consultation, key, now)
    if started is not None:
        raise _paused(started, now)
    raise ReceiptNotFound(_("No counted ballot of this consultation has this receipt code. "
                            "Check the code on your receipt; a ballot that was changed "
                            "has the receipt of its last version."))
