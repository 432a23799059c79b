"""What the public record of a ballot carries instead of who cast it (pure; no Flask).

- **The receipt code** goes to the household alone. Public records (audit events, the audit
  export, the ballot tree) carry only ``receipt_hash``: SHA-256 over the consultation, the
  round and the code. Whoever holds the code can find their ballot; nobody can go the other
  way. New codes have 16 characters of a 32-letter alphabet (80 bits); codes issued before
  had 8 (40 bits) and stay valid.
- **The owner token** groups the households of one owner (an owner counts once) without
  saying who it is: HMAC-SHA-256 of the owner's identity (the registry's owner key, which may
  be an ID number, or the household) under a random key kept with the consultation and never
  exported. Tokens written before were unkeyed SHA-256 (``legacy_owner_token``).
- **The leaf** of the ballot tree (``consult.ballots.merkle``) for each counted ballot: the
  consultation, the round, the receipt's hash and the answers counted, as canonical JSON.

``tools/recount.py`` repeats ``receipt_hash`` and ``leaf_data`` with the standard library;
docs/audit-export.md states them for anyone who wants to write their own.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import unicodedata
from collections.abc import Mapping

RECEIPT_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I: read aloud without doubt
RECEIPT_LENGTH = 16        # characters of a new receipt: 16 × 5 bits = 80 bits
LEGACY_RECEIPT_LENGTH = 8  # receipts issued before: 40 bits
RECEIPT_GROUP = 4          # shown as groups of four: K7QX-3MPA-9RTV-W2HC


def format_receipt(characters: str) -> str:
    """A receipt's characters in groups of four, as printed and shown."""
    return "-".join(characters[i:i + RECEIPT_GROUP]
                    for i in range(0, len(characters), RECEIPT_GROUP))


_SEPARATORS = frozenset(" -_.·—–\u3000\t")


def _folded(text: str) -> str:
    """A receipt as typed, reduced to its characters: full-width forms folded (NFKC), capitals,
    no dashes or spaces."""
    folded = unicodedata.normalize("NFKC", text[:100]).upper()
    return "".join(c for c in folded if c not in _SEPARATORS)


def receipt_characters(text: str | None) -> str | None:
    """The characters of a receipt code as typed (any case, with or without dashes or spaces,
    full-width letters from a Chinese keyboard), or None if it cannot be one."""
    if not text:
        return None
    characters = _folded(text)
    if len(characters) not in (RECEIPT_LENGTH, LEGACY_RECEIPT_LENGTH):
        return None
    if any(c not in RECEIPT_ALPHABET for c in characters):
        return None
    return characters


def receipt_hash(consultation_id: int, round_: int, receipt: str) -> str:
    """SHA-256 (hex) of ``consult-receipt:<consultation>:<round>:<characters>``: what public
    records carry in place of the receipt (``receipt`` as stored or as typed)."""
    text = f"consult-receipt:{consultation_id}:{round_}:{_folded(receipt)}"
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def owner_token(key_hex: str, owner_identity: str) -> str:
    """The keyed pseudonym of an owner within one consultation (``key_hex``: its secret)."""
    return hmac.new(bytes.fromhex(key_hex), f"owner:{owner_identity}".encode(),
                    hashlib.sha256).hexdigest()[:32]


def legacy_owner_token(consultation_id: int, owner_identity: str) -> str:
    """The unkeyed owner token of ballot events written before tokens were keyed."""
    return hashlib.sha256(f"{consultation_id}:{owner_identity}".encode()).hexdigest()[:16]


def leaf_data(consultation_id: int, round_: int, receipt_hash_hex: str,
              answers: Mapping[str, str]) -> bytes:
    """The canonical encoding of a counted ballot in the ballot tree: UTF-8 JSON with sorted
    keys and no spaces, ``answers`` by item number (as text)."""
    return json.dumps({"answers": {str(k): v for k, v in answers.items()},
                       "consultation": consultation_id, "receipt_hash": receipt_hash_hex,
                       "round": round_}, sort_keys=True, separators=(",", ":"),
                      ensure_ascii=False).encode("utf-8")
