"""Reminders for the WeChat group and the notice board: the committee of the compound, the
supervisors who watch it and administrators; residents, grid workers and other compounds'
committees are refused (tests/process/test_reminders.py renders and reads the poster)."""

from tests.access import EXPECTED

# The world's consultation is voting: its poster is made for real.
EXPECTED.update({
    "reminders.poster": ("GET", frozenset({"committee", "supervisor", "admin"})),
})
