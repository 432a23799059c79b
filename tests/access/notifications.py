"""The notification centre: everyone signed in has one, and sees only their own."""

from tests.access import EXPECTED, SIGNED_IN

EXPECTED.update({
    "notifications.index": ("GET", SIGNED_IN),
    "notifications.mark_read": ("POST", SIGNED_IN),
    "notifications.mark_all_read": ("POST", SIGNED_IN),
    "notifications.preferences": ("GET", SIGNED_IN),
})
