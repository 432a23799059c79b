"""The audit export: what an outsider needs to re-verify the audit events of a consultation and
recount its vote with ``tools/recount.py`` (the format is described in docs/audit-export.md).

Two scopes, one format:

- **a consultation** (the web download and ``flask audit export --consultation ID``): the
  consultation's own chain from its first event to its head at the time of export, every
  position of it, and the anchors of that chain in the global chain. The events a recount
  needs carry every hashed field, so that each event's hash can be recomputed; the others
  (opinions, comments, ballots of a round still running, …) only their position, link and
  hash (``"omitted": true``), so that the chain can still be followed from genesis to its head
  and compared with its anchors without showing them. Events of the consultation written
  before it had a chain of its own (in the global chain) are included as before: those a
  recount needs, each with every hashed field. Also the consultation's published notices with
  their frozen content. Ballot events are included only for rounds whose result is frozen, so
  an export never shows a vote that is still running.
- **the whole trail** (``flask audit export FILE``): every event of every chain verbatim, for
  supervisors and archives; it proves each chain end to end, up to its head.

The consultation export is public once a round is counted, for open and confidential ballots
alike: ballot events carry no household for confidential ballots, the receipt only as a hash
(its holder can find their ballot; nobody can go the other way) and the owner as a token keyed
with a secret of the consultation that is never exported (so that an owner key, perhaps an ID
number, cannot be tried against it). Ballot events written before events recorded it that way
are exported rewritten, marked ``redacted`` (see ``_redact``).
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from typing import IO, Any

from flask_babel import gettext as _
from sqlalchemy import select, true

from consult.accounts.models import User
from consult.audit.models import GLOBAL_CHAIN, AuditEvent, AuditHead
from consult.audit.service import ANCHOR_ACTION, canonical_json, chain_head, format_time
from consult.ballots import records
from consult.ballots.crosscheck import BALLOT_ACTIONS, is_legacy
from consult.ballots.models import RollEntry
from consult.ballots.service import counted_rounds, owner_token
from consult.consultations.models import Consultation
from consult.consultations.service import get_or_404
from consult.core.errors import Conflict
from consult.core.models import utcnow
from consult.extensions import db
from consult.notices.models import Notice

FORMAT = "consult-audit-export"
# 2: ballot events carry the receipt's hash and keyed owner tokens, older ones are redacted;
# the counted result carries the root of its ballot tree.
# 3: one chain per consultation: events carry ``chain_id`` and ``chain_seq``; a consultation
# export carries its whole chain (omitted events by hash) and that chain's anchors.
VERSION = 3
# The fields each event's hash covers, in the order ``event_hash`` encodes them; ``chain_id``
# is left out for the global chain (0).
HASH_FIELDS = ("chain_id", "chain_seq", "created_at", "actor_id", "actor_label", "action",
               "object_type", "object_id", "compound_id", "payload", "prev_hash")
# What a consultation export contains, by the type of object an event concerns. Opinions,
# comments, objections, evaluations and print jobs stay out: a recount does not need them and
# they say which household did what.
CONSULTATION_EVENTS: dict[str, frozenset[str]] = {
    "consultation": frozenset({
        "consultation.created", "consultation.updated", "consultation.scope_set",
        "consultation.item_removed", "consultation.stage_changed", "ballot.roll_frozen",
        "ballot.result_frozen"}),
    "item": frozenset({"consultation.item_added", "consultation.item_updated"}),
    "ballot": BALLOT_ACTIONS,
    "notice": frozenset({"notice.published"}),
}
_ALL_ACTIONS = frozenset().union(*CONSULTATION_EVENTS.values())
_COLUMNS: tuple[Any, ...] = (
    AuditEvent.seq, AuditEvent.created_at, AuditEvent.actor_id, AuditEvent.actor_label,
    AuditEvent.action, AuditEvent.object_type, AuditEvent.object_id, AuditEvent.compound_id,
    AuditEvent.payload, AuditEvent.prev_hash, AuditEvent.hash, AuditEvent.chain_id,
    AuditEvent.chain_seq,
)


def consultation_or_404(consultation_id: int) -> Consultation:
    """The consultation to export; NotFound if there is none."""
    return get_or_404(consultation_id)


def check_downloadable(consultation: Consultation) -> None:
    """Raise Conflict before any round of the consultation is counted: the export is public
    from then on."""
    if not counted_rounds(consultation):
        raise Conflict(_("The audit export is published once the vote has been counted."))


# --- events -----------------------------------------------------------------------------------


def _record(row: Any) -> dict[str, Any]:
    return {
        "seq": row[0], "chain_id": row[11], "chain_seq": row[12],
        "created_at": format_time(row[1]), "actor_id": row[2],
        "actor_label": row[3], "action": row[4], "object_type": row[5], "object_id": row[6],
        "compound_id": row[7], "payload": row[8], "prev_hash": row[9], "hash": row[10],
    }


def _omitted(row: Any) -> dict[str, Any]:
    """An event of the chain that the export does not show: its place, link and hash."""
    return {"chain_id": row[11], "chain_seq": row[12], "prev_hash": row[9], "hash": row[10],
            "omitted": True}


def _rows(where: Any, chain: int, up_to: int, batch: int = 5000) -> Iterator[Any]:
    """Event rows of ``chain`` in chain order up to position ``up_to``; keyset pages keep
    memory flat."""
    last = 0
    while True:
        rows = db.session.execute(
            select(*_COLUMNS).where(where, AuditEvent.chain_id == chain,
                                    AuditEvent.chain_seq > last, AuditEvent.chain_seq <= up_to)
            .order_by(AuditEvent.chain_seq).limit(batch)).all()
        if not rows:
            return
        yield from rows
        last = rows[-1][12]


def _belongs(row: Any, consultation: Consultation, item_ids: set[str], notice_ids: set[str],
             rounds: set[int]) -> bool:
    object_type, object_id, action = row[5], row[6], row[4]
    if action not in CONSULTATION_EVENTS.get(object_type, ()):
        return False
    if object_type == "consultation":
        return object_id == str(consultation.id)
    if object_type == "item":
        return object_id in item_ids
    if object_type == "notice":
        return object_id in notice_ids
    try:
        payload = json.loads(row[8])
    except ValueError:  # a damaged event of another consultation is not ours to show
        return False
    return payload.get("consultation_id") == consultation.id and payload.get("round") in rounds


def consultation_events(consultation: Consultation, up_to: int,
                        global_up_to: int) -> list[dict[str, Any]]:
    """The events of ``consultation`` that a recount needs: those written before it had a
    chain of its own (in the global chain, up to position ``global_up_to``), then its chain up
    to position ``up_to``, every position, the events a recount does not need omitted. Actors
    who are residents are withheld (see docs/audit-export.md)."""
    item_ids = {str(item.id) for item in consultation.items}
    notice_ids = {str(n) for n in db.session.scalars(select(Notice.id).where(
        Notice.consultation_id == consultation.id))}
    rounds = set(counted_rounds(consultation))
    where = (AuditEvent.compound_id == consultation.compound_id) & AuditEvent.action.in_(
        _ALL_ACTIONS)
    events = [_record(row) for row in _rows(where, GLOBAL_CHAIN, global_up_to)
              if _belongs(row, consultation, item_ids, notice_ids, rounds)]
    events += [_record(row) if _belongs(row, consultation, item_ids, notice_ids, rounds)
               else _omitted(row) for row in _rows(true(), consultation.id, up_to)]
    shown = [event for event in events if not event.get("omitted")]
    _redact(consultation, shown)
    actor_ids = {e["actor_id"] for e in shown if e["actor_id"] is not None}
    residents = set(db.session.scalars(select(User.id).where(
        User.id.in_(actor_ids), User.role == "resident"))) if actor_ids else set()
    for event in shown:
        # Events written before online ballots stopped naming the household's account.
        if event["actor_id"] in residents:
            event.update(actor_id=None, actor_label=None, withheld=["actor_id", "actor_label"])
    return events


def _redact(consultation: Consultation, events: list[dict[str, Any]]) -> None:
    """Rewrite the ballot events written before events recorded the receipt's hash and keyed
    owner tokens: the receipt is replaced by its hash and the unkeyed owner token by the keyed
    one, and the event is marked ``"redacted": ["receipt", "owner"]``. Its hash can then no
    longer be recomputed, and ``recount.py`` says so; the numbers still recount."""
    keyed: dict[str, str] | None = None
    for event in events:
        if event["action"] not in BALLOT_ACTIONS:
            continue
        payload = json.loads(event["payload"])
        if not is_legacy(payload):
            continue
        if keyed is None:  # the roll's owners, once: legacy token → keyed token
            keyed = {records.legacy_owner_token(consultation.id, identity):
                     owner_token(consultation, identity)
                     for identity in db.session.scalars(
                         select(RollEntry.owner_identity).distinct().where(
                             RollEntry.consultation_id == consultation.id))}
        payload["receipt_hash"] = records.receipt_hash(consultation.id, payload["round"],
                                                       str(payload.pop("receipt")))
        token = payload.get("owner")
        payload["owner"] = keyed.get(token) or records.owner_token(
            consultation.owner_token_key, f"legacy:{token}")
        event["payload"] = canonical_json(payload)
        event["redacted"] = ["receipt", "owner"]


def _notices(consultation_id: int | None = None) -> Iterator[dict[str, Any]]:
    stmt = select(Notice).order_by(Notice.id)
    if consultation_id is not None:
        stmt = stmt.where(Notice.consultation_id == consultation_id)
    for notice in db.session.scalars(stmt):
        yield {
            "id": notice.id, "consultation_id": notice.consultation_id, "kind": notice.kind,
            "round": notice.round, "locale": notice.locale, "verify_code": notice.verify_code,
            "published_at": format_time(notice.published_at),
            "superseded_at": (format_time(notice.superseded_at) if notice.superseded_at
                              else None),
            "content_sha256": notice.content_sha256, "chain_id": notice.chain_id,
            "chain_seq": notice.chain_seq, "chain_hash": notice.chain_hash,
            # Verbatim: its SHA-256 is in the notice.published event and on the paper notice.
            "content": notice.content_json,
        }


# --- writing ----------------------------------------------------------------------------------


def _dump(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


def _write(stream: IO[str], header: dict[str, Any], notices: Iterator[dict[str, Any]],
           events: Iterator[dict[str, Any]]) -> int:
    """Write the export: the header's keys, the notices and the events, one per line."""
    stream.write("{\n")
    for key, value in header.items():
        stream.write(f"{_dump(key)}: {_dump(value)},\n")
    for name, rows in (("notices", notices), ("events", events)):
        stream.write(f'"{name}": [')
        count = 0
        for row in rows:
            stream.write(("," if count else "") + "\n" + _dump(row))
            count += 1
        stream.write("\n]" + (",\n" if name == "notices" else "\n"))
    stream.write("}\n")
    return count  # the events


def _header(scope: str, chain: int, head: tuple[int, str]) -> dict[str, Any]:
    return {"format": FORMAT, "version": VERSION, "scope": scope,
            "generated_at": format_time(utcnow()),
            "chain_head": {"chain": chain, "seq": head[0], "hash": head[1]},
            "hash_fields": list(HASH_FIELDS)}


def anchors_of(chain: int, global_up_to: int) -> list[dict[str, Any]]:
    """The global chain's anchors of ``chain`` up to its position ``global_up_to``, each with
    every hashed field."""
    where = ((AuditEvent.object_type == "audit_chain") & (AuditEvent.object_id == str(chain))
             & (AuditEvent.action == ANCHOR_ACTION))
    return [_record(row) for row in _rows(where, GLOBAL_CHAIN, global_up_to)]


def write_consultation(stream: IO[str], consultation: Consultation) -> int:
    """Write the export of one consultation; returns how many events it holds."""
    # The global head first: every anchor of the chain up to it names a position the
    # consultation's head (read after it) has reached.
    global_head = chain_head()
    head = chain_head(chain=consultation.id)
    events = consultation_events(consultation, head[0], global_head[0])
    header = {**_header("consultation", consultation.id, head), "consultation": {
        "id": consultation.id, "title": consultation.title,
        "compound_id": consultation.compound_id, "secrecy": consultation.secrecy,
        "rounds_counted": counted_rounds(consultation)},
        "anchors": anchors_of(consultation.id, global_head[0])}
    return _write(stream, header, _notices(consultation.id), iter(events))


def consultation_export(consultation: Consultation) -> str:
    """The export of one consultation as text (the web download)."""
    buffer = io.StringIO()
    write_consultation(buffer, consultation)
    return buffer.getvalue()


def write_chain(stream: IO[str]) -> int:
    """Write every event of every chain up to its current head, and every notice; returns how
    many events.

    Events are append-only, so reading each chain up to the head read first gives consistent
    chains even while new events are being added. The consultations' heads are read after the
    global one, so every anchor exported names a position that is exported too.
    """
    global_head = chain_head()
    heads = {int(chain): (int(seq), str(digest)) for chain, seq, digest in db.session.execute(
        select(AuditHead.chain_id, AuditHead.seq, AuditHead.hash).order_by(AuditHead.chain_id))}
    heads[GLOBAL_CHAIN] = global_head
    header = {**_header("chain", GLOBAL_CHAIN, global_head), "chain_heads": [
        {"chain": chain, "seq": seq, "hash": digest}
        for chain, (seq, digest) in sorted(heads.items())]}
    events = (_record(row) for chain, (seq, _digest) in sorted(heads.items())
              for row in _rows(true(), chain, seq))
    return _write(stream, header, _notices(), events)
