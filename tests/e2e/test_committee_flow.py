"""A committee member at a desk: sets the voting deadline, opens the vote, enters the
households' paper ballots, closes the vote (everyone has voted, so before the deadline),
publishes the resolution notice and checks that its verification code is genuine."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from babel.dates import format_datetime
from playwright.sync_api import Locator, Page, expect

from tests.e2e.support import (
    DEFAULT_LOCALE,
    PASSWORDS,
    NewPage,
    Shots,
    check_language_switch,
    choose,
    exact,
    message_pattern,
    sign_in,
    t,
)
from tests.e2e.world import World

BEIJING = ZoneInfo("Asia/Shanghai")
# What each of the three households wrote on its paper ballot, item by item.
PAPER_BALLOTS = [("Agree", "Agree"), ("Agree", "Disagree"), ("Disagree", "Agree")]


def step_form(page: Page, action: str) -> Locator:
    """The form of one step under "Next steps" (its hidden ``action`` names the step)."""
    return page.locator("main form[action$='/stage']").filter(
        has=page.locator(f"input[name='action'][value='{action}']"))


def take_step(page: Page, action: str, label: str) -> None:
    """Press the button of a step, confirm it on the page that says what it will do (these
    steps cannot be undone), and wait for the page to confirm it was taken."""
    step_form(page, action).get_by_role("button", name=t(label), exact=True).click()
    page.wait_for_url("**/stage")
    page.get_by_role("button", name=t("Yes: %(step)s", step=t(label)), exact=True).click()
    expect(page.get_by_role("status").filter(
        has_text=t("Done: %(step)s.", step=t(label)))).to_be_visible()


def turnout(page: Page, voted: int, total: int) -> None:
    expect(page.locator("main")).to_contain_text(
        t("%(voted)s of %(total)s households have a ballot.", voted=voted, total=total))


def test_committee_opens_closes_the_vote_and_publishes_the_resolution(
        new_page: NewPage, world: World, shots: Shots) -> None:
    small = world["small"]
    consultation = f"/consultations/{small['consultation']}"
    first_item, second_item = small["items"]
    page = new_page("desktop")

    sign_in(page, "committee", PASSWORDS["committee"])
    page.get_by_role("navigation", name=t("Main menu")).get_by_role(
        "link", name=t("Consultations"), exact=True).click()
    page.wait_for_url("**/consultations/")
    page.get_by_role("link", name=small["title"], exact=True).click()
    page.wait_for_url(f"**{consultation}")
    shots(page, "consultation-discussing")
    check_language_switch(page)

    # Opening needs a deadline: the step says so and offers no button until it is set.
    open_vote = step_form(page, "open_vote")
    expect(open_vote).to_contain_text(t("Set a voting deadline in the future."))
    expect(open_vote.get_by_role("button")).to_have_count(0)
    page.get_by_role("link", name=t("Settings and deadlines")).click()
    page.wait_for_url(f"**{consultation}/edit")
    deadline = (datetime.now(BEIJING) + timedelta(days=7)).replace(second=0, microsecond=0)
    page.get_by_label(t("Voting closes at (Beijing time)")).fill(
        deadline.strftime("%Y-%m-%dT%H:%M"))
    shots(page, "settings-deadline")
    page.locator("main form[method='post']").get_by_role(
        "button", name=t("Save"), exact=True).click()
    page.wait_for_url(f"**{consultation}")
    expect(page.get_by_role("status").filter(has_text=t("Saved."))).to_be_visible()

    take_step(page, "open_vote", "Open the vote")
    expect(page.locator("main")).to_contain_text(t(
        "Voting is open until %(when)s. Each household votes once on each item; it can change "
        "its vote until then.", when=format_datetime(deadline, "short", tzinfo=BEIJING,
                                                      locale=DEFAULT_LOCALE)))
    turnout(page, 0, 3)
    # Before the deadline the vote closes only when every household has voted.
    expect(step_form(page, "close_vote")).to_contain_text(t(
        "The vote runs until its announced deadline, unless every household has already "
        "voted."))
    expect(step_form(page, "close_vote").get_by_role("button")).to_have_count(0)
    shots(page, "vote-open")

    # The households voted on paper; the committee types the ballots in.
    page.get_by_role("link", name=t("Ballots and the electoral roll")).click()
    page.wait_for_url(f"**{consultation}/ballots")
    shots(page, "roll-before")
    for number, (first, second) in enumerate(PAPER_BALLOTS, start=1):
        page.get_by_role("link", name=t("Enter"), exact=True).first.click()
        page.wait_for_url(re.compile(r"/ballots/\d+/enter$"))
        # The channel is chosen first (a link each, no script); the form is then for it.
        page.get_by_role("navigation", name=t("How the ballot came in")).get_by_role(
            "link", name=t("Paper ballot"), exact=True).click()
        page.wait_for_url(re.compile(r"/ballots/\d+/enter\?channel=paper$"))
        page.get_by_label(t("Paper ballot number (编号)")).fill(f"GDS-{number:03d}")
        choose(page, 1, first_item, first)
        choose(page, 2, second_item, second)
        if number == 1:
            shots(page, "enter-paper-ballot")
        page.get_by_role("button", name=t("Record the ballot")).click()
        page.wait_for_url(re.compile(rf"{consultation}/ballots(\?.*)?$"))
        expect(page.get_by_role("status")).to_have_text(message_pattern(
            "Ballot of %(household)s recorded (receipt %(receipt)s).",
            household=".+", receipt=r"\S+"))
        expect(page.get_by_role("table")).to_contain_text(f"#GDS-{number:03d}")
        turnout(page, number, 3)
    expect(page.get_by_role("link", name=t("Enter"), exact=True)).to_have_count(0)
    shots(page, "roll-complete")

    page.get_by_role("link", name=re.compile("^← ")).click()
    page.wait_for_url(f"**{consultation}")
    take_step(page, "close_vote", "Close the vote and count")
    expect(page.locator("main")).to_contain_text(
        t("Voting has closed and the votes have been counted."))
    shots(page, "vote-closed")
    page.get_by_role("link", name=t("Tally"), exact=True).click()
    page.wait_for_url(f"**{consultation}/tally")
    shots(page, "tally")
    page.go_back()
    page.wait_for_url(f"**{consultation}")

    take_step(page, "publish_resolution", "Publish the resolution notice")
    shots(page, "resolution-published")
    page.get_by_role("link", name=t("Read the resolution notice")).click()
    page.wait_for_url(re.compile(r"/notices/\d+$"))
    notice_url = page.url
    expect(page.get_by_role("heading", level=1)).to_have_text(exact(t("Resolution notice")))
    verification = message_pattern("Verification code %(code)s · SHA-256 %(hash)s",
                                   code=r"[A-Z0-9]{6,16}", hash="[0-9a-f]{64}")
    line = page.get_by_text(verification)
    expect(line).to_be_visible()
    found = verification.search(line.inner_text())
    assert found, line.inner_text()
    code, digest = found.groups()
    shots(page, "resolution-notice")

    # Anyone holding the printed notice checks it from its code.
    page.goto(f"/verify/{code}")
    expect(page.get_by_role("status")).to_have_text(
        exact(t("This notice is genuine and current.")))
    expect(page.locator("main")).to_contain_text(digest)
    shots(page, "verify")
    check_language_switch(page, heading="Verify a notice")
    page.get_by_role("link", name=small["title"], exact=True).click()
    page.wait_for_url(notice_url)
