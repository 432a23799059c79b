"""A household representative on a phone: signs in with the access code from the committee's
letter, gives an opinion, votes item by item (choose, review, receipt) and changes the vote."""

from __future__ import annotations

import re

from playwright.sync_api import Locator, Page, expect

from tests.e2e.support import (
    NewPage,
    Shots,
    check_language_switch,
    choose,
    ends_with_word,
    exact,
    sign_in_with_code,
    t,
)
from tests.e2e.world import World


def expect_answers(page: Page, titles: list[str], choices: list[str]) -> None:
    """The review and receipt screens list each item with the answer given to it."""
    for title, choice in zip(titles, choices, strict=True):
        item = page.locator("main").get_by_role("listitem").filter(has_text=title)
        expect(item).to_have_text(re.compile(rf"{re.escape(title)}\s*{re.escape(t(choice))}\s*$"))


def receipt_code(page: Page) -> str:
    code = page.get_by_label(t("Receipt code"), exact=True)
    expect(code).to_have_text(re.compile(r"\S"))
    return code.inner_text().strip()


def vote_button(page: Page, name: str) -> Locator:
    return page.get_by_role("button", name=t(name), exact=True)


def test_resident_signs_in_with_a_code_gives_an_opinion_and_votes(
        new_page: NewPage, world: World, shots: Shots) -> None:
    stages = world["stages"]
    newcomer = world["newcomer"]
    page = new_page("phone")

    page.goto("/")
    shots(page, "home-anonymous")
    page.get_by_role("link", name=t("Sign in with an access code")).first.tap()
    page.wait_for_url("**/code")
    shots(page, "code-form")
    sign_in_with_code(page, newcomer["code"])
    expect(page.get_by_role("heading", level=1)).to_have_text(exact(t("Welcome")))
    expect(page.get_by_text(t("You are signed in for the household %(label)s.",
                              label=newcomer["label"]))).to_be_visible()
    shots(page, "welcome")
    page.get_by_role("link", name=t("Continue without a password")).tap()
    page.wait_for_url(re.compile(r"/$"))
    tasks = page.locator("section[aria-labelledby='tasks-heading']")
    expect(tasks.get_by_role("link", name=t("Vote now"), exact=True)).to_be_visible()
    shots(page, "home-tasks")
    check_language_switch(page, heading="Consultation Hall")
    shots(page, "home-after-language-switch")

    # 一征: an opinion in the consultation that is collecting them.
    tasks.get_by_role("link", name=t("Give your opinion"), exact=True).tap()
    page.wait_for_url(f"**/consultations/{stages['soliciting']}/opinions")
    page.locator("main").get_by_role("link", name=t("Give your opinion"), exact=True).tap()
    page.wait_for_url(f"**/consultations/{stages['soliciting']}/opinions/new")
    form = page.locator("main form[method='post']")
    form.get_by_label(t("What is it about?")).select_option("lighting")
    opinion = "3号楼二单元楼道的声控灯坏了三个月，晚上老人上下楼看不见台阶。"
    form.get_by_label(t("Your opinion or suggestion")).fill(opinion)
    shots(page, "opinion-form")
    form.get_by_role("button", name=t("Send my opinion")).tap()
    page.wait_for_url(re.compile(rf"/consultations/{stages['soliciting']}/opinions/\d+$"))
    expect(page.get_by_role("status")).to_contain_text(
        t("Thank you. Your opinion has been received."))
    expect(page.locator("main")).to_contain_text(opinion)
    expect(page.get_by_text(t("Your household's opinion"))).to_be_visible()
    shots(page, "opinion-sent")

    # 三议: vote item by item, check, send, get a receipt.
    page.goto("/")
    tasks.get_by_role("link", name=t("Vote now"), exact=True).tap()
    vote = f"/consultations/{stages['voting']}/vote"
    page.wait_for_url(f"**{vote}")
    expect(page.get_by_role("heading", level=1)).to_have_text(
        exact(t("Vote for your household")))
    items = world["voting_items"]
    first, second = items
    choose(page, 1, first, "Agree", touch=True)
    choose(page, 2, second, "Disagree", touch=True)
    shots(page, "vote-choose")
    vote_button(page, "Next: check my answers").tap()
    expect(page.get_by_role("heading", level=1)).to_have_text(exact(t("Check your answers")))
    expect_answers(page, items, ["Agree", "Disagree"])
    shots(page, "vote-review")
    vote_button(page, "Send my vote").tap()
    page.wait_for_url(f"**/consultations/{stages['voting']}/ballot")
    expect(page.get_by_role("heading", level=1)).to_have_text(
        exact(t("Your household’s vote is recorded")))
    first_receipt = receipt_code(page)
    expect_answers(page, items, ["Agree", "Disagree"])
    shots(page, "vote-receipt")

    # Changing the vote: the choices come back pre-filled; the new vote gets a new receipt.
    page.get_by_role("link", name=t("Change my vote")).tap()
    page.wait_for_url(f"**{vote}")
    expect(page.get_by_role("radio", name=ends_with_word(t("Disagree"))).nth(1)).to_be_checked()
    choose(page, 2, second, "Agree", touch=True)
    shots(page, "change-choose")
    vote_button(page, "Next: check my answers").tap()
    expect(page.get_by_role("heading", level=1)).to_have_text(exact(t("Check your answers")))
    expect_answers(page, items, ["Agree", "Agree"])
    shots(page, "change-review")
    vote_button(page, "Send my vote").tap()
    page.wait_for_url(f"**/consultations/{stages['voting']}/ballot")
    second_receipt = receipt_code(page)
    assert second_receipt != first_receipt
    expect_answers(page, items, ["Agree", "Agree"])
    shots(page, "change-receipt")
    check_language_switch(page, heading="Your household’s vote is recorded")

    # The consultation's page shows the latest receipt.
    page.get_by_role("link", name=re.compile("^← ")).tap()
    page.wait_for_url(f"**/consultations/{stages['voting']}")
    expect(page.locator("main")).to_contain_text(
        f"{t('Your household has voted. Receipt:')} {second_receipt}")
    shots(page, "consultation-voted")
