import json

import pytest
from sqlalchemy import func, select

from consult.audit.models import AuditEvent
from consult.ballots import service as ballots
from consult.ballots.models import Ballot, BallotChannel
from consult.core.errors import Conflict, ImportRejected, ValidationFailed
from consult.core.models import utcnow
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
             "1号楼,1,102,1,agree,proxy,,张 三\n1号楼,1,102,2,abstain,proxy,,张 三\n"
             "1号楼,1,201,1,未见到,入户,,\n1号楼,1,201,2,未见到,入户,,\n").encode()
    assert (ballots.import_ballots(None, voting, first, "a.csv").new) == 3
    # Nobody was home at 201: a second file brings its paper ballot, which replaces that
    # note; 101's paper ballot is given again exactly as it is recorded.
    second = (BALLOT_HEADER + "1号楼,1,101,1,同意,书面,P-1,\n1号楼,1,101,2,反对,书面,P-1,\n"
              "1号楼,1,201,1,同意,书面,P-2,\n1号楼,1,201,2,反对,书面,P-2,\n").encode()
    summary = ballots.import_ballots(None, voting, second, "b.csv")
    assert (summary.households, summary.new, summary.changed, summary.unchanged,
            summary.rows) == (1, 0, 1, 1, 4)
    stored = {b.household_id: b for b in db.session.scalars(select(Ballot))}
    a, b = stored[household(compound, 0, 0).id], stored[household(compound, 0, 1).id]
    c = stored[household(compound, 0, 2).id]
    assert (a.version, a.channel, a.serial, {ch.choice for ch in a.choices}) == (
        1, "paper", "P-1", {"agree", "disagree"})
    assert (b.version, b.channel, b.proxy_name, b.proxy_identity) == (
        1, "proxy", "张 三", "张 三")
    assert (c.version, c.channel, c.serial) == (2, "paper", "P-2")
    assert {ch.item_id: ch.choice for ch in c.choices} == answers(voting, "agree", "disagree")
    assert audit_actions().count("ballot.imported") == 2
    assert [e for e in audit_actions() if e.startswith("ballot.c")] == [
        "ballot.cast", "ballot.cast", "ballot.cast", "ballot.changed"]
    # The chain holds, and every stored ballot is what its latest event says.
    result = audit.verify()
    assert result.ok and result.checks["ballots"].checked == 3, result


def test_a_file_never_replaces_a_ballot_the_household_has(voting, compound):
    ballots.cast(None, voting, household(compound, 0, 0), answers(voting, "agree", "agree"),
                 BallotChannel.ONLINE)
    ballots.cast(None, voting, household(compound, 0, 1), answers(voting, "agree", "agree"),
                 BallotChannel.PAPER, serial="P-5")
    before = audit_actions()
    bad = (BALLOT_HEADER + "1号楼,1,101,1,未见到,入户,,\n1号楼,1,101,2,未见到,入户,,\n"
           "1号楼,1,102,1,反对,书面,P-5,\n1号楼,1,102,2,反对,书面,P-5,\n").encode()
    with pytest.raises(ImportRejected) as e:
        ballots.import_ballots(None, voting, bad, "bad.csv")
    assert [(err.line, err.column) for err in e.value.errors] == [(2, "E (表决意见)"),
                                                                 (4, "C (房号)")]
    assert "never replace" in e.value.errors[0].message
    assert "already has a ballot (Paper ballot" in e.value.errors[1].message
    assert "correction" in e.value.errors[1].message
    assert audit_actions() == before
    assert {ch.choice for ch in ballots.ballot_of(voting, household(compound).id).choices} == {
        "agree"}


def test_files_under_double_entry_are_one_members_entries(voting, compound):
    from consult.ballots.models import BallotEntry, EntryState

    voting.double_entry = True
    a, b = (factories.make_user("committee", compound=compound) for _ in range(2))
    file = (BALLOT_HEADER + "1号楼,1,101,1,同意,书面,P-1,\n1号楼,1,101,2,反对,书面,P-1,\n"
            "1号楼,1,102,1,同意,书面,P-2,\n1号楼,1,102,2,同意,书面,P-2,\n").encode()
    summary = ballots.import_ballots(a, voting, file, "a.csv")
    assert (summary.new, summary.awaiting_second) == (0, 2)
    assert db.session.scalar(select(func.count(Ballot.id))) == 0
    # The same member cannot give the second entries, by file or by hand.
    with pytest.raises(ImportRejected) as e:
        ballots.import_ballots(a, voting, file, "a.csv")
    assert {err.line for err in e.value.errors} == {2, 4}
    assert "second entry must be made by another member" in e.value.errors[0].message
    # Another member's file: 101 agrees with the first entry, 102 does not.
    other = file.replace("1号楼,1,102,2,同意".encode(), "1号楼,1,102,2,反对".encode())
    summary = ballots.import_ballots(b, voting, other, "b.csv")
    assert (summary.new, summary.differs) == (1, 1)
    assert ballots.ballot_of(voting, household(compound, 0, 0).id).cast_at < utcnow()
    assert ballots.ballot_of(voting, household(compound, 0, 1).id) is None
    states = {(e.household_id, e.first_id is None): e.state
              for e in db.session.scalars(select(BallotEntry))}
    assert states == {
        (household(compound, 0, 0).id, True): EntryState.COUNTED,
        (household(compound, 0, 0).id, False): EntryState.MATCHED,
        (household(compound, 0, 1).id, True): EntryState.DIFFERS,
        (household(compound, 0, 1).id, False): EntryState.DIFFERS}
    from consult.audit import service as audit

    assert audit.verify().ok


def test_proxy_ballots_from_a_file_wait_for_a_required_authorisation(voting, compound):
    voting.proxy_document_required = True
    file = (BALLOT_HEADER + "1号楼,1,102,1,agree,proxy,,张三\n1号楼,1,102,2,agree,proxy,,张三\n"
            ).encode()
    summary = ballots.import_ballots(None, voting, file, "a.csv")
    assert (summary.new, summary.awaiting_authorisation) == (0, 1)
    assert ballots.ballot_of(voting, household(compound, 0, 1).id) is None


def test_checking_a_file_writes_nothing_and_does_not_tell_a_second_entry_how_it_compares(
        voting, compound):
    from consult.ballots.entries import Paper, enter
    from consult.ballots.models import BallotEntry

    voting.double_entry = True
    first = factories.make_user("committee", compound=compound)
    enter(first, voting, household(compound, 0, 0),
          Paper(BallotChannel.PAPER, answers(voting, "agree", "agree")))
    before = (audit_actions(), db.session.scalar(select(func.count(BallotEntry.id))))
    file = (BALLOT_HEADER + "1号楼,1,101,1,反对,书面,,\n1号楼,1,101,2,反对,书面,,\n"
            "1号楼,1,102,1,同意,书面,,\n1号楼,1,102,2,同意,书面,,\n"
            "9号楼,1,101,1,同意,书面,,\n").encode()
    checked = ballots.check_ballot_file(None, voting, file, "a.csv")
    assert [e.line for e in checked.errors] == [6]
    assert {s.household_id: checked.outcomes[s.household_id] for s in checked.sheets} == {
        household(compound, 0, 0).id: ballots.FileOutcome.SECOND,
        household(compound, 0, 1).id: ballots.FileOutcome.FIRST}
    assert (audit_actions(), db.session.scalar(select(func.count(BallotEntry.id)))) == before


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


def test_import_report_says_what_counts_and_what_waits():
    summary = ballots.BallotImportSummary(rows=9, households=3, new=2, changed=1)
    assert ballots.import_report(summary) == [
        "Recorded the ballots of 3 households (2 new, 1 changed) from 9 rows."]
    summary.awaiting_second, summary.unchanged = 2, 1
    assert ballots.import_report(summary)[1] == (
        "Not counted yet: 2 await their second entry, 0 differ from their first entry, 0 "
        "await a written authorisation. Already recorded exactly so: 1.")
