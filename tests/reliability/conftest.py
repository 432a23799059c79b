"""Reliability tests drive a real server (gunicorn, see tests/live.py) on a fresh database of
the suite's kind and then look straight into that database.

What they measure is written to test-artifacts/reliability/<test>-<sqlite|postgresql>.json, so
that docs/reliability.md can quote the last run.
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from consult.accounts.models import User
from consult.audit.models import AuditEvent
from consult.ballots import records
from consult.ballots.models import Ballot, BallotChoice, VoteResult
from consult.ballots.tally import NO_ANSWER
from consult.consultations.models import Consultation, Item
from tests import live

ARTIFACTS = live.ROOT / "test-artifacts" / "reliability"


@pytest.fixture(autouse=True)
def _isolation() -> Iterator[None]:
    """Replaces the suite's per-test transaction: these tests never touch the suite's own
    database (the live server has a fresh one), so there is nothing to roll back or wipe."""
    yield


@pytest.fixture(scope="session")
def db_kind(database_url: str) -> str:
    return "postgresql" if database_url.startswith("postgresql") else "sqlite"


def write_figures(name: str, kind: str, figures: dict[str, Any]) -> Path:
    """Keep a run's figures in test-artifacts/reliability/<name>-<kind>.json."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}-{kind}.json"
    path.write_text(json.dumps({"database": kind, "recorded_at": datetime.now().isoformat(
        timespec="seconds"), **figures}, ensure_ascii=False, indent=2) + "\n")
    return path


def sign_in(server: live.LiveServer, usernames: Iterable[str]) -> dict[str, live.Browser]:
    """A signed-in browser per account, signed in in parallel."""

    def one(username: str) -> tuple[str, live.Browser]:
        browser = live.Browser(server.url)
        browser.login(username)
        return username, browser

    with ThreadPoolExecutor(max_workers=8) as pool:
        return dict(pool.map(one, usernames))


@dataclass(frozen=True)
class StoredBallot:
    id: int
    version: int
    receipt: str
    cast_at: datetime
    choices: dict[int, str]  # item id → choice


class LiveDatabase:
    """Direct reads (and test-setup writes) on a live server's database, from the test."""

    def __init__(self, server: live.LiveServer) -> None:
        self.engine = sa.create_engine(server.env["DATABASE_URL"])

    def close(self) -> None:
        self.engine.dispose()

    def ballots(self, consultation: int) -> dict[int, StoredBallot]:
        """The stored ballots of a consultation, by household id."""
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(
                Ballot.id, Ballot.household_id, Ballot.version, Ballot.receipt, Ballot.cast_at)
                .where(Ballot.consultation_id == consultation)).all()
            choices: dict[int, dict[int, str]] = {}
            for ballot_id, item_id, choice in conn.execute(
                    sa.select(BallotChoice.ballot_id, BallotChoice.item_id, BallotChoice.choice)
                    .join(Ballot, Ballot.id == BallotChoice.ballot_id)
                    .where(Ballot.consultation_id == consultation)):
                choices.setdefault(ballot_id, {})[item_id] = choice
        return {household: StoredBallot(ballot_id, version, receipt, cast_at,
                                        choices.get(ballot_id, {}))
                for ballot_id, household, version, receipt, cast_at in rows}

    def events(self, *actions: str) -> list[tuple[str, str | None, dict[str, Any]]]:
        """(action, object id, payload) of the audit events with these action codes."""
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(AuditEvent.action, AuditEvent.object_id,
                                          AuditEvent.payload)
                                .where(AuditEvent.action.in_(actions))
                                .order_by(AuditEvent.seq)).all()
        return [(action, object_id, json.loads(payload)) for action, object_id, payload in rows]

    def household_ids(self) -> dict[str, int]:
        """Username → household id of every resident account."""
        with self.engine.connect() as conn:
            return dict(conn.execute(sa.select(User.username, User.household_id)
                                     .where(User.household_id.isnot(None))).all())

    def item_numbers(self, consultation: int) -> dict[int, int]:
        with self.engine.connect() as conn:
            return dict(conn.execute(sa.select(Item.id, Item.number)
                                     .where(Item.consultation_id == consultation)).all())

    def check_whole(self, consultation: int) -> dict[int, StoredBallot]:
        """Assert that nothing of the consultation's ballots is half-written, and return them.

        Every ballot answers every item; every ballot has exactly one ``ballot.cast`` event
        and one ``ballot.changed`` event per later version (no version missing or twice); the
        latest event carries the stored choices and receipt; no ballot event names a ballot
        that is not stored.
        """
        ballots = self.ballots(consultation)
        numbers = self.item_numbers(consultation)
        by_ballot: dict[str, list[tuple[str, dict[str, Any]]]] = {}
        for action, object_id, payload in self.events("ballot.cast", "ballot.changed"):
            if payload["consultation_id"] == consultation:
                by_ballot.setdefault(str(object_id), []).append((action, payload))
        stored_ids = {str(b.id) for b in ballots.values()}
        assert set(by_ballot) == stored_ids, "ballot events and ballot rows differ"
        for household, ballot in ballots.items():
            assert set(ballot.choices) == set(numbers), f"household {household}: half a ballot"
            events = by_ballot[str(ballot.id)]
            assert [a for a, _ in events].count("ballot.cast") == 1, events
            assert sorted(p["version"] for _, p in events) == list(
                range(1, ballot.version + 1)), (household, ballot.version, events)
            latest = max(events, key=lambda e: e[1]["version"])[1]
            assert latest["choices"] == {str(numbers[i]): c for i, c in ballot.choices.items()}
            assert latest["receipt_hash"] == records.receipt_hash(consultation, 1,
                                                                  ballot.receipt)
        return ballots

    def frozen_counts(self, consultation: int) -> list[dict[str, int]] | None:
        """The frozen result's households per answer for each item (in item order), without
        zeros and without the households that did not answer; None while the vote is open."""
        with self.engine.connect() as conn:
            frozen = conn.scalar(sa.select(VoteResult.tally_json)
                                 .where(VoteResult.consultation_id == consultation))
        if frozen is None:
            return None
        items = sorted(json.loads(frozen)["items"], key=lambda item: item["number"])
        return [{k: v for k, v in item["counts"].items() if v and k != NO_ANSWER}
                for item in items]

    def results(self, consultation: int) -> int:
        with self.engine.connect() as conn:
            return conn.scalar(sa.select(sa.func.count(VoteResult.id))
                               .where(VoteResult.consultation_id == consultation)) or 0

    def consultation(self, consultation: int) -> Any:
        with self.engine.connect() as conn:
            return conn.execute(sa.select(Consultation.__table__)
                                .where(Consultation.id == consultation)).one()

    def set_deadline(self, consultation: int, deadline: datetime) -> None:
        """Test setup: move an open vote's deadline (nothing else reads it meanwhile)."""
        with self.engine.begin() as conn:
            conn.execute(sa.update(Consultation).where(Consultation.id == consultation)
                         .values(vote_deadline=deadline))


def counts_of(ballots: Iterable[StoredBallot], items: list[int]) -> list[dict[str, int]]:
    """Households per choice for each item (in the given order), counted from ballots."""
    ballots = list(ballots)
    return [dict(Counter(b.choices[item] for b in ballots)) for item in items]


@pytest.fixture
def live_database() -> Iterator[Any]:
    """Opens a LiveDatabase on a server; closed after the test."""
    opened: list[LiveDatabase] = []

    def open_(server: live.LiveServer) -> LiveDatabase:
        opened.append(LiveDatabase(server))
        return opened[-1]

    yield open_
    for database in opened:
        database.close()


class TimedBrowser(live.Browser):
    """A browser that notes how long each request took."""

    def __init__(self, base: str, log: list[tuple[float, float, str]]) -> None:
        super().__init__(base)
        self.log = log

    def request(self, method: str, path: str, data: dict[str, Any] | None = None) -> live.Reply:
        start = time.perf_counter()
        reply = super().request(method, path, data)
        self.log.append((start, time.perf_counter() - start, f"{method} {path}"))
        return reply


class Voters:
    """Households voting and changing their votes over and over, each request timed."""

    def __init__(self, server: live.LiveServer, consultation: int, items: list[int],
                 usernames: list[str]) -> None:
        self.consultation, self.items = consultation, items
        self.requests: list[tuple[float, float, str]] = []  # (start, seconds, what)
        self.confirmed: list[float] = []  # when each acknowledged vote was sent
        self.errors: list[str] = []
        self.stop = threading.Event()
        signed_in = sign_in(server, usernames)
        self.browsers = []
        for browser in signed_in.values():
            timed = TimedBrowser(server.url, self.requests)
            timed.jar = browser.jar
            timed.opener = browser.opener
            self.browsers.append(timed)
        self.threads = [threading.Thread(target=self._vote, args=(b, n), daemon=True)
                        for n, b in enumerate(self.browsers)]

    def _vote(self, browser: TimedBrowser, n: int) -> None:
        while not self.stop.is_set():
            choice = ("agree", "disagree", "abstain")[n % 3]
            start = time.perf_counter()
            try:
                form = browser.review_vote(self.consultation, {i: choice for i in self.items})
                reply = browser.post(live.confirm_path(self.consultation), form)
            except (AssertionError, OSError) as exc:
                self.errors.append(repr(exc))
                return
            if reply.status != 302:
                self.errors.append(f"confirm answered {reply.status}")
                return
            self.confirmed.append(start)
            n += 1

    def votes_between(self, start: float, end: float) -> int:
        return sum(start <= t <= end for t in self.confirmed)

    def __enter__(self) -> Voters:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=60)
