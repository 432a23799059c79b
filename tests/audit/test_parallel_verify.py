"""The chain verified in several processes (``consult.audit.streaming``) finds what a walk in
one process finds, and names it alike: every tampering below gives the same ``VerifyResult``
and the same words with ``--jobs 1`` and ``--jobs 2``. Committed for real, since the other
processes read the database through connections of their own (SQLite here; PostgreSQL with
``TEST_DATABASE_URL``)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import text

from consult.audit import service as audit
from consult.audit import streaming
from consult.audit.report import chain_broken
from consult.extensions import db

pytestmark = pytest.mark.committing

EVENTS = 12  # two processes: seq 1–6 and 7–12
WATCHED = "test.watched"


@pytest.fixture(autouse=True)
def _split_tiny_chains(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(streaming, "MIN_EVENTS_PER_JOB", 1)


@pytest.fixture
def chain() -> None:
    for n in range(1, EVENTS + 1):
        audit.record(None, WATCHED if n % 3 == 0 else "test.other", ("opinion", n),
                     {"n": n, "名": "测试", "quote": 'a "b" \\ c\n'})
    db.session.commit()
    assert streaming.usable_jobs(db.session.connection(), 2, EVENTS) == 2
    db.session.rollback()


def tamper(statement: str, **values: Any) -> None:
    db.session.execute(text(statement), values)
    db.session.commit()


def both(**kwargs: Any) -> audit.VerifyResult:
    """The result with one process and with two, which must be the same."""
    one = audit.verify(checks={}, jobs=1, **kwargs)
    db.session.rollback()
    two = audit.verify(checks={}, jobs=2, **kwargs)
    db.session.rollback()
    assert one == two
    if one.problem is not None:
        assert chain_broken(one) == chain_broken(two)
    return one


def cli(runner: Any, jobs: int) -> Any:
    return runner.invoke(args=["audit", "verify", "--jobs", str(jobs)],
                         env={"CONSULT_LANG": "en"})


def same_words(runner: Any) -> str:
    """The command's output with one process and with two, but for the speed line."""
    one, two = cli(runner, 1), cli(runner, 2)
    assert one.exit_code == two.exit_code

    def words(output: str) -> list[str]:
        return [line for line in output.splitlines() if not line.startswith("Verified ")]

    assert words(one.output) == words(two.output)
    return one.output


def test_an_intact_chain_holds_with_any_number_of_processes(chain, runner):
    result = both()
    assert result.ok and result.checked == EVENTS and result.head_seq == EVENTS
    output = same_words(runner)
    assert f"The audit chain holds: {EVENTS} events" in output
    assert f"Verified {EVENTS} events in" in output and "events/s)" in output


def test_a_changed_payload_byte_is_named(chain, runner):
    tamper("UPDATE audit_event SET payload = replace(payload, '测试', '测识') WHERE chain_seq = 9")
    result = both()
    assert (result.problem.seq, result.problem.kind, result.checked) == (9, "hash", 8)
    output = same_words(runner)
    assert "event #9 of chain 0: its content does not match its hash" in output


def test_a_changed_hash_is_named(chain, runner):
    tamper("UPDATE audit_event SET hash = :h WHERE chain_seq = 4", h="f" * 64)
    result = both()
    assert (result.problem.seq, result.problem.kind) == (4, "hash")
    assert "event #4" in same_words(runner)


def test_a_removed_event_is_named(chain, runner):
    tamper("DELETE FROM audit_event WHERE chain_seq = 3")
    result = both()
    assert (result.problem.seq, result.problem.kind, result.problem.expected) == (4, "gap", "3")
    assert "jumps from 3 to 4" in same_words(runner)


def test_a_removed_event_at_a_boundary_is_named(chain, runner):
    tamper("DELETE FROM audit_event WHERE chain_seq = 7")
    result = both()
    assert (result.problem.seq, result.problem.kind, result.checked) == (8, "gap", 6)
    same_words(runner)


def test_a_removed_last_event_is_caught_by_the_head(chain, runner):
    tamper(f"DELETE FROM audit_event WHERE chain_seq = {EVENTS}")
    result = both()
    assert (result.problem.seq, result.problem.kind) == (None, "head")
    assert "chain head" in same_words(runner)


def test_a_reordered_pair_is_named(chain, runner):
    tamper("UPDATE audit_event SET chain_seq = 100 WHERE chain_seq = 10")
    tamper("UPDATE audit_event SET chain_seq = 10 WHERE chain_seq = 11")
    tamper("UPDATE audit_event SET chain_seq = 11 WHERE chain_seq = 100")
    result = both()
    assert (result.problem.seq, result.problem.kind, result.checked) == (10, "link", 9)
    same_words(runner)


def test_a_pair_reordered_across_the_boundary_is_named(chain, runner):
    tamper("UPDATE audit_event SET chain_seq = 100 WHERE chain_seq = 6")
    tamper("UPDATE audit_event SET chain_seq = 6 WHERE chain_seq = 7")
    tamper("UPDATE audit_event SET chain_seq = 7 WHERE chain_seq = 100")
    result = both()
    assert (result.problem.seq, result.problem.kind, result.checked) == (6, "link", 5)
    same_words(runner)


def test_a_break_at_the_process_boundary_is_named(chain, runner):
    # The second process's first event points elsewhere: only the parent sees that link.
    tamper("UPDATE audit_event SET prev_hash = :h WHERE chain_seq = 7", h="a" * 64)
    result = both()
    assert (result.problem.seq, result.problem.kind, result.checked) == (7, "link", 6)
    assert "event #7 of chain 0: it does not point to the previous event" in same_words(runner)


def test_the_first_of_two_breaks_is_named(chain, runner):
    # Broken in both halves (and at the boundary): the first break, as one process finds it.
    tamper("UPDATE audit_event SET hash = :h WHERE chain_seq = 6", h="b" * 64)
    tamper("UPDATE audit_event SET actor_label = 'someone' WHERE chain_seq = 2")
    result = both()
    assert (result.problem.seq, result.problem.kind, result.checked) == (2, "hash", 1)
    same_words(runner)


def test_an_event_stored_in_an_unusual_form_is_judged_by_event_hash(chain):
    # A time stored without its microseconds: the quick hash disagrees, event_hash (which reads
    # it as the same time) agrees, as it always did.
    event = db.session.execute(text("SELECT created_at FROM audit_event WHERE chain_seq = 5")).one()
    assert db.session.get_bind().dialect.name != "sqlite" or isinstance(event[0], str)
    moment = datetime(2026, 1, 1, tzinfo=UTC)
    fields = audit.EventFields(
        chain_seq=EVENTS + 1, created_at=audit.format_time(moment), actor_id=None,
        actor_label="system", action="test.other", object_type="system", object_id=None,
        compound_id=None, payload="{}", prev_hash=audit.chain_head()[1])
    digest = audit.event_hash(fields)
    tamper("INSERT INTO audit_event (chain_id, chain_seq, created_at, actor_label, action, "
           "object_type, payload, prev_hash, hash) VALUES (0, :seq, '2026-01-01 00:00:00', "
           "'system', 'test.other', 'system', '{}', :prev, :hash)", seq=EVENTS + 1,
           prev=fields.prev_hash, hash=digest)
    tamper("UPDATE audit_head SET seq = :seq, hash = :hash WHERE chain_id = 0",
           seq=EVENTS + 1, hash=digest)
    result = both()
    assert result.ok and result.checked == EVENTS + 1


def test_checks_are_shown_their_events_in_order_by_any_number_of_processes(chain):
    shown: dict[int, list[tuple[int, str]]] = {}

    for jobs in (1, 2):
        events: list[tuple[int, str]] = []

        class Watch:
            actions = frozenset({WATCHED})

            def event(self, fields: audit.EventFields, events: list[Any] = events) -> None:
                events.append((fields.chain_seq, fields.payload))

            def finish(self, session: Any, events: list[Any] = events) -> Any:
                return type("Outcome", (), {"checked": len(events), "problems": ()})()

        result = audit.verify(checks={"watch": Watch}, jobs=jobs)
        db.session.rollback()
        assert result.ok
        shown[jobs] = events
    assert [seq for seq, _payload in shown[1]] == [3, 6, 9, 12]
    assert shown[1] == shown[2]


def test_events_stored_as_the_app_stores_them_are_hashed_without_reading_them_again(
        chain, monkeypatch):
    looked_up: list[int] = []
    original = streaming._reference

    def counting(connection: Any) -> Any:
        fields = original(connection)

        def lookup(seq: int) -> Any:
            looked_up.append(seq)
            return fields(seq)

        return lookup

    monkeypatch.setattr(streaming, "_reference", counting)
    assert audit.verify(checks={}, jobs=1).ok
    assert looked_up == []
    db.session.rollback()
    tamper("UPDATE audit_event SET actor_label = 'someone' WHERE chain_seq = 2")
    assert audit.verify(checks={}, jobs=1).problem.seq == 2
    number = db.session.scalar(text("SELECT seq FROM audit_event WHERE chain_seq = 2"))
    assert looked_up == [number]  # a disagreeing quick hash is checked with event_hash itself


def test_the_command_verifies_without_holding_the_write_lock(chain, runner, monkeypatch):
    """A long chain takes seconds: ballots must be able to commit meanwhile. While the walk
    runs, another connection takes SQLite's write lock at once (on PostgreSQL a read takes no
    lock a writer waits for)."""
    if db.engine.dialect.name != "sqlite":
        pytest.skip("SQLite's write lock")
    import sqlite3

    walk = streaming.verify_stored
    taken = []

    def verify_while_writing(connection: Any, **kwargs: Any) -> Any:
        other = sqlite3.connect(db.engine.url.database, timeout=0, isolation_level=None)
        try:
            other.execute("BEGIN IMMEDIATE")  # fails at once if the walk held the lock
            other.execute("ROLLBACK")
            taken.append(True)
        finally:
            other.close()
        return walk(connection, **kwargs)

    monkeypatch.setattr(streaming, "verify_stored", verify_while_writing)
    result = cli(runner, 1)
    assert result.exit_code == 0, result.output
    assert taken == [True]


@pytest.fixture
def chains() -> None:
    """16 events in three chains, written interleaved: 4 in the global chain, 6 in chain 5 and
    6 in chain 9. Two processes split them inside chain 5 (after its 4th event)."""
    lengths = {0: 4, 5: 6, 9: 6}
    written = dict.fromkeys(lengths, 0)
    while written != lengths:
        for chain, length in lengths.items():
            if written[chain] < length:
                written[chain] += 1
                audit.record(None, WATCHED if written[chain] % 2 else "test.other",
                             ("opinion", written[chain]), {"n": written[chain], "名": "测试"},
                             chain=chain)
    db.session.commit()
    assert streaming.split([(0, 4), (5, 6), (9, 6)], 2) == [(5, 4), (9, 6)]
    assert streaming.usable_jobs(db.session.connection(), 2, 16) == 2
    db.session.rollback()


def test_several_chains_hold_with_any_number_of_processes(chains, runner):
    result = both()
    assert result.ok and (result.checked, result.chains) == (16, 3)
    assert "The audit chain holds: 16 events in 3 chains" in same_words(runner)


def test_a_break_at_the_process_boundary_inside_a_chain_is_named(chains, runner):
    tamper("UPDATE audit_event SET prev_hash = :h WHERE chain_id = 5 AND chain_seq = 5",
           h="a" * 64)
    result = both()
    assert (result.problem.chain, result.problem.seq, result.problem.kind, result.checked) == (
        5, 5, "link", 8)
    assert "event #5 of chain 5: it does not point" in same_words(runner)


def test_a_gap_in_the_last_chain_is_named_alike(chains, runner):
    tamper("DELETE FROM audit_event WHERE chain_id = 9 AND chain_seq = 3")
    result = both()
    assert (result.problem.chain, result.problem.seq, result.problem.kind, result.checked) == (
        9, 4, "gap", 12)
    same_words(runner)


def test_checks_are_shown_the_events_of_several_chains_alike(chains):
    shown: dict[int, list[tuple[int, int]]] = {}
    for jobs in (1, 2):
        events: list[tuple[int, int]] = []

        class Watch:
            actions = frozenset({WATCHED})

            def event(self, fields: audit.EventFields, events: list[Any] = events) -> None:
                events.append((fields.chain_id, fields.chain_seq))

            def finish(self, session: Any, events: list[Any] = events) -> Any:
                return type("Outcome", (), {"checked": len(events), "problems": ()})()

        assert audit.verify(checks={"watch": Watch}, jobs=jobs).ok
        db.session.rollback()
        shown[jobs] = events
    # Chain by chain, each in its order.
    assert shown[1] == [(0, 1), (0, 3), (5, 1), (5, 3), (5, 5), (9, 1), (9, 3), (9, 5)]
    assert shown[2] == shown[1]
