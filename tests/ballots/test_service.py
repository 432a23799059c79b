import json

import pytest
from sqlalchemy import func, select

from consult.audit.models import AuditEvent
from consult.ballots import service as ballots
from consult.ballots.models import Ballot, BallotChannel
from consult.core.errors import Conflict, ImportRejected, ValidationFailed
from consult.extensions import db
from tests import factories
from tests.conftest import audit_actions


def answers(c, *values):
    return {item.id: value for item, value in zip(c.items, values, strict=True)}


def household(compound, b=0, n=0):
    return compound.buildings[b].households[n]


def test_casting_and_changing_keep_one_ballot_with_history_in_the_audit(voting, compound):
    h = household(compound)
    first = ballots.cast(None, voting, h, answers(voting, "agree", "disagree"),
                         BallotChannel.ONLINE)
    receipt = first.receipt
    second = ballots.cast(None, voting, h, answers(voting, "abstain", "disagree"),
                          BallotChannel.ONLINE)
    assert second.id == first.id and second.version == 2 and second.receipt != receipt
    assert db.session.scalar(select(func.count(Ballot.id))) == 1
    assert {c.choice for c in second.choices} == {"abstain", "disagree"}
    events = [json.loads(e.payload) for e in db.session.scalars(
        select(AuditEvent).where(AuditEvent.action.in_(["ballot.cast", "ballot.changed"]))
        .order_by(AuditEvent.seq))]
    assert [e["choices"] for e in events] == [{"1": "agree", "2": "disagree"},
                                              {"1": "abstain", "2": "disagree"}]
    assert events[0]["household_id"] == h.id and "王" not in json.dumps(events)


def test_confidential_ballots_keep_the_household_out_of_the_audit(compound):
    c = factories.make_consultation(compound, items=1, secrecy="confidential")
    factories.walk_to(c, "voting")
    payload = json.loads(db.session.scalars(select(AuditEvent).where(
        AuditEvent.action == "ballot.cast").order_by(AuditEvent.seq)).first().payload)
    assert payload["household_id"] is None and payload["area_dm2"] > 0 and payload["owner"]


def test_every_item_must_be_answered_with_an_allowed_choice(voting, compound):
    h = household(compound)
    for bad in ({voting.items[0].id: "agree"},
                answers(voting, "agree", "maybe"),
                answers(voting, "agree", "not_reached"),  # only door to door
                answers(voting, "agree", "undecided")):   # a survey answer, not a vote
        with pytest.raises(ValidationFailed):
            ballots.cast(None, voting, h, bad, BallotChannel.ONLINE)
    with pytest.raises(ValidationFailed, match="not part of this consultation"):
        ballots.cast(None, voting, h, {**answers(voting, "agree", "agree"), 999999: "agree"},
                     BallotChannel.ONLINE)
    ballots.cast(None, voting, h, answers(voting, "agree", "not_reached"),
                 BallotChannel.DOOR_TO_DOOR)
    assert audit_actions()[-1] == "ballot.cast"


def test_no_ballot_outside_the_vote_or_off_the_roll(voting, compound):
    stranger = factories.make_household(factories.make_building(factories.make_compound("别处")))
    with pytest.raises(Conflict, match="electoral roll"):
        ballots.cast(None, voting, stranger, answers(voting, "agree", "agree"),
                     BallotChannel.PAPER)
    with pytest.raises(Conflict, match="closed"):
        ballots.cast(None, voting, household(compound), answers(voting, "agree", "agree"),
                     BallotChannel.ONLINE, now=voting.vote_deadline)  # the deadline instant
    draft = factories.make_consultation(compound)
    with pytest.raises(Conflict, match="not open"):
        ballots.cast(None, draft, household(compound), {}, BallotChannel.ONLINE)


def test_a_repeated_submission_writes_nothing(voting, compound):
    h = household(compound)
    ballots.cast(None, voting, h, answers(voting, "agree", "agree"), BallotChannel.ONLINE,
                 submission="token-1")
    before = audit_actions()
    with pytest.raises(ballots.AlreadyRecorded):
        ballots.cast(None, voting, h, answers(voting, "disagree", "disagree"),
                     BallotChannel.ONLINE, submission="token-1")
    assert audit_actions() == before
    assert {c.choice for c in ballots.ballot_of(voting, h.id).choices} == {"agree"}


def test_paper_serials_belong_to_one_household(voting, compound):
    ballots.cast(None, voting, household(compound, 0, 0), answers(voting, "agree", "agree"),
                 BallotChannel.PAPER, serial="A-001")
    ballots.cast(None, voting, household(compound, 0, 0), answers(voting, "agree", "agree"),
                 BallotChannel.PAPER, serial="A-001")  # a correction of the same paper
    with pytest.raises(ValidationFailed, match="A-001"):
        ballots.cast(None, voting, household(compound, 0, 1), answers(voting, "agree", "agree"),
                     BallotChannel.PAPER, serial="A-001")


def test_proxies_need_a_name_and_respect_the_cap(voting, compound):
    voting.proxy_cap = 2
    with pytest.raises(ValidationFailed):
        ballots.cast(None, voting, household(compound), answers(voting, "agree", "agree"),
                     BallotChannel.PROXY, proxy=None)
    for n in range(2):
        ballots.cast(None, voting, household(compound, 0, n), answers(voting, "agree", "agree"),
                     BallotChannel.PROXY,
                     proxy=ballots.Proxy("张 三", ballots.proxy_identity("张 三"), None))
    with pytest.raises(ValidationFailed, match="already represents 2"):
        ballots.cast(None, voting, household(compound, 1, 0), answers(voting, "agree", "agree"),
                     BallotChannel.PROXY,
                     proxy=ballots.Proxy("张  三", ballots.proxy_identity("张  三"), None))


def test_owner_of_two_households_is_one_head_in_the_database_tally(voting, compound):
    from consult.ballots.models import RollEntry

    for entry in db.session.scalars(ballots.roll_entries(voting)).all()[:2]:
        entry.owner_identity = "same-owner"
    db.session.flush()
    result = ballots.compute(voting)
    assert result.roll.households == 8 and result.roll.owners == 7
    assert db.session.scalar(select(func.count(RollEntry.id))) == 8


def test_import_ballots_all_or_nothing(voting, compound, app):
    good = ("楼栋,单元,房号,议项,表决意见,方式,编号\n"
            "1号楼,1,101,1,同意,书面,P-1\n1号楼,1,101,2,反对,书面,P-1\n"
            "1号楼,1,102,1,agree,door_to_door,\n1号楼,1,102,2,未见到,入户,\n").encode()
    summary = ballots.import_ballots(None, voting, good, "b.csv")
    assert (summary.households, summary.new, summary.changed) == (2, 2, 0)
    assert audit_actions()[-1] == "ballot.imported"
    bad = ("楼栋,单元,房号,议项,表决意见,方式\n"
           "1号楼,1,101,1,同意,书面\n"          # item 2 missing for this household
           "9号楼,1,101,1,同意,书面\n"          # not on the roll
           "1号楼,1,102,3,同意,书面\n"          # no item 3
           "1号楼,1,102,1,也许,书面\n"          # not an answer
           "1号楼,1,102,2,同意,快递\n").encode()  # not a channel
    before = audit_actions()
    with pytest.raises(ImportRejected) as e:
        ballots.import_ballots(None, voting, bad, "bad.csv")
    assert sorted({err.line for err in e.value.errors}) == [2, 3, 4, 5, 6]
    assert audit_actions() == before


def test_export_roll_in_the_households_format(voting, app):
    data = ballots.export_roll(None, voting, "csv")
    lines = data.decode("utf-8-sig").splitlines()
    assert lines[0] == "楼栋,单元,楼层,房号,专有部分面积,业主姓名,业主标识" and len(lines) == 9
    assert audit_actions()[-1] == "ballot.roll_exported"


BALLOT_HEADER = "楼栋,单元,房号,议项,表决意见,方式,编号,受托人\n"


def test_imported_ballots_are_what_cast_records_and_the_audit_check_agrees(voting, compound):
    from consult.audit import service as audit

    first = (BALLOT_HEADER + "1号楼,1,101,1,同意,书面,P-1,\n1号楼,1,101,2,反对,书面,P-1,\n"
             "1号楼,1,102,1,agree,proxy,,张 三\n1号楼,1,102,2,abstain,proxy,,张 三\n").encode()
    assert (ballots.import_ballots(None, voting, first, "a.csv").new) == 2
    # One of them votes online meanwhile; a second file changes both paper ballots.
    ballots.cast(None, voting, household(compound, 0, 1), answers(voting, "disagree", "agree"),
                 BallotChannel.ONLINE)
    second = (BALLOT_HEADER + "1号楼,1,101,1,反对,书面,P-1,\n1号楼,1,101,2,反对,书面,P-1,\n"
              "1号楼,1,102,1,同意,入户,,\n1号楼,1,102,2,未见到,入户,,\n").encode()
    summary = ballots.import_ballots(None, voting, second, "b.csv")
    assert (summary.households, summary.new, summary.changed, summary.rows) == (2, 0, 2, 4)
    stored = {b.household_id: b for b in db.session.scalars(select(Ballot))}
    a, b = stored[household(compound, 0, 0).id], stored[household(compound, 0, 1).id]
    assert (a.version, a.channel, a.serial, {c.choice for c in a.choices}) == (
        2, "paper", "P-1", {"disagree"})
    assert (b.version, b.channel, b.proxy_name, b.proxy_identity) == (
        3, "door_to_door", None, None)
    assert {c.item_id: c.choice for c in b.choices} == answers(voting, "agree", "not_reached")
    assert audit_actions().count("ballot.imported") == 2
    assert [e for e in audit_actions() if e.startswith("ballot.c")] == [
        "ballot.cast", "ballot.cast", "ballot.changed", "ballot.changed", "ballot.changed"]
    # The chain holds, and every stored ballot is what its latest event says.
    result = audit.verify()
    assert result.ok and result.ballots_checked == 2, result


def test_serials_and_proxies_already_in_use_refuse_the_file(voting, compound):
    voting.proxy_cap = 1
    db.session.flush()
    ballots.cast(None, voting, household(compound, 1, 0), answers(voting, "agree", "agree"),
                 BallotChannel.PAPER, serial="P-7")
    ballots.cast(None, voting, household(compound, 1, 1), answers(voting, "agree", "agree"),
                 BallotChannel.PROXY,
                 proxy=ballots.Proxy("李四", ballots.proxy_identity("李四"), None))
    before = audit_actions()
    bad = (BALLOT_HEADER + "1号楼,1,101,1,同意,书面,P-7,\n1号楼,1,101,2,同意,书面,P-7,\n"
           "1号楼,1,102,1,同意,委托,,李四\n1号楼,1,102,2,同意,委托,,李四\n"
           "1号楼,1,201,1,同意,书面,P-8,\n1号楼,1,201,2,同意,书面,P-8,\n"
           "1号楼,1,202,1,同意,书面,P-8,\n1号楼,1,202,2,同意,书面,P-8,\n").encode()
    with pytest.raises(ImportRejected) as e:
        ballots.import_ballots(None, voting, bad, "bad.csv")
    assert [(err.line, err.column) for err in e.value.errors] == [
        (2, "G (编号)"), (4, "H (受托人)"), (8, "G (编号)")]
    assert "already been entered for another household" in e.value.errors[0].message
    assert "already represents 1 households" in e.value.errors[1].message
    assert audit_actions() == before


def test_a_ballot_entered_between_checking_and_writing_refuses_the_file(voting, compound,
                                                                       monkeypatch):
    real_lock_row = ballots.lock_row

    def someone_enters_a_ballot_first(obj, *, shared=False):
        # A committee member enters paper ballot P-1 for another household after the file
        # was checked, before it is written.
        monkeypatch.setattr(ballots, "lock_row", real_lock_row)
        ballots.cast(None, voting, household(compound, 1, 0), answers(voting, "agree", "agree"),
                     BallotChannel.PAPER, serial="P-1")
        real_lock_row(obj, shared=shared)

    monkeypatch.setattr(ballots, "lock_row", someone_enters_a_ballot_first)
    before = audit_actions()
    good = (BALLOT_HEADER + "1号楼,1,101,1,同意,书面,P-1,\n1号楼,1,101,2,反对,书面,P-1,\n"
            "1号楼,1,102,1,同意,书面,P-2,\n1号楼,1,102,2,反对,书面,P-2,\n").encode()
    with pytest.raises(ImportRejected) as e:
        ballots.import_ballots(None, voting, good, "b.csv")
    assert [(err.line, err.column) for err in e.value.errors] == [(2, "G (编号)")]
    stored = list(db.session.scalars(select(Ballot)))
    assert [(b.household_id, b.serial) for b in stored] == [(household(compound, 1, 0).id,
                                                             "P-1")]
    assert audit_actions() == [*before, "ballot.cast"]


def test_entering_ballots_after_the_vote_closed_meanwhile_is_refused(voting, compound,
                                                                   monkeypatch):
    from datetime import timedelta

    from consult.core.models import utcnow

    real_lock_row = ballots.lock_row

    def the_deadline_passes(obj, *, shared=False):
        voting.vote_deadline = utcnow() - timedelta(seconds=1)
        db.session.flush()
        real_lock_row(obj, shared=shared)

    monkeypatch.setattr(ballots, "lock_row", the_deadline_passes)
    good = (BALLOT_HEADER + "1号楼,1,101,1,同意,书面,P-1,\n1号楼,1,101,2,反对,书面,P-1,\n"
            ).encode()
    with pytest.raises(Conflict, match="Voting has closed"):
        ballots.import_ballots(None, voting, good, "b.csv", now=utcnow())
    assert db.session.scalar(select(func.count(Ballot.id))) == 0
