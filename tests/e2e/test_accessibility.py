"""Every main page, opened as the person who uses it (residents on a phone, staff at a desk),
has no serious or critical violation of WCAG 2.0/2.1 A and AA that axe-core can find.

A failure lists the page, each rule with its impact, and the elements (CSS selectors) at
fault; every violation, whatever its impact, is also written next to the page's screenshot
in test-artifacts/e2e/<test>/axe.json.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect

from consult.core.display import TEXT_COOKIE, TEXT_LARGE
from tests import live
from tests.e2e.support import (
    BLOCKING_IMPACTS,
    PASSWORDS,
    Device,
    NewPage,
    Shots,
    axe_violations,
    choose,
    open_context,
    sign_in,
    t,
)
from tests.e2e.world import World

Steps = Callable[[Page, World], None]


def _review(page: Page, world: World) -> None:
    """From the voting screen to the review screen: answer every item and press "Next"."""
    for number, title in enumerate(world["voting_items"], start=1):
        choose(page, number, title, "Agree", touch=True)
    page.get_by_role("button", name=t("Next: check my answers")).tap()
    expect(page.locator("form[action$='/vote/confirm']")).to_be_visible()


def _receipt(page: Page, world: World) -> None:
    """On to the receipt: send the vote."""
    _review(page, world)
    page.locator("form[action$='/vote/confirm']").get_by_role("button").tap()
    page.wait_for_url("**/ballot")


def _proof(page: Page, world: World) -> None:
    """Type a counted ballot's receipt code the way people do (lower case, spaces) and check."""
    typed = world["counted_receipt"].lower().replace("-", " ")
    page.get_by_label(t("Receipt code (letters and digits, dashes do not matter)")).fill(typed)
    page.get_by_role("button", name=t("Check my ballot")).tap()
    expect(page.get_by_text(t("Your ballot was counted."))).to_be_visible()


@dataclass(frozen=True)
class Screen:
    """A page as one role sees it: ``path`` is formatted with the world's ids; ``steps``
    go on from there (filling in a form, say) to the screen to check."""

    name: str
    role: str | None  # a demo account, or None for someone not signed in
    path: str
    steps: Steps | None = None

    @property
    def device(self) -> Device:
        return "phone" if self.role in (None, "resident") else "desktop"


SCREENS = [
    # Anyone, on a phone: the way in.
    Screen("home-anonymous", None, "/"),
    Screen("sign-in-password", None, "/login"),
    Screen("sign-in-access-code", None, "/code"),
    Screen("verify-notice", None, "/verify/{resolution_code}"),
    Screen("proof-check", None, "/consultations/{stages[vote_counted]}/proof"),
    Screen("proof-counted", None, "/consultations/{stages[vote_counted]}/proof", _proof),
    # A household representative, on a phone.
    Screen("home-resident", "resident", "/"),
    Screen("consultations-list", "resident", "/consultations/"),
    *(Screen(f"consultation-{stage}", "resident", f"/consultations/{{stages[{stage}]}}")
      for stage in ("soliciting", "proposing", "discussing", "voting", "vote_closed",
                    "vote_counted", "resolution_public", "implementing", "result_public",
                    "closed", "withdrawn")),
    Screen("opinion-form", "resident", "/consultations/{stages[soliciting]}/opinions/new"),
    Screen("item-discussion", "resident", "/consultations/{stages[discussing]}"
                                          "/items/{discussing_item}"),
    Screen("vote-choose", "resident", "/consultations/{stages[voting]}/vote"),
    Screen("vote-review", "resident", "/consultations/{stages[voting]}/vote", _review),
    Screen("vote-receipt", "resident", "/consultations/{stages[voting]}/vote", _receipt),
    Screen("resolution-notice", "resident", "/notices/{resolution_notice}"),
    Screen("result-notice", "resident", "/notices/{result_notice}"),
    Screen("works", "resident", "/consultations/{stages[implementing]}/works"),
    Screen("evaluation-form", "resident", "/consultations/{stages[result_public]}/evaluation"),
    Screen("notifications-resident", "resident", "/notifications"),
    Screen("questionnaire-answer", "resident",
           "/consultations/{stages[soliciting]}/questionnaire"),
    Screen("defect-report-form", "resident",
           "/consultations/{stages[result_public]}/feedback/new"),
    Screen("defect-public-list", None, "/compounds/{compound}/feedback"),
    Screen("notification-preferences-resident", "resident", "/notifications/preferences"),
    # The committee, at a desk.
    Screen("committee-home", "committee", "/"),
    Screen("committee-consultations-list", "committee", "/consultations/"),
    Screen("committee-works", "committee", "/consultations/{stages[implementing]}/works"),
    Screen("committee-consultation-draft", "committee", "/consultations/{stages[draft]}"),
    Screen("committee-consultation-discussing", "committee",
           "/consultations/{stages[discussing]}"),
    Screen("committee-ballots", "committee", "/consultations/{stages[voting]}/ballots"),
    Screen("committee-tally", "committee", "/consultations/{stages[voting]}/tally"),
    Screen("committee-ballot-entry", "committee",
           "/consultations/{stages[voting]}/ballots/{resident_household}/enter"),
    Screen("committee-household-ballot", "committee",
           "/consultations/{stages[voting]}/ballots/{resident_household}"),
    Screen("committee-paper-ballots-waiting", "committee",
           "/consultations/{stages[voting]}/entries"),
    Screen("committee-corrections", "committee", "/consultations/{stages[voting]}/corrections"),
    Screen("committee-ballot-import", "committee",
           "/consultations/{stages[voting]}/ballots/import"),
    Screen("committee-opinions", "committee", "/consultations/{stages[soliciting]}/opinions"),
    Screen("committee-meetings", "committee", "/consultations/{stages[discussing]}/meetings"),
    Screen("committee-settings", "committee", "/consultations/{stages[discussing]}/edit"),
    Screen("committee-households", "committee", "/registry/compounds/{compound}"),
    Screen("committee-household", "committee", "/registry/households/{resident_household}"),
    Screen("committee-questionnaire-builder", "committee",
           "/consultations/{stages[soliciting]}/questionnaire/build"),
    Screen("committee-questionnaire-results", "committee",
           "/consultations/{stages[soliciting]}/questionnaire/results"),
    Screen("committee-questionnaire-paper", "committee",
           "/consultations/{stages[soliciting]}/questionnaire/paper"),
    Screen("committee-defects", "committee", "/feedback/"),
    Screen("committee-defect-report", "committee", "/feedback/{defect_report}"),
    # The supervisor and the administrator.
    Screen("supervisor-audit-trail", "supervisor", "/audit/"),
    Screen("supervisor-audit-event", "supervisor", "/audit/{audit_event}"),
    Screen("admin-accounts", "admin", "/admin/users"),
    Screen("notification-preferences-committee", "committee", "/notifications/preferences"),
    # The overview dashboard, over a committee member's scope and over every compound.
    Screen("committee-dashboard", "committee", "/dashboard/"),
    Screen("admin-dashboard", "admin", "/dashboard/"),
    Screen("grid-worker-dashboard", "grid", "/dashboard/"),
    # Scoring rounds: the published ranking is public (on a phone), the rounds the office's.
    Screen("ranking-notice", None, "/scoring/notices/{ranking_notice}"),
    Screen("admin-scoring-rounds", "admin", "/scoring"),
    Screen("admin-scoring-round", "admin", "/scoring/{scoring_round}"),
    Screen("admin-grid-import", "admin", "/registry/grids/import"),
    # Door-to-door follow-up: the lists, a team's progress, one visit.
    Screen("committee-visit-lists", "committee", "/consultations/{visit_consultation}/visits"),
    Screen("committee-visit-list", "committee",
           "/consultations/{visit_consultation}/visits/{visit_list}"),
    Screen("grid-worker-visit", "grid",
           "/consultations/{visit_consultation}/visits/{visit_list}/{visit}"),
]


ContextFor = Callable[[Screen, str], BrowserContext]
# Every page in the normal text size and in the larger-text mode (大字) residents switch on.
TEXT_SIZES = ("normal", TEXT_LARGE)


@pytest.fixture(scope="module")
def context_for(browser: Browser, server: live.LiveServer) -> Iterator[ContextFor]:
    """One browser context per role for all the pages (signing in once, through the sign-in
    form), on the role's device, with the page's CSP bypassed so that axe-core can be
    injected."""
    contexts: dict[tuple[str | None, str], BrowserContext] = {}

    def context(screen: Screen, size: str) -> BrowserContext:
        if (screen.role, size) not in contexts:
            made = open_context(browser, server, screen.device, bypass_csp=True)
            if size == TEXT_LARGE:
                made.add_cookies([{"name": TEXT_COOKIE, "value": TEXT_LARGE, "url": server.url}])
            if screen.role:
                page = made.new_page()
                sign_in(page, screen.role, PASSWORDS[screen.role])
                page.close()
            contexts[screen.role, size] = made
        return contexts[screen.role, size]

    yield context
    for made in contexts.values():
        made.close()


@pytest.mark.parametrize("size", TEXT_SIZES)
@pytest.mark.parametrize("screen", SCREENS, ids=[s.name for s in SCREENS])
def test_no_serious_accessibility_violations(
        screen: Screen, size: str, new_page: NewPage, context_for: ContextFor, world: World,
        shots: Shots) -> None:
    page = new_page(context=context_for(screen, size))
    path = screen.path.format(**world)
    response = page.goto(path)
    assert response is not None and response.ok, f"{path}: {response and response.status}"
    if size == TEXT_LARGE:
        expect(page.locator("html")).to_have_class("text-large")
    # A redirect (to the sign-in page, say) would have the wrong page checked.
    assert urlsplit(page.url).path == path, f"{path} led to {page.url}"
    if screen.steps:
        screen.steps(page, world)
    page.wait_for_load_state()
    picture = shots(page, f"{screen.name}-{size}")

    violations = axe_violations(page)
    url = page.url
    page.close()  # pictured already: a failure below needs no second picture of it
    (picture.parent / "axe.json").write_text(json.dumps(
        {"url": url, "role": screen.role or "anonymous", "device": screen.device, "text": size,
         "violations": [asdict(v) for v in violations]}, ensure_ascii=False, indent=2))
    blocking = [v for v in violations if v.impact in BLOCKING_IMPACTS]
    if blocking:
        pytest.fail(
            f"{len(blocking)} serious or critical WCAG A/AA violation(s) on {url} "
            f"(as {screen.role or 'anonymous'}, {screen.device}, {size} text):\n"
            + "\n".join(v.describe() for v in blocking), pytrace=False)


def test_the_check_finds_what_it_should(new_page: NewPage) -> None:
    """The harness itself: axe-core is injected and run with the WCAG tags, so a page with an
    unlabelled image and faint text fails, and a best-practice rule outside WCAG is not
    reported."""
    page = new_page("desktop", bypass_csp=True)
    page.set_content(
        '<!doctype html><html lang="en"><head><title>t</title></head><body><main>'
        '<img src="data:image/gif;base64,R0lGODlhAQABAAAAACw=">'
        '<p style="color:#999;background:#aaa">faint</p></main>'
        '<div>outside any landmark</div></body></html>')
    found = {v.rule: v for v in axe_violations(page)}
    assert set(found) == {"image-alt", "color-contrast"}, found
    assert found["image-alt"].impact == "critical"
    assert found["color-contrast"].targets == ("p",)
