"""A committee member on a phone copies the WeChat reminder of the open vote with one tap: the
copy button puts the message on the clipboard (the context grants the clipboard, as a phone's
browser does over HTTPS), and where the clipboard is refused the whole text is selected for the
phone's own Copy. Without JavaScript the button is not shown and the text stays there to
select by hand."""

from __future__ import annotations

from pathlib import Path

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

SHOTS = Path("/work/shots")


def open_reminder(page: Page, world: World) -> str:
    """The open vote's page, scrolled to the reminder; returns the message shown."""
    sign_in(page, "committee", PASSWORDS["committee"])
    page.goto(f"/consultations/{world['stages']['voting']}")
    box = page.locator("#reminder")
    expect(box.get_by_role("heading", name=t("Remind the neighbours"))).to_be_visible()
    area = box.locator("textarea#reminder-text")
    expect(area).to_have_attribute("readonly", "")
    message = area.input_value()
    assert f"/consultations/{world['stages']['voting']}/vote" in message
    assert "户投票" in message and "截止时间" in message
    box.scroll_into_view_if_needed()
    return message


def selected_text(page: Page) -> str:
    return page.evaluate("""() => {
      const area = document.getElementById('reminder-text');
      return area.value.substring(area.selectionStart, area.selectionEnd);
    }""")


def test_the_copy_button_puts_the_message_on_the_clipboard(
        new_page: NewPage, world: World, shots: Shots) -> None:
    page = new_page("phone", permissions=["clipboard-read", "clipboard-write"])
    message = open_reminder(page, world)
    button = page.locator("#reminder").get_by_role("button", name=t("Copy"))
    expect(button).to_be_visible()
    button.tap()
    status = page.locator("#reminder-status")
    expect(status).to_have_text(t("Copied: paste it into the WeChat group."))
    assert page.evaluate("() => navigator.clipboard.readText()") == message
    assert selected_text(page) == message  # what was copied is shown selected
    # Nothing sticks out of a 390 px screen.
    assert page.evaluate("() => document.documentElement.scrollWidth") <= 390
    shots(page, "reminder-copied")
    page.locator("#reminder").screenshot(path=str(SHOTS / "poster-reminder-box-phone.png"))
    page.screenshot(path=str(SHOTS / "poster-consultation-phone.png"), full_page=True)


def test_without_the_clipboard_the_text_is_selected(
        new_page: NewPage, world: World, shots: Shots) -> None:
    page = new_page("phone", bypass_csp=True)  # for axe-core
    message = open_reminder(page, world)
    blocking = [v for v in axe_violations(page) if v.impact in BLOCKING_IMPACTS]
    assert blocking == [], "\n".join(v.describe() for v in blocking)
    # The browser refuses the clipboard (no permission granted to this context, or an old
    # phone browser without the API): the tap selects the whole message instead.
    page.evaluate("""() => { Object.defineProperty(navigator, 'clipboard', {value: {
        writeText: () => Promise.reject(new Error('denied'))}}); }""")
    page.locator("#reminder").get_by_role("button", name=t("Copy")).tap()
    expect(page.locator("#reminder-status")).not_to_be_empty()
    assert selected_text(page) == message
    shots(page, "reminder-selected")


def test_without_javascript_the_text_is_there_to_select(
        new_page: NewPage, world: World, shots: Shots) -> None:
    page = new_page("phone", java_script_enabled=False)
    open_reminder(page, world)
    expect(page.locator("#reminder").get_by_role("button", name=t("Copy"))).to_be_hidden()
    expect(page.locator("#reminder").get_by_role(
        "link", name=t("Poster for the notice board (PDF)"))).to_be_visible()
    shots(page, "reminder-without-script")
