"""A supervisor (群众监督员) reads the audit trail: finds the steps the committee took in one
consultation and opens the last one to see what exactly was recorded."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from tests.e2e.support import PASSWORDS, NewPage, Shots, check_language_switch, exact, sign_in, t
from tests.e2e.world import World

# The demo consultation 屋面防水维修 went from draft to its published resolution in six steps,
# every one taken by the committee member: that is what the supervisor should find.
STEPS = ["start_soliciting", "start_proposing", "start_discussion", "open_vote", "close_vote",
         "publish_resolution"]
# The audit trail names people as the app shows them: the demo committee member (demo.py).
COMMITTEE_NAME = "居委会 李红梅"


def test_supervisor_reads_the_committees_steps_in_the_audit_trail(
        new_page: NewPage, world: World, shots: Shots) -> None:
    consultation = world["stages"]["resolution_public"]
    page = new_page("desktop")

    sign_in(page, "supervisor", PASSWORDS["supervisor"])
    page.get_by_role("navigation", name=t("Main menu")).get_by_role(
        "link", name=t("Audit trail"), exact=True).click()
    page.wait_for_url("**/audit/")
    expect(page.get_by_role("heading", level=1)).to_have_text(exact(t("Audit trail")))
    shots(page, "audit-trail")
    check_language_switch(page, heading="Audit trail")

    # The kind of change "stage steps", with the consultation and the member who took them.
    search = page.get_by_role("search")
    search.get_by_label(t("Kind of change")).select_option("stages")
    search.get_by_label(t("Object type")).select_option("consultation")
    search.get_by_label(t("Object number")).fill(str(consultation))
    search.get_by_label(t("By (username)")).fill("committee")
    search.get_by_role("button", name=t("Filter")).click()
    page.wait_for_url(re.compile(rf"/audit/\?.*object_id={consultation}"))
    # Each event is a row of the trail; a row holds small tables of its own (what changed).
    rows = page.get_by_role("region", name=t("Audit events")).locator(
        ":scope > table > tbody > tr")
    expect(rows).to_have_count(len(STEPS))
    for row in rows.all():
        expect(row).to_contain_text(COMMITTEE_NAME)
        expect(row).to_contain_text(t("Stage changed"))
    shots(page, "committee-steps")

    # The newest of them is the publication of the resolution notice: the stage before and
    # after, in words.
    # The first cell links to the event by its number, then to its chain.
    links = rows.locator(":scope > td:first-child > a:first-of-type")
    numbers = [int(text) for text in links.all_inner_texts()]
    last = max(numbers)
    newest = rows.filter(has=page.get_by_role("link", name=str(last), exact=True))
    changed = newest.get_by_role("table")
    expect(changed).to_contain_text(t("Vote counted, not published yet"))
    expect(changed).to_contain_text(t("Resolution published"))
    links.get_by_text(str(last), exact=True).click()
    page.wait_for_url(f"**/audit/{last}")
    expect(page.get_by_role("heading", level=1)).to_have_text(
        exact(t("Audit event #%(seq)s", seq=last)))
    details = page.locator("main dl")
    expect(details).to_contain_text("consultation.stage_changed")
    expect(details).to_contain_text(COMMITTEE_NAME)
    expect(details).to_contain_text("committee")
    expect(details).to_contain_text(re.compile(r"\b[0-9a-f]{64}\b"))
    recorded = page.locator("main pre")
    expect(recorded).to_contain_text('"action": "publish_resolution"')
    expect(recorded).to_contain_text('"to": "resolution_public"')
    shots(page, "event")
    check_language_switch(page, heading="Audit event #%(seq)s", seq=last)

    # And each of the earlier steps is there, in the order they were taken.
    taken = []
    for number in sorted(numbers):
        page.goto(f"/audit/{number}")
        payload = page.locator("main pre").inner_text()
        found = re.search(r'"action": "(\w+)"', payload)
        assert found, payload
        taken.append(found.group(1))
    assert taken == STEPS
