"""At a desk: a step that cannot be undone is asked again on a page that says, with the
numbers, what it will do; a proposal edited while another member opens the vote comes back on
its form, with what was typed and the reason, instead of an error page."""

from __future__ import annotations

from playwright.sync_api import Page, expect

from tests.e2e.support import DEFAULT_LOCALE, PASSWORDS, NewPage, Shots, _catalog, sign_in, t
from tests.e2e.world import World

HOUSEHOLDS = 3  # the small compound of world.py
ITEMS = 2


def n_(singular: str, plural: str, n: int, **values: object) -> str:
    """A plural message as the app shows it (the catalog's ngettext, like Flask-Babel)."""
    return _catalog(DEFAULT_LOCALE).ngettext(singular, plural, n) % {"num": n, **values}


def roll_sentence() -> str:
    return t("The electoral roll of %(households)s in %(buildings)s is frozen as the registry "
             "stands now; households added later do not vote.",
             households=n_("%(num)s household", "%(num)s households", HOUSEHOLDS),
             buildings=n_("%(num)s building", "%(num)s buildings", 1))


def open_the_vote(page: Page, consultation: str, shots: Shots | None = None) -> None:
    """On the consultation's page: Open the vote, read the confirmation, confirm."""
    page.goto(consultation)
    page.locator("main form[action$='/stage']").filter(
        has=page.locator("input[name='action'][value='open_vote']")).get_by_role(
        "button", name=t("Open the vote"), exact=True).click()
    page.wait_for_url(f"**{consultation}/stage")
    main = page.locator("main")
    expect(main.get_by_role("heading", level=1)).to_have_text(t("Open the vote"))
    expect(main).to_contain_text(roll_sentence())
    expect(main).to_contain_text(n_(
        "The proposal's %(num)s item can no longer change; nor can the scope, the decision "
        "rule, the ballot secrecy or how paper ballots are entered.",
        "The proposal's %(num)s items can no longer change; nor can the scope, the "
        "decision rule, the ballot secrecy or how paper ballots are entered.", ITEMS))
    expect(main.get_by_role("link", name=t("Cancel"), exact=True)).to_have_attribute(
        "href", consultation)
    if shots:
        shots(page, "confirm-open-vote")
    page.get_by_role("button", name=t("Yes: %(step)s", step=t("Open the vote")),
                     exact=True).click()
    page.wait_for_url(f"**{consultation}")
    expect(page.get_by_role("status").filter(
        has_text=t("Done: %(step)s.", step=t("Open the vote")))).to_be_visible()


def test_opening_the_vote_asks_first_with_the_number_of_households(
        new_page: NewPage, world: World, shots: Shots) -> None:
    consultation = f"/consultations/{world['confirm']['open']['consultation']}"
    page = new_page("desktop")
    sign_in(page, "committee", PASSWORDS["committee"])
    page.goto(consultation)
    shots(page, "before")

    # Cancel leads back with nothing done.
    page.locator("main form[action$='/stage']").filter(
        has=page.locator("input[name='action'][value='open_vote']")).get_by_role(
        "button", name=t("Open the vote"), exact=True).click()
    page.wait_for_url(f"**{consultation}/stage")
    page.get_by_role("link", name=t("Cancel"), exact=True).click()
    page.wait_for_url(f"**{consultation}")
    expect(page.locator("main form[action$='/stage']").filter(
        has=page.locator("input[name='action'][value='open_vote']"))).to_have_count(1)

    open_the_vote(page, consultation, shots)
    expect(page.locator("main")).to_contain_text(
        t("%(voted)s of %(total)s households have a ballot.", voted=0, total=HOUSEHOLDS))
    shots(page, "vote-open")

    # The settings that can no longer change are shown greyed out with the reason.
    page.goto(f"{consultation}/edit")
    expect(page.locator("#title")).to_be_disabled()
    expect(page.locator("#secrecy")).to_be_disabled()
    expect(page.locator("#title-locked")).to_have_text(
        t("The proposal cannot change once voting has started."))
    expect(page.locator("#publicity_days")).to_be_enabled()
    shots(page, "settings-during-vote")
    page.locator("#publicity_days").fill("10")
    page.locator("main form[method='post']").get_by_role(
        "button", name=t("Save"), exact=True).click()
    page.wait_for_url(f"**{consultation}")
    expect(page.get_by_role("status").filter(has_text=t("Saved."))).to_be_visible()


def test_an_item_edited_while_the_vote_opens_comes_back_on_its_form(
        new_page: NewPage, world: World, shots: Shots) -> None:
    proposal = world["confirm"]["conflict"]
    consultation = f"/consultations/{proposal['consultation']}"
    page = new_page("desktop")
    sign_in(page, "committee", PASSWORDS["committee"])
    page.goto(f"{consultation}/items/{proposal['items'][0]}/edit")
    page.locator("#title").fill("拆除旧棚并清运垃圾")
    page.locator("#note").fill("加上清运")

    # Meanwhile, in another tab, the vote is opened.
    other = new_page(context=page.context)
    open_the_vote(other, consultation)
    other.close()

    page.locator("main form[method='post']").first.get_by_role(
        "button", name=t("Save"), exact=True).click()
    main = page.locator("main")
    expect(main.get_by_role("alert")).to_contain_text(
        t("The proposal cannot change once voting has started."))
    expect(page.locator("#title")).to_have_value("拆除旧棚并清运垃圾")
    expect(page.locator("#note")).to_have_value("加上清运")
    expect(main).not_to_contain_text(t("Go to the home page"))
    shots(page, "conflict-on-the-form")
