"""The notification centre in a browser: a resident on a phone sees the unread count in the
header, opens the centre, marks one notification read and then all of them; staff on a desktop
see theirs. A neighbour's notification never shows."""

from __future__ import annotations

import shutil
from pathlib import Path

from playwright.sync_api import Page, expect

from tests.e2e.support import PASSWORDS, NewPage, Shots, sign_in, t
from tests.e2e.world import World

SHOTS = Path("/work/shots")

# Three notifications for the demo resident, one for a neighbouring household's account.
SEED = """
from sqlalchemy import select
from consult.accounts.models import User
from consult.notifications import events
from consult.notifications import service as notifications
resident = db.session.scalars(select(User).where(User.username == "resident")).one()
committee = db.session.scalars(select(User).where(User.username == "committee")).one()
neighbour = db.session.scalars(select(User).where(User.household_id.is_not(None),
                                                  User.id != resident.id)).first()
link = notifications.path_for("consultations.index")
for n, event in enumerate((events.VOTE_CLOSING, events.BALLOT_CORRECTED,
                           events.OBJECTION_ANSWERED)):
    notifications.notify(event, [resident], {"consultation": "加装电梯",
                         "deadline": "2026-12-06T10:00:00+00:00"}, link, f"e2e:{n}")
notifications.notify(events.STAFF_TODO, [committee], {"consultation": "加装电梯",
                     "kind": "objections"}, link, "e2e:staff")
if neighbour is not None:
    notifications.notify(events.BALLOT_CORRECTED, [neighbour], {"consultation": "邻居的秘密"},
                         link, "e2e:neighbour")
db.session.commit()
"""


def unread(page: Page) -> int:
    return int(page.locator("a.notification-link").get_attribute("data-unread") or "0")


def keep(path: Path, name: str) -> None:
    """A copy of a screenshot where the project's pictures are looked at."""
    if SHOTS.is_dir():
        shutil.copy(path, SHOTS / name)


def test_a_resident_reads_notifications_on_a_phone(new_page: NewPage, server, world: World,
                                                   shots: Shots) -> None:
    server.python(SEED)
    page = new_page("phone")
    sign_in(page, "resident", PASSWORDS["resident"])
    before = unread(page)
    assert before >= 3
    header = page.locator("a.notification-link")
    expect(header).to_contain_text(str(before))
    header.click()
    page.wait_for_url("**/notifications")
    expect(page.get_by_role("heading", name=t("Notifications"), level=1)).to_be_visible()
    expect(page.locator(".notification-unread")).to_have_count(before)
    expect(page.locator("main")).not_to_contain_text("邻居的秘密")
    keep(shots(page, "centre-phone"), "notify-centre-phone.png")
    page.locator(".notification-unread").first.get_by_role(
        "button", name=t("Mark read")).click()
    page.wait_for_load_state("load")
    expect(page.locator(".notification-unread")).to_have_count(before - 1)
    assert unread(page) == before - 1
    page.get_by_role("button", name=t("Mark all read")).click()
    page.wait_for_load_state("load")
    expect(page.locator(".notification-unread")).to_have_count(0)
    assert unread(page) == 0
    expect(page.locator("a.notification-link .badge")).to_have_count(0)
    keep(shots(page, "centre-phone-read"), "notify-centre-phone-read.png")
    page.get_by_role("link", name=t("Notification preferences")).first.click()
    page.wait_for_url("**/notifications/preferences")
    keep(shots(page, "preferences-phone"), "notify-preferences-phone.png")


def test_staff_see_their_to_do_notifications_on_a_desktop(new_page: NewPage, server,
                                                          world: World, shots: Shots) -> None:
    server.python(SEED)
    page = new_page("desktop")
    sign_in(page, "committee", PASSWORDS["committee"])
    assert unread(page) >= 1
    page.goto("/notifications")
    expect(page.locator(".notification-unread").first).to_contain_text("加装电梯")
    keep(shots(page, "centre-desktop"), "notify-centre-desktop.png")
    page.goto("/notifications/preferences")
    keep(shots(page, "preferences-desktop"), "notify-preferences-desktop.png")
