"""The vote page on a phone (390 px), in the normal and the larger text size: an incomplete
ballot marks the missing item and brings it into view, "Read the details" keeps the answers
not yet sent, the "Next" button is reached within two screens, every link and button of the
header is a thumb's height; and a household withdraws its own opinion."""

from __future__ import annotations

import re
from typing import TypedDict

import pytest
from playwright.sync_api import Locator, Page, expect

from tests.e2e.support import NewPage, Shots, choose, ends_with_word, sign_in_with_code, t
from tests.e2e.world import World
from tests.live import LiveServer

MIN_TARGET_PX = 44
PHONE_HEIGHT = 844
# Where the top of "Next" was measured (two items, the demo's lift vote): before the header
# and the answer cards were tightened 1035 px in the normal size and 1269 px with larger text;
# after, 934 px and 1093 px. A little room is left for a longer household name or title.
NEXT_BOUND = {"normal": 980, "large": 1140}

class Homes(TypedDict):
    normal: str
    large: str
    opinion: str


@pytest.fixture(scope="module")
def homes(server: LiveServer, world: World) -> Homes:
    """Access codes world.py issued for this file: two households on the lift vote's roll
    (they never send), one of the opinion collection."""
    phone = world["phone"]
    return {"normal": phone["normal"], "large": phone["large"], "opinion": phone["opinion"]}


def set_text_size(page: Page, size: str) -> None:
    """Press the text-size switch until the page is in ``size`` ("normal" or "large")."""
    page.goto("/")
    if (size == "large") != ("text-large" in (page.locator("html").get_attribute("class") or "")):
        with page.expect_navigation(wait_until="load"):
            page.locator("form[action='/text-size'] button").tap()


def header_targets_too_small(page: Page) -> list[str]:
    return page.evaluate("""(minimum) => [...document.querySelectorAll(
        'header a, header button, header summary')]
      .filter(el => el.getClientRects().length > 0)
      .map(el => ({html: el.outerHTML.slice(0, 100), box: el.getBoundingClientRect()}))
      .filter(t => t.box.height < minimum)
      .map(t => `${Math.round(t.box.width)}×${Math.round(t.box.height)} ${t.html}`)""",
                         MIN_TARGET_PX)


def items(page: Page) -> Locator:
    """The ballot's items: the groups of answer cards, in order."""
    return page.get_by_role("group").filter(has=page.get_by_role("radio"))


@pytest.mark.parametrize("size", ["normal", "large"])
def test_vote_page_on_a_phone(new_page: NewPage, world: World, homes: Homes, shots: Shots,
                              size: str) -> None:
    page = new_page("phone")
    voting = world["phone"]["voting"]
    first, second = world["phone"]["items"][:2]
    sign_in_with_code(page, homes[size])  # type: ignore[literal-required]
    set_text_size(page, size)
    if size == "large":
        switch = page.locator("form[action='/text-size']")
        expect(switch).to_contain_text(t("Larger text is on."))
        expect(switch.get_by_role("button")).to_have_text(
            re.compile(re.escape(t("Standard text size"))))
    page.goto(f"/consultations/{voting}/vote")
    shots(page, f"vote-{size}-first-screen", full_page=False)

    # The header: every link and button a thumb's height; "Next" within two screens.
    assert header_targets_too_small(page) == []
    details = page.get_by_role("button", name=t("Read the details"))
    assert all(box["height"] >= MIN_TARGET_PX
               for box in (details.nth(i).bounding_box() or {"height": 0}
                           for i in range(details.count())))
    next_button = page.get_by_role("button", name=t("Next: check my answers"), exact=True)
    box = next_button.bounding_box()
    assert box is not None
    print(f"Next at y={box['y']:.0f} ({size})")
    assert box["y"] + box["height"] <= 2 * PHONE_HEIGHT
    assert box["y"] <= NEXT_BOUND[size]

    # "Read the details" keeps the answer chosen so far.
    choose(page, 1, first, "Disagree", touch=True)
    items(page).nth(1).get_by_role("button", name=t("Read the details")).tap()
    page.wait_for_url(re.compile(rf"/consultations/{voting}/items/\d+\?ballot=1$"))
    expect(page.get_by_role("heading", level=1)).to_have_text(second)
    shots(page, f"details-{size}", full_page=False)
    page.get_by_role("link", name=re.compile(re.escape(t("Back to my ballot")))).tap()
    page.wait_for_url(f"**/consultations/{voting}/vote")
    expect(items(page).nth(0).get_by_role(
        "radio", name=ends_with_word(t("Disagree")))).to_be_checked()
    expect(items(page).nth(1).get_by_role("radio", checked=True)).to_have_count(0)

    # Next with the second item unanswered: it is framed, named and brought into view.
    next_button.tap()
    page.wait_for_load_state()
    missing = items(page).nth(1)
    expect(missing).to_have_class(re.compile(r"\bis-invalid\b"))
    expect(missing).to_contain_text(t("Choose an answer for item %(n)s.", n=2))
    expect(missing.get_by_role("alert")).to_be_in_viewport()
    expect(missing.get_by_role("radio").first).to_be_focused()
    expect(items(page).nth(0).get_by_role(
        "radio", name=ends_with_word(t("Disagree")))).to_be_checked()
    shots(page, f"missing-item-{size}", full_page=False)
    # Answering it goes on to the review screen; nothing is sent here.
    choose(page, 2, second, "Agree", touch=True)
    next_button.tap()
    expect(page.get_by_role("heading", level=1)).to_have_text(t("Check your answers"))


def test_a_household_withdraws_its_opinion(new_page: NewPage, world: World, homes: Homes,
                                           shots: Shots) -> None:
    page = new_page("phone")
    soliciting = world["stages"]["soliciting"]
    sign_in_with_code(page, homes["opinion"])
    page.goto(f"/consultations/{soliciting}/opinions/new")
    form = page.locator("main form")
    form.get_by_label(t("What is it about?")).select_option("lighting")
    opinion = "5号楼楼道灯不亮，想撤回试试。"
    form.get_by_label(t("Your opinion or suggestion")).fill(opinion)
    form.get_by_role("button", name=t("Send my opinion")).tap()
    page.wait_for_url(re.compile(rf"/consultations/{soliciting}/opinions/\d+$"))
    page.goto(f"/consultations/{soliciting}/opinions")
    listed = page.locator("main li").filter(has_text=opinion)
    expect(listed.get_by_text(t("Your household's opinion"))).to_be_visible()
    shots(page, "opinions-with-mine")
    page.get_by_role("link", name=t("My household's opinions, supports and comments")).tap()
    page.wait_for_url(f"**/consultations/{soliciting}/mine")
    mine = page.locator("main li").filter(has_text=opinion)
    expect(mine.get_by_text(t("Mine"), exact=True)).to_be_visible()
    mine.get_by_role("link", name=t("Withdraw my opinion")).tap()
    page.wait_for_url(re.compile(r"/withdraw$"))
    shots(page, "withdraw-confirm")
    # Without the box nothing is withdrawn.
    page.get_by_role("button", name=t("Withdraw"), exact=True).tap()
    expect(page.get_by_role("alert")).to_contain_text(
        t("Tick the box to confirm that you want to withdraw it."))
    page.get_by_label(t("Yes, withdraw it")).check()
    page.get_by_role("button", name=t("Withdraw"), exact=True).tap()
    page.wait_for_url(f"**/consultations/{soliciting}/mine")
    expect(page.locator("main")).not_to_contain_text(opinion)
    shots(page, "withdrawn")
    page.goto(f"/consultations/{soliciting}/opinions")
    expect(page.locator("main")).not_to_contain_text(opinion)
