"""The chain verifier is a pure function: it is tested here on plain values."""

from dataclasses import replace

from consult.audit.models import GENESIS_HASH
from consult.audit.service import EventFields, canonical_json, event_hash, verify_chain


def make_chain(n: int) -> list[tuple[EventFields, str]]:
    chain, prev = [], GENESIS_HASH
    for seq in range(1, n + 1):
        fields = EventFields(chain_seq=seq, created_at=f"2026-11-21T08:00:{seq:02d}.000000Z",
                             actor_id=1, actor_label="admin", action="registry.household.updated",
                             object_type="household", object_id=str(seq), compound_id=7,
                             payload=canonical_json({"n": seq, "名": "值"}), prev_hash=prev)
        digest = event_hash(fields)
        chain.append((fields, digest))
        prev = digest
    return chain


def test_an_intact_chain_verifies_against_its_head():
    chain = make_chain(5)
    result = verify_chain(chain, (5, chain[-1][1]))
    assert result.ok and result.checked == 5 and result.head_seq == 5


def test_empty_chain_matches_the_genesis_head():
    assert verify_chain([], (0, GENESIS_HASH)).ok


def test_a_changed_payload_is_caught_at_that_event():
    chain = make_chain(5)
    fields, digest = chain[2]
    chain[2] = (replace(fields, payload=canonical_json({"n": 999})), digest)
    result = verify_chain(chain, (5, chain[-1][1]))
    assert not result.ok and result.problem.seq == 3 and result.problem.kind == "hash"
    assert result.checked == 2


def test_a_deleted_event_is_caught_as_a_gap():
    chain = make_chain(5)
    del chain[1]
    result = verify_chain(chain, (5, chain[-1][1]))
    assert result.problem.kind == "gap" and result.problem.seq == 3


def test_a_deleted_last_event_is_caught_by_the_head():
    chain = make_chain(5)
    head = (5, chain[-1][1])
    result = verify_chain(chain[:-1], head)
    assert result.problem.kind == "head"


def test_swapped_sequence_numbers_are_caught():
    chain = make_chain(5)
    (f2, h2), (f3, h3) = chain[1], chain[2]
    chain[1], chain[2] = (replace(f3, chain_seq=2), h3), (replace(f2, chain_seq=3), h2)
    result = verify_chain(chain, (5, chain[-1][1]))
    assert not result.ok and result.problem.seq == 2


def test_an_inserted_event_with_a_valid_own_hash_breaks_the_next_link():
    chain = make_chain(4)
    forged = replace(chain[1][0], payload=canonical_json({"forged": True}))
    chain.insert(2, (forged, event_hash(forged)))
    renumbered = [(replace(f, chain_seq=i + 1), h) for i, (f, h) in enumerate(chain)]
    result = verify_chain(renumbered, None)
    assert not result.ok and result.problem.seq == 3


def test_canonical_json_is_independent_of_key_order_and_keeps_chinese():
    assert canonical_json({"b": 1, "a": "业主"}) == canonical_json({"a": "业主", "b": 1})
    assert canonical_json({"a": "业主"}) == '{"a":"业主"}'


def test_hash_covers_every_field():
    fields = make_chain(1)[0][0]
    base = event_hash(fields)
    for name, value in [("chain_seq", 2), ("chain_id", 3),
                        ("created_at", "2026-11-21T08:00:01.000001Z"),
                        ("actor_id", 2), ("actor_label", "x"), ("action", "y"),
                        ("object_type", "z"), ("object_id", "9"), ("compound_id", 8),
                        ("payload", "{}"), ("prev_hash", "1" * 64)]:
        assert event_hash(replace(fields, **{name: value})) != base, name
