"""The audit export of a consultation (``tests/audit/test_export.py`` covers who may download
which export once the vote is counted)."""

from tests.access import EVERYONE, EXPECTED

# The world's consultation has open ballots: its export is public (409 until it is counted).
EXPECTED.update({"audit.export": ("GET", EVERYONE)})
