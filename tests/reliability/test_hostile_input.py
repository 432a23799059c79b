"""Random and malicious values sent to every route of the app, read from its URL map.

Every rule that takes a form (POST, PUT, PATCH, DELETE) gets its form's fields — found on the
page that shows the form, plus whatever else the view reads — filled with values a careful
user would type, except for a few that Hypothesis replaces with hostile ones: markup and
script, SQL fragments, 100,000 characters, NUL and other control characters, lone surrogates,
right-to-left overrides, piles of combining marks, text for numbers and dates, lists where one
value is expected, missing and empty values, absurd numbers, impossible dates, off-site
addresses, and files that are not what their names say. Every rule answering GET gets the
same treatment for each query parameter its view reads (and ``?lang=``), and for string path
arguments. Each request is signed in as a role allowed to use the route, carries a valid CSRF
token, and is rolled back afterwards.

Every answer must be a 2xx, 3xx or 4xx; a page must be in the user's language (no English
error texts on a Chinese page), contain no markup from the input, and a redirect must stay on
the site. After an accepted submission with markup in it, the pages showing the data (where it
redirects, the form's page, the domain's listings and the newest audit event) are checked the
same way.

The run is bounded (a few examples per route, derandomised so CI runs are reproducible); its
figures go to test-artifacts/reliability/fuzz-<sqlite|postgresql>.json.
"""

from __future__ import annotations

import re
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import pytest
from flask import Flask
from hypothesis import HealthCheck, Phase, example, given, settings
from hypothesis import strategies as st
from werkzeug.exceptions import HTTPException
from werkzeug.routing import Rule

from consult.core import jobs
from tests.reliability import hostile as h
from tests.reliability.conftest import write_figures

FORM_EXAMPLES = 4   # generated per form route, besides four or five explicit ones
QUERY_EXAMPLES = 2  # generated per page, besides three explicit ones


@pytest.fixture(autouse=True)
def _isolation(request: pytest.FixtureRequest, app: Flask) -> Iterator[None]:
    """Each test in a rolled-back transaction, as in the rest of the suite."""
    yield from h.suite_isolation(request, app)


# --- strategies -------------------------------------------------------------------------------

_CHARS = st.characters(categories=["L", "M", "N", "P", "S", "Z", "Cc", "Cf", "Co"])
random_text = st.text(_CHARS, max_size=40)
hostile_text = st.one_of(
    st.sampled_from(h.XSS), st.sampled_from(h.SQL), st.sampled_from(h.BAD_UNICODE),
    st.sampled_from(h.HUGE), st.sampled_from(h.NUMBERS), st.sampled_from(h.DATES),
    st.sampled_from(h.URLS), random_text,
    st.tuples(random_text, st.sampled_from(["\ud800", "\udfff", "\x00"]), random_text).map(
        "".join),
)


def hostile_values(f: h.FormField) -> st.SearchStrategy[list[Any]]:
    if f.kind == "file":
        return st.one_of(st.sampled_from(h.FILES).map(lambda u: [u]),
                         st.lists(st.sampled_from(h.FILES), min_size=2, max_size=3),
                         hostile_text.map(lambda v: [v]))
    return st.one_of(hostile_text.map(lambda v: [v]), st.just([]), st.just([""]),
                     st.lists(hostile_text, min_size=2, max_size=3))


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else f"{text[:60]}…({len(text)} chars)"


@dataclass(frozen=True)
class Submission:
    """One request's values: form or query values by name, path arguments, the language."""

    values: dict[str, list[Any]]
    locale: str
    path: dict[str, str] = field(default_factory=dict)

    def __repr__(self) -> str:  # huge values would drown the failure report
        values = {k: [_short(v) for v in vs] for k, vs in self.values.items()}
        return f"Submission({values}, locale={self.locale!r}, path={_short(self.path)})"

    @property
    def has_markup(self) -> bool:
        texts = [v.filename if isinstance(v, h.Upload) else v
                 for vs in self.values.values() for v in vs]
        return any(isinstance(v, str) and ("<" in v or "javascript:" in v.lower())
                   for v in texts)


@st.composite
def submissions(draw: Any, fields: dict[str, h.FormField], base: dict[str, list[Any]],
                path_args: tuple[str, ...]) -> Submission:
    """The careful user's values with up to three of them (and the string path arguments,
    sometimes) replaced by hostile ones."""
    values = dict(base)
    names = sorted(fields)
    if names:
        for name in draw(st.lists(st.sampled_from(names), max_size=min(3, len(names)),
                                  unique=True)):
            values[name] = draw(hostile_values(fields[name]))
    path = {arg: value for arg in path_args
            if (value := draw(st.one_of(st.none(), hostile_text))) is not None}
    return Submission(values, draw(st.sampled_from(h.LOCALES)), path)


def explicit_forms(fields: dict[str, h.FormField], base: dict[str, list[Any]]
                   ) -> list[Submission]:
    """Field names with other numbers in them (``item_7`` → ``item_²``, a 20-digit number,
    ``item_-1``), markup in every free-text field (the one most likely to be stored), control
    characters and broken Unicode in every text field, 100,000 characters everywhere, absurd
    numbers in every field that is not free text."""
    def varied(pick: Callable[[h.FormField], list[Any] | None], locale: str) -> Submission:
        values = dict(base)
        for name, f in fields.items():
            chosen = pick(f)
            if chosen is not None:
                values[name] = chosen
        return Submission(values, locale)

    text = ("text", "textarea", "search", "password", "hidden")
    renamed = dict(base)
    for name in (n for n in fields if re.search(r"\d", n)):
        for digits in ("²", h.HUGE_NUMBER, "-1"):
            renamed[re.sub(r"\d+", digits, name)] = base.get(name) or ["1"]
    examples = [Submission(renamed, "en")] if renamed != base else []
    return [
        *examples,
        varied(lambda f: [h.xss_for(f)] if h.is_free_text(f) else None, "zh_Hans"),
        varied(lambda f: ["a\x00b\ud800c\u202e\u0301" * 3] if f.kind in text else None,
               "zh_Hant"),
        varied(lambda f: [h.HUGE[1]] if f.kind != "file" else [h.FILES[3]], "en"),
        varied(lambda f: None if h.is_free_text(f) or f.kind == "file"
               else ["-" + h.HUGE_NUMBER], "zh_Hans"),
    ]


def _settings(examples: int) -> Callable[[Any], Any]:
    return settings(max_examples=max(examples, 1), deadline=None, derandomize=True,
                    database=None, phases=[Phase.explicit] + ([Phase.generate] if examples
                                                              else []),
                    suppress_health_check=list(HealthCheck), print_blob=False)


# --- the fuzzer -------------------------------------------------------------------------------


@dataclass
class Figures:
    form_routes: list[str] = field(default_factory=list)
    query_routes: list[str] = field(default_factory=list)
    requests: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    accepted_with_markup: int = 0
    markup_routes: set[str] = field(default_factory=set)
    pages_checked: int = 0
    fields: int = 0
    parameters: int = 0
    form_examples: int = 0
    query_examples: int = 0
    seconds: dict[str, float] = field(default_factory=dict)


class Fuzzer:
    def __init__(self, site: h.Site) -> None:
        self.site, self.app = site, site.app
        self.figures = Figures()
        self.failures: list[str] = []
        self._adapter = site.app.url_map.bind("localhost")

    def send(self, url: str, method: str = "GET", pairs: list[tuple[str, Any]] | None = None,
             multipart: bool = False) -> Any:
        self.figures.requests += 1
        response = self.site.send(url, method, pairs, multipart)
        self.figures.statuses[response.status_code] += 1
        return response

    # forms

    def fuzz_form(self, rule: Rule, method: str) -> None:
        endpoint = rule.endpoint
        role = h.role_for(self.app, endpoint)
        args = self.site.world.args(endpoint)
        url = h.build_url(rule, args)
        form = self.site.find_form(rule, method, role, args)
        if form is None:
            self.failures.append(
                f"{method} {endpoint}: no page shows a form that sends to it, so it cannot be "
                "fuzzed; name the page in tests/reliability/hostile.py HOSTS")
            return
        fields = {n: f for n, f in form.fields.items() if n != "csrf_token"}
        base = h.baselines(form, args, endpoint)
        with self.site.rolled_back():  # names the view reads that no form field shows
            self.site.browser(role, "zh_Hans")
            pairs = [(n, v) for n, vs in base.items() for v in vs]
            read = h.parameters_read(self.app, lambda: self.send(url, method, pairs,
                                                                 form.multipart), "form")
        for name in sorted(read - set(fields)):
            fields[name] = h.FormField(name, "text")
            base.setdefault(name, [])
        self.figures.form_routes.append(f"{method} {endpoint}")
        self.figures.fields += len(fields)
        path_args = tuple(a for a in rule.arguments if not isinstance(args[a], int))

        def run(sub: Submission) -> None:
            target = self._with_path(rule, args, sub.path) if sub.path else url
            self.figures.form_examples += 1
            with self.site.rolled_back():
                self.site.browser(role, sub.locale)
                seq = h.latest_seq()
                pairs = [(n, v) for n, vs in sub.values.items() for v in vs]
                response = self.send(target, method, pairs, form.multipart)
                problems = h.check_response(response, sub.locale, f"{method} {endpoint}")
                if not problems and response.status_code < 400 and sub.has_markup:
                    self.figures.accepted_with_markup += 1
                    self.figures.markup_routes.add(f"{method} {endpoint}")
                    problems += self.check_pages(endpoint, args, role, sub.locale, response,
                                                 seq)
            assert not problems, problems

        for sub in explicit_forms(fields, base):
            run = example(sub=sub)(run)
        test = _settings(FORM_EXAMPLES)(given(sub=submissions(fields, base, path_args))(run))
        self._run(f"{method} {endpoint}", test)

    def _with_path(self, rule: Rule, args: dict[str, Any], path: dict[str, str]) -> str:
        url = h.build_url(rule, args)
        for name, value in path.items():
            url = url.replace(f"/{args[name]}", f"/{h.path_segment(value)}", 1)
        return url

    def check_pages(self, endpoint: str, args: dict[str, Any], role: str, locale: str,
                    response: Any, seq: int) -> list[str]:
        """The pages that show what was just stored: it must appear there only escaped."""
        problems: list[str] = []
        location = response.headers.get("Location")
        own: list[str] = []
        if location:
            own.append(location)
        rule = self.site.rule(endpoint)
        if "GET" in (rule.methods or ()):
            own.append(h.build_url(rule, args))
        elif endpoint in h.HOSTS and h.HOSTS[endpoint][1] == "GET":
            own.append(self.site.url_of(h.HOSTS[endpoint][0], args))
        staff = [self.site.url_of(e, args) for e in h.DISPLAY.get(endpoint, ())]
        newest = h.latest_seq()
        if newest > seq:
            staff.append(f"/audit/{newest}")
        for viewer, urls in ((role, own), ("admin", staff)):
            for url in urls:
                if not self._is_page(url):
                    continue
                self.site.browser(viewer, locale)
                page = self.send(url)
                self.figures.pages_checked += 1
                problems += h.check_response(page, self.site.reads(viewer, locale),
                                             f"{endpoint} → GET {url}")
        return problems

    def _is_page(self, url: str) -> bool:
        parts = urlsplit(url)
        if parts.netloc not in ("", "localhost"):
            return False
        try:
            self._adapter.match(parts.path, method="GET")
        except HTTPException:
            return False
        return True

    # query parameters

    def fuzz_query(self, rule: Rule) -> None:
        endpoint = rule.endpoint
        role = h.role_for(self.app, endpoint)
        args = self.site.world.args(endpoint)
        url = h.build_url(rule, args)
        with self.site.rolled_back():
            self.site.browser(role, "zh_Hans")
            box: dict[str, Any] = {}
            read = h.parameters_read(self.app, lambda: box.setdefault("r", self.send(url)),
                                     "args")
            html = box["r"].mimetype == "text/html"
        names = sorted(read | {"lang"})
        fields = {n: h.FormField(n, "text") for n in names}
        self.figures.query_routes.append(endpoint)
        self.figures.parameters += len(names)
        path_args = tuple(a for a in rule.arguments if not isinstance(args[a], int))

        def run(sub: Submission) -> None:
            target = self._with_path(rule, args, sub.path) if sub.path else url
            query = h.query_string(sub.values)
            locale = h.expected_locale(sub.locale, sub.values.get("lang"))
            self.figures.query_examples += 1
            with self.site.rolled_back():
                self.site.browser(role, sub.locale)
                response = self.send(f"{target}?{query}" if query else target)
                problems = h.check_response(response, locale, f"GET {endpoint}")
            assert not problems, problems

        everything = {n: [h.XSS[0]] for n in names}
        run = example(sub=Submission(everything, "zh_Hant", {a: h.XSS[0] for a in path_args}))(
            run)
        if html:  # PDFs take a second each: their parameters get the markup only
            for values, locale in (([h.HUGE_NUMBER], "en"), (["a\x00b\ud800", "-1"], "zh_Hans")):
                run = example(sub=Submission({n: values for n in names}, locale))(run)
        test = _settings(QUERY_EXAMPLES if html else 0)(
            given(sub=submissions(fields, {}, path_args))(run))
        self._run(f"GET {endpoint}", test)

    def _run(self, what: str, test: Callable[[], None]) -> None:
        started = time.monotonic()
        try:
            test()
        except Exception as exc:  # collect every route's failure, then fail once
            notes = "\n".join(getattr(exc, "__notes__", []))
            self.failures.append(f"{what}: {exc}\n{notes}"[:3000])
        self.figures.seconds[what] = round(time.monotonic() - started, 2)


def test_hostile_values_on_every_route(app, client, db_kind, monkeypatch):
    # Print jobs would lay out PDFs inside the request in tests; printing is not the subject.
    monkeypatch.setattr(jobs, "submit", lambda function, *args: None)
    started = time.monotonic()
    world = h.build_world()
    built = time.monotonic() - started
    fuzzer = Fuzzer(h.Site(app, client, world))
    for rule in h.view_rules(app):
        for method in h.unsafe_methods(rule):
            fuzzer.fuzz_form(rule, method)
        if "GET" in (rule.methods or ()):
            fuzzer.fuzz_query(rule)
    f = fuzzer.figures
    write_figures("fuzz", db_kind, {
        "seconds": round(time.monotonic() - started, 1),
        "world_seconds": round(built, 1),
        "form_routes": len(f.form_routes), "query_routes": len(f.query_routes),
        "form_fields": f.fields, "query_parameters": f.parameters,
        "generated_examples_per_form_route": FORM_EXAMPLES,
        "generated_examples_per_page": QUERY_EXAMPLES,
        "form_submissions": f.form_examples, "page_examples": f.query_examples,
        "requests": f.requests, "statuses": dict(sorted(f.statuses.items())),
        "accepted_with_markup": f.accepted_with_markup, "pages_checked": f.pages_checked,
        "routes_accepting_markup": sorted(f.markup_routes),
        "failures": len(fuzzer.failures),
        "slowest": dict(sorted(f.seconds.items(), key=lambda kv: -kv[1])[:10]),
        "routes": {"forms": f.form_routes, "pages": f.query_routes},
    })
    assert not fuzzer.failures, "\n\n".join(fuzzer.failures)
    every = {f"{m} {r.endpoint}" for r in h.view_rules(app) for m in h.unsafe_methods(r)}
    assert set(f.form_routes) == every


def test_ids_no_record_can_have_are_not_found(app, client):
    """Every id in an address, replaced by one past what the id columns (2**31) or SQLite's
    integers (2**63) hold, or by a 31-digit number: a 404 page, never an overflow."""
    site = h.Site(app, client, h.build_world())
    failures = []
    for rule in h.view_rules(app):
        args = site.world.args(rule.endpoint)
        ids = [a for a in rule.arguments if isinstance(args[a], int)]
        method = "GET" if "GET" in (rule.methods or ()) else h.unsafe_methods(rule)[0]
        for number in ((2**31, 2**63, 10**30) if ids else ()):
            url = h.build_url(rule, {**args, **dict.fromkeys(ids, number)})
            with site.rolled_back():
                site.browser(h.role_for(app, rule.endpoint), "zh_Hant")
                response = site.send(url, method)
            if response.status_code != 404:
                failures.append(f"{method} {url}: {response.status_code}")
            failures += h.check_response(response, "zh_Hant", f"{method} {url}")
    assert not failures, "\n".join(failures)


# --- walks over every form with one kind of bad input each ------------------------------------


@dataclass
class FormRoute:
    """A route taking a form, with what a careful user of the right role sends to it."""

    endpoint: str
    method: str
    role: str
    url: str
    form: h.Form
    base: dict[str, list[Any]]

    def send(self, site: h.Site, values: dict[str, list[Any]], locale: str = "zh_Hans") -> Any:
        site.browser(self.role, locale)
        return site.send(self.url, self.method, [(n, v) for n, vs in values.items() for v in vs],
                         self.form.multipart)


def form_routes(site: h.Site) -> Iterator[FormRoute]:
    for rule in h.view_rules(site.app):
        for method in h.unsafe_methods(rule):
            role = h.role_for(site.app, rule.endpoint)
            args = site.world.args(rule.endpoint)
            form = site.find_form(rule, method, role, args)
            assert form is not None, f"{method} {rule.endpoint}: no page shows its form"
            yield FormRoute(rule.endpoint, method, role, h.build_url(rule, args), form,
                            h.baselines(form, args, rule.endpoint))


def test_a_form_with_any_field_left_out_is_answered_as_if_it_were_empty(app, client,
                                                                         monkeypatch):
    """A hand-made POST that simply omits a field (the household's floor, a meeting's place,
    a deadline): a page or a redirect, as for an empty field, never a server error."""
    monkeypatch.setattr(jobs, "submit", lambda function, *args: None)
    site = h.Site(app, client, h.build_world())
    failures, sent = [], 0
    for route in form_routes(site):
        for name in sorted(route.base):
            values = {n: v for n, v in route.base.items() if n != name}
            with site.rolled_back():
                response = route.send(site, values)
            sent += 1
            failures += h.check_response(response, "zh_Hans",
                                         f"{route.method} {route.endpoint} without {name}")
    assert sent > 150
    assert not failures, "\n".join(failures)


# Python's calendar ends at years 1 and 9999, and 0001-01-01T07:59 in Beijing is year 0 in UTC.
EXTREME_DATES = ("0001-01-01T00:00", "0001-01-01T07:59", "1999-12-31T23:59", "2101-01-01T00:00",
                 "9999-12-31T23:59")


def test_every_date_field_refuses_dates_outside_2000_to_2100_at_the_field(app, client,
                                                                          monkeypatch):
    """Every date and time in every form (a meeting, the deadlines) takes the same range: a
    date outside it is an error next to its field, the form shown again; nothing is stored."""
    monkeypatch.setattr(jobs, "submit", lambda function, *args: None)
    site = h.Site(app, client, h.build_world())
    failures, checked = [], set()
    for route in form_routes(site):
        for name, f in route.form.fields.items():
            if f.kind not in ("datetime-local", "date"):
                continue
            checked.add(f"{route.endpoint} {name}")
            for value in EXTREME_DATES:
                values = {**route.base, name: [value[:10] if f.kind == "date" else value]}
                with site.rolled_back():
                    seq = h.latest_seq()
                    response = route.send(site, values, "zh_Hant")
                    stored = h.latest_seq() != seq
                where = f"{route.method} {route.endpoint} {name}={value}"
                failures += h.check_response(response, "zh_Hant", where)
                html = response.get_data(as_text=True)
                if response.status_code not in (200, 400) or stored:
                    failures.append(f"{where}: {response.status_code}, stored: {stored}")
                elif f'id="{name}-error"' not in html or "2000" not in html:
                    failures.append(f"{where}: no message at the field")
    assert checked >= {"consultations.new solicitation_deadline",
                       "consultations.new vote_deadline", "consultations.edit vote_deadline",
                       "consultations.meeting_new held_at", "consultations.meeting_edit held_at"}
    assert not failures, "\n".join(failures)
