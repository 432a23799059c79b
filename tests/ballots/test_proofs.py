"""Ballot proofs: the tree frozen when the vote closes, and the public page where whoever
holds a receipt code sees what its ballot counted and the proof that it is in the tree."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, select, update

from consult.audit.models import AuditEvent
from consult.ballots import merkle, proofs, records
from consult.ballots import service as ballots
from consult.ballots.models import Ballot, BallotChannel, BallotLeaf
from consult.consultations.states import Action
from consult.core.models import utcnow
from consult.extensions import db
from consult.notices import service as notices
from consult.notices.models import NoticeKind
from consult.process import workflow
from tests import factories
from tests.conftest import audit_actions

EN = {"Accept-Language": "en"}
# Each household's answers on the two items, in roll order.
ANSWERS = [("agree", "agree"), ("agree", "disagree"), ("disagree", "disagree"),
           ("abstain", "agree"), ("agree", "abstain"), ("disagree", "agree"),
           ("agree", "agree"), ("not_reached", "not_reached")]


def counted(compound: Any, secrecy: str = "open") -> Any:
    """A vote of the compound's eight households, every one of them voting, closed and
    published."""
    c = factories.make_consultation(compound, items=2, secrecy=secrecy)
    factories.walk_to(c, "discussing")
    c.vote_deadline = utcnow() + timedelta(days=7)
    workflow.apply(c, Action.OPEN_VOTE, None)
    for entry, answers in zip(db.session.scalars(ballots.roll_entries(c)), ANSWERS,
                              strict=True):
        household = db.session.get(factories.Household, entry.household_id)
        ballots.cast(None, c, household, dict(zip([i.id for i in c.items], answers,
                                                  strict=True)),
                     BallotChannel.DOOR_TO_DOOR)
    workflow.apply(c, Action.CLOSE_VOTE, None)
    workflow.apply(c, Action.PUBLISH_RESOLUTION, None)
    return c


def all_ballots(c: Any) -> list[Ballot]:
    return list(db.session.scalars(select(Ballot).where(Ballot.consultation_id == c.id)
                                   .order_by(Ballot.id)))


def answers_of(c: Any, ballot: Ballot) -> dict[str, str]:
    numbers = {item.id: str(item.number) for item in c.items}
    return {numbers[choice.item_id]: choice.choice for choice in ballot.choices}


def check(client: Any, c: Any, receipt: str, address: str = "10.1.1.1") -> Any:
    return client.post(f"/consultations/{c.id}/proof", data={"receipt": receipt}, headers=EN,
                       environ_base={"REMOTE_ADDR": address})


def test_closing_the_vote_freezes_the_tree_with_the_tally(compound):
    c = counted(compound)
    result = ballots.vote_result(c)
    stored = all_ballots(c)
    assert len(stored) == 8 and all(len(b.receipt) == 19 for b in stored)
    # The leaves: one per counted ballot, in the order of their hashes, naming no household.
    leaves = list(db.session.scalars(select(BallotLeaf).where(BallotLeaf.consultation_id == c.id)
                                     .order_by(BallotLeaf.position)))
    hashes = [merkle.leaf_hash(leaf.data.encode()) for leaf in leaves]
    assert hashes == sorted(hashes) and [leaf.position for leaf in leaves] == list(range(8))
    assert (result.tree_root, result.tree_size) == (merkle.root(hashes).hex(), 8)
    expected = sorted(records.leaf_data(c.id, 1, records.receipt_hash(c.id, 1, b.receipt),
                                        answers_of(c, b)).decode() for b in stored)
    assert sorted(leaf.data for leaf in leaves) == expected
    assert all(set(json.loads(leaf.data)) == {"answers", "consultation", "receipt_hash",
                                              "round"} for leaf in leaves)
    # The root is in the close's audit event, and on the resolution notice.
    event = db.session.scalars(select(AuditEvent).where(
        AuditEvent.action == "ballot.result_frozen")).one()
    assert json.loads(event.payload)["tree"] == {"root": result.tree_root, "size": 8}
    notice = notices.current_notice(c, NoticeKind.RESOLUTION)
    assert notices.content_of(notice)["proof"] == {
        "round": 1, "root": result.tree_root, "size": 8, "tree": "RFC 6962, SHA-256"}


def test_every_counted_ballot_has_a_proof_that_leads_to_the_root(compound):
    c = counted(compound, secrecy="confidential")
    root = bytes.fromhex(ballots.vote_result(c).tree_root)
    for ballot in all_ballots(c):
        proof = proofs.find_proof(c, ballot.receipt)
        assert proof is not None and proof.holds and proof.answers == answers_of(c, ballot)
        leaf = bytes.fromhex(proof.leaf_hash)
        assert merkle.verify_inclusion(proof.index, proof.size, leaf,
                                       [bytes.fromhex(h) for h in proof.path], root)
        assert proof.steps[-1].result == root.hex() if proof.steps else leaf == root
    assert proofs.find_proof(c, "ZZZZ-ZZZZ-ZZZZ-ZZZZ") is None
    assert proofs.find_proof(c, "not a code") is None


def test_a_vote_that_closes_with_no_ballot_has_an_empty_tree(compound):
    c = factories.make_consultation(compound, items=1)
    factories.walk_to(c, "discussing")
    c.vote_deadline = utcnow() + timedelta(days=7)
    workflow.apply(c, Action.OPEN_VOTE, None)
    workflow.apply(c, Action.CLOSE_VOTE, None, now=c.vote_deadline)
    result = ballots.vote_result(c)
    assert (result.tree_root, result.tree_size) == (merkle.EMPTY_ROOT.hex(), 0)


def test_the_proof_page_shows_the_holder_what_the_ballot_counted(client, compound):
    c = counted(compound)
    ballot = all_ballots(c)[1]  # agree, disagree
    page = client.get(f"/consultations/{c.id}/proof", headers=EN)
    assert page.status_code == 200 and 'name="receipt"' in page.text
    assert "<script" not in page.text
    typed = ballot.receipt.lower().replace("-", "")  # however it is typed
    response = check(client, c, typed)
    assert response.status_code == 200
    assert response.headers["Cache-Control"].startswith("no-store")
    text = response.text
    assert "Your ballot was counted." in text and "one of the 8 ballots counted" in text
    assert re.search(r"Item 1: 改造项目1</div>\s*<div[^>]*>Agree<", text)
    assert re.search(r"Item 2: 改造项目2</div>\s*<div[^>]*>Disagree<", text)
    proof = proofs.find_proof(c, ballot.receipt)
    for value in (proof.frozen_root, proof.leaf_hash, *proof.path):
        assert value in text
    assert "The last hash is the root frozen when the vote closed." in text
    # Nothing names the household: not its address (hex digits may happen to spell a room).
    household = db.session.get(factories.Household, ballot.household_id)
    assert household.label not in text and household.building.name not in text
    # Checking writes nothing to the audit trail.
    assert "ballot.receipts_paused" not in audit_actions()


def test_a_wrong_receipt_reveals_nothing(client, compound):
    c = counted(compound)
    private = set()
    for ballot in all_ballots(c):
        proof = proofs.find_proof(c, ballot.receipt)
        private |= {ballot.receipt, proof.leaf_hash, proof.leaf_data, proof.receipt_hash}
    pages = []
    right = all_ballots(c)[0].receipt
    # One character off a real receipt (never the real one: it may end in Z itself).
    near = right[:-1] + ("Z" if right[-1] != "Z" else "Y")
    for wrong in ("ZZZZ-ZZZZ-ZZZZ-ZZZZ", "YYYY-YYYY-YYYY-YYYY", "ABCD", "' OR 1=1 --", near):
        response = check(client, c, wrong)
        assert response.status_code == 200
        text = response.text
        assert "No counted ballot of this consultation has this receipt code." in text
        assert "Your ballot was counted." not in text and "What it counted" not in text
        assert not [value for value in private if value in text]
        # The same page whatever was typed, but for the code itself and the form's token.
        pages.append(re.sub(r'value="[^"]*"', "", text).replace(wrong, "CODE").replace(
            wrong.replace("'", "&#39;"), "CODE"))
    assert len(set(pages)) == 1
    # Another consultation's receipt is no receipt here.
    other = counted(factories.make_compound_with_households())
    assert "Your ballot was counted." not in check(client, c, all_ballots(other)[0].receipt).text


def test_guessing_receipts_is_paused_for_the_guessers_address(app, client, compound,
                                                               monkeypatch):
    c = counted(compound)
    monkeypatch.setitem(app.config, "RECEIPT_LOCKOUT_THRESHOLD", 3)
    right = all_ballots(c)[0].receipt
    assert check(client, c, "ZZZZ-ZZZZ-ZZZZ-ZZZZ").status_code == 200
    assert check(client, c, "ZZZZ-ZZZZ-ZZZZ-ZZZY").status_code == 200
    third = check(client, c, "ZZZZ-ZZZZ-ZZZZ-ZZZX")
    assert third.status_code == 429 and "checking receipts is paused" in third.text
    # A wrong code stays paused; a right full-length receipt (80 bits: no guesser finds one)
    # is answered, so the households behind the guesser's shared address are not shut out.
    again = check(client, c, "ZZZZ-ZZZZ-ZZZZ-ZZZW")
    assert again.status_code == 429 and "checking receipts is paused" in again.text
    assert "Your ballot was counted." in check(client, c, right).text
    assert audit_actions().count("ballot.receipts_paused") == 1
    event = db.session.scalars(select(AuditEvent).where(
        AuditEvent.action == "ballot.receipts_paused")).one()
    assert event.compound_id == compound.id and "10.1.1.1" not in event.payload
    # Another address is not held up; the guesser's pause ends by itself.
    assert check(client, c, "ZZZZ-ZZZZ-ZZZZ-ZZZV", address="10.9.9.9").status_code == 200
    later = utcnow() + timedelta(minutes=61)
    monkeypatch.setattr(proofs, "utcnow", lambda: later)
    assert check(client, c, "ZZZZ-ZZZZ-ZZZZ-ZZZV").status_code == 200


def test_a_paused_address_cannot_try_the_short_receipts_of_earlier_ballots(
        app, client, compound, monkeypatch):
    """Receipts of 8 characters (40 bits) could be found by a patient guesser: while an
    address is paused they are not answered, right or wrong."""
    c = factories.make_consultation(compound, items=1)
    factories.walk_to(c, "discussing")
    c.vote_deadline = utcnow() + timedelta(days=7)
    workflow.apply(c, Action.OPEN_VOTE, None)
    household = compound.buildings[0].households[0]
    ballot = ballots.cast(None, c, household, {c.items[0].id: "agree"}, BallotChannel.PAPER)
    ballot.receipt = "K7QX-3MPA"
    db.session.flush()
    workflow.apply(c, Action.CLOSE_VOTE, None, now=c.vote_deadline)
    monkeypatch.setitem(app.config, "RECEIPT_LOCKOUT_THRESHOLD", 1)
    assert check(client, c, "ZZZZ-ZZZZ").status_code == 429
    refused = check(client, c, "K7QX-3MPA")
    assert refused.status_code == 429 and "Your ballot was counted." not in refused.text
    assert "Your ballot was counted." in check(client, c, "K7QX-3MPA", address="10.9.9.9").text


def test_a_flood_of_checks_is_refused(app, client, compound, monkeypatch):
    c = counted(compound)
    monkeypatch.setitem(app.config, "RECEIPT_RATE_LIMIT", "3 per minute")
    right = all_ballots(c)[0].receipt
    assert [check(client, c, right).status_code for _ in range(4)] == [200, 200, 200, 429]


def test_receipts_issued_before_they_were_lengthened_still_prove(client, compound):
    c = factories.make_consultation(compound, items=1)
    factories.walk_to(c, "discussing")
    c.vote_deadline = utcnow() + timedelta(days=7)
    workflow.apply(c, Action.OPEN_VOTE, None)
    household = compound.buildings[0].households[0]
    ballot = ballots.cast(None, c, household, {c.items[0].id: "agree"}, BallotChannel.PAPER)
    ballot.receipt = "K7QX-3MPA"  # 8 characters, as issued before
    db.session.flush()
    workflow.apply(c, Action.CLOSE_VOTE, None, now=c.vote_deadline)
    text = check(client, c, "k7qx 3mpa").text
    assert "Your ballot was counted." in text and "It is the only ballot counted." in text
    assert proofs.find_proof(c, "K7QX3MPA").holds


def test_a_leaf_changed_after_the_count_shows_on_every_proof(client, compound):
    c = counted(compound)
    first, second = all_ballots(c)[:2]
    leaf = proofs.find_proof(c, first.receipt)
    db.session.execute(update(BallotLeaf).where(
        BallotLeaf.consultation_id == c.id, BallotLeaf.position == leaf.index).values(
        data=leaf.leaf_data.replace('"agree"', '"disagree"')))
    text = check(client, c, second.receipt).text
    assert "no longer lead to the root frozen when the vote closed" in text
    assert "Your ballot was counted." not in text


def test_audit_verify_names_a_changed_leaf_or_root(runner, compound):
    from consult.audit import service as audit
    from consult.ballots.models import VoteResult

    c = counted(compound)
    assert audit.verify().ok
    result = ballots.vote_result(c)
    frozen = result.tree_root
    leaf = db.session.scalars(select(BallotLeaf).where(BallotLeaf.consultation_id == c.id)
                              .order_by(BallotLeaf.position)).first()
    original = leaf.data
    # A leaf's answer changed in the database after the count.
    db.session.execute(update(BallotLeaf).where(BallotLeaf.id == leaf.id).values(
        data=original.replace('"1":"', '"1":"x')))
    (problem,) = audit.verify().checks["ballots"].problems
    assert (problem.kind, problem.name, problem.expected) == ("tree_leaves", f"{c.id}/1", frozen)
    outcome = runner.invoke(args=["audit", "verify"], env={"CONSULT_LANG": "en"})
    assert outcome.exit_code == 1
    assert f"consultation {c.id}, round 1: the stored leaves of the ballot tree give" in (
        outcome.output)
    # The leaf put back, and the root rewritten to fit a forged tree instead.
    db.session.execute(update(BallotLeaf).where(BallotLeaf.id == leaf.id).values(data=original))
    db.session.execute(update(VoteResult).where(VoteResult.id == result.id).values(
        tree_root="0" * 64))
    kinds = [(p.kind, p.expected, p.found) for p in audit.verify().checks["ballots"].problems]
    assert kinds == [("tree_event", frozen, "0" * 64), ("tree_leaves", "0" * 64, frozen)]


def test_the_households_receipt_page_leads_to_its_proof(client, login_as, compound):
    c = counted(compound, secrecy="confidential")
    household = compound.buildings[0].households[0]
    login_as("resident", household=household)
    page = client.get(f"/consultations/{c.id}/ballot", headers=EN).text
    ballot = ballots.ballot_of(c, household.id)
    assert f'action="/consultations/{c.id}/proof"' in page
    assert f'name="receipt" value="{ballot.receipt}"' in page
    text = client.post(f"/consultations/{c.id}/proof", data={"receipt": ballot.receipt},
                       headers=EN).text
    assert "Your ballot was counted." in text


def test_the_notice_shows_the_root_and_leads_to_the_proof_page(client, compound):
    c = counted(compound)
    notice = notices.current_notice(c, NoticeKind.RESOLUTION)
    text = client.get(f"/notices/{notice.id}", headers=EN).text
    assert ballots.vote_result(c).tree_root in text
    assert f'href="/consultations/{c.id}/proof"' in text
    # ... and the proof page back to the notice, with the same root.
    page = client.get(f"/consultations/{c.id}/proof", headers=EN).text
    assert notice.verify_code in page and ballots.vote_result(c).tree_root in page


def test_before_the_count_there_is_nothing_to_check(client, voting):
    page = client.get(f"/consultations/{voting.id}/proof", headers=EN)
    assert page.status_code == 200 and 'name="receipt"' not in page.text
    assert "once the vote has been closed and counted" in page.text
    assert check(client, voting, "ZZZZ-ZZZZ-ZZZZ-ZZZZ").status_code == 200
    assert db.session.scalar(select(func.count()).select_from(BallotLeaf)) == 0


@pytest.mark.parametrize("stage", ["draft"])
def test_a_draft_has_no_proof_page(client, compound, stage):
    c = factories.make_consultation(compound, stage=stage)
    assert client.get(f"/consultations/{c.id}/proof").status_code == 404
