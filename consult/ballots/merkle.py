"""Merkle trees as Certificate Transparency builds them (RFC 6962 §2.1, RFC 9162 §2.1).

Pure functions over byte strings; no database, no Flask. ``tools/recount.py`` carries its own
copy of the same few lines (it must run with the standard library alone), and
``tests/unit/test_merkle.py`` checks that both agree with each other and with the published
reference vectors.

- A leaf's hash is SHA-256(0x00 || data), an inner node's SHA-256(0x01 || left || right): the
  prefixes keep a leaf from ever passing for a node (second-preimage attacks).
- A tree of n > 1 leaves splits at k, the largest power of two smaller than n: the left subtree
  holds the first k leaves and is perfect, the right one the rest. The tree of no leaves has
  the hash SHA-256 of the empty string.
- The audit path of leaf m (``inclusion_path``) is the list of sibling hashes from the leaf up
  to the root; ``root_from_path`` is RFC 9162's verification algorithm (§2.1.3.2).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

LEAF_PREFIX = b"\x00"
NODE_PREFIX = b"\x01"
EMPTY_ROOT = hashlib.sha256(b"").digest()


def leaf_hash(data: bytes) -> bytes:
    """The hash of one leaf's data."""
    return hashlib.sha256(LEAF_PREFIX + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """The hash of an inner node from its children's hashes."""
    return hashlib.sha256(NODE_PREFIX + left + right).digest()


def split(size: int) -> int:
    """The largest power of two smaller than ``size`` (size > 1): the left subtree's size."""
    return 1 << ((size - 1).bit_length() - 1)


def _subtree(leaves: Sequence[bytes], start: int, end: int) -> bytes:
    """The hash of the subtree over ``leaves[start:end]`` (end > start), without copying."""
    if end - start == 1:
        return leaves[start]
    middle = start + split(end - start)
    return node_hash(_subtree(leaves, start, middle), _subtree(leaves, middle, end))


def root(leaves: Sequence[bytes]) -> bytes:
    """The Merkle tree hash of a list of leaf hashes (already hashed with ``leaf_hash``)."""
    if not leaves:
        return EMPTY_ROOT
    return _subtree(leaves, 0, len(leaves))


def inclusion_path(index: int, leaves: Sequence[bytes]) -> list[bytes]:
    """The audit path of leaf ``index``: the sibling hashes from the leaf up to the root."""
    if not 0 <= index < len(leaves):
        raise IndexError(f"leaf {index} is not in a tree of {len(leaves)}")
    path: list[bytes] = []
    start, end = 0, len(leaves)
    # Walk down from the root, noting the other subtree at every split; the path lists them
    # from the bottom up.
    while end - start > 1:
        middle = start + split(end - start)
        if index < middle:
            path.append(_subtree(leaves, middle, end))
            end = middle
        else:
            path.append(_subtree(leaves, start, middle))
            start = middle
    path.reverse()
    return path


def path_sides(index: int, size: int, length: int) -> list[str]:
    """For each hash of a well-formed audit path, on which side it joins the running hash:
    "left" (it is the left child) or "right". Raises ValueError when ``index``, ``size`` and
    ``length`` cannot belong together."""
    if not 0 <= index < size:
        raise ValueError(f"leaf {index} is not in a tree of {size}")
    sides: list[str] = []
    fn, sn = index, size - 1
    for _ in range(length):
        if sn == 0:
            raise ValueError("the audit path is too long for the tree")
        if fn & 1 or fn == sn:
            sides.append("left")
            if not fn & 1:
                # The last node of its level has no right sibling: climb until it is a right
                # child (or the top of the left edge).
                while not fn & 1 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            sides.append("right")
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ValueError("the audit path is too short for the tree")
    return sides


def root_from_path(index: int, size: int, leaf: bytes, path: Sequence[bytes]) -> bytes:
    """The root that leaf ``index`` of a tree of ``size`` leaves, with hash ``leaf`` and audit
    path ``path``, leads to (RFC 9162 §2.1.3.2). Raises ValueError for a path that cannot
    belong to such a tree."""
    running = leaf
    for side, sibling in zip(path_sides(index, size, len(path)), path, strict=True):
        if len(sibling) != len(leaf):
            raise ValueError("a hash of the audit path has the wrong length")
        running = node_hash(sibling, running) if side == "left" else node_hash(running, sibling)
    return running


def verify_inclusion(index: int, size: int, leaf: bytes, path: Sequence[bytes],
                     expected_root: bytes) -> bool:
    """Whether the audit path proves leaf ``index`` (hash ``leaf``) in the tree of ``size``
    leaves whose root is ``expected_root``."""
    try:
        return root_from_path(index, size, leaf, path) == expected_root
    except ValueError:
        return False
