"""A household votes online; the committee corrects its ballot with a signed paper ballot. The
lift vote is decided by a Civil Code rule, so its paper ballots are entered twice: the
committee member's correction counts once the administrator has entered the same paper
without seeing the first entry. The household then sees, on its phone, that the committee
corrected its ballot, when and why, and that it can vote again."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PIL import Image
from playwright.sync_api import Page, expect

from tests.e2e.support import (
    BLOCKING_IMPACTS,
    PASSWORDS,
    NewPage,
    Shots,
    axe_violations,
    choose,
    sign_in,
    sign_in_with_code,
    t,
)
from tests.e2e.world import World

REASON = "住户交回签名的书面表决票，改为反对"


def vote_online(page: Page, consultation: str, items: list[str]) -> None:
    page.goto(f"{consultation}/vote")
    for number, title in enumerate(items, start=1):
        choose(page, number, title, "Agree", touch=True)
    page.get_by_role("button", name=t("Next: check my answers")).tap()
    page.locator("form[action$='/vote/confirm']").get_by_role("button").tap()
    page.wait_for_url("**/ballot")


def accessible(page: Page) -> None:
    """No serious or critical WCAG A/AA violation on the page as it is now."""
    blocking = [v for v in axe_violations(page) if v.impact in BLOCKING_IMPACTS]
    assert not blocking, "\n".join(v.describe() for v in blocking)


def answer(page: Page, items: list[str], choice: str) -> None:
    for number, title in enumerate(items, start=1):
        choose(page, number, title, choice)


def test_the_committee_corrects_a_ballot_and_the_household_sees_it(
        new_page: NewPage, world: World, shots: Shots, tmp_path: Path) -> None:
    household = world["corrected"]
    consultation = f"/consultations/{world['stages']['voting']}"
    items = world["voting_items"]
    enter = f"{consultation}/ballots/{household['household']}/enter"
    scan = tmp_path / "签名表决票.png"
    Image.new("RGB", (600, 800), "white").save(scan)

    phone = new_page("phone", bypass_csp=True)
    sign_in_with_code(phone, household["code"])
    vote_online(phone, consultation, items)

    # The committee member opens the household's entry form: it shows the online ballot and
    # offers only a correction.
    desk = new_page("desktop", bypass_csp=True)
    sign_in(desk, "committee", PASSWORDS["committee"])
    desk.goto(enter)
    main = desk.locator("main")
    expect(desk.get_by_role("heading", level=1)).to_have_text(t("Correct a ballot"))
    expect(main).to_contain_text(t("The household already has a ballot"))
    expect(main).to_contain_text(t("the household itself, online"))
    expect(main.get_by_role("radio", name=t("Not reached"))).to_have_count(0)
    shots(desk, "committee-form-over-an-online-ballot")

    # Saved without a reason or evidence: refused, nothing changes, the answers stay chosen.
    answer(desk, items, "Disagree")
    desk.get_by_role("button", name=t("Record the correction")).click()
    expect(main.get_by_role("alert").filter(
        has_text=t("Say why the household's ballot is corrected."))).to_be_visible()
    expect(main.get_by_role("alert").filter(has_text=t(
        "Attach the evidence: a scan of the paper ballot the household signed, or the "
        "proxy's written authorisation."))).to_be_visible()
    shots(desk, "committee-correction-refused-without-evidence")
    accessible(desk)

    desk.get_by_label(t("Why the household's ballot is corrected")).fill(REASON)
    desk.get_by_label(t("Evidence: scan of the paper ballot the household signed, or the "
                        "proxy's written authorisation (photo or PDF)")).set_input_files(scan)
    answer(desk, items, "Disagree")
    shots(desk, "committee-correction-filled-in")
    desk.get_by_role("button", name=t("Record the correction")).click()
    expect(desk.get_by_role("status").filter(has_text=t(
        "First entry of the ballot of %(household)s recorded. It counts once another member "
        "enters the same paper ballot and both entries agree.",
        household=household["label"]))).to_be_visible()
    shots(desk, "committee-first-entry-recorded")

    # The household's ballot stands until the second entry.
    phone.goto(f"{consultation}/ballot")
    expect(phone.locator("main")).not_to_contain_text(
        t("The neighbourhood committee corrected your household’s ballot"))

    # The administrator enters the same paper again, without seeing the first entry.
    second = new_page("desktop", bypass_csp=True)
    sign_in(second, "admin", PASSWORDS["admin"])
    second.goto(f"{consultation}/entries")
    expect(second.locator("main")).to_contain_text(t("awaits its second entry"))
    shots(second, "paper-ballots-waiting")
    second.goto(enter)
    expect(second.get_by_role("heading", level=1)).to_have_text(
        t("Second entry of a paper ballot"))
    expect(second.locator("main input[type='radio']:checked")).to_have_count(0)
    shots(second, "second-entry-without-the-first")
    accessible(second)
    answer(second, items, "Disagree")
    second.get_by_role("button", name=t("Record the second entry")).click()
    expect(second.get_by_role("status").first).to_contain_text(household["label"])
    second.goto(f"{consultation}/corrections")
    expect(second.locator("main")).to_contain_text(REASON)
    expect(second.locator("main")).to_contain_text(t("counted"))
    shots(second, "corrections-list")

    # The household sees it on its phone: when and why, not who.
    phone.goto("/")
    home = phone.locator("main")
    expect(home).to_contain_text(REASON)
    for staff in ("李红梅", "张伟"):  # the demo's committee member and administrator
        expect(home).not_to_contain_text(staff)
    shots(phone, "household-home-corrected")
    accessible(phone)
    phone.goto(f"{consultation}/ballot")
    receipt = phone.locator("main")
    expect(receipt.get_by_role("heading", name=t(
        "The neighbourhood committee corrected your household’s ballot"))).to_be_visible()
    expect(receipt).to_contain_text(REASON)
    expect(receipt).to_contain_text(t("Disagree"))
    expect(receipt).not_to_contain_text("李红梅")
    shots(phone, "household-receipt-corrected")
    accessible(phone)

    # Its own vote again: the household's latest ballot counts.
    vote_online(phone, consultation, items)
    expect(receipt).to_contain_text(t("Agree"))
    expect(receipt).not_to_contain_text(t("The answers below are the corrected ones."))
    shots(phone, "household-voted-again")


def import_file(page: Page, consultation: str, path: Path, shots: Shots, name: str) -> None:
    """Upload a paper-ballot file, look at its preview (nothing recorded yet), confirm it."""
    page.goto(f"{consultation}/ballots/import")
    page.get_by_label(t("Paper ballots file (CSV or XLSX)")).set_input_files(path)
    page.get_by_role("button", name=t("Check the file")).click()
    expect(page.locator("main")).to_contain_text(t("Nothing has been recorded yet."))
    shots(page, f"{name}-preview")
    accessible(page)
    page.get_by_role("button", name=t("Enter these ballots")).click()
    page.wait_for_url(f"**{consultation}/ballots")


def test_paper_ballots_are_imported_twice_and_a_difference_is_decided(
        new_page: NewPage, world: World, shots: Shots, tmp_path: Path) -> None:
    consultation = f"/consultations/{world['stages']['voting']}"
    items = world["voting_items"]
    first_home, second_home = world["paper"]
    header = "楼栋,单元,房号,议项,表决意见,方式,编号\n"

    def file(name: str, second_answer: str) -> Path:
        rows = [f"{h['building']},{h['unit']},{h['room']},{n},{answer},书面,P-{h['household']}"
                for h, answer in ((first_home, "同意"), (second_home, second_answer))
                for n in range(1, len(items) + 1)]
        path = tmp_path / name
        path.write_text(header + "\n".join(rows) + "\n", encoding="utf-8")
        return path

    # The committee member's file: first entries, nothing counts yet.
    desk = new_page("desktop", bypass_csp=True)
    sign_in(desk, "committee", PASSWORDS["committee"])
    import_file(desk, consultation, file("first.csv", "同意"), shots, "first-file")
    desk.goto(f"{consultation}/tally")
    expect(desk.locator("main")).to_contain_text(t("Not in these figures yet:"))
    shots(desk, "tally-with-papers-waiting")

    # The administrator's file of the same papers reads the second household's differently.
    admin = new_page("desktop", bypass_csp=True)
    sign_in(admin, "admin", PASSWORDS["admin"])
    import_file(admin, consultation, file("second.csv", "反对"), shots, "second-file")
    expect(admin.get_by_role("status").first).to_contain_text("1")
    admin.goto(f"{consultation}/entries")
    expect(admin.locator("main")).to_contain_text(t("entries differ: awaits a decision"))
    shots(admin, "a-difference-waits")

    # A member who made neither entry decides against the paper.
    third = new_page("desktop", bypass_csp=True)
    sign_in(third, "committee2", PASSWORDS["committee2"])
    third.goto(f"{consultation}/entries")
    third.get_by_role("link", name=t("Decide against the paper")).click()
    expect(third.get_by_role("heading", level=1)).to_have_text(
        t("Decide between differing entries"))
    shots(third, "decision")
    accessible(third)
    third.get_by_label(re_entry("居委会 李红梅")).check()
    third.get_by_role("button", name=t("Decide against the paper")).click()
    expect(third.get_by_role("status").first).to_contain_text(
        t("Decided: the ballot of %(household)s counts as chosen.", household="")[:3])
    third.goto(f"{consultation}/entries")
    # Neither household of the files waits any more (the demo's follow-up visit left one
    # door-to-door answer waiting for its second entry in this vote: it stays).
    main = third.locator("main")
    expect(main).not_to_contain_text(t("entries differ: awaits a decision"))
    for home in (first_home, second_home):
        expect(main).not_to_contain_text(f"{home['room']}室")
    shots(third, "nothing-of-the-files-waits")


def re_entry(who: str) -> Any:
    import re

    return re.compile(re.escape(who))
