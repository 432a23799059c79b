"""Tampering with stored events behind the app's back is caught by ``flask audit verify``."""

import itertools

import pytest
from sqlalchemy import text

from consult.audit import service as audit
from consult.extensions import db


@pytest.fixture
def chain(compound):
    households = compound.buildings[0].households
    for n, household in enumerate(households):
        audit.record(None, "registry.household.updated", household, {"n": n, "名": "测试"})
    return households


def verify_cli(runner):
    return runner.invoke(args=["audit", "verify"], env={"CONSULT_LANG": "en"})


def test_record_links_events_and_moves_the_head(chain, compound):
    events = db.session.execute(text(
        "SELECT chain_id, chain_seq, prev_hash, hash, compound_id FROM audit_event "
        "ORDER BY seq")).all()
    assert [(e.chain_id, e.chain_seq) for e in events] == [(0, 1), (0, 2), (0, 3), (0, 4)]
    assert events[0].prev_hash == "0" * 64
    assert all(b.prev_hash == a.hash for a, b in itertools.pairwise(events))
    assert {e.compound_id for e in events} == {compound.id}
    assert audit.chain_head() == (4, events[-1].hash)
    assert audit.verify().ok


def test_intact_chain_passes_the_command(chain, runner):
    result = verify_cli(runner)
    assert result.exit_code == 0 and "4 events" in result.output


def test_changed_payload_is_named(chain, runner):
    db.session.execute(text("UPDATE audit_event SET payload = :p WHERE chain_seq = 3"),
                       {"p": '{"n":99}'})
    result = verify_cli(runner)
    assert result.exit_code == 1
    assert "event #3" in result.output and "content does not match" in result.output


def test_changed_actor_or_time_is_caught(chain):
    db.session.execute(text("UPDATE audit_event SET actor_label = 'someone' WHERE chain_seq = 2"))
    assert audit.verify().problem.seq == 2


def test_deleted_event_is_caught(chain, runner):
    db.session.execute(text("DELETE FROM audit_event WHERE chain_seq = 2"))
    result = verify_cli(runner)
    assert result.exit_code == 1 and "event #3" in result.output and "missing" in result.output


def test_deleted_last_event_is_caught_by_the_head(chain, runner):
    db.session.execute(text("DELETE FROM audit_event WHERE chain_seq = 4"))
    result = verify_cli(runner)
    assert result.exit_code == 1 and "chain head" in result.output


def test_reordered_events_are_caught(chain):
    db.session.execute(text("UPDATE audit_event SET chain_seq = 100 WHERE chain_seq = 2"))
    db.session.execute(text("UPDATE audit_event SET chain_seq = 2 WHERE chain_seq = 3"))
    db.session.execute(text("UPDATE audit_event SET chain_seq = 3 WHERE chain_seq = 100"))
    problem = audit.verify().problem
    assert problem is not None and problem.seq == 2


def test_inserted_event_is_caught(chain):
    db.session.execute(text(
        "INSERT INTO audit_event (chain_id, chain_seq, created_at, actor_label, action, "
        "object_type, payload, prev_hash, hash) VALUES (0, 5, '2026-01-01 00:00:00', 'x', "
        "'forged', 'household', '{}', :prev, :hash)"), {"prev": "f" * 64, "hash": "e" * 64})
    result = audit.verify()
    assert not result.ok and result.problem.seq == 5


def test_event_for_a_model_needs_no_explicit_compound(compound):
    event = audit.record(None, "registry.building.created", compound.buildings[0], {})
    assert (event.object_type, event.object_id, event.compound_id) == (
        "building", str(compound.buildings[0].id), compound.id)


def test_payload_must_be_plain_data():
    with pytest.raises(TypeError):
        audit.record(None, "x", None, {"bad": object()})


def test_the_verification_in_words():
    from consult.audit import report

    head = "ab" * 32
    holds = audit.VerifyResult(4, 4, head, None, chains=2, anchors=1)
    assert report.chain_holds(holds) == (
        f"The audit chain holds: 4 events in 2 chains, 1 anchors match; global head #4 "
        f"{head[:16]}.")
    gap = audit.VerifyResult(2, 2, head, audit.ChainProblem(5, "gap", "3", "5", 7))
    assert report.chain_broken(gap) == (
        "The audit chain is broken at event #5 of chain 7: the sequence jumps from 3 to 5 "
        "(events are missing). 2 events before it verified.")
    cut = audit.VerifyResult(4, 4, head, audit.ChainProblem(None, "head", "4:x", "5:y"))
    assert report.chain_broken(cut).startswith(
        "The audit chain is broken at the chain head of chain 0: the chain head says 5:y but "
        "the last event is 4:x")
    rewritten = audit.VerifyResult(9, 4, head, audit.ChainProblem(3, "anchor", "a" * 64,
                                                                  "b" * 64, 7))
    assert report.chain_broken(rewritten) == (
        f"The audit chain is broken at event #3 of chain 7: the global chain anchored this "
        f"position with hash {'a' * 16} but the chain holds {'b' * 16} there (the chain was "
        f"rewritten or cut short). 9 events before it verified.")
