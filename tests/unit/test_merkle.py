"""The ballot tree: RFC 6962 hashing checked against the reference vectors, every inclusion
proof of every tree shape, and the copy of the same code in ``tools/recount.py``."""

from __future__ import annotations

import hashlib
import importlib.util
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from consult.ballots import merkle

RECOUNT = Path(__file__).resolve().parents[2] / "tools" / "recount.py"

# The Certificate Transparency reference leaves and tree heads (RFC 6962), as published with
# the C++ and Go implementations (Trillian's merkle tests): the root of the first n leaves,
# for n = 0 … 8.
LEAVES = [bytes.fromhex(h) for h in (
    "", "00", "10", "2021", "3031", "40414243", "5051525354555657",
    "606162636465666768696a6b6c6d6e6f")]
ROOTS = [
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]
# (leaf index, tree size, audit path), from the same reference tests.
INCLUSION = [
    (0, 1, []),
    (0, 8, ["96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"]),
    (5, 8, ["bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"]),
    (2, 3, ["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"]),
    (1, 5, ["6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"]),
]


def load_recount():
    spec = importlib.util.spec_from_file_location("recount_tool", RECOUNT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


recount = load_recount()


def hashed(data: list[bytes]) -> list[bytes]:
    return [merkle.leaf_hash(d) for d in data]


def rfc_mth(data: list[bytes]) -> bytes:
    """RFC 6962 §2.1 as written: MTH({}) = SHA-256(), MTH({d0}) = SHA-256(0x00 || d0),
    MTH(D[n]) = SHA-256(0x01 || MTH(D[0:k]) || MTH(D[k:n])), k the largest power of 2 < n."""
    if not data:
        return hashlib.sha256(b"").digest()
    if len(data) == 1:
        return hashlib.sha256(b"\x00" + data[0]).digest()
    k = 1
    while k * 2 < len(data):
        k *= 2
    return hashlib.sha256(b"\x01" + rfc_mth(data[:k]) + rfc_mth(data[k:])).digest()


def rfc_path(m: int, data: list[bytes]) -> list[bytes]:
    """RFC 6962 §2.1.1 PATH(m, D[n]) as written."""
    if len(data) == 1:
        return []
    k = 1
    while k * 2 < len(data):
        k *= 2
    if m < k:
        return [*rfc_path(m, data[:k]), rfc_mth(data[k:])]
    return [*rfc_path(m - k, data[k:]), rfc_mth(data[:k])]


def test_the_reference_tree_heads():
    assert merkle.EMPTY_ROOT.hex() == ROOTS[0]
    for n in range(len(LEAVES) + 1):
        assert merkle.root(hashed(LEAVES[:n])).hex() == ROOTS[n], n
        assert recount.tree_root(hashed(LEAVES[:n])).hex() == ROOTS[n], n


@pytest.mark.parametrize(("index", "size", "path"), INCLUSION)
def test_the_reference_inclusion_proofs(index, size, path):
    leaves = hashed(LEAVES[:size])
    assert [h.hex() for h in merkle.inclusion_path(index, leaves)] == path
    assert [h.hex() for h in recount.audit_path(index, leaves)] == path
    proof = [bytes.fromhex(h) for h in path]
    root = bytes.fromhex(ROOTS[size])
    assert merkle.verify_inclusion(index, size, leaves[index], proof, root)
    assert recount.root_from_path(index, size, leaves[index], proof) == root


def corruptions(index: int, size: int, leaf: bytes, path: list[bytes], root: bytes):
    """Every way a proof can be wrong (after Trillian's verifier tests)."""
    yield "index - 1", index - 1, size, leaf, path, root
    yield "index + 1", index + 1, size, leaf, path, root
    yield "index ^ 2", index ^ 2, size, leaf, path, root
    yield "size * 2", index, size * 2, leaf, path, root
    yield "size // 2", index, size // 2, leaf, path, root
    yield "wrong leaf", index, size, merkle.leaf_hash(b"WrongLeaf"), path, root
    yield "empty root", index, size, leaf, path, merkle.EMPTY_ROOT
    yield "trailing root", index, size, leaf, [*path, root], root
    yield "preceding root", index, size, leaf, [root, *path], root
    for n in range(len(path)):
        flipped = bytes([path[n][0] ^ 8]) + path[n][1:]
        yield f"bit flipped in {n}", index, size, leaf, [*path[:n], flipped, *path[n + 1:]], root
    if path:
        yield "last removed", index, size, leaf, path[:-1], root
    if len(path) > 1:
        yield "reversed", index, size, leaf, path[::-1], root


def test_every_proof_of_every_shape_verifies_and_no_corruption_does():
    """Trees of 1 … 70 leaves cover every shape of the split; the paths are the RFC's PATH,
    verify, and fail once anything about them is wrong."""
    data = [bytes([n % 256, n // 256]) * 3 for n in range(70)]
    for size in range(1, 71):
        leaves = hashed(data[:size])
        root = merkle.root(leaves)
        assert root == rfc_mth(data[:size]) == recount.tree_root(leaves), size
        for index in range(size):
            path = merkle.inclusion_path(index, leaves)
            assert path == rfc_path(index, data[:size]), (size, index)
            assert merkle.verify_inclusion(index, size, leaves[index], path, root)
            for name, i, n, leaf, wrong, r in corruptions(index, size, leaves[index], path,
                                                          root):
                if (i, n, leaf, wrong, r) == (index, size, leaves[index], path, root):
                    continue  # a corruption that changed nothing (e.g. 0 ^ 2 in a tree of 2)
                assert not merkle.verify_inclusion(i, n, leaf, wrong, r), (size, index, name)
                assert recount.root_from_path(i, n, leaf, wrong) != r, (size, index, name)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.binary(max_size=40), min_size=1, max_size=300), st.data())
def test_both_implementations_agree_on_any_tree(data, draw):
    leaves = hashed(data)
    assert merkle.root(leaves) == recount.tree_root(leaves) == rfc_mth(data)
    index = draw.draw(st.integers(0, len(data) - 1))
    path = merkle.inclusion_path(index, leaves)
    assert path == recount.audit_path(index, leaves)
    assert merkle.root_from_path(index, len(data), leaves[index], path) == merkle.root(leaves)


def test_a_leaf_is_never_taken_for_a_node():
    """The 0x00/0x01 prefixes: the data of two leaves joined is not a leaf of the same hash."""
    a, b = merkle.leaf_hash(b"a"), merkle.leaf_hash(b"b")
    assert merkle.root([a, b]) != merkle.leaf_hash(a + b)
    assert merkle.root([a, b]) == hashlib.sha256(b"\x01" + a + b).digest()


def test_nonsense_is_refused():
    with pytest.raises(IndexError):
        merkle.inclusion_path(3, hashed([b"x", b"y"]))
    with pytest.raises(ValueError, match="too short"):
        merkle.path_sides(0, 4, 1)
    with pytest.raises(ValueError, match="too long"):
        merkle.path_sides(0, 2, 2)
    assert not merkle.verify_inclusion(0, 0, merkle.EMPTY_ROOT, [], merkle.EMPTY_ROOT)
    assert not merkle.verify_inclusion(0, 2, merkle.leaf_hash(b"x"), [b"short"],
                                       merkle.EMPTY_ROOT)
