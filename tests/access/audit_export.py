"""The audit export of a consultation, and its proof page
(``tests/process/test_audit_export.py`` and ``tests/ballots/test_proofs.py`` cover them once
the vote is counted)."""

from tests.access import EVERYONE, EXPECTED

# Every counted consultation's export is public (409 until it is counted); so is the page
# where a receipt code is checked.
EXPECTED.update({"audit.export": ("GET", EVERYONE), "proofs.check": ("GET", EVERYONE)})
