"""The tree over a round's counted ballots, as ``ballots.proofs`` builds it from
``ballots.records`` leaves (pure): every ballot's proof verifies against the root, and the root
changes with any changed answer, any ballot left out and any ballot added. The recount tool
encodes receipts and leaves exactly as the application does."""

from __future__ import annotations

import json

from hypothesis import assume, given, settings
from hypothesis import strategies as st

from consult.ballots import merkle, records
from tests.unit.test_merkle import recount

ANSWERS = ("agree", "disagree", "abstain", "undecided", "not_reached")
CONSULTATION, ROUND = 17, 2

receipt_codes = st.text(records.RECEIPT_ALPHABET, min_size=16, max_size=16).map(
    records.format_receipt)
ballot = st.tuples(receipt_codes, st.lists(st.sampled_from(ANSWERS), min_size=1, max_size=4))
ballot_lists = st.lists(ballot, min_size=1, max_size=60, unique_by=lambda b: b[0])


def leaves_of(ballots: list[tuple[str, list[str]]]) -> list[tuple[bytes, str, bytes]]:
    """(leaf hash, receipt hash, data), in the tree's order: as ``proofs.freeze_tree``."""
    out = []
    for code, answers in ballots:
        digest = records.receipt_hash(CONSULTATION, ROUND, code)
        data = records.leaf_data(CONSULTATION, ROUND, digest,
                                 {str(n + 1): a for n, a in enumerate(answers)})
        out.append((merkle.leaf_hash(data), digest, data))
    return sorted(out)


def root_of(ballots: list[tuple[str, list[str]]]) -> bytes:
    return merkle.root([leaf for leaf, _d, _data in leaves_of(ballots)])


@settings(max_examples=150, deadline=None)
@given(ballot_lists)
def test_every_counted_ballots_proof_verifies_against_the_root(ballots):
    leaves = leaves_of(ballots)
    hashes = [leaf for leaf, _d, _data in leaves]
    root = merkle.root(hashes)
    for code, answers in ballots:
        digest = records.receipt_hash(CONSULTATION, ROUND, code.lower())  # as typed
        (index,) = [i for i, (_leaf, d, _data) in enumerate(leaves) if d == digest]
        path = merkle.inclusion_path(index, hashes)
        assert merkle.verify_inclusion(index, len(hashes), hashes[index], path, root)
        # The leaf holds the answers counted, and no more than that.
        assert json.loads(leaves[index][2]) == {
            "answers": {str(n + 1): a for n, a in enumerate(answers)},
            "consultation": CONSULTATION, "receipt_hash": digest, "round": ROUND}


@settings(max_examples=150, deadline=None)
@given(ballot_lists, st.data())
def test_a_changed_answer_changes_the_root(ballots, data):
    n = data.draw(st.integers(0, len(ballots) - 1))
    code, answers = ballots[n]
    item = data.draw(st.integers(0, len(answers) - 1))
    other = data.draw(st.sampled_from([a for a in ANSWERS if a != answers[item]]))
    changed = [*ballots[:n], (code, [*answers[:item], other, *answers[item + 1:]]),
               *ballots[n + 1:]]
    assert root_of(changed) != root_of(ballots)


@settings(max_examples=150, deadline=None)
@given(ballot_lists, st.data())
def test_a_dropped_ballot_changes_the_root(ballots, data):
    n = data.draw(st.integers(0, len(ballots) - 1))
    assert root_of([*ballots[:n], *ballots[n + 1:]]) != root_of(ballots)


@settings(max_examples=150, deadline=None)
@given(ballot_lists, ballot)
def test_an_added_ballot_changes_the_root(ballots, extra):
    assume(extra[0] not in {code for code, _answers in ballots})
    assert root_of([*ballots, extra]) != root_of(ballots)


@settings(max_examples=100, deadline=None)
@given(ballot_lists)
def test_the_order_ballots_were_cast_in_does_not_matter(ballots):
    """Leaves are ordered by their hashes, so the root says nothing about who voted when."""
    assert root_of(ballots[::-1]) == root_of(ballots)


@settings(max_examples=200, deadline=None)
@given(receipt_codes, st.lists(st.sampled_from(ANSWERS), max_size=12))
def test_the_recount_tool_encodes_receipts_and_leaves_as_the_application(code, answers):
    typed = code.replace("-", " ").lower()
    digest = records.receipt_hash(CONSULTATION, ROUND, code)
    assert recount.receipt_hash(CONSULTATION, ROUND, typed) == digest
    assert records.receipt_hash(CONSULTATION, ROUND, typed) == digest
    choices = {str(n + 1): a for n, a in enumerate(answers)}
    assert recount.leaf_data(CONSULTATION, ROUND, digest, choices) == records.leaf_data(
        CONSULTATION, ROUND, digest, choices)


def test_a_receipt_as_typed():
    code = "K7QX-3MPA-9RTV-W2HC"
    full_width = "Ｋ７ＱＸ－３ＭＰＡ－９ＲＴＶ－Ｗ２ＨＣ"  # from a Chinese keyboard
    for typed in ("k7qx3mpa9rtvw2hc", " K7QX 3MPA 9RTV W2HC ", full_width):
        assert records.receipt_characters(typed) == "K7QX3MPA9RTVW2HC"
    assert records.receipt_characters("K7QX-3MPA") == "K7QX3MPA"  # issued before: still valid
    for wrong in ("", None, "K7QX-3MPA-9RTV", "K7QX-3MPA-9RTV-W2H0", "K7QX-3MPA-9RTV-W2HC-A"):
        assert records.receipt_characters(wrong) is None
    # The hash is bound to the consultation and the round: one receipt, three different hashes.
    assert len({records.receipt_hash(1, 1, code), records.receipt_hash(2, 1, code),
                records.receipt_hash(1, 2, code)}) == 3
