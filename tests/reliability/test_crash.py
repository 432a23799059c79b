"""Durability under a crash: households vote at full speed, the whole server (gunicorn's
master and every worker) is killed with SIGKILL mid-load, a new server is started on the same
database, and every acknowledged ballot must be there, complete, with its audit events.

Runs on the suite's kind of database: SQLite (WAL, ``synchronous=FULL``) or PostgreSQL. The
figures go to test-artifacts/reliability/crash-<database>.json.

A killed process cannot tell SQLite's ``synchronous=FULL`` from ``NORMAL``: with either, what
was committed is in the write-ahead log the operating system holds. FULL is for a power cut,
which a test cannot cause (see consult/core/database.py).
"""

from __future__ import annotations

import http.client
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests import live
from tests.reliability.conftest import sign_in, write_figures

HOUSEHOLDS = 16          # one thread per household, each voting again and again
KILL_AFTER_ACKS = 120    # acknowledged submissions before the kill…
KILL_AFTER_SECONDS = 6   # …or this long, whichever comes first,
CONFIRMING_AT_THE_KILL = 4  # and then as soon as this many households are confirming
CHOICES = ("agree", "disagree", "abstain")

# What a killed connection looks like to the client.
CUT_OFF = (OSError, http.client.HTTPException)


@dataclass
class Household:
    """What one household was told: how many submissions were acknowledged, with which
    choices last, and the choices of a confirmation still unanswered when the server died."""

    username: str
    acknowledged: int = 0
    last: dict[int, str] | None = None
    unanswered: dict[int, str] | None = None
    surprises: list[str] = field(default_factory=list)


def test_acknowledged_ballots_survive_a_kill_of_the_whole_server(
        database_url: str, db_kind: str, tmp_path_factory: pytest.TempPathFactory,
        live_database: Any) -> None:
    workdir = Path(tmp_path_factory.mktemp("crash"))
    server, stop = live.start(database_url, workdir)
    restarted: live.LiveServer | None = None
    try:
        seeded = live.seed_votes(server, HOUSEHOLDS)
        consultation, items = seeded["votes"][0]["consultation"], seeded["votes"][0]["items"]
        browsers = sign_in(server, seeded["users"])
        households = {name: Household(name) for name in seeded["users"]}
        lock = threading.Lock()
        in_flight: dict[str, str] = {}  # username → the step under way
        killed = threading.Event()

        def vote(household: Household, index: int) -> None:
            browser = browsers[household.username]
            n = 0
            while not killed.is_set():
                choices = {item: CHOICES[(index + n + k) % 3] for k, item in enumerate(items)}
                try:
                    with lock:
                        in_flight[household.username] = "review"
                    form = browser.review_vote(consultation, choices)
                    with lock:
                        in_flight[household.username] = "confirm"
                        household.unanswered = choices
                    reply = browser.post(live.confirm_path(consultation), form)
                except live.Refused as exc:
                    household.surprises.append(str(exc))
                    return
                except CUT_OFF:
                    return  # the server is gone; the answer never came
                with lock:
                    del in_flight[household.username]
                    if reply.status == 302:
                        household.acknowledged += 1
                        household.last = choices
                        household.unanswered = None
                    else:
                        household.surprises.append(f"confirm: {reply.status}")
                        return
                n += 1

        threads = [threading.Thread(target=vote, args=(h, i), daemon=True)
                   for i, h in enumerate(households.values())]
        started = time.monotonic()
        for thread in threads:
            thread.start()
        while (time.monotonic() - started < KILL_AFTER_SECONDS
               and sum(h.acknowledged for h in households.values()) < KILL_AFTER_ACKS
               and any(t.is_alive() for t in threads)):
            time.sleep(0.02)
        # Kill while ballots are being confirmed (some committing, some queued), not between.
        aim = time.monotonic() + 3
        while True:
            with lock:  # the bookkeeping stands still while the server dies
                steps_in_flight = sorted(in_flight.values())
                if steps_in_flight.count("confirm") >= CONFIRMING_AT_THE_KILL or (
                        time.monotonic() > aim):
                    server.kill()
                    killed.set()
                    load_seconds = time.monotonic() - started
                    break
            time.sleep(0.001)
        for thread in threads:
            thread.join(timeout=130)
        assert not [h.surprises for h in households.values() if h.surprises]

        restarted = live.serve(server.env)
        database = live_database(restarted)
        stored = database.check_whole(consultation)  # nothing half-written
        ids = database.household_ids()
        lost, unacknowledged_but_stored = [], 0
        for name, h in households.items():
            household_id = ids[name]
            ballot = stored.get(household_id)
            version = ballot.version if ballot else 0
            choices = ballot.choices if ballot else None
            if (version, choices) == (h.acknowledged, h.last):
                continue
            if h.unanswered is not None and (version, choices) == (h.acknowledged + 1,
                                                                   h.unanswered):
                unacknowledged_but_stored += 1  # committed just before the kill: never told
                continue
            lost.append((name, h.acknowledged, h.last, version, choices))

        # The restarted server carries on: the residents' sessions still hold, and the next
        # ballot extends the same chain.
        again = browsers[seeded["users"][0]].clone(restarted.url)
        form = again.review_vote(consultation, dict.fromkeys(items, "agree"))
        resumed = again.post(live.confirm_path(consultation), form).status
        database.check_whole(consultation)
        verify = restarted.flask("audit", "verify")

        # The figures first, so that a failing run leaves them too.
        write_figures("crash", db_kind, {
            "households": HOUSEHOLDS, "gunicorn_workers": 4,
            "seconds_of_load_before_the_kill": round(load_seconds, 2),
            "submissions_acknowledged_before_the_kill": sum(
                h.acknowledged for h in households.values()),
            "households_with_an_acknowledged_ballot": sum(
                1 for h in households.values() if h.acknowledged),
            "households_found_with_their_acknowledged_ballot": sum(
                1 for h in households.values() if h.acknowledged) - len(lost),
            "ballots_found_after_restart": len(stored),
            "requests_in_flight_at_the_kill": len(steps_in_flight),
            "confirmations_in_flight_at_the_kill": steps_in_flight.count("confirm"),
            "unanswered_confirmations_found_stored": unacknowledged_but_stored,
            "acknowledged_but_lost": len(lost),
            "audit_verify_exit_code": verify.returncode,
        })
        assert lost == [], lost
        assert resumed == 302
        assert verify.returncode == 0, verify.stdout + verify.stderr
        if db_kind == "sqlite":  # the file stays in WAL mode (consult/core/database.py)
            with database.engine.connect() as conn:
                assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
    finally:
        if restarted is not None:
            restarted.stop()
        server.kill()
        stop()

