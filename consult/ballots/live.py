"""The live count of a running vote, kept between page views.

Counting a round reads every ballot (``service.aggregates``): a few hundred milliseconds at
10,000 households, on every view of the results page while the vote runs. Here the sums are
kept in ``LiveTally`` with the *version* of the ballots they counted, read at each view with
one aggregate over the round's ballots (their number, the sum of their versions and the
highest id: a new ballot adds one to the number and the sum, a changed one one to the sum, so
any ballot written moves it). A view whose version matches the kept one shows the kept count,
which is then exact. When ballots moved, the page counts anew at most once every
``LIVE_TALLY_MAX_AGE_S`` seconds, and only one request does: it claims the row for the count
(a conditional UPDATE, atomic on SQLite and PostgreSQL) and the others show the last count
meanwhile, with the time it was made.

Nothing here runs inside a ballot's transaction: casting a ballot neither reads nor writes
this table. The claim and the storing of a count are short transactions of their own beside
the page's read (``database.aside``); the count itself is read in the page's own snapshot.
The published result never comes from here: counting the vote freezes ``compute``'s full
count into ``VoteResult``.
"""

from __future__ import annotations

import json
import time
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from flask import current_app
from sqlalchemy import and_, func, or_, select, update

from consult.ballots import tally as t
from consult.ballots.models import Ballot, LiveTally
from consult.consultations.models import Consultation, Item
from consult.core.database import affected_rows, aside, can_work_aside
from consult.core.models import utcnow
from consult.extensions import db

# How long a request may take to count before another may claim the count again (it died).
CLAIM_S = 120
# How often a request that has no count to show looks whether the one counting has finished.
POLL_S = 0.05


@dataclass(frozen=True)
class LiveCount:
    aggregates: t.Aggregates
    counted_at: datetime
    # Whether every ballot recorded when the page was asked for is in the count.
    up_to_date: bool


def ballots_version(consultation: Consultation, items: Sequence[Item]) -> str:
    """Which ballots (and items) a count of the round counts."""
    found = db.session.execute(_version_query(consultation)).one()
    return _version(found.n, found.versions, found.top, items)


def _version_query(consultation: Consultation) -> Any:
    """One aggregate over the round's ballots, through the index on (consultation, round,
    household): their number, the sum of their versions and the highest id."""
    return (select(func.count(Ballot.id).label("n"),
                   func.coalesce(func.sum(Ballot.version), 0).label("versions"),
                   func.coalesce(func.max(Ballot.id), 0).label("top"))
            .where(Ballot.consultation_id == consultation.id,
                   Ballot.round == consultation.round))


def _version(n: int, versions: int, top: int, items: Sequence[Item]) -> str:
    items_key = zlib.crc32(",".join(str(item.id) for item in items).encode())
    return f"{n}.{versions}.{top}.{items_key:08x}"


def count(consultation: Consultation, items: Sequence[Item]) -> LiveCount:
    """The round's count as kept, or counted anew when ballots moved and the kept count is
    older than ``LIVE_TALLY_MAX_AGE_S``."""
    now = utcnow()
    max_age = timedelta(seconds=float(current_app.config["LIVE_TALLY_MAX_AGE_S"]))
    # The version and the kept count in one statement (the count's columns are NULL when
    # there is none yet). Read before counting: on PostgreSQL each statement sees the latest
    # commits, so the count made next holds at least these ballots, and a later one moves the
    # version again; on SQLite the count reads the same snapshot as the version.
    ballots = _version_query(consultation).subquery()
    found = db.session.execute(
        select(ballots, LiveTally.id, *_row(consultation).selected_columns)
        .select_from(ballots).outerjoin(LiveTally, _key(consultation))).one()
    version = _version(found.n, found.versions, found.top, items)
    row = found if found.id is not None else None
    if not can_work_aside():  # within a writing transaction (a command): no keeping
        return LiveCount(_count(consultation, items), now, True)
    kept = _decode(row, items, version) if row else None
    if kept is not None and (kept.up_to_date or now - kept.counted_at < max_age):
        return kept
    if _claim(consultation, row is not None, version, now, max_age):
        try:
            result = _count(consultation, items)
        except BaseException:
            with aside() as session:
                session.execute(update(LiveTally).where(_key(consultation))
                                .values(claimed_until=None))
            raise
        with aside() as session:
            session.execute(update(LiveTally).where(_key(consultation)).values(
                version=version, data=_encode(result, items), counted_at=now,
                claimed_until=None))
        return LiveCount(result, now, True)
    # Another request counts (or has just counted): show the freshest count there is.
    deadline = time.monotonic() + CLAIM_S
    while True:
        with aside(writing=False) as session:
            row = session.execute(_row(consultation)).one_or_none()
        fresh = _decode(row, items, version) if row else None
        if fresh is not None:
            return fresh
        if kept is not None:
            return kept
        # Nothing counted yet: wait for the first count rather than count twice, unless the
        # request counting it is gone.
        claimed = row is not None and row.claimed_until is not None and (
            row.claimed_until > utcnow())
        if not claimed or time.monotonic() > deadline:
            return LiveCount(_count(consultation, items), now, True)
        time.sleep(POLL_S)


def _count(consultation: Consultation, items: Sequence[Item]) -> t.Aggregates:
    """Count every ballot of the round (what ``service.compute`` counts)."""
    from consult.ballots.service import aggregates

    return aggregates(consultation, consultation.round, list(items))


def _key(consultation: Consultation) -> Any:
    return and_(LiveTally.consultation_id == consultation.id,
                LiveTally.round == consultation.round)


def _row(consultation: Consultation) -> Any:
    return select(LiveTally.version, LiveTally.data, LiveTally.counted_at,
                  LiveTally.claimed_until).where(_key(consultation))


def _claim(consultation: Consultation, exists: bool, version: str, now: datetime,
           max_age: timedelta) -> bool:
    """Claim the next count of the round for this request: True for one request only, while
    the kept count is missing or is of other ballots and older than ``max_age``, and nobody
    else is counting."""
    until = now + timedelta(seconds=CLAIM_S)
    with aside() as session:
        if not exists:
            # Two first views at once: the unique key lets one insert, the other's is ignored.
            statement = (_insert().values(consultation_id=consultation.id,
                                          round=consultation.round, claimed_until=until)
                         .on_conflict_do_nothing(index_elements=["consultation_id", "round"])
                         .returning(LiveTally.id))
            if session.execute(statement).first() is not None:
                return True
        stale = or_(LiveTally.data.is_(None), and_(
            or_(LiveTally.version.is_(None), LiveTally.version != version),
            or_(LiveTally.counted_at.is_(None), LiveTally.counted_at <= now - max_age)))
        free = or_(LiveTally.claimed_until.is_(None), LiveTally.claimed_until <= now)
        claimed = session.execute(update(LiveTally).where(_key(consultation), stale, free)
                                  .values(claimed_until=until))
        return affected_rows(claimed) == 1


def _insert() -> Any:
    from sqlalchemy.dialects import postgresql, sqlite

    dialect = db.session.get_bind().dialect.name
    return (postgresql.insert if dialect == "postgresql" else sqlite.insert)(LiveTally)


def _encode(aggregates: t.Aggregates, items: Sequence[Item]) -> str:
    return json.dumps({
        "roll": _totals(aggregates.roll), "participation": _totals(aggregates.participation),
        "buildings": [[sort, name, n] for (sort, name), n in aggregates.buildings.items()],
        "items": [{
            "id": item.id,
            "households": [[sort, name, dict(per)]
                           for (sort, name), per in counts.households.items()],
            "area_dm2": dict(counts.area_dm2), "owners": dict(counts.owners),
            "owner_conflicts": counts.owner_conflicts,
        } for item, counts in zip(items, aggregates.items, strict=True)],
    }, ensure_ascii=False, separators=(",", ":"))


def _totals(totals: t.Totals) -> list[int]:
    return [totals.households, totals.owners, totals.area_dm2]


def _decode(row: Any, items: Sequence[Item], version: str) -> LiveCount | None:
    """The kept count, with the items' numbers and titles as they are now; None when there is
    none, or it counted other items."""
    if row.data is None or row.counted_at is None:
        return None
    data = json.loads(row.data)
    if [i["id"] for i in data["items"]] != [item.id for item in items]:
        return None
    counted = [t.ItemCounts(item.number, item.title,
                            {(sort, name): per for sort, name, per in i["households"]},
                            i["area_dm2"], i["owners"], i["owner_conflicts"])
               for item, i in zip(items, data["items"], strict=True)]
    aggregates = t.Aggregates(t.Totals(*data["roll"]), t.Totals(*data["participation"]),
                              {(sort, name): n for sort, name, n in data["buildings"]},
                              counted)
    return LiveCount(aggregates, row.counted_at, row.version == version)
