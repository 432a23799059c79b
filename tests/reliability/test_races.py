"""Races against a real server (gunicorn, 4 workers) on SQLite and on PostgreSQL, each with one
defined outcome:

- the same confirmed vote form sent twice at once counts once, and both answers say so;
- two committee members closing the same vote at once close it once;
- ballots sent around the instant of the deadline are either counted (cast before it) or
  refused with a message, and the frozen tally is exactly the stored ballots;
- closing the vote while households vote: every acknowledged ballot is in the frozen tally,
  everything sent after the close is refused.

The figures go to test-artifacts/reliability/races-<database>.json.
"""

from __future__ import annotations

import re
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import pytest

from consult.ballots import records
from tests import live
from tests.reliability.conftest import LiveDatabase, counts_of, sign_in, write_figures

HOUSEHOLDS = 16
DOUBLE_CLOSES = 4  # consultations closed twice at once
CHOICES = ("agree", "disagree", "abstain")

RECORDED = "Your vote has been recorded."
ALREADY_RECORDED = "This ballot was already recorded; it was not counted twice."
CLOSED = "Done: Close the vote and count."
# The later of two closes finds the vote counted by the first.
NOT_OPEN = "This step is not possible at the current stage (Vote counted, not published yet)."
VOTING_HAS_CLOSED = "Voting has closed; no more ballots can be accepted."
RECEIPT = re.compile(r'<p class="receipt-code"[^>]*>([^<]+)</p>')

T = TypeVar("T")


@dataclass
class World:
    server: live.LiveServer
    database: LiveDatabase
    browsers: dict[str, live.Browser]
    residents: list[str]
    committee: list[str]
    votes: list[dict[str, Any]]  # see the layout in ``world``
    household_of: dict[str, int]
    figures: dict[str, Any] = field(default_factory=dict)


@pytest.fixture(scope="module")
def world(database_url: str, db_kind: str, tmp_path_factory: pytest.TempPathFactory
          ) -> Iterator[World]:
    """One server; consultations 0…DOUBLE_CLOSES-1 (every household voted) are closed twice,
    the next one (every household voted) is closed while households change their votes, the
    next takes double submissions, the last one's deadline arrives under load."""
    server, stop = live.start(database_url, Path(tmp_path_factory.mktemp("races")))
    database = LiveDatabase(server)
    world = None
    try:
        seeded = live.seed_votes(server, HOUSEHOLDS, votes=DOUBLE_CLOSES + 3,
                                 voted=DOUBLE_CLOSES + 1, committee=2)
        world = World(server, database, sign_in(server, seeded["users"] + seeded["committee"]),
                      seeded["users"], seeded["committee"], seeded["votes"],
                      database.household_ids())
        yield world
    finally:
        if world is not None and world.figures:
            write_figures("races", db_kind, world.figures)
        database.close()
        stop()


@dataclass(frozen=True)
class Timed:
    """An answer, with when the request was sent and answered (time.time())."""

    reply: Any
    sent: float
    answered: float


def at_once(*calls: Callable[[], T]) -> list[Timed]:
    """Run the calls in threads released at the same instant."""
    barrier = threading.Barrier(len(calls))

    def run(call: Callable[[], T]) -> Timed:
        barrier.wait()
        sent = time.time()
        reply = call()
        return Timed(reply, sent, time.time())

    with ThreadPoolExecutor(max_workers=len(calls)) as pool:
        return list(pool.map(run, calls))


def overlapped(answers: list[Timed]) -> bool:
    """Whether the requests were under way on the server at the same time."""
    return max(a.sent for a in answers) < min(a.answered for a in answers)


@dataclass(frozen=True)
class Pair:
    """Two forms posted at the same instant: the two answers, the messages each browser was
    shown on the page it was sent to next, those pages, and whether the two requests were
    under way together."""

    statuses: list[int]
    messages: list[str]
    pages: list[str]
    overlapped: bool


def post_both_at_once(browsers: tuple[live.Browser, live.Browser], path: str,
                      forms: tuple[dict[str, Any], dict[str, Any]], then: str) -> Pair:
    answers = at_once(*(partial(b.post, path, form)
                        for b, form in zip(browsers, forms, strict=True)))
    pages = [b.get(then).text for b in browsers]
    messages = sorted(m for b, page in zip(browsers, pages, strict=True) for m in b.flashes(page))
    return Pair([a.reply.status for a in answers], messages, pages, overlapped(answers))


def pair_figures(pairs: list[Pair], expected: list[str]) -> dict[str, Any]:
    return {
        "pairs_sent": len(pairs),
        "pairs_under_way_at_the_same_time": sum(1 for p in pairs if p.overlapped),
        "answers": dict(Counter(s for p in pairs for s in p.statuses)),
        "pairs_with_the_one_defined_outcome": sum(
            1 for p in pairs if p.statuses == [302, 302] and p.messages == sorted(expected)),
    }


def choices_for(items: list[int], n: int) -> dict[int, str]:
    return {item: CHOICES[(n + k) % 3] for k, item in enumerate(items)}


def test_the_same_confirmed_form_sent_twice_at_once_counts_once(world: World) -> None:
    vote = world.votes[DOUBLE_CLOSES + 1]
    consultation, items = vote["consultation"], vote["items"]

    def race(username: str, n: int) -> Pair:
        first = world.browsers[username]
        form = first.review_vote(consultation, choices_for(items, n))
        # The same reviewed form, sent again from a second tab at the same instant.
        return post_both_at_once((first, first.clone()), live.confirm_path(consultation),
                                 (form, form), f"/consultations/{consultation}/ballot")

    pairs: list[tuple[int, str, Pair]] = []
    for n in (1, 2):  # a first ballot, then a change of it
        with ThreadPoolExecutor(max_workers=4) as pool:
            pairs += [(n, username, pair) for username, pair in zip(
                world.residents, pool.map(race, world.residents, [n] * HOUSEHOLDS),
                strict=True)]

    stored = world.database.check_whole(consultation)
    events = world.database.events("ballot.cast", "ballot.changed")
    # Events carry the receipt's hash: each page's receipt is hashed to be compared.
    receipt_of = {(p["household_id"], p["version"]): p["receipt_hash"] for _, _, p in events
                  if p["consultation_id"] == consultation}
    world.figures["double_submission"] = {
        **pair_figures([p for _, _, p in pairs], [ALREADY_RECORDED, RECORDED]),
        "ballots": len(stored), "versions": sorted({b.version for b in stored.values()}),
    }
    for n, username, pair in pairs:
        assert pair.statuses == [302, 302], (username, n, pair.statuses)
        assert pair.messages == sorted([ALREADY_RECORDED, RECORDED]), (username, n)
        # Both are shown the one ballot's receipt.
        receipts = {records.receipt_hash(consultation, 1, RECEIPT.search(page).group(1))
                    for page in pair.pages}
        assert receipts == {receipt_of[world.household_of[username], n]}, (username, n)
    assert set(stored) == {world.household_of[u] for u in world.residents}
    for username in world.residents:
        ballot = stored[world.household_of[username]]
        assert ballot.version == 2  # two bumps, not four (check_whole: one event each)
        assert ballot.choices == choices_for(items, 2)


def test_two_members_closing_the_same_vote_at_once_close_it_once(world: World) -> None:
    members = (world.browsers[world.committee[0]], world.browsers[world.committee[1]])
    pairs = []
    for vote in world.votes[:DOUBLE_CLOSES]:
        page = f"/consultations/{vote['consultation']}"
        forms = tuple({"csrf_token": b.csrf(b.get(page).text), "action": "close_vote",
                       "reason": "", "confirmed": "1"} for b in members)
        pairs.append((vote["consultation"],
                      post_both_at_once(members, f"{page}/stage", forms, page)))

    frozen = Counter(object_id for _, object_id, _ in world.database.events(
        "ballot.result_frozen"))
    closes = Counter(object_id for _, object_id, p in world.database.events(
        "consultation.stage_changed") if p["action"] == "close_vote")
    world.figures["double_close"] = pair_figures([p for _, p in pairs], [CLOSED, NOT_OPEN])
    for consultation, pair in pairs:
        assert pair.statuses == [302, 302], (consultation, pair.statuses)  # no error page
        assert pair.messages == sorted([CLOSED, NOT_OPEN]), (consultation, pair.messages)
        assert world.database.results(consultation) == 1
        assert frozen[str(consultation)] == 1
        assert closes[str(consultation)] == 1


def test_ballots_sent_as_the_deadline_passes_are_counted_or_refused(world: World) -> None:
    vote = world.votes[DOUBLE_CLOSES + 2]
    consultation, items = vote["consultation"], vote["items"]
    page = f"/consultations/{consultation}"
    with ThreadPoolExecutor(max_workers=4) as pool:
        forms = dict(zip(world.residents, pool.map(
            lambda u: world.browsers[u].review_vote(consultation, choices_for(items, 0)),
            world.residents), strict=True))
    deadline = datetime.now(UTC) + timedelta(seconds=1.5)
    world.database.set_deadline(consultation, deadline)
    instant = deadline.timestamp()

    # Ballots every 30 ms from 0.3 s before the deadline to 0.15 s after it, and people
    # opening the page around it (each of which closes the vote once the deadline passed).
    spread = [-0.3 + 0.45 * n / (HOUSEHOLDS - 1) for n in range(HOUSEHOLDS)]
    lookers = [(world.browsers[name], offset) for name in world.committee
               for offset in (-0.01, 0.0, 0.005, 0.02)]

    def at(offset: float, call: Callable[[], live.Reply]) -> Timed:
        time.sleep(max(0.0, instant + offset - time.time()))
        sent = time.time()
        reply = call()
        return Timed(reply, sent, time.time())

    def send(username: str, offset: float) -> Timed:
        browser = world.browsers[username]
        return at(offset, lambda: browser.post(live.confirm_path(consultation),
                                               forms[username]))

    with ThreadPoolExecutor(max_workers=HOUSEHOLDS + len(lookers)) as pool:
        looked = [pool.submit(at, offset, partial(b.get, page)) for b, offset in lookers]
        sent = dict(zip(world.residents, pool.map(send, world.residents, spread), strict=True))
        looked_at = [f.result() for f in looked]
    world.browsers[world.committee[0]].get(page)  # closes it, had nobody looked after

    stored = world.database.check_whole(consultation)
    accepted = {u for u, t in sent.items() if t.reply.status == 302}
    refused = {u for u, t in sent.items() if t.reply.status == 409}
    frozen = world.database.frozen_counts(consultation)
    row = world.database.consultation(consultation)
    world.figures["deadline"] = {
        "ballots_sent": len(sent), "accepted": len(accepted), "refused": len(refused),
        # When each ballot was sent, in ms from the deadline, and the answer.
        "sent_ms_from_the_deadline_and_answer": sorted(
            [round((t.sent - instant) * 1000, 1), t.reply.status] for t in sent.values()),
        "latest_accepted_cast_ms_before_the_deadline": round(min(
            (deadline - b.cast_at).total_seconds() * 1000 for b in stored.values()), 1)
        if stored else None,
        "page_views_around_the_deadline": len(looked_at),
    }
    assert accepted | refused == set(sent), Counter(t.reply.status for t in sent.values())
    assert all(t.reply.status == 200 for t in looked_at), [t.reply.status for t in looked_at]
    for username in refused:
        assert VOTING_HAS_CLOSED in sent[username].reply.text
    assert all(sent[u].sent < instant for u in accepted)  # nothing sent after it got in
    assert set(stored) == {world.household_of[u] for u in accepted}
    assert all(ballot.cast_at < deadline for ballot in stored.values())
    assert frozen == counts_of(stored.values(), items)
    assert row.vote_closed_at == deadline
    assert world.database.results(consultation) == 1
    assert sum(1 for _, object_id, _ in world.database.events("ballot.result_frozen")
               if object_id == str(consultation)) == 1


def test_closing_the_vote_while_households_vote_counts_every_acknowledged_ballot(
        world: World) -> None:
    vote = world.votes[DOUBLE_CLOSES]
    consultation, items = vote["consultation"], vote["items"]
    lock = threading.Lock()
    acknowledged = dict.fromkeys(world.residents, 0)
    last = {u: dict.fromkeys(items, "agree") for u in world.residents}  # as seeded
    attempts: list[tuple[str, int, float, float]] = []  # step, status, sent, answered
    stop = threading.Event()

    def keep_voting(username: str, index: int) -> None:
        browser = world.browsers[username]
        n = 0
        while not stop.is_set():
            choices = choices_for(items, index + n)
            sent = time.time()
            try:
                form = browser.review_vote(consultation, choices)
            except live.Refused as exc:
                with lock:
                    attempts.append(("vote form or review", exc.reply.status, sent, time.time()))
                continue
            sent = time.time()
            reply = browser.post(live.confirm_path(consultation), form)
            with lock:
                attempts.append(("confirm", reply.status, sent, time.time()))
                if reply.status == 302:
                    acknowledged[username] += 1
                    last[username] = choices
            n += 1

    threads = [threading.Thread(target=keep_voting, args=(u, i), daemon=True)
               for i, u in enumerate(world.residents)]
    for thread in threads:
        thread.start()
    started = time.monotonic()
    while sum(acknowledged.values()) < 30 and time.monotonic() - started < 10:
        time.sleep(0.02)
    member = world.browsers[world.committee[0]]
    page = f"/consultations/{consultation}"
    form = {"csrf_token": member.csrf(member.get(page).text), "action": "close_vote",
            "reason": "", "confirmed": "1"}
    close_sent = time.time()
    closing = member.post(f"{page}/stage", form)
    closed = time.time()
    messages = member.flashes(member.get(page).text)
    while (sum(1 for a in list(attempts) if a[2] > closed) < HOUSEHOLDS
           and time.time() - closed < 10):
        time.sleep(0.02)  # households go on trying after the close
    stop.set()
    for thread in threads:
        thread.join(timeout=60)

    stored = world.database.check_whole(consultation)
    frozen = world.database.frozen_counts(consultation)
    after = [a for a in attempts if a[2] > closed]
    world.figures["close_while_voting"] = {
        "households_voting": HOUSEHOLDS,
        "confirmations_acknowledged": sum(acknowledged.values()),
        "confirmations_under_way_while_the_close_ran": sum(
            1 for a in attempts if a[0] == "confirm" and a[2] < closed and a[3] > close_sent),
        "ms_the_close_took": round((closed - close_sent) * 1000),
        "requests_sent_after_the_close": len(after),
        "answers": dict(Counter(f"{a[0]}: {a[1]}" for a in attempts)),
    }
    assert closing.status == 302 and messages == [CLOSED], (closing.status, messages)
    assert all(a[1] in ((302, 409) if a[0] == "confirm" else (409,)) for a in attempts), \
        Counter((a[0], a[1]) for a in attempts)
    assert after and all(a[1] == 409 for a in after)  # everything after the close: refused
    for username in world.residents:
        ballot = stored[world.household_of[username]]
        assert (ballot.version, ballot.choices) == (1 + acknowledged[username], last[username])
    assert frozen == counts_of(stored.values(), items)  # every acknowledged ballot counted
    assert world.database.results(consultation) == 1
