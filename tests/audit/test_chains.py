"""One audit chain per consultation, anchored in the global chain (chain 0): where events go,
what the anchors record, and the tampering that verification catches only thanks to them."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import pytest
from sqlalchemy import func, select, text

from consult.audit import service as audit
from consult.audit.models import GENESIS_HASH, AuditEvent
from consult.ballots.models import Ballot
from consult.consultations.states import Action
from consult.extensions import db
from consult.process import workflow
from tests import factories


def chain_events(chain: int) -> list[AuditEvent]:
    return list(db.session.scalars(select(AuditEvent).where(AuditEvent.chain_id == chain)
                                   .order_by(AuditEvent.chain_seq)))


def verify_cli(runner: Any) -> Any:
    return runner.invoke(args=["audit", "verify"], env={"CONSULT_LANG": "en"})


@pytest.fixture
def two_votes(compound: Any) -> tuple[Any, Any]:
    """Two consultations of one compound, taken through the workflow into their votes (every
    household has voted in both)."""
    one = factories.make_consultation(compound, title="加装电梯")
    two = factories.make_consultation(compound, title="增设停车位")
    factories.walk_to(one, "voting")
    factories.walk_to(two, "voting")
    return one, two


def test_ballots_of_two_consultations_land_in_their_own_chains(two_votes):
    for consultation in two_votes:
        events = chain_events(consultation.id)
        assert [e.chain_seq for e in events] == list(range(1, len(events) + 1))
        assert events[0].prev_hash == GENESIS_HASH
        ballots = db.session.scalar(select(func.count(Ballot.id)).where(
            Ballot.consultation_id == consultation.id))
        cast = [e for e in events if e.action == "ballot.cast"]
        assert ballots and len(cast) == ballots
        assert {json.loads(e.payload)["consultation_id"] for e in cast} == {consultation.id}
        assert audit.chain_head(chain=consultation.id) == (len(events), events[-1].hash)
        # Within a chain, the event numbers follow the positions.
        assert [e.seq for e in events] == sorted(e.seq for e in events)
    # The global chain holds no ballot: only the anchors of the stage changes.
    assert {e.action for e in chain_events(0)} == {"audit.anchor"}
    result = audit.verify()
    assert result.ok and result.chains == 3 and result.anchors == len(chain_events(0))


def test_a_stage_change_anchors_the_consultation_chain_after_its_stage_event(compound):
    consultation = factories.make_consultation(compound)
    workflow.apply(consultation, Action.START_SOLICITING, None)
    stage = chain_events(consultation.id)[-1]
    assert stage.action == "consultation.stage_changed"
    anchor = chain_events(0)[-1]
    assert (anchor.action, anchor.object_type, anchor.object_id) == (
        "audit.anchor", "audit_chain", str(consultation.id))
    assert json.loads(anchor.payload) == {"chain": consultation.id, "seq": stage.chain_seq,
                                          "hash": stage.hash}
    assert audit.chain_head(chain=consultation.id) == (stage.chain_seq, stage.hash)
    assert anchor.seq > stage.seq


def test_a_changed_event_of_a_consultation_chain_is_named_with_its_chain(two_votes, runner):
    one, _two = two_votes
    target = [e for e in chain_events(one.id) if e.action == "ballot.cast"][1]
    payload = json.loads(target.payload)
    payload["choices"] = dict.fromkeys(payload["choices"], "disagree")
    db.session.execute(text("UPDATE audit_event SET payload = :p WHERE seq = :s"),
                       {"p": audit.canonical_json(payload), "s": target.seq})
    problem = audit.verify().problem
    assert (problem.chain, problem.seq, problem.kind) == (one.id, target.chain_seq, "hash")
    result = verify_cli(runner)
    assert result.exit_code == 1
    assert f"event #{target.chain_seq} of chain {one.id}: its content" in result.output


def rewrite(chain: int, from_position: int, change: dict[str, Any]) -> None:
    """What a dishonest administrator would do: change one event of ``chain`` and recompute
    every hash from there, and the chain's head row, so that the chain itself holds again."""
    events = chain_events(chain)
    prev = events[from_position - 2].hash if from_position > 1 else GENESIS_HASH
    for event in events[from_position - 1:]:
        fields = replace(audit.fields_of(event), prev_hash=prev)
        if event.chain_seq == from_position:
            fields = replace(fields, payload=audit.canonical_json(
                {**json.loads(event.payload), **change}))
        digest = audit.event_hash(fields)
        db.session.execute(text(
            "UPDATE audit_event SET payload = :p, prev_hash = :prev, hash = :h WHERE seq = :s"),
            {"p": fields.payload, "prev": prev, "h": digest, "s": event.seq})
        prev = digest
    db.session.execute(text("UPDATE audit_head SET hash = :h WHERE chain_id = :c"),
                       {"h": prev, "c": chain})
    db.session.expire_all()


def test_a_consultation_chain_rewritten_with_its_head_is_caught_by_an_anchor(two_votes,
                                                                             runner):
    one, _two = two_votes
    first_stage = next(e for e in chain_events(one.id)
                       if e.action == "consultation.stage_changed")
    rewrite(one.id, first_stage.chain_seq, {"reason": "改写"})
    result = audit.verify()
    # Every link and the head hold; the first anchor of the chain does not.
    assert result.problem is not None and result.problem.kind == "anchor"
    assert (result.problem.chain, result.problem.seq) == (one.id, first_stage.chain_seq)
    assert result.checked == db.session.scalar(select(func.count(AuditEvent.seq)))
    output = verify_cli(runner).output
    assert f"event #{first_stage.chain_seq} of chain {one.id}" in output
    assert "the chain was rewritten or cut short" in output


def test_a_consultation_chain_cut_short_below_an_anchor_is_caught(two_votes):
    one, _two = two_votes
    events = chain_events(one.id)
    anchored = max(json.loads(e.payload)["seq"] for e in chain_events(0)
                   if json.loads(e.payload)["chain"] == one.id)
    keep = events[:anchored - 1]
    db.session.execute(text("DELETE FROM audit_event WHERE chain_id = :c AND chain_seq >= :n"),
                       {"c": one.id, "n": anchored})
    db.session.execute(text("UPDATE audit_head SET seq = :s, hash = :h WHERE chain_id = :c"),
                       {"s": len(keep), "h": keep[-1].hash, "c": one.id})
    problem = audit.verify().problem
    assert (problem.kind, problem.chain, problem.seq, problem.found) == (
        "anchor", one.id, anchored, "none")


def test_a_deleted_anchor_breaks_the_global_chain(two_votes):
    anchor = chain_events(0)[1]
    db.session.execute(text("DELETE FROM audit_event WHERE seq = :s"), {"s": anchor.seq})
    problem = audit.verify().problem
    assert (problem.chain, problem.kind, problem.seq) == (0, "gap", anchor.chain_seq + 1)


def test_an_event_moved_to_another_chain_is_caught(two_votes):
    """The forger moves the last event of one chain to the end of another, links it there and
    moves both head rows: the chain's id is in the hash."""
    one, two = two_votes
    moved, before = chain_events(one.id)[-1], chain_events(one.id)[-2]
    last = chain_events(two.id)[-1]
    db.session.execute(text(
        "UPDATE audit_event SET chain_id = :c, chain_seq = :n, prev_hash = :p WHERE seq = :s"),
        {"c": two.id, "n": last.chain_seq + 1, "p": last.hash, "s": moved.seq})
    db.session.execute(text("UPDATE audit_head SET seq = :n, hash = :h WHERE chain_id = :c"),
                       {"n": before.chain_seq, "h": before.hash, "c": one.id})
    db.session.execute(text("UPDATE audit_head SET seq = :n, hash = :h WHERE chain_id = :c"),
                       {"n": last.chain_seq + 1, "h": moved.hash, "c": two.id})
    problem = audit.verify().problem
    assert (problem.chain, problem.seq, problem.kind) == (two.id, last.chain_seq + 1, "hash")


def test_a_chain_relabelled_as_another_is_caught_by_its_first_hash(two_votes):
    """Every link of a chain given another id still fits: only the id in the hash tells."""
    one, _two = two_votes
    for statement in ("UPDATE audit_event SET chain_id = 999 WHERE chain_id = :c",
                      "UPDATE audit_head SET chain_id = 999 WHERE chain_id = :c"):
        db.session.execute(text(statement), {"c": one.id})
    problem = audit.verify().problem
    assert (problem.chain, problem.seq, problem.kind) == (999, 1, "hash")


def test_an_event_moved_into_the_global_chain_is_caught(compound):
    consultation = factories.make_consultation(compound)
    event = audit.record(None, "consultation.updated", consultation, {"changes": {}})
    assert (event.chain_id, event.chain_seq) == (consultation.id, 1)
    head = audit.chain_head()
    db.session.execute(text(
        "UPDATE audit_event SET chain_id = 0, chain_seq = :n, prev_hash = :p WHERE seq = :s"),
        {"n": head[0] + 1, "p": head[1], "s": event.seq})
    db.session.execute(text("DELETE FROM audit_head WHERE chain_id = :c"), {"c": consultation.id})
    db.session.execute(text("UPDATE audit_head SET seq = :n, hash = :h WHERE chain_id = 0"),
                       {"n": head[0] + 1, "h": event.hash})
    problem = audit.verify().problem
    assert (problem.chain, problem.seq, problem.kind) == (0, head[0] + 1, "hash")


def test_a_chain_without_its_head_row_is_a_problem(compound, runner):
    consultation = factories.make_consultation(compound)
    audit.record(None, "consultation.updated", consultation, {"changes": {}})
    db.session.execute(text("DELETE FROM audit_head WHERE chain_id = :c"), {"c": consultation.id})
    problem = audit.verify().problem
    assert (problem.chain, problem.kind, problem.found) == (consultation.id, "head", "none")
    assert f"the chain head of chain {consultation.id}: the chain has events but no chain " \
        "head" in verify_cli(runner).output


def test_a_head_row_without_its_events_is_a_problem():
    db.session.execute(text("INSERT INTO audit_head (chain_id, seq, hash) VALUES (77, 3, :h)"),
                       {"h": "ab" * 32})
    problem = audit.verify().problem
    assert (problem.chain, problem.kind, problem.expected) == (77, "head", f"0:{GENESIS_HASH}")


def test_the_anchor_command_anchors_only_the_chains_that_moved(compound, runner):
    one = factories.make_consultation(compound, title="一")
    two = factories.make_consultation(compound, title="二")
    for consultation in (one, two):
        workflow.apply(consultation, Action.START_SOLICITING, None)
    anchors = len(chain_events(0))
    audit.record(None, "consultation.updated", two, {"changes": {"title": "二改"}})
    result = runner.invoke(args=["audit", "anchor"], env={"CONSULT_LANG": "en"})
    assert result.exit_code == 0 and "Anchored 1 chain." in result.output, result.output
    events = chain_events(0)
    assert len(events) == anchors + 1
    assert json.loads(events[-1].payload) == {
        "chain": two.id, "seq": audit.chain_head(chain=two.id)[0],
        "hash": audit.chain_head(chain=two.id)[1]}
    again = runner.invoke(args=["audit", "anchor"], env={"CONSULT_LANG": "en"})
    assert "Anchored 0 chains." in again.output and len(chain_events(0)) == anchors + 1
    assert audit.verify().ok


def test_a_chain_is_named_by_what_an_event_concerns(compound):
    consultation = factories.make_consultation(compound)
    item = consultation.items[0]
    assert audit.chain_of(consultation) == consultation.id
    assert audit.chain_of(item) == consultation.id  # it carries its consultation_id
    assert audit.chain_of(("ballot_entry", 5)) == 0  # a tuple names no consultation
    assert audit.chain_of(compound) == 0
    assert audit.record(None, "x", ("ballot_entry", 5), {}, chain=consultation.id).chain_id \
        == consultation.id


def test_the_trail_shows_each_events_chain_and_filters_by_chain(client, login_as, compound):
    consultation = factories.make_consultation(compound)
    workflow.apply(consultation, Action.START_SOLICITING, None)
    stage = chain_events(consultation.id)[-1]
    anchor = chain_events(0)[-1]
    login_as("admin")
    en = {"Accept-Language": "en"}
    page = client.get(f"/audit/?chain={consultation.id}", headers=en).text
    assert f"Events of audit chain {consultation.id}." in page
    assert f'/audit/{stage.seq}"' in page and f'/audit/{anchor.seq}"' not in page
    assert f"audit chain {consultation.id} · event {stage.chain_seq}" in page
    assert f'/audit/{anchor.seq}"' in client.get("/audit/?chain=0").text
    detail = client.get(f"/audit/{stage.seq}", headers={"Accept-Language": "zh-CN"}).text
    assert f"链 {consultation.id} · 第 {stage.chain_seq} 条" in detail
