"""A committee member with a pile of paper ballots, at a desk and on a phone: finds the first
household by its room, enters its paper ballot, and goes on with "save and go to the next
household without a ballot", past the household that voted online, to the end of the roll.
The form is for one channel at a time (no script: each channel is a link), and on a 390 px
phone nothing scrolls sideways and every control is a thumb's size."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from tests.e2e.support import (
    PASSWORDS,
    NewPage,
    Shots,
    choose,
    exact,
    message_pattern,
    sign_in,
    t,
)
from tests.e2e.test_resident_ui import small_targets
from tests.e2e.world import World

PHONE_WIDTH = 390
SAVE_AND_NEXT = "Record and go to the next household without a ballot"


def no_sideways_scroll(page: Page) -> None:
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE_WIDTH, f"the page is {width} px wide"


def entry_form_of(page: Page, consultation: str, household: int) -> None:
    page.wait_for_url(f"**{consultation}/ballots/{household}/enter*")
    expect(page.get_by_role("heading", level=1)).to_have_text(exact(t("Enter a ballot")))


def answer(page: Page, items: list[str], choice: str, *, touch: bool) -> None:
    for number, title in enumerate(items, start=1):
        choose(page, number, title, choice, touch=touch)


@pytest.mark.parametrize(("device", "building"), [("desktop", "5号楼"), ("phone", "6号楼")])
def test_paper_ballots_one_after_another(new_page: NewPage, world: World, shots: Shots,
                                         device: str, building: str) -> None:
    roof = world["paper_entry"]
    consultation = f"/consultations/{roof['consultation']}"
    homes = roof["households"]
    items = roof["items"]
    phone = device == "phone"
    page = new_page(device)
    sign_in(page, "committee", PASSWORDS["committee"])

    # The roll, searched by the room written on the paper: one household, straight to its form.
    page.goto(f"{consultation}/ballots")
    if phone:
        no_sideways_scroll(page)  # the roll's table scrolls inside its own region
    shots(page, "roll")
    search = page.get_by_role("search")
    search.get_by_label(t("Room"), exact=True).fill(f"{building[0]}-101")
    shots(page, "room-typed")
    search.get_by_role("button", name=t("Filter")).click()
    entry_form_of(page, consultation, homes[f"{building}-101"])
    main = page.locator("main")
    expect(main).to_contain_text(building)

    # Paper unless another channel is chosen: its answers, no "not reached", no proxy fields.
    channels = page.get_by_role("navigation", name=t("How the ballot came in"))
    expect(channels.get_by_role("link", name=t("Paper ballot"), exact=True)).to_have_attribute(
        "aria-current", "page")
    expect(main.get_by_role("radio", name=t("Not reached"))).to_have_count(0)
    expect(main.get_by_label(t("Proxy: name of the person holding the written authorisation"))
           ).to_have_count(0)
    if phone:
        no_sideways_scroll(page)
        assert small_targets(page) == []
    shots(page, "paper-form")

    # Door-to-door offers "not reached"; a proxy's form asks for the proxy.
    channels.get_by_role("link", name=t("Door-to-door"), exact=True).click()
    expect(main.get_by_role("radio", name=t("Not reached"))).to_have_count(len(items))
    shots(page, "door-to-door-form")
    channels.get_by_role("link", name=t("By proxy"), exact=True).click()
    expect(main.get_by_label(t("Proxy: name of the person holding the written authorisation"))
           ).to_be_visible()
    expect(main.get_by_role("radio", name=t("Not reached"))).to_have_count(0)
    if phone:
        no_sideways_scroll(page)
    shots(page, "proxy-form")
    channels.get_by_role("link", name=t("Paper ballot"), exact=True).click()

    # Saved, and on to the next household without a ballot: 102 voted online, so 201.
    answer(page, items, "Agree", touch=phone)
    if phone:
        no_sideways_scroll(page)
        assert small_targets(page) == []
    shots(page, "paper-ballot-filled-in")
    button = main.get_by_role("button", name=t(SAVE_AND_NEXT))
    if phone:
        button.tap()
    else:
        button.click()
    entry_form_of(page, consultation, homes[f"{building}-201"])
    expect(page.get_by_role("status").first).to_contain_text(message_pattern(
        "Ballot of %(household)s recorded (receipt %(receipt)s).",
        household=f".*{building}.*101.*", receipt=r"[A-Z0-9-]+"))
    expect(main.locator("input[type='radio']:checked")).to_have_count(0)
    if phone:
        no_sideways_scroll(page)
        assert small_targets(page) == []
    shots(page, "next-household")

    if phone:
        # The last household of the roll: back to the list, which says so.
        answer(page, items, "Disagree", touch=True)
        main.get_by_role("button", name=t(SAVE_AND_NEXT)).tap()
        page.wait_for_url(f"**{consultation}/ballots?status=missing")
        expect(page.get_by_role("status").filter(has_text=message_pattern(
            "No household after %(household)s on the roll is still without a ballot.",
            household=f".*{building}.*201.*"))).to_be_visible()
        shots(page, "end-of-the-roll")
