"""A committee member at a desk: the home page lists what waits for the committee, with its
numbers, and one entry leads to the page where the work is done; the consultation list is
searched by title and filtered by compound, with the stage filter."""

from __future__ import annotations

import re

from playwright.sync_api import Locator, Page, expect

from tests.e2e.support import PASSWORDS, NewPage, Shots, message_pattern, sign_in, t
from tests.e2e.world import World


def todo_entry(page: Page, consultation: int) -> Locator:
    """The to-do entry of one consultation (each links to its consultation's page)."""
    return page.locator("#todo li").filter(
        has=page.locator(f"h3 a[href='/consultations/{consultation}']"))


def listed(page: Page) -> Locator:
    """The titles of the consultations listed."""
    return page.locator("main ul.list-unstyled li a.h5")


def test_committee_home_lists_the_work_and_leads_to_it(
        new_page: NewPage, world: World, shots: Shots) -> None:
    page = new_page("desktop")
    sign_in(page, "committee", PASSWORDS["committee"])
    page.goto("/")
    todo = page.locator("#todo")
    expect(todo.get_by_role("heading", name=t("What waits for the committee"))).to_be_visible()

    # The demo's closed vote waits for two papers' second entries; its works, for their report.
    closed = world["stages"]["vote_closed"]
    papers = todo_entry(page, closed)
    expect(papers).to_contain_text(re.compile(r"\d+"))
    expect(papers.get_by_role("link", name=t("Paper ballots waiting"))).to_have_attribute(
        "href", f"/consultations/{closed}/entries")
    works = world["stages"]["implementing"]
    entry = todo_entry(page, works)
    expect(entry).to_contain_text(t("The works have no completion report yet"))
    # The most urgent first: the papers of a closed vote are due now, the works have no date.
    hrefs = todo.locator("li h3 a").evaluate_all(
        "links => links.map(a => a.getAttribute('href'))")
    order = [int(re.sub(r"\D", "", href)) for href in hrefs]
    assert order.index(closed) < order.index(works)
    shots(page, "committee-home")

    entry.get_by_role("link", name=t("Go to the works")).click()
    page.wait_for_url(f"**/consultations/{works}/works")
    expect(page.get_by_role("heading", name=t("Works and their result"), level=1)).to_be_visible()
    expect(page.locator("#completion-report")).to_contain_text(t("No completion report yet."))
    expect(page.locator("#checklist-progress")).to_contain_text(message_pattern(
        "%(done)s of %(total)s items done", done=r"\d+", total=r"\d+"))
    shots(page, "works-followed-from-home")


def test_consultation_list_search_and_compound_filter(
        new_page: NewPage, world: World, shots: Shots) -> None:
    small = world["small"]
    page = new_page("desktop")
    sign_in(page, "committee", PASSWORDS["committee"])
    page.goto("/consultations/")
    search = page.get_by_role("search")
    # The committee member runs consultations in several compounds: the filter offers each.
    compound = search.get_by_label(t("Compound"))
    expect(compound.locator(f"option[value='{small['compound']}']")).to_have_count(1)
    assert compound.locator("option").count() >= 3  # all, the demo's, the small one …
    shots(page, "list")

    compound.select_option(str(small["compound"]))
    search.get_by_role("button", name=t("Search"), exact=True).click()
    page.wait_for_url(re.compile(rf"compound={small['compound']}"))
    # The small compound's consultations only: its gate, and the proposals other flows use.
    titles = [small["title"], *(p["title"] for p in world["confirm"].values())]
    expect(listed(page)).to_have_count(len(titles))
    assert sorted(listed(page).all_text_contents()) == sorted(titles)

    # A search in the demo's compound, in Chinese, then narrowed to a stage.
    compound = page.get_by_role("search").get_by_label(t("Compound"))
    compound.select_option(str(world["compound"]))
    page.get_by_role("search").get_by_label(t("Search in titles")).fill("电梯")
    page.get_by_role("search").get_by_role("button", name=t("Search"), exact=True).click()
    page.wait_for_url(re.compile(r"q="))
    expect(listed(page)).not_to_have_count(0)
    for title in listed(page).all_text_contents():
        assert "电梯" in title
    expect(page.get_by_role("main")).not_to_contain_text(small["title"])
    shots(page, "list-searched")
    stages = page.get_by_role("navigation", name=t("Filter by stage"))
    stages.get_by_role("link").nth(1).click()
    page.wait_for_url(re.compile(r"stage="))
    assert "q=" in page.url and f"compound={world['compound']}" in page.url
    expect(page.get_by_role("search").get_by_label(t("Search in titles"))).to_have_value("电梯")
    expect(listed(page)).not_to_have_count(0)
    shots(page, "list-searched-by-stage")
