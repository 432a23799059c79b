"""What makes the resident pages usable for people over 70 on a phone: a larger-text mode that
stays chosen, targets a thumb can hit, and a vote that needs no JavaScript at all."""

from __future__ import annotations

import re

from playwright.sync_api import Page, expect

from tests.e2e.support import NewPage, Shots, choose, sign_in_with_code, t
from tests.e2e.world import World

MIN_TARGET_PX = 44
LARGE_BODY_PX = 20

# Everything a finger presses on these pages, as laid out now. Radio buttons and checkboxes
# are pressed through their cards and labels, which are measured instead; links inside
# sentences are text, not targets.
_SMALL_TARGETS = """(minimum) => {
  const selector = 'button, a.btn, select, textarea, input:not([type=hidden]):not([type=radio])'
                 + ':not([type=checkbox]), .choice-card span, .form-check-label';
  return [...document.querySelectorAll(selector)]
    .filter(el => el.getClientRects().length > 0 && getComputedStyle(el).visibility !== 'hidden')
    .map(el => ({html: el.outerHTML.slice(0, 120), box: el.getBoundingClientRect()}))
    .filter(t => t.box.height < minimum || t.box.width < minimum)
    .map(t => `${Math.round(t.box.width)}×${Math.round(t.box.height)} ${t.html}`);
}"""


def small_targets(page: Page) -> list[str]:
    return page.evaluate(_SMALL_TARGETS, MIN_TARGET_PX)


def body_font_px(page: Page) -> float:
    return float(page.evaluate("parseFloat(getComputedStyle(document.body).fontSize)"))


def toggle_larger_text(page: Page) -> None:
    # The form posts and comes back to the same address: wait for that new page to have
    # loaded, stylesheets included (waiting for "load" alone could see the old page). Its
    # one button is "Larger text", or "Standard text size" while larger text is on.
    large = "text-large" in (page.locator("html").get_attribute("class") or "")
    name = t("Standard text size") if large else t("Larger text")
    with page.expect_navigation(wait_until="load"):
        page.locator("form[action='/text-size']").get_by_role(
            "button", name=re.compile(re.escape(name))).tap()


def test_larger_text_is_remembered_and_every_target_stays_thumb_sized(
        new_page: NewPage, world: World, shots: Shots) -> None:
    page = new_page("phone")
    voting = world["stages"]["voting"]
    page.goto("/")
    assert body_font_px(page) < LARGE_BODY_PX
    assert small_targets(page) == []
    toggle_larger_text(page)
    expect(page.locator("html")).to_have_class("text-large")
    # With larger text on, the switch says so and names the way back.
    expect(page.locator("form[action='/text-size']")).to_contain_text(t("Larger text is on."))
    expect(page.locator("form[action='/text-size'] button")).to_contain_text(
        t("Standard text size"))
    assert body_font_px(page) >= LARGE_BODY_PX
    shots(page, "home-larger-text")
    for path in ("/code", f"/consultations/{voting}", "/consultations/"):
        page.goto(path)  # the choice stays with this phone
        expect(page.locator("html")).to_have_class("text-large")
        assert small_targets(page) == [], path
    shots(page, "code-larger-text")
    toggle_larger_text(page)
    expect(page.locator("html")).not_to_have_class("text-large")
    assert body_font_px(page) < LARGE_BODY_PX


def test_a_household_votes_with_javascript_switched_off(
        new_page: NewPage, world: World, shots: Shots) -> None:
    page = new_page("phone", java_script_enabled=False)
    voting = world["stages"]["voting"]
    sign_in_with_code(page, world["no_script"]["code"])
    page.goto(f"/consultations/{voting}/vote")
    assert small_targets(page) == []
    for number, title in enumerate(world["voting_items"], start=1):
        choose(page, number, title, "Agree", touch=True)
    shots(page, "choose-without-javascript")
    page.get_by_role("button", name=t("Next: check my answers"), exact=True).tap()
    expect(page.get_by_role("heading", level=1)).to_have_text(t("Check your answers"))
    assert small_targets(page) == []
    page.get_by_role("button", name=t("Send my vote"), exact=True).tap()
    page.wait_for_url(f"**/consultations/{voting}/ballot")
    expect(page.get_by_role("heading", level=1)).to_have_text(
        t("Your household’s vote is recorded"))
    shots(page, "receipt-without-javascript")
