"""A resident reads the notices on a phone, in both text sizes: the tables fit the screen
(each household's vote on each item in sight, no sideways scrolling) and stay tables for screen
readers, a link at the top leads to the objection form, and a refused objection comes back at
that form."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from tests.e2e.support import (
    BLOCKING_IMPACTS,
    PASSWORDS,
    NewPage,
    Shots,
    axe_violations,
    sign_in,
    t,
)
from tests.e2e.world import World

# Every cell of the households' appendix after building, unit, room and area: one answer each.
VOTE_CELLS = ".appendix-table tbody td:nth-child(n+5)"

# The cells that lie partly outside the screen, or that the page can only show by scrolling
# sideways (an element scrolled inside a table wrapper counts as outside too).
_CUT_OFF = """(selector) => {
  const width = document.documentElement.clientWidth;
  return [...document.querySelectorAll(selector)]
    .map(el => ({text: el.textContent.trim(), box: el.getBoundingClientRect()}))
    .filter(c => c.box.width === 0 || c.box.left < 0 || c.box.right > width + 0.5)
    .map(c => `${c.text} ${Math.round(c.box.left)}–${Math.round(c.box.right)}`);
}"""


def page_width(page: Page) -> dict[str, int]:
    return page.evaluate("""() => ({scroll: document.documentElement.scrollWidth,
                                    inner: window.innerWidth})""")


def no_serious_violations(page: Page) -> None:
    blocking = [v for v in axe_violations(page) if v.impact in BLOCKING_IMPACTS]
    assert blocking == [], "\n".join(v.describe() for v in blocking)


def larger_text(page: Page) -> None:
    """Choose the larger text with the header's button, as in test_resident_ui."""
    with page.expect_navigation(wait_until="load"):
        page.locator("form[action='/text-size']").get_by_role(
            "button", name=re.compile(re.escape(t("Larger text")))).tap()
    expect(page.locator("html")).to_have_class("text-large")


@pytest.mark.parametrize("size", ["normal", "large"])
def test_the_resolution_notice_fits_a_phone_and_objections_are_reached_from_the_top(
        new_page: NewPage, world: World, shots: Shots, size: str) -> None:
    page = new_page("phone", bypass_csp=True)  # for axe-core
    sign_in(page, "resident", PASSWORDS["resident"])
    if size == "large":
        larger_text(page)
    notice = world["resolution_notice"]
    page.goto(f"/notices/{notice}")
    expect(page.get_by_role("heading", level=1)).to_have_text(t("Resolution notice"))
    shots(page, f"notice-{size}")

    # No sideways scrolling anywhere on the page, and every household's answers in sight.
    width = page_width(page)
    assert width["inner"] == 390 and width["scroll"] <= width["inner"], width
    cells = page.locator(VOTE_CELLS)
    cells.first.scroll_into_view_if_needed()
    shots(page, f"appendix-{size}", full_page=False)
    assert cells.count() >= 2
    for i in range(min(cells.count(), 12)):
        assert cells.nth(i).is_visible()
    assert page.evaluate(_CUT_OFF, VOTE_CELLS) == []
    # A card names its column: a screen shows "事项1 同意", not a bare "同意".
    first = cells.first
    label = first.evaluate("el => getComputedStyle(el, '::before').content")
    assert t("Item %(n)s", n=1) in label, label
    # Laid out as cards, the tables are still tables to assistive technology.
    no_serious_violations(page)
    assert page.get_by_role("table").count() >= 2
    appendix = page.locator("table.appendix-table")
    expect(appendix.get_by_role("columnheader", name=t("Item %(n)s", n=1))).to_have_count(1)

    # The link near the top leads to the objection form.
    link = page.get_by_role("link", name=t("File an objection"), exact=True)
    article = page.locator("article.notice-sheet")
    page.evaluate("window.scrollTo(0, 0)")
    shots(page, f"top-{size}", full_page=False)
    assert link.bounding_box()["y"] < article.bounding_box()["y"]  # type: ignore[index]
    link.tap()
    page.wait_for_url(re.compile(r"#objection-form$"))
    box = page.get_by_label(t("Your objection"))
    expect(box).to_be_in_viewport()
    shots(page, f"objection-form-{size}", full_page=False)

    # Sent empty, it comes back at the form with the reason beside the field, and the next
    # Tab (a keyboard, a screen reader's next control) goes into that field.
    box.fill("   ")  # nothing but spaces
    with page.expect_navigation(wait_until="load"):
        page.get_by_role("button", name=t("Send the objection"), exact=True).tap()
    expect(page).to_have_url(re.compile(r"#objection-form$"))
    error = page.locator("#text-error")
    expect(error).to_have_text(t("This field is required."))
    expect(error).to_be_in_viewport()
    box = page.get_by_label(t("Your objection"))
    expect(box).to_have_attribute("aria-describedby", "text-error")
    page.keyboard.press("Tab")
    expect(box).to_be_focused()
    assert page_width(page)["scroll"] <= 390
    shots(page, f"objection-refused-{size}", full_page=False)
    no_serious_violations(page)

    # The result notice's table of works fits the screen as well.
    page.goto(f"/notices/{world['result_notice']}")
    expect(page.get_by_role("heading", level=1)).to_have_text(t("Result notice"))
    assert page_width(page)["scroll"] <= 390
    assert page.evaluate(_CUT_OFF, ".table-stack td[data-label]") == []
    no_serious_violations(page)
    shots(page, f"result-notice-{size}")
