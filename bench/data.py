"""District-sized data, fast: bulk inserts (Core ``insert()`` with executemany of dicts) instead
of one service call per row.

What the services would write is written here in bulk, in the same shape: households with
owner keys (some owners hold several households), a resident account for most households,
consultations of 12 items in the voting stage with a frozen roll, and ballots for a share of
the households, each with its ``ballot.cast`` audit event. The audit events are hashed with
``consult.audit.service``'s own pure functions (``canonical_json``, ``event_hash``), so the
chain and the ballot cross-check hold: ``flask audit verify`` passes on a generated database.

The first consultation goes through the services (created, 12 items added with their
revisions, taken to the discussion stage); the others are copied from it in bulk with the
events the services would have recorded, so every consultation's trail tells the same story
(``tests/bench`` compares them). Opening the vote copies the roll with one ``INSERT … SELECT``.
Generating 10,000 households takes a few seconds; the time of each step is in the result.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import random
import secrets
import string
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import String, func, insert, literal, select, update
from sqlalchemy import cast as sql_cast

# Every generated resident account has this password (a cheap hash: signing in is not what is
# measured, and 10,000 full-strength hashes would take minutes).
PASSWORD = "bench-password"  # noqa: S105 - made-up accounts of a scratch database
BATCH = 5000
ITEMS = 12
HOUSEHOLDS_PER_BUILDING = 48  # 2 units × 12 floors × 2 flats
SECOND_HOME_SHARE = 0.03      # households whose owner already owns another one
ACCOUNT_SHARE = 0.7           # households with a resident account (户代表 signed up)
TURNOUT = 0.55                # households that have already voted when the benchmark starts
CHOICE_WEIGHTS = (("agree", 75), ("disagree", 15), ("abstain", 10))


@dataclass
class Dataset:
    """What was generated, for the load test and the reports."""

    compounds: int = 0
    buildings: int = 0
    households: int = 0
    owners_with_several: int = 0
    accounts: int = 0
    consultations: list[int] = field(default_factory=list)
    ballots: int = 0
    choices: int = 0
    audit_events: int = 0
    seconds: float = 0.0
    phases: dict[str, float] = field(default_factory=dict)  # seconds per step

    def summary(self) -> dict[str, Any]:
        return {"compounds": self.compounds, "buildings": self.buildings,
                "households": self.households, "owners_with_several": self.owners_with_several,
                "accounts": self.accounts, "consultations": len(self.consultations),
                "items_per_consultation": ITEMS, "ballots": self.ballots,
                "ballot_choices": self.choices, "audit_events": self.audit_events,
                "seconds": round(self.seconds, 2),
                "phases_s": {k: round(v, 2) for k, v in self.phases.items()}}

    def lap(self, phase: str, since: float) -> float:
        """Note the seconds of ``phase`` (started at ``since``); returns the time now."""
        now = time.perf_counter()
        self.phases[phase] = now - since
        return now


def _chunks(rows: Iterable[dict[str, Any]], size: int = BATCH) -> Iterator[list[dict[str, Any]]]:
    chunk: list[dict[str, Any]] = []
    for row in rows:
        chunk.append(row)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def bulk_insert(table: Any, rows: Iterable[dict[str, Any]]) -> int:
    """Insert ``rows`` (dicts) into ``table`` in batches of executemany; returns how many.

    On PostgreSQL the rows go through COPY, several times faster than batched INSERTs."""
    from consult.extensions import db

    connection = db.session.connection()
    if connection.dialect.name == "postgresql":
        return _copy(connection, table, rows)
    count = 0
    for chunk in _chunks(rows):
        connection.execute(insert(table), chunk)
        count += len(chunk)
    return count


def _copy(connection: Any, table: Any, rows: Iterable[dict[str, Any]]) -> int:
    """``COPY table (columns) FROM STDIN`` with the rows' values (aware datetimes stored as
    naive UTC, as ``UTCDateTime`` stores them)."""
    iterator = iter(rows)
    first = next(iterator, None)
    if first is None:
        return 0
    names = list(first)
    cursor = connection.connection.driver_connection.cursor()
    count = 0
    with cursor.copy(f'COPY "{table.name}" ({", ".join(names)}) FROM STDIN') as copy:
        for row in itertools.chain((first,), iterator):
            copy.write_row([_naive(row[name]) for name in names])
            count += 1
    return count


def _naive(value: Any) -> Any:
    if isinstance(value, datetime) and value.tzinfo is not None:
        return value.astimezone(UTC).replace(tzinfo=None)
    return value


def next_id(table: Any) -> int:
    from consult.extensions import db

    return (db.session.scalar(select(func.max(table.c.id))) or 0) + 1


def fix_sequences(tables: Iterable[Any]) -> None:
    """After inserting explicit ids on PostgreSQL, move each table's sequence past them."""
    from consult.extensions import db

    connection = db.session.connection()
    if connection.dialect.name != "postgresql":
        return
    for table in tables:  # names of the app's own tables, no user input
        connection.exec_driver_sql(
            f"SELECT setval(pg_get_serial_sequence('{table.name}', 'id'), "  # noqa: S608
            f"(SELECT COALESCE(MAX(id), 1) FROM \"{table.name}\"))")


def analyze() -> None:
    """Refresh PostgreSQL's planner statistics after a bulk load, as autovacuum would soon do
    on a live server (without them a fresh database plans joins as if tables were empty).
    SQLite keeps no statistics unless ANALYZE is run, and the app never runs it: left alone."""
    from consult.extensions import db

    if db.engine.dialect.name == "postgresql":
        with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("ANALYZE")


def receipt(rng: random.Random) -> str:
    from consult.ballots import service as ballots

    return ballots.new_receipt(rng.choice)


def password_hash() -> str:
    from werkzeug.security import generate_password_hash

    return generate_password_hash(PASSWORD, "pbkdf2:sha256:1000")


def _consultation(compound: Any, title: str, now: datetime) -> Any:
    """A consultation of 12 items through the services, taken to the discussion stage."""
    from consult.consultations import service
    from consult.consultations.states import Action
    from consult.process import workflow

    consultation = service.create(None, compound, service.settings(
        title=title, summary="小区综合改造：管网、屋面、道路、照明等十二项。",
        rule_code="household_majority", secrecy="open", locale="zh_Hans",
        solicitation_deadline=None, vote_deadline=None, publicity_days=7, proxy_cap=None),
        now=now)
    for n in range(1, ITEMS + 1):
        service.add_item(None, consultation, service.item_data(
            title=f"改造项目{n}", description="更换老化设施。", cost=str(50000 + 1000 * n)))
    for action in (Action.START_SOLICITING, Action.START_PROPOSING, Action.START_DISCUSSION):
        workflow.apply(consultation, action, None, now=now)
    return consultation


def open_vote(consultation: Any, opened: datetime, deadline: datetime) -> None:
    """What ``workflow.apply(OPEN_VOTE)`` does (roll frozen, stage changed, both audited), with
    the roll copied by one ``INSERT … SELECT`` instead of a list of dicts (a million-household
    compound would need gigabytes)."""
    from consult.audit import service as audit
    from consult.ballots import service as ballots
    from consult.ballots.models import RollEntry
    from consult.consultations.states import Stage
    from consult.extensions import db
    from consult.registry.models import Building, Household

    scope = ballots.households_in_scope(consultation)
    owner = func.coalesce(Household.owner_key,
                          literal("household:") + sql_cast(Household.id, String))
    source = scope.with_only_columns(
        literal(consultation.id), literal(consultation.round), Household.id, Building.name,
        Building.sort_key, Household.unit, Household.room, Household.sort_key,
        Household.area_dm2, owner, Household.owner_name).order_by(None)
    db.session.execute(insert(RollEntry).from_select(
        ["consultation_id", "round", "household_id", "building_name", "building_sort", "unit",
         "room", "household_sort", "area_dm2", "owner_identity", "owner_name"], source))
    totals = ballots.roll_totals(consultation)
    audit.record(None, "ballot.roll_frozen", consultation, {
        "round": consultation.round, "households": totals.households, "owners": totals.owners,
        "area_dm2": totals.area_dm2})
    consultation.vote_opened_at = opened
    consultation.vote_closed_at = None
    consultation.vote_deadline = deadline
    source_stage = consultation.stage
    consultation.stage = Stage.VOTING.value
    db.session.flush()
    audit.record(None, "consultation.stage_changed", consultation, {
        "action": "open_vote", "from": source_stage, "to": Stage.VOTING.value, "reason": "",
        "round": consultation.round, "by_deadline": False})


def copy_consultations(template: Any, compound_ids: Iterable[int], chain: Chain,
                       opened: datetime, deadline: datetime) -> dict[int, int]:
    """Copies of ``template`` (a consultation open for voting) for each compound, in bulk:
    the consultation, its items and revisions, its roll (``INSERT … SELECT``), and the audit
    events its creation and opening would have recorded (``consultation.created``,
    ``consultation.item_added``, ``consultation.stage_changed``, ``ballot.roll_frozen``).
    Returns compound id → consultation id."""
    from consult.ballots import service as ballots
    from consult.ballots.models import RollEntry
    from consult.consultations.models import Consultation, Item, Revision
    from consult.consultations.states import Stage
    from consult.extensions import db
    from consult.registry.models import Building, Compound, Household

    compounds = {cid: name for cid, name in db.session.execute(
        select(Compound.id, Compound.name).where(Compound.id.in_(list(compound_ids))))}
    if not compounds:
        return {}
    created = template.created_at
    consultation_id, item_id = next_id(Consultation.__table__), next_id(Item.__table__)
    revision_id = next_id(Revision.__table__)
    copies = {compound: consultation_id + n for n, compound in enumerate(sorted(compounds))}
    columns = ("summary", "round", "rule_code", "rule_json", "secrecy", "locale",
               "publicity_days", "proxy_cap")
    bulk_insert(Consultation.__table__, ({
        "id": cid, "compound_id": compound, "title": f"{compounds[compound]}综合改造",
        "owner_token_key": secrets.token_hex(32),
        "stage": Stage.VOTING.value, "vote_opened_at": opened, "vote_deadline": deadline,
        "created_at": created, "updated_at": opened,
        **{c: getattr(template, c) for c in columns}} for compound, cid in copies.items()))
    items = template.items
    item_ids = {}
    rows = []
    for cid in copies.values():
        for item in items:
            item_ids[cid, item.number] = item_id
            rows.append({"id": item_id, "consultation_id": cid, "number": item.number,
                         "title": item.title, "description": item.description,
                         "estimated_cost_fen": item.estimated_cost_fen,
                         "completion_note": "", "created_at": created, "updated_at": created})
            item_id += 1
    bulk_insert(Item.__table__, rows)
    revisions = db.session.scalars(select(Revision).where(
        Revision.consultation_id == template.id).order_by(Revision.number)).all()
    rows = []
    for compound, cid in copies.items():
        for revision in revisions:
            snapshot = json.loads(revision.snapshot)
            snapshot["title"] = f"{compounds[compound]}综合改造"
            rows.append({"id": revision_id, "consultation_id": cid, "number": revision.number,
                         "snapshot": json.dumps(snapshot, ensure_ascii=False, sort_keys=True),
                         "note": revision.note, "author_id": None,
                         "created_at": revision.created_at})
            revision_id += 1
    bulk_insert(Revision.__table__, rows)
    fix_sequences([Consultation.__table__, Item.__table__, Revision.__table__])

    owner = func.coalesce(Household.owner_key,
                          literal("household:") + sql_cast(Household.id, String))
    rule = json.loads(template.rule_json)
    for compound, cid in copies.items():
        db.session.execute(insert(RollEntry).from_select(
            ["consultation_id", "round", "household_id", "building_name", "building_sort",
             "unit", "room", "household_sort", "area_dm2", "owner_identity", "owner_name"],
            select(literal(cid), literal(1), Household.id, Building.name, Building.sort_key,
                   Household.unit, Household.room, Household.sort_key, Household.area_dm2,
                   owner, Household.owner_name)
            .join(Building, Building.id == Household.building_id)
            .where(Building.compound_id == compound)))
        title = f"{compounds[compound]}综合改造"
        ref = ("consultation", str(cid), compound)
        chain.add(created, "system", "consultation.created", *ref,
                  {"title": title, "rule": rule, "secrecy": template.secrecy}, chain=cid)
        for item in items:
            chain.add(created, "system", "consultation.item_added", "item",
                      str(item_ids[cid, item.number]), compound,
                      {"number": item.number, "title": item.title,
                       "estimated_cost_fen": item.estimated_cost_fen}, chain=cid)
        stages = [Stage.DRAFT, Stage.SOLICITING, Stage.PROPOSING, Stage.DISCUSSING]
        for action, (source, target) in zip(
                ("start_soliciting", "start_proposing", "start_discussion"),
                itertools.pairwise(stages), strict=True):
            chain.add(created, "system", "consultation.stage_changed", *ref, {
                "action": action, "from": source.value, "to": target.value, "reason": "",
                "round": 1, "by_deadline": False}, chain=cid)
            chain.anchor(created, cid)
        totals = ballots.roll_totals(db.session.get(Consultation, cid))
        chain.add(opened, "system", "ballot.roll_frozen", *ref, {
            "round": 1, "households": totals.households, "owners": totals.owners,
            "area_dm2": totals.area_dm2}, chain=cid)
        chain.add(opened, "system", "consultation.stage_changed", *ref, {
            "action": "open_vote", "from": Stage.DISCUSSING.value, "to": Stage.VOTING.value,
            "reason": "", "round": 1, "by_deadline": False}, chain=cid)
        chain.anchor(opened, cid)
    return copies


class Chain:
    """Appends audit events in bulk, to any chain: each chain's head is read once, every event
    hashed with the service's ``event_hash``, and the head rows written once at the end."""

    def __init__(self) -> None:
        from consult.audit import service as audit
        from consult.audit.models import AuditHead
        from consult.extensions import db

        self.heads: dict[int, tuple[int, str]] = {
            int(chain): (int(seq), str(digest)) for chain, seq, digest in db.session.execute(
                select(AuditHead.chain_id, AuditHead.seq, AuditHead.hash))}
        self.heads.setdefault(audit.GLOBAL_CHAIN, (0, audit.GENESIS_HASH))
        self.pending: list[dict[str, Any]] = []
        self.count = 0

    @property
    def seq(self) -> int:
        """The global chain's length."""
        return self.heads[0][0]

    def add(self, created_at: datetime, actor_label: str, action: str, object_type: str,
            object_id: str | None, compound_id: int | None, payload: dict[str, Any], *,
            chain: int = 0) -> None:
        from consult.audit import service as audit

        seq, prev = self.heads.get(chain, (0, audit.GENESIS_HASH))
        fields = audit.EventFields(
            chain_seq=seq + 1, created_at=audit.format_time(created_at), actor_id=None,
            actor_label=actor_label, action=action, object_type=object_type,
            object_id=object_id, compound_id=compound_id,
            payload=audit.canonical_json(payload), prev_hash=prev, chain_id=chain)
        digest = audit.event_hash(fields)
        self.pending.append({
            "chain_id": chain, "chain_seq": fields.chain_seq, "created_at": created_at,
            "actor_id": None, "actor_label": actor_label, "action": action,
            "object_type": object_type, "object_id": object_id, "compound_id": compound_id,
            "payload": fields.payload, "prev_hash": fields.prev_hash, "hash": digest})
        self.heads[chain] = (fields.chain_seq, digest)
        self.count += 1
        if len(self.pending) >= BATCH:
            self.flush()

    def anchor(self, created_at: datetime, chain: int) -> None:
        """The anchor of ``chain``'s head in the global chain, as a stage change writes it."""
        from consult.audit import service as audit

        seq, digest = self.heads[chain]
        self.add(created_at, audit.SYSTEM_ACTOR, audit.ANCHOR_ACTION, "audit_chain", str(chain),
                 None, {"chain": chain, "seq": seq, "hash": digest})

    def flush(self) -> None:
        from consult.audit.models import AuditEvent

        if self.pending:
            bulk_insert(AuditEvent.__table__, self.pending)
            self.pending = []

    def close(self) -> None:
        """Write what is pending and move each head row to its chain's last event."""
        from consult.audit.models import AuditHead
        from consult.extensions import db

        self.flush()
        known = set(db.session.scalars(select(AuditHead.chain_id)))
        for chain, (seq, digest) in self.heads.items():
            if chain in known:
                db.session.execute(update(AuditHead).where(AuditHead.chain_id == chain)
                                   .values(seq=seq, hash=digest))
            else:
                db.session.execute(insert(AuditHead).values(chain_id=chain, seq=seq,
                                                            hash=digest))
        db.session.expire_all()


def generate(households: int, compounds: int, *, seed: int = 2026, turnout: float = TURNOUT,
             account_share: float = ACCOUNT_SHARE, name: str = "基准") -> Dataset:
    """Generate a district: ``compounds`` compounds sharing ``households`` households, in
    communities of ten compounds, each compound with one consultation of 12 items open for
    voting and ballots from ``turnout`` of its households. Commits."""
    from consult.accounts.models import User
    from consult.ballots import records
    from consult.ballots import service as ballots
    from consult.ballots.models import Ballot, BallotChoice
    from consult.consultations.models import Consultation
    from consult.core.text import natural_key
    from consult.extensions import db
    from consult.registry.models import (
        Building,
        Community,
        Compound,
        Household,
        household_sort_key,
    )

    start = time.perf_counter()
    rng = random.Random(seed)
    data = Dataset()
    now = datetime.now(UTC)
    opened = now - timedelta(days=2)
    deadline = now + timedelta(days=10)
    created = now - timedelta(days=30)
    stamps = {"created_at": created, "updated_at": created}

    community_id, compound_id = next_id(Community.__table__), next_id(Compound.__table__)
    communities = [{"id": community_id + n, "name": f"{name}社区{community_id + n}",
                    "street": f"{name}街道", **stamps}
                   for n in range((compounds + 9) // 10)]
    bulk_insert(Community.__table__, communities)
    bulk_insert(Compound.__table__, ({
        "id": compound_id + n, "community_id": community_id + n // 10,
        "name": f"{name}小区{compound_id + n}", "address": f"测试路 {n + 1} 号", **stamps}
        for n in range(compounds)))
    data.compounds = compounds

    # Buildings and households, compound by compound (an even share, the rest to the first).
    # The buildings go in first (households reference them); the households are streamed, so
    # a million of them never sit in memory as dicts.
    first_building, first_household = next_id(Building.__table__), next_id(Household.__table__)
    per_compound = [households // compounds + (1 if n < households % compounds else 0)
                    for n in range(compounds)]
    buildings: list[tuple[int, int, int]] = []  # (building id, compound id, households)
    for n, count in enumerate(per_compound):
        for first in range(0, count, HOUSEHOLDS_PER_BUILDING):
            buildings.append((first_building + len(buildings), compound_id + n,
                              min(HOUSEHOLDS_PER_BUILDING, count - first)))
    numbers: dict[int, int] = {}
    building_rows = []
    for building, compound, _count in buildings:
        numbers[compound] = numbers.get(compound, 0) + 1
        name_ = f"{numbers[compound]}号楼"
        building_rows.append({"id": building, "compound_id": compound, "name": name_,
                              "sort_key": natural_key(name_), **stamps})
    data.buildings = bulk_insert(Building.__table__, building_rows)
    households_of: list[tuple[int, int]] = []  # (compound id, household id), in id order
    areas: dict[int, int] = {}

    def household_rows() -> Iterator[dict[str, Any]]:
        household_id = first_household
        owners: list[tuple[str, str]] = []
        for building, compound, count in buildings:
            for k in range(count):
                unit, floor, flat = str(k // 24 + 1), (k % 24) // 2 + 1, k % 2 + 1
                room = f"{floor}{flat:02d}"
                if owners and rng.random() < SECOND_HOME_SHARE:
                    owner_name, owner_key = rng.choice(owners)
                    data.owners_with_several += 1
                else:
                    owner_name = f"业主{household_id}"
                    owner_key = hashlib.sha256(f"{seed}-{household_id}".encode()
                                               ).hexdigest()[:16]
                    if len(owners) < 100_000:
                        owners.append((owner_name, owner_key))
                area = rng.randint(4500, 14000)
                areas[household_id] = area
                households_of.append((compound, household_id))
                yield {"id": household_id, "building_id": building, "unit": unit,
                       "floor": floor, "room": room, "area_dm2": area,
                       "owner_name": owner_name, "owner_key": owner_key,
                       "phone": f"139{household_id:08d}",
                       "sort_key": household_sort_key(unit, room), **stamps}
                household_id += 1

    data.households = bulk_insert(Household.__table__, household_rows())
    lap = data.lap("registry", start)

    hashed = password_hash()
    voting: set[int] = set()

    def account_rows() -> Iterator[dict[str, Any]]:
        user_id = next_id(User.__table__)
        for _compound, hid in households_of:
            if rng.random() < account_share:
                voting.add(hid)
                yield {"id": user_id, "username": f"r{hid}", "display_name": f"户代表{hid}",
                       "password_hash": hashed, "role": "resident", "household_id": hid,
                       "active": True, "failed_logins": 0, **stamps}
                user_id += 1

    data.accounts = bulk_insert(User.__table__, account_rows())
    fix_sequences([Community.__table__, Compound.__table__, Building.__table__,
                   Household.__table__, User.__table__])
    db.session.flush()
    lap = data.lap("accounts", lap)

    # One consultation per compound: the first through the services up to the vote, the
    # others copied from it in bulk, with the events the services would have recorded.
    first = db.session.get(Compound, compound_id)
    template = _consultation(first, f"{first.name}综合改造", created)
    open_vote(template, opened, deadline)
    db.session.flush()
    chain = Chain()
    copies = copy_consultations(template, range(compound_id + 1, compound_id + compounds),
                                chain, opened, deadline)
    consultations = {first.id: template, **{
        compound: db.session.get(Consultation, cid) for compound, cid in copies.items()}}
    data.consultations = [c.id for c in consultations.values()]
    lap = data.lap("consultations", lap)

    # Ballots of ``turnout`` of the households, cast over the two days the vote has been open.
    items = {c.id: [(item.id, item.number) for item in c.items]
             for c in consultations.values()}
    owner_identity = dict(db.session.execute(
        select(Household.id, func.coalesce(Household.owner_key, ""))).all())
    ballot_id = next_id(Ballot.__table__)
    casts = sorted(
        (opened + timedelta(seconds=rng.uniform(0, 2 * 86400)), compound, hid)
        for compound, hid in households_of if rng.random() < turnout)
    choices_, weights = zip(*CHOICE_WEIGHTS, strict=True)
    ballot_rows: list[dict[str, Any]] = []
    choice_rows: list[dict[str, Any]] = []
    tokens: dict[tuple[int, str], str] = {}
    for cast_at, compound, hid in casts:
        consultation = consultations[compound]
        online = hid in voting
        channel = "online" if online else "paper"
        code = receipt(rng)
        answers = rng.choices(choices_, weights, k=len(items[consultation.id]))
        ballot_rows.append({
            "id": ballot_id, "consultation_id": consultation.id, "round": 1,
            "household_id": hid, "channel": channel, "entered_by_id": None, "serial": None,
            "proxy_name": None, "proxy_identity": None, "proxy_document_id": None,
            "receipt": code, "submission": None, "version": 1, "cast_at": cast_at,
            "created_at": cast_at})
        for (item_id, _number), answer in zip(items[consultation.id], answers, strict=True):
            choice_rows.append({"ballot_id": ballot_id, "item_id": item_id, "choice": answer})
        identity = owner_identity[hid] or f"household:{hid}"
        key = (consultation.id, identity)
        if key not in tokens:
            tokens[key] = ballots.owner_token(consultation, identity)
        chain.add(cast_at, "(household)" if online else "system", "ballot.cast", "ballot",
                  str(ballot_id), compound, chain=consultation.id, payload={
                      "consultation_id": consultation.id, "round": 1, "household_id": hid,
                      "owner": tokens[key], "area_dm2": areas[hid], "channel": channel,
                      "version": 1, "serial": None, "proxy": False,
                      "receipt_hash": records.receipt_hash(consultation.id, 1, code),
                      "cast_at": cast_at,
                      "choices": {str(number): answer for (_item, number), answer
                                  in zip(items[consultation.id], answers, strict=True)}})
        ballot_id += 1
        if len(ballot_rows) >= BATCH:
            data.ballots += bulk_insert(Ballot.__table__, ballot_rows)
            data.choices += bulk_insert(BallotChoice.__table__, choice_rows)
            ballot_rows, choice_rows = [], []
    data.ballots += bulk_insert(Ballot.__table__, ballot_rows)
    data.choices += bulk_insert(BallotChoice.__table__, choice_rows)
    chain.close()
    data.audit_events = chain.count
    fix_sequences([Ballot.__table__])
    db.session.commit()
    analyze()
    data.lap("ballots", lap)
    data.seconds = time.perf_counter() - start
    return data


def pad_audit(total: int, seed: int = 7) -> int:
    """Append events until the chain holds ``total`` events (for the verify benchmark);
    returns how many were added. They are comment-moderation-sized events of an action that
    names no ballot, so the ballot cross-check is not inflated."""
    from consult.audit import service as audit
    from consult.extensions import db

    rng = random.Random(seed)
    chain = Chain()
    missing = total - chain.seq
    when = datetime.now(UTC) - timedelta(days=1)
    for n in range(max(0, missing)):
        text = "".join(rng.choices(string.ascii_letters + "意见建议小区改造", k=40))
        chain.add(when + timedelta(microseconds=n), audit.SYSTEM_ACTOR, "bench.padding",
                  "opinion", str(n + 1), None, {"category": "pipes", "text": text,
                                                "channel": "online"})
    chain.close()
    db.session.commit()
    analyze()
    return max(0, missing)


def voters(limit: int, seed: int = 11) -> list[tuple[str, int, list[int], bool]]:
    """Up to ``limit`` resident accounts, shuffled across compounds: (username, consultation
    id, item ids, whether the household has not voted yet). Households that have not voted come
    first; those that have come next (their vote changes the ballot, a path of its own in
    ``cast``)."""
    from consult.accounts.models import User
    from consult.ballots.models import Ballot, RollEntry
    from consult.consultations.models import Consultation, Item
    from consult.consultations.states import Stage
    from consult.extensions import db

    items: dict[int, list[int]] = {}
    for consultation_id, item_id in db.session.execute(
            select(Item.consultation_id, Item.id).join(Consultation)
            .where(Consultation.stage == Stage.VOTING.value).order_by(Item.number)):
        items.setdefault(consultation_id, []).append(item_id)
    voted = select(Ballot.id).where(Ballot.consultation_id == RollEntry.consultation_id,
                                    Ballot.round == RollEntry.round,
                                    Ballot.household_id == RollEntry.household_id).exists()
    rows = db.session.execute(
        select(User.username, RollEntry.consultation_id, voted)
        .join(RollEntry, RollEntry.household_id == User.household_id)
        .where(RollEntry.consultation_id.in_(list(items)))).all()
    rng = random.Random(seed)
    rng.shuffle(rows)
    rows.sort(key=lambda row: bool(row[2]))  # not yet voted first (a stable sort)
    return [(username, consultation, items[consultation], not already)
            for username, consultation, already in rows[:limit]]
