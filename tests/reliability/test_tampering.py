"""Changing, deleting or inserting ballots, their choices or audit events directly in the
database (raw SQL, behind the application's back) is caught by ``flask audit verify``, which
exits 1 and names what is wrong."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select, text

from consult.audit import service as audit
from consult.audit.models import AuditEvent
from consult.ballots import service as ballots
from consult.ballots.models import Ballot, BallotChannel
from consult.consultations import service
from consult.consultations.models import Consultation
from consult.consultations.states import Action
from consult.core.models import utcnow
from consult.extensions import db
from consult.process import workflow
from consult.registry.models import Household
from tests import conftest as suite
from tests import factories

# tests/reliability/conftest.py switches the suite's per-test transaction off for its
# live-server tests; these tests work in the suite's own database and need it back.
_isolation = suite._isolation


@dataclass
class World:
    open: Consultation      # 实名: the events name the household
    secret: Consultation    # confidential: they do not
    households: list[Household]
    start: datetime

    def ballot(self, consultation: Consultation, household: Household) -> Ballot:
        ballot = ballots.ballot_of(consultation, household.id)
        assert ballot is not None
        return ballot

    def item(self, consultation: Consultation, number: int) -> int:
        return next(i.id for i in consultation.items if i.number == number)


def open_vote(committee: Any, compound: Any, secrecy: str, start: datetime) -> Consultation:
    consultation = service.create(committee, compound, service.settings(
        title=f"加装电梯（{secrecy}）", summary="", rule_code="household_majority",
        secrecy=secrecy, locale="zh_Hans", solicitation_deadline=None,
        vote_deadline=start + timedelta(days=10), publicity_days=7, proxy_cap=2), now=start)
    for title in ("加装电梯", "更换供水管"):
        service.add_item(committee, consultation, service.item_data(
            title=title, description="", cost="1000"))
    for action in (Action.START_SOLICITING, Action.START_PROPOSING, Action.START_DISCUSSION,
                   Action.OPEN_VOTE):
        workflow.apply(consultation, action, committee, now=start)
    return consultation


@pytest.fixture
def world() -> World:
    compound = factories.make_compound_with_households(per_building=3)
    households = [h for b in compound.buildings for h in b.households]
    for n, household in enumerate(households):
        household.area_dm2 = 6000 + 731 * n  # every area differs
    committee = factories.make_user("committee", compound=compound)
    start = utcnow() - timedelta(days=1)
    world = World(open_vote(committee, compound, "open", start),
                  open_vote(committee, compound, "confidential", start), households, start)
    for consultation in (world.open, world.secret):
        first, second = (i.id for i in consultation.items)
        for n, household in enumerate(households[:4]):
            channel = BallotChannel.ONLINE if n % 2 == 0 else BallotChannel.PAPER
            ballots.cast(None if channel is BallotChannel.ONLINE else committee, consultation,
                         household, {first: "agree", second: "disagree"}, channel,
                         now=start + timedelta(hours=n + 1),
                         serial=f"P-{consultation.id}-{n}" if n % 2 else None)
        # A household changes its mind: version 2.
        ballots.cast(None, consultation, households[0], {first: "abstain", second: "agree"},
                     BallotChannel.ONLINE, now=start + timedelta(hours=8))
    db.session.flush()
    return world


def verify(runner: Any) -> Any:
    return runner.invoke(args=["audit", "verify"], env={"CONSULT_LANG": "en"})


def broken(runner: Any, *expected: str) -> str:
    result = verify(runner)
    assert result.exit_code == 1, result.output
    for words in expected:
        assert words in result.output, result.output
    return result.output


def latest_event(ballot: Ballot) -> AuditEvent:
    return db.session.scalars(select(AuditEvent).where(
        AuditEvent.object_type == "ballot", AuditEvent.object_id == str(ballot.id))
        .order_by(AuditEvent.seq.desc())).first()


def test_untouched_ballots_match_the_trail(world, runner):
    result = verify(runner)
    assert result.exit_code == 0, result.output
    assert "8 stored ballots match the audit trail" in result.output
    assert audit.verify().ok


@pytest.mark.parametrize("secrecy", ["open", "secret"])
def test_a_changed_choice_is_named(world, runner, secrecy):
    consultation = getattr(world, secrecy)
    ballot = world.ballot(consultation, world.households[1])
    db.session.execute(text(
        "UPDATE ballot_choice SET choice = 'agree' WHERE ballot_id = :b AND item_id = :i"),
        {"b": ballot.id, "i": world.item(consultation, 2)})
    broken(runner, "disagree with the audit trail (1 problem)",
           f"ballot #{ballot.id}: the answer on item 2 is “Agree” in the database but "
           f"“Disagree” in audit event #{latest_event(ballot).seq}")


def test_a_changed_version_or_channel_is_named(world, runner):
    ballot = world.ballot(world.open, world.households[0])
    db.session.execute(text("UPDATE ballot SET version = 1, channel = 'paper' WHERE id = :b"),
                       {"b": ballot.id})
    output = broken(runner, "(2 problems)")
    seq = latest_event(ballot).seq
    assert (f"ballot #{ballot.id}: the channel is “Paper ballot” in the database but "
            f"“Online” in audit event #{seq}") in output
    assert f"ballot #{ballot.id}: the version is “1” in the database but “2”" in output


def test_a_changed_time_cast_is_named(world, runner):
    # Which ballot is an owner's latest decides their head count, so the time matters too.
    ballot = world.ballot(world.secret, world.households[2])
    db.session.execute(text("UPDATE ballot SET cast_at = :t WHERE id = :b"),
                       {"t": world.start.replace(tzinfo=None) + timedelta(hours=9),
                        "b": ballot.id})
    broken(runner, f"ballot #{ballot.id}: the time it was cast is")


def test_a_deleted_ballot_is_named(world, runner):
    ballot = world.ballot(world.secret, world.households[3])
    seq = latest_event(ballot).seq
    db.session.execute(text("DELETE FROM ballot_choice WHERE ballot_id = :b"), {"b": ballot.id})
    db.session.execute(text("DELETE FROM ballot WHERE id = :b"), {"b": ballot.id})
    broken(runner, f"ballot #{ballot.id} is recorded by audit event #{seq} but is no longer in "
                   f"the database (deleted)")


def test_an_inserted_ballot_is_named(world, runner):
    household = world.households[5]  # has not voted
    entry = ballots.roll_entry_for(world.open, household.id)
    assert entry is not None and ballots.ballot_of(world.open, household.id) is None
    db.session.execute(text(
        "INSERT INTO ballot (consultation_id, round, household_id, channel, receipt, version, "
        "cast_at, created_at) VALUES (:c, 1, :h, 'paper', 'FAKE-0001', 1, :t, :t)"),
        {"c": world.open.id, "h": household.id, "t": world.start.replace(tzinfo=None)})
    inserted = db.session.scalar(select(Ballot.id).where(
        Ballot.consultation_id == world.open.id, Ballot.household_id == household.id))
    for item in world.open.items:
        db.session.execute(text("INSERT INTO ballot_choice (ballot_id, item_id, choice) "
                                "VALUES (:b, :i, 'agree')"), {"b": inserted, "i": item.id})
    broken(runner, f"ballot #{inserted} is in the database but no audit event records it")


def test_a_deleted_or_inserted_choice_is_named(world, runner):
    ballot = world.ballot(world.open, world.households[2])
    seq = latest_event(ballot).seq
    db.session.execute(text("DELETE FROM ballot_choice WHERE ballot_id = :b AND item_id = :i"),
                       {"b": ballot.id, "i": world.item(world.open, 1)})
    # A choice for an item of another consultation, slipped onto this ballot.
    db.session.execute(text("INSERT INTO ballot_choice (ballot_id, item_id, choice) "
                            "VALUES (:b, :i, 'disagree')"),
                       {"b": ballot.id, "i": world.item(world.secret, 1)})
    output = broken(runner, "(2 problems)")
    assert (f"ballot #{ballot.id}: the answer on item 1 is nothing in the database but "
            f"“Agree” in audit event #{seq}") in output
    assert (f"the answer on item #{world.item(world.secret, 1)} (of another consultation) is "
            f"“Disagree” in the database but nothing") in output


def test_a_ballot_moved_to_another_household_is_named(world, runner):
    # Open ballots name their household; a confidential ballot's event has the household's
    # area and owner token instead, which move with it.
    for consultation in (world.open, world.secret):
        ballot = world.ballot(consultation, world.households[1])
        db.session.execute(text("UPDATE ballot SET household_id = :h WHERE id = :b"),
                           {"h": world.households[4].id, "b": ballot.id})
    output = broken(runner, "the household is")
    secret = world.ballot(world.secret, world.households[4])
    assert f"ballot #{secret.id}: the household's area (0.01 m²) is" in output
    assert f"ballot #{secret.id}: the owner token is" in output


def test_a_ballot_changed_together_with_its_event_breaks_the_chain(world, runner):
    ballot = world.ballot(world.open, world.households[1])
    event = latest_event(ballot)
    payload = json.loads(event.payload)
    payload["choices"]["2"] = "agree"
    db.session.execute(text(
        "UPDATE ballot_choice SET choice = 'agree' WHERE ballot_id = :b AND item_id = :i"),
        {"b": ballot.id, "i": world.item(world.open, 2)})
    db.session.execute(text("UPDATE audit_event SET payload = :p WHERE seq = :s"),
                       {"p": audit.canonical_json(payload), "s": event.seq})
    output = broken(runner, f"The audit chain is broken at event #{event.chain_seq} of chain "
                            f"{event.chain_id}",
                    "does not match its hash")
    assert "stored ballots" not in output  # a broken chain is not compared with the ballots


def test_a_deleted_ballot_event_breaks_the_chain(world, runner):
    event = latest_event(world.ballot(world.open, world.households[1]))  # not the last one
    db.session.execute(text("DELETE FROM audit_event WHERE seq = :s"), {"s": event.seq})
    broken(runner, f"event #{event.chain_seq + 1} of chain {event.chain_id}",
           "events are missing")
