"""What the browser tests share: the app's own translations, signing in, the language switch,
screenshots and the axe-core accessibility check."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any, Literal

from babel.support import Translations
from playwright.sync_api import Browser, BrowserContext, Page, expect
from playwright.sync_api import Error as PlaywrightError

from tests.live import ROOT, LiveServer

HERE = Path(__file__).resolve().parent
ARTIFACTS = ROOT / "test-artifacts" / "e2e"
AXE = HERE / "node_modules" / "axe-core" / "axe.min.js"
# The success criteria the app promises: WCAG 2.0 and 2.1, levels A and AA.
WCAG_TAGS = ("wcag2a", "wcag2aa", "wcag21a", "wcag21aa")
BLOCKING_IMPACTS = frozenset({"serious", "critical"})

# The buttons of the language switch name each language in itself, whatever the page's
# language; <html lang> takes the BCP 47 tag.
LANGUAGES = {"zh_Hans": ("简体中文", "zh-Hans"), "zh_Hant": ("繁體中文", "zh-Hant"),
             "en": ("English", "en")}
DEFAULT_LOCALE = "zh_Hans"

Device = Literal["phone", "desktop"]
DEVICES: dict[Device, dict[str, Any]] = {
    # A household representative's phone (the size of a common 6.1" phone).
    "phone": {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True},
    "desktop": {"viewport": {"width": 1280, "height": 900}},
}
# Long enough for a busy 2-core machine, short enough that a missing element fails quickly.
TIMEOUT_MS = 15_000
expect.set_options(timeout=TIMEOUT_MS)

# The demo accounts of `flask demo seed`.
PASSWORDS = {"committee": "demo-committee-2026", "supervisor": "demo-supervisor-2026",
             "admin": "demo-admin-2026", "resident": "demo-resident-2026",
             "grid": "demo-grid-2026",
             # Not a demo account: world.py adds this second committee member.
             "committee2": "demo-committee2-2026"}

NewPage = Callable[..., Page]


@cache
def _catalog(locale: str) -> Translations:
    catalog = Translations.load(str(ROOT / "translations"), [locale], domain="messages")
    # Without the compiled catalog every page would be checked against English msgids.
    assert isinstance(catalog, Translations), (
        f"translations/{locale} is not compiled: run scripts/setup.sh --test")
    return catalog


def t(message: str, locale: str = DEFAULT_LOCALE, **values: Any) -> str:
    """``message`` as the app shows it in ``locale`` (its own catalogs, like Flask-Babel)."""
    text = _catalog(locale).gettext(message)
    return text % values if values else text


def exact(text: str) -> re.Pattern[str]:
    """A pattern for an accessible name or text that is ``text`` and nothing else, ignoring the
    spaces around it."""
    return re.compile(rf"^\s*{re.escape(text)}\s*$")


def message_pattern(message: str, locale: str = DEFAULT_LOCALE, **groups: str) -> re.Pattern[str]:
    """A pattern for ``message`` as shown in ``locale``, each ``%(name)s`` matched by the
    regular expression ``groups[name]`` and captured, in order, by a plain group (the pattern
    also goes to the browser, whose regular expressions spell named groups differently)."""
    parts = re.split(r"%\((\w+)\)s", t(message, locale))
    # re.split keeps the placeholders' names at the odd positions.
    return re.compile("".join(f"({groups[part]})" if n % 2 else re.escape(part)
                              for n, part in enumerate(parts)))


def ends_with_word(text: str) -> re.Pattern[str]:
    """A pattern for a name ending in the word ``text``: "✓ Agree" matches "Agree", but
    "Disagree" does not (a checked answer card's name starts with its tick)."""
    return re.compile(rf"(^|\W){re.escape(text)}\s*$")


def open_context(browser: Browser, server: LiveServer, device: Device,
                 **options: Any) -> BrowserContext:
    """A fresh browser context (its own cookies) on the live server, in Simplified Chinese and
    Beijing time like the app's users; ``options`` go to Playwright (``bypass_csp=True`` lets
    axe-core be injected despite the app's script-src 'self')."""
    context = browser.new_context(**DEVICES[device], base_url=server.url, locale="zh-CN",
                                  timezone_id="Asia/Shanghai", **options)
    context.set_default_timeout(TIMEOUT_MS)
    return context


# --- signing in ---------------------------------------------------------------------------


def sign_in(page: Page, username: str, password: str, locale: str = DEFAULT_LOCALE) -> None:
    """Sign in with a password through the sign-in form, as staff (and residents with a
    password) do."""
    page.goto("/login")
    form = page.locator("main form[action='/login']")
    form.get_by_label(t("Username", locale)).fill(username)
    form.get_by_label(t("Password", locale)).fill(password)
    form.get_by_role("button", name=t("Sign in", locale)).click()
    page.wait_for_url(lambda url: not url.endswith("/login"))
    expect(page.locator("form[action='/logout']")).to_be_visible()


def sign_in_with_code(page: Page, code: str, locale: str = DEFAULT_LOCALE) -> None:
    """Redeem a household's access code on /code; lands on the welcome page."""
    page.goto("/code")
    form = page.locator("main form[action='/code']")
    form.get_by_label(t("Access code (12 digits, from your letter)", locale)).fill(code)
    form.get_by_role("button", name=t("Continue", locale)).click()
    page.wait_for_url("**/welcome")


# --- ballots -------------------------------------------------------------------------------


def choose(page: Page, number: int, title: str, choice: str, *, touch: bool = False) -> None:
    """Pick the answer ``choice`` (a message id: "Agree", ...) for item ``number`` by pressing
    its answer card, as a person does: the radio button itself is hidden under the card.

    The items are the groups of radio buttons in order; the group is checked to be the one
    about ``title`` (the item's title, which the page shows untranslated)."""
    group = page.get_by_role("group").filter(has=page.get_by_role("radio")).nth(number - 1)
    expect(group).to_contain_text(title)
    card = group.get_by_text(t(choice), exact=True)
    if touch:
        card.tap()
    else:
        card.click()
    expect(group.get_by_role("radio", name=ends_with_word(t(choice)))).to_be_checked()


# --- the language switch ------------------------------------------------------------------


def check_language_switch(page: Page, heading: str | None = None, **values: Any) -> None:
    """Switch the page to Traditional Chinese, to English and back to Simplified Chinese with
    the buttons at the top, and check each time that the same page came back in that
    language: ``<html lang>``, the window title, the main menu and (when ``heading`` is a
    message id, with ``values`` for its placeholders) the page's heading."""
    # Checking the page against the catalogs proves nothing where they translate nothing.
    for message in ("Consultation Hall", "Home", *([heading] if heading else [])):
        shown = {t(message, locale, **values) for locale in LANGUAGES}
        assert len(shown) == len(LANGUAGES), f"{message!r} is not translated: {shown}"
    expect(page.locator("html")).to_have_attribute("lang", LANGUAGES[DEFAULT_LOCALE][1])
    url = page.url
    switch = page.locator("form[action='/language']")
    for locale in ("zh_Hant", "en", DEFAULT_LOCALE):
        label, tag = LANGUAGES[locale]
        switch.get_by_role("button", name=label, exact=True).click()
        expect(page.locator("html")).to_have_attribute("lang", tag)
        page.wait_for_load_state()
        expect(page).to_have_url(url)
        expect(page).to_have_title(re.compile(re.escape(t("Consultation Hall", locale)) + "$"))
        menu = page.get_by_role("navigation", name=t("Main menu", locale))
        expect(menu.get_by_role("link", name=t("Home", locale), exact=True)).to_be_visible()
        expect(switch.get_by_role("button", name=label, exact=True)).to_have_attribute(
            "aria-current", "true")
        if heading:
            expect(page.get_by_role("heading", level=1)).to_have_text(
                exact(t(heading, locale, **values)))


# --- screenshots ----------------------------------------------------------------------------


@dataclass
class Shots:
    """Numbered full-page screenshots of one test's steps, kept as test artefacts."""

    folder: Path
    taken: list[Path] = field(default_factory=list)

    def __call__(self, page: Page, step: str, *, full_page: bool = True) -> Path:
        name = re.sub(r"[^\w.-]+", "-", step).strip("-")
        path = self.folder / f"{len(self.taken) + 1:02d}-{name}.png"
        self.folder.mkdir(parents=True, exist_ok=True)
        try:
            page.screenshot(path=path, full_page=full_page)
        except PlaywrightError as exc:
            # A busy machine's chromium sometimes drops a full-page capture of a long page
            # ("Unable to capture screenshot"); the picture is evidence, not what is tested.
            if "Unable to capture screenshot" not in str(exc):
                raise
            page.screenshot(path=path, full_page=False)
        self.taken.append(path)
        return path


def artefact_folder(test_name: str) -> Path:
    """test-artifacts/e2e/<test>, emptied of an earlier run's artefacts."""
    folder = ARTIFACTS / re.sub(r"[^\w.-]+", "-", test_name).strip("-")
    if folder.exists():
        for old in folder.iterdir():
            old.unlink()
    return folder


# --- accessibility ------------------------------------------------------------------------

# Runs in the page: violations of the WCAG A/AA rules, reduced to what a report needs.
_AXE_RUN = """async (tags) => {
  const results = await axe.run(document, {
    runOnly: {type: 'tag', values: tags}, resultTypes: ['violations']});
  return results.violations.map(v => ({
    id: v.id, impact: v.impact, help: v.help, helpUrl: v.helpUrl,
    nodes: v.nodes.map(n => ({target: n.target.map(String), impact: n.impact,
                              html: n.html, summary: n.failureSummary}))}));
}"""


@dataclass(frozen=True)
class Violation:
    """One axe-core rule broken on a page, with every element that breaks it."""

    rule: str
    impact: str
    help: str
    help_url: str
    targets: tuple[str, ...]  # CSS selectors, one per element
    html: tuple[str, ...]  # the start of each element's markup
    details: tuple[str, ...]  # why each element fails

    def describe(self) -> str:
        nodes = "\n".join(f"      {target}\n        {html}\n        {detail}"
                          for target, html, detail in zip(self.targets, self.html,
                                                          self.details, strict=True))
        return f"  {self.rule} [{self.impact}] {self.help} <{self.help_url}>\n{nodes}"


def axe_violations(page: Page) -> list[Violation]:
    """Every WCAG 2.0/2.1 A and AA violation axe-core finds on the page as it is now."""
    assert AXE.is_file(), f"{AXE} is missing: run scripts/setup.sh --test (it runs npm ci)"
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.add_script_tag(path=AXE)
    found = page.evaluate(_AXE_RUN, list(WCAG_TAGS))
    return [Violation(
        rule=v["id"], impact=v["impact"] or "unknown", help=v["help"], help_url=v["helpUrl"],
        targets=tuple(" ".join(n["target"]) for n in v["nodes"]),
        html=tuple(_shorten(n["html"]) for n in v["nodes"]),
        details=tuple(_first_line(n["summary"]) for n in v["nodes"])) for v in found]


def _shorten(html: str, limit: int = 160) -> str:
    html = " ".join(html.split())
    return html if len(html) <= limit else html[:limit - 1] + "…"


def _first_line(summary: str | None) -> str:
    lines = [line.strip() for line in (summary or "").splitlines() if line.strip()]
    # "Fix any of the following:" is a heading; the reason is on the next line.
    return lines[1] if len(lines) > 1 else (lines[0] if lines else "")
