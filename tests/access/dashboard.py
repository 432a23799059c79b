"""The overview dashboard: staff over their scope, administrators everywhere."""

from tests.access import EXPECTED, READERS

# A committee member scoped elsewhere gets in too, and sees only their own compounds (the
# scope itself is tested in tests/process/test_dashboard.py).
_STAFF = READERS | {"committee_elsewhere"}

EXPECTED.update({
    "dashboard.index": ("GET", _STAFF),
    "dashboard.export": ("GET", _STAFF),
    "dashboard.report": ("GET", _STAFF),
})
