"""What the hostile-input, CSRF and upload tests share: a world with a consultation in every
stage (its texts full of markup), the role that may use each route, the forms each route takes
(read from the pages that show them), hostile values, and the checks every answer must pass.

Everything is derived from the app's URL map, so a new route is covered without editing this
file; only a POST route whose form appears on no page needs a line in ``HOSTS``.
"""

from __future__ import annotations

import importlib
import json
import pkgutil
import re
import secrets
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, timedelta
from html.parser import HTMLParser
from typing import Any
from urllib.parse import quote, urlencode, urljoin, urlsplit

import sqlalchemy as sa
from flask import Flask, Request
from werkzeug.datastructures import ImmutableMultiDict
from werkzeug.exceptions import HTTPException
from werkzeug.routing import Rule
from werkzeug.utils import cached_property

import tests.access
from consult.accounts.models import User
from consult.audit.models import AuditEvent
from consult.consultations.models import Comment, Meeting, Opinion, OpinionSupport
from consult.core.handlers import DEFAULT_MESSAGES, TITLES
from consult.core.i18n import normalize_locale
from consult.core.models import utcnow
from consult.core.policy import POLICY
from consult.extensions import db, limiter
from consult.registry.models import Resident
from tests import factories
from tests.access import EXPECTED

for _module in pkgutil.iter_modules(tests.access.__path__):  # each adds its routes to EXPECTED
    importlib.import_module(f"tests.access.{_module.name}")

NOT_VIEWS = frozenset({"static", "bootstrap.static"})
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
VALID: Any = object()  # Site.send's default token: the session's own
LOCALES = ("zh_Hans", "zh_Hant", "en")
HTML_LANG = {"zh_Hans": "zh-Hans", "zh_Hant": "zh-Hant", "en": "en"}
STAGES = ("draft", "soliciting", "proposing", "discussing", "voting", "resolution_public",
          "implementing", "result_public")

# The role a route is used by, from the roles the access matrix lets in: the scoped committee
# member first (the everyday user of staff pages), the resident for a household's own pages.
ROLE_PREFERENCE = ("committee", "admin", "supervisor", "resident", "anonymous")

# The stage a route's consultation must be in for its form to be accepted; others use
# DEFAULT_STAGE (a new route is still fuzzed, perhaps only for refusals).
DEFAULT_STAGE = "discussing"
STAGE_OF = {
    "consultations.edit": "draft", "consultations.scope": "draft", "consultations.stage": "draft",
    "consultations.item_new": "proposing", "consultations.item_edit": "proposing",
    "consultations.item_delete": "proposing", "consultations.item_opinions": "proposing",
    "consultations.opinion_categorise": "proposing", "consultations.opinion_merge": "proposing",
    "consultations.opinion_new": "soliciting", "consultations.opinion_record": "soliciting",
    "consultations.opinion_support": "soliciting", "consultations.opinions": "soliciting",
    "notices.print_batch": "soliciting",
    "ballots.vote": "voting", "ballots.confirm": "voting", "ballots.enter": "voting",
    "ballots.export_roll": "voting", "ballots.index": "voting", "ballots.receipt": "voting",
    "ballots.tally": "voting", "ballots.household": "voting", "ballots.authorise": "voting",
    "ballots.waiting": "voting", "ballots.decide": "voting", "ballots.corrections": "voting",
    "ballots.import_file": "voting", "ballots.import_confirm": "voting",
    "ballots.visits_index": "voting", "ballots.visits_new": "voting",
    "ballots.visit_list": "voting", "ballots.visit_sheets_pdf": "voting", "ballots.visit": "voting",
    "reminders.poster": "voting",
    "notices.show": "resolution_public", "notices.object_": "resolution_public",
    "notices.answer": "resolution_public", "notices.pdf": "resolution_public",
    "notices.verify": "resolution_public", "proofs.check": "resolution_public",
    "implementation.works": "implementing", "implementation.progress_new": "implementing",
    "implementation.item_complete": "implementing",
    "implementation.inspection_new": "implementing",
    "implementation.evaluate": "result_public",
    "feedback.new": "result_public", "feedback.show": "result_public",
    "feedback.move": "result_public", "feedback.warranty": "result_public",
    "feedback.photo": "result_public",
    "consultations.opinion_withdraw": "soliciting", "consultations.support_withdraw": "soliciting",
    # The questionnaire is built in the draft (no answers yet: every builder form shows) and
    # answered, typed in from paper and counted while opinions are collected.
    **{f"consultations.questionnaire_{name}": "draft" for name in (
        "build", "question_add", "question", "question_remove", "question_move", "publish")},
    **{f"consultations.questionnaire_{name}": "soliciting" for name in (
        "answer", "paper_find", "paper", "sheets", "results", "take_up", "export")},
}
# Pages opened with a query that makes their form show every field: the paper-ballot entry
# form for a proxy ballot has the proxy's fields and the upload of its written authorisation.
PAGE_QUERY = {"ballots.enter": "channel=proxy"}
# Routes on what the resident's household itself posted: their ids in place of the world's.
OWN_ARGS = {"consultations.opinion_withdraw": {"opinion_id": "own_opinion_id"},
            "consultations.comment_withdraw": {"comment_id": "own_comment_id"},
            "consultations.support_withdraw": {"opinion_id": "other_opinion_id"}}

# POST-only routes: the page (endpoint, method) whose form posts to them. A route missing here
# is looked for on every page of its world; one found nowhere fails the test.
HOSTS: dict[str, tuple[str, str]] = {
    "accounts.logout": ("main.index", "GET"),
    "main.set_language": ("main.index", "GET"),
    "main.set_text_size": ("main.index", "GET"),
    "accounts.user_password": ("accounts.user_edit", "GET"),
    "accounts.scope_add": ("accounts.user_edit", "GET"),
    "accounts.scope_remove": ("accounts.user_edit", "GET"),
    "registry.access_code_issue": ("registry.household", "GET"),
    "registry.access_code_revoke": ("registry.household", "GET"),
    "registry.resident_delete": ("registry.household", "GET"),
    "registry.export_households": ("registry.compound", "GET"),
    "consultations.stage": ("consultations.show", "GET"),
    "consultations.item_delete": ("consultations.item_edit", "GET"),
    "consultations.opinion_support": ("consultations.opinions", "GET"),
    "consultations.opinion_categorise": ("consultations.opinion", "GET"),
    "consultations.opinion_merge": ("consultations.opinion", "GET"),
    "consultations.comment_post": ("consultations.item", "GET"),
    "consultations.comment_post_committee": ("consultations.item", "GET"),
    "ballots.confirm": ("ballots.vote", "POST"),  # the review screen
    "ballots.export_roll": ("ballots.index", "GET"),
    "ballots.authorise": ("ballots.household", "GET"),
    "ballots.import_confirm": ("ballots.import_file", "POST"),  # the preview
    "registry.import_grids_confirm": ("registry.import_grids", "POST"),  # the preview
    "notices.object_": ("notices.show", "GET"),
    "notices.answer": ("notices.show", "GET"),
    "feedback.move": ("feedback.show", "GET"),
    "notices.issue_vote_notice": ("consultations.show", "GET"),
    "notices.print_batch": ("consultations.show", "GET"),
    "accounts.unlock": ("accounts.user_edit", "GET"),
    "accounts.code_resume": ("registry.household", "GET"),
    "accounts.sign_out_everywhere": ("accounts.profile", "GET"),
    # A withdrawal's confirmation page posts to itself.
    "consultations.opinion_withdraw": ("consultations.opinion_withdraw", "GET"),
    "consultations.support_withdraw": ("consultations.support_withdraw", "GET"),
    "consultations.comment_withdraw": ("consultations.comment_withdraw", "GET"),
}

# Where the data a route stores is shown, besides the page it redirects to, the page of its
# form and the newest audit event (checked for every route).
DISPLAY: dict[str, tuple[str, ...]] = {
    "accounts.user_new": ("accounts.users",),
    "accounts.user_edit": ("accounts.users",),
    "registry.community_new": ("registry.index", "registry.compound_new"),
    "registry.compound_new": ("registry.index", "consultations.new"),
    "registry.building_new": ("registry.compound", "registry.household_new"),
    "registry.building_edit": ("registry.compound", "registry.household_new"),
    "registry.household_new": ("registry.compound",),
    "registry.household_edit": ("registry.compound", "registry.household"),
    "registry.resident_new": ("registry.household",),
    "registry.resident_edit": ("registry.household",),
    "consultations.new": ("consultations.index", "main.index"),
    "consultations.edit": ("consultations.index", "consultations.show"),
    "consultations.item_new": ("consultations.revisions", "consultations.item"),
    "consultations.item_edit": ("consultations.revisions", "consultations.item"),
    "consultations.opinion_new": ("consultations.opinions", "consultations.opinion_summary"),
    "consultations.opinion_record": ("consultations.opinions",
                                     "consultations.opinion_summary"),
    "consultations.comment_post": ("consultations.item",),
    "consultations.comment_post_committee": ("consultations.item",),
    "consultations.comment_moderate": ("consultations.item",),
    "consultations.meeting_new": ("consultations.meetings",),
    "consultations.meeting_edit": ("consultations.meetings", "consultations.meeting"),
    "ballots.enter": ("ballots.index",),
    "notices.object_": ("notices.show",),
    "notices.answer": ("notices.show",),
    "implementation.progress_new": ("implementation.works",),
    "implementation.item_complete": ("implementation.works",),
    "implementation.inspection_new": ("implementation.works",),
    "implementation.evaluate": ("implementation.works",),
    "consultations.questionnaire_question_add": ("consultations.questionnaire_build", "GET"),
    "consultations.questionnaire_question_remove": ("consultations.questionnaire_build", "GET"),
    "consultations.questionnaire_question_move": ("consultations.questionnaire_build", "GET"),
    "consultations.questionnaire_publish": ("consultations.questionnaire_build", "GET"),
    "consultations.questionnaire_take_up": ("consultations.questionnaire_results", "GET"),
}


# --- the world --------------------------------------------------------------------------------


@dataclass
class World:
    """Ids for every URL argument: shared ones, and per stage the consultation's own."""

    users: dict[str, int]  # role → user id
    shared: dict[str, Any]
    stages: dict[str, dict[str, Any]]

    def args(self, endpoint: str) -> dict[str, Any]:
        args = {**self.shared, **self.stages[STAGE_OF.get(endpoint, DEFAULT_STAGE)]}
        return {**args, **{name: args[own] for name, own in OWN_ARGS.get(endpoint, {}).items()}}


def _consultation_in(compound: Any, stage: str) -> Any:
    from consult.consultations.states import Action
    from consult.process import workflow

    # Everything people write holds markup, so every page showing it is a check of escaping.
    c = factories.make_consultation(compound, items=2, title=f"旧改{STORED}")
    c.summary = STORED
    for item in c.items:
        item.title, item.description = f"{item.title}{STORED}", STORED
    db.session.flush()
    if stage == "draft":
        return c
    if stage in ("soliciting", "proposing", "discussing"):
        factories.walk_to(c, stage)
        if stage == "discussing":
            c.vote_deadline = utcnow() + timedelta(days=10)  # a vote notice can be issued
        return c
    if stage == "voting":  # open, nobody has voted yet; paper ballots are entered twice
        factories.walk_to(c, "discussing")
        c.vote_deadline = utcnow() + timedelta(days=10)
        c.double_entry = True
        workflow.apply(c, Action.OPEN_VOTE, None)
        return c
    if stage == "resolution_public":
        factories.walk_to(c, "resolution_public")
        return c
    now = factories.walk_to(c, "implementing")
    if stage == "result_public":
        from consult.implementation import service as works

        works.add_progress(None, c, works.progress_data(
            item_id=None, percent="100", spend="100", note="完工", is_final=True), now=now)
        for item in works.implementable_items(c):
            works.complete_item(None, item, 1000, "完成", now=now)
        # Published now, so that the evaluation is open while the test runs.
        workflow.apply(c, Action.PUBLISH_RESULT, None, now=utcnow())
    return c


def _questionnaire_of(c: Any, published: bool, household: Any) -> dict[str, Any]:
    """A questionnaire of every kind of question, its texts full of markup; published, with
    the household's online answers (a free text among them), or still being built."""
    from consult.consultations import questionnaires

    q = questionnaires.save_heading(None, c, f"问卷{STORED}", STORED)
    questions = [questionnaires.add_question(None, q, questionnaires.question_data(
        kind=kind, text=f"问题{STORED}", required=kind == "single",
        # Choices are short (100 characters): the shorter markup.
        choices=f"甲{XSS[3]}\n乙{XSS[2]}")) for kind in ("single", "multiple", "rating", "text")]
    ids: dict[str, Any] = {"question_id": questions[0].id}
    if published:
        questionnaires.publish(None, q)
        questionnaires.answer_online(None, q, household, {
            questions[0].id: "1", questions[1].id: "[0, 1]", questions[2].id: "4",
            questions[3].id: f"建议{STORED}"})
        answer = next(a for a in questionnaires.response_of(q, household).answers
                      if a.question_id == questions[3].id)
        ids["answer_id"] = answer.id
    return ids


def build_world() -> World:
    """A compound of four households, an account per role, and a consultation per stage with
    an opinion, a comment and a meeting; the resolution notice has an unanswered objection."""
    from consult.accounts.models import UserScope
    from consult.notices import pdf
    from consult.notices import service as notices
    from consult.notices.models import NoticeKind, Objection, PrintKind
    from consult.process import printing
    from consult.uploads import service as uploads
    from tests.access.uploads import png_upload

    compound = factories.make_compound_with_households(per_building=2)
    compound.community.name = COMMUNITY  # named, for the grids file below
    neighbour, other = compound.buildings[0].households
    mine = compound.buildings[1].households[0]
    neighbour.owner_name = NAME
    resident = Resident(household=neighbour, name=NAME, relation="owner")
    db.session.add(resident)
    from consult.accounts import service as accounts

    accounts.issue_access_code(None, neighbour)  # an open code shows the form revoking it
    # …and, paused after wrong tries, the form lifting the pause.
    accounts.open_access_code(neighbour).paused_until = utcnow() + timedelta(hours=1)
    users = {role: factories.make_user(role, compound=compound)
             for role in ("committee", "supervisor", "admin")}
    users["resident"] = factories.make_user("resident", household=mine)
    target = factories.make_user("committee", compound=compound)
    target.display_name = NAME
    from consult.notifications import events as notification_events
    from consult.notifications import service as notifications

    # Unread notifications: the centre shows its forms (mark one read, mark all read).
    notifications.notify(notification_events.BALLOT_CORRECTED, list(users.values()),
                         {"consultation": NAME}, "/", "hostile-world")
    if hasattr(target, "locked_until"):  # a locked account shows the form that unlocks it
        target.locked_until = utcnow() + timedelta(hours=1)
    db.session.flush()
    scope = db.session.scalars(sa.select(UserScope).where(UserScope.user_id == target.id)).one()
    from consult.registry.models import ImportJob

    # A finished households import whose page shows the uploaded file's name.
    imported = ImportJob(compound_id=compound.id, filename=f"住户{STORED}.csv", status="done",
                         summary=json.dumps({"rows": 1, "created": 1,
                                             "buildings_created": [NAME]}),
                         requested_by_id=users["committee"].id)
    db.session.add(imported)
    db.session.flush()
    shared: dict[str, Any] = {
        "compound_id": compound.id, "building_id": compound.buildings[0].id,
        "household_id": neighbour.id, "resident_id": resident.id, "user_id": target.id,
        "scope_id": scope.id, "number": 1, "kind": PrintKind.SOLICITATION.value,
        "import_id": imported.id, "community_id": compound.community_id,
    }
    # A scoring round of the compound and two others, open for scores.
    from consult.scoring import service as scoring

    # A closed one, with its published ranking.
    rivals = [factories.make_compound(f"评比小区{n}", compound.community) for n in (1, 2)]

    def round_of(name: str) -> Any:
        return scoring.open_round(None, scoring.RoundInput(
            name=name, period_start=date(2026, 11, 1), period_end=date(2026, 12, 31),
            compound_ids=[compound.id, *(r.id for r in rivals)],
            criteria=scoring.parse_sheet("环境 | 1 | 10"), inspector_weight_pct=20, decimals=1,
            honour_count=1, outlier_points=15))

    scoring_round, closed = round_of(NAME), round_of(f"{NAME}2")
    scoring.record_inspector_scores(None, closed, NAME, rivals[0].id,
                                    {closed.criteria[0].id: "8"})
    ranking = scoring.close_round(None, closed)
    shared.update(round_id=scoring_round.id, scorer_id=compound.id, target_id=rivals[0].id,
                  ranking_id=ranking.id)
    stages: dict[str, dict[str, Any]] = {}
    for stage in STAGES:
        c = _consultation_in(compound, stage)
        item = c.items[0]
        opinions = [Opinion(consultation_id=c.id, household_id=h.id, category="pipes",
                            text=f"楼道水管漏水{n}{STORED}")
                    for n, h in enumerate((neighbour, other))]
        comment = Comment(item_id=item.id, household_id=other.id, text=STORED)
        meeting = Meeting(consultation_id=c.id, place=STORED, held_at=utcnow(), minutes=STORED,
                          decisions=STORED)
        # What the resident's own household posted, which only it may withdraw.
        own_opinion = Opinion(consultation_id=c.id, household_id=mine.id, category="lighting",
                              text=f"楼道灯不亮{STORED}")
        own_comment = Comment(item_id=item.id, household_id=mine.id, text=STORED)
        db.session.add_all([*opinions, comment, meeting, own_opinion, own_comment])
        db.session.flush()
        db.session.add(OpinionSupport(opinion_id=opinions[1].id, household_id=mine.id))
        db.session.flush()
        stages[stage] = {"consultation_id": c.id, "item_id": item.id,
                         "opinion_id": opinions[0].id, "other_opinion_id": opinions[1].id,
                         "comment_id": comment.id, "meeting_id": meeting.id,
                         "own_opinion_id": own_opinion.id, "own_comment_id": own_comment.id}
        if stage in ("draft", "soliciting"):
            stages[stage].update(_questionnaire_of(c, stage == "soliciting", neighbour))
        if stage == "resolution_public":
            notice = notices.current_notice(c, NoticeKind.RESOLUTION)
            objection = Objection(notice=notice, household_id=other.id, text=STORED)
            db.session.add(objection)
            db.session.flush()
            shared.update(notice_id=notice.id, objection_id=objection.id,
                          code=notice.verify_code)
        if stage == "result_public":
            # A defect report of the resident's own household, new: the committee's page
            # shows the forms accepting and rejecting it.
            from consult.feedback import service as feedback

            reporter = factories.make_user("supervisor", compound=compound)
            report = feedback.report(reporter, c, feedback.ReportInput(
                item_id=item.id, building_id=mine.building_id, text=f"路面开裂{STORED}",
                photos=[png_upload()]))
            report.household_id = mine.id
            db.session.flush()
            stages[stage]["report_id"] = report.id
            stages[stage]["photo_id"] = report.photos[0].id
        if stage == "soliciting":
            job = printing.request_job(None, c, PrintKind.SOLICITATION)
            job.status = "done"  # a finished job without rendering: PDFs are not fuzzed here
            path = pdf.job_path(job.id)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(b"%PDF-1.7\n%%EOF\n")
            shared["job_id"] = job.id
        if stage == "discussing":
            shared["attachment_id"] = uploads.store(None, png_upload(), consultation=c).id
        if stage == "voting":
            # The neighbour's proxy ballot awaits its second entry and its written
            # authorisation; the other household's two entries differ and await a decision.
            from consult.ballots import entries
            from consult.ballots.models import BallotChannel

            both = {i.id: "agree" for i in c.items}
            entries.enter(target, c, neighbour, entries.Paper(
                BallotChannel.PROXY, both, proxy_name=NAME))
            lead = entries.enter(target, c, other, entries.Paper(BallotChannel.PAPER, both))
            entries.enter(users["admin"], c, other, entries.Paper(
                BallotChannel.PAPER, {i.id: "disagree" for i in c.items}))
            stages[stage]["entry_id"] = lead.id
            # A follow-up visit list of the households without a ballot, one team.
            from consult.ballots import visits

            planned = visits.plan(c, [visits.NOT_VOTED], None, f"一组: {NAME}", "count")
            visit_list = visits.create_list(None, c, planned)
            stages[stage].update(visit_list_id=visit_list.id,
                                 visit_id=visits.rows(visit_list)[0].visit.id)
    db.session.flush()
    shared["seq"] = latest_seq()
    return World(users={role: user.id for role, user in users.items()}, shared=shared,
                 stages=stages)


def latest_seq() -> int:
    return db.session.scalar(sa.select(sa.func.max(AuditEvent.seq))) or 0


def suite_isolation(request: Any, app: Flask) -> Iterator[None]:
    """The suite's rolled-back transaction per test (tests/conftest.py ``_isolation``), which
    tests/reliability/conftest.py turns off for its live-server tests: the tests using this
    module run on the suite's own app and database."""
    from tests import conftest as suite

    isolation = getattr(suite._isolation, "__wrapped__", suite._isolation)  # pytest ≥ 8.4 wraps
    yield from isolation(request, app)


# --- routes -----------------------------------------------------------------------------------


def view_rules(app: Flask) -> list[Rule]:
    """The pages' routes. The JSON API's (/api/) have no forms and no cookie, so no CSRF
    token: the access matrix checks that a browser's cookie opens none of its changes
    (tests/test_access_matrix.py), and schemathesis sends them hostile input
    (tests/api/test_schemathesis.py)."""
    return sorted((r for r in app.url_map.iter_rules()
                   if r.endpoint not in NOT_VIEWS and not r.rule.startswith("/api/")),
                  key=lambda r: (r.endpoint, r.rule))


def unsafe_methods(rule: Rule) -> list[str]:
    return sorted((rule.methods or set()) - SAFE_METHODS)


# Routes whose form only one of the allowed roles ever sees: /welcome, the household's
# choice of a password just after signing in with its letter's code; withdrawing an opinion or
# a comment, which only the household that wrote it may do (``OWN_ARGS``).
ROLE_OF = {"accounts.activate": "resident", "consultations.opinion_withdraw": "resident",
           "consultations.comment_withdraw": "resident",
           "consultations.support_withdraw": "resident"}


def role_for(app: Flask, endpoint: str) -> str:
    """A role that may use the route: from the access matrix, else from the policy table."""
    if endpoint in ROLE_OF:
        return ROLE_OF[endpoint]
    if endpoint in EXPECTED:
        allowed = EXPECTED[endpoint][1]
    else:
        action = getattr(app.view_functions[endpoint], "policy_action", "public.view")
        allowed = {role.value for role in POLICY[action]}
    return next(role for role in ROLE_PREFERENCE if role in allowed)


def build_url(rule: Rule, args: dict[str, Any]) -> str:
    missing = [a for a in rule.arguments if a not in args]
    assert not missing, f"{rule.endpoint}: the world has no value for {missing}"
    return rule.build({a: args[a] for a in rule.arguments}, append_unknown=False)[1]


def sign_in(client: Any, user_id: int | None) -> None:
    """The browser of a user (None: a visitor), with a fresh session."""
    if user_id is None:
        with client.session_transaction() as sess:
            sess.clear()
        return
    user = db.session.get(User, user_id)
    # A resident has just signed in with the code from their letter (so /welcome is open).
    factories.sign_in(client, user, method="access_code", welcome=user.role == "resident")


# --- forms ------------------------------------------------------------------------------------


@dataclass
class FormField:
    name: str
    kind: str  # text, textarea, password, number, date, datetime-local, select, checkbox, …
    options: list[str] = field(default_factory=list)
    inputmode: str = ""
    maxlength: int | None = None
    multiple: bool = False
    accept: str = ""
    current: list[str] = field(default_factory=list)  # what the page sends if left alone


@dataclass
class Form:
    action: str
    method: str
    multipart: bool
    fields: dict[str, FormField] = field(default_factory=dict)


class _FormParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.forms: list[Form] = []
        self._form: Form | None = None
        self._select: FormField | None = None
        self._textarea: FormField | None = None

    def _add(self, name: str, kind: str, value: str | None = None, **extra: Any) -> FormField:
        assert self._form is not None
        found = self._form.fields.get(name)
        if found is None:
            found = self._form.fields[name] = FormField(name, kind, **extra)
        if value is not None and value not in found.options:
            found.options.append(value)
        return found

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form":
            self._form = Form(a.get("action", ""), a.get("method", "get").upper(),
                              "multipart" in a.get("enctype", ""))
            self.forms.append(self._form)
            return
        if tag == "option" and self._select is not None:
            if "value" in a and a["value"] not in self._select.options:
                self._select.options.append(a["value"])
            if "selected" in a and "value" in a:
                self._select.current.append(a["value"])
            return
        if self._form is None or not a.get("name"):
            return
        maxlength = int(a["maxlength"]) if a.get("maxlength", "").isdigit() else None
        if tag == "input":
            kind = a.get("type", "text").lower()
            if kind in ("submit", "button", "image", "reset"):
                kind = "submit"
            found = self._add(a["name"], kind, a.get("value") if kind in (
                "hidden", "checkbox", "radio", "submit") else None,
                inputmode=a.get("inputmode", ""), maxlength=maxlength,
                multiple="multiple" in a, accept=a.get("accept", ""))
            sent = ("checked" in a) if kind in ("checkbox", "radio") else (
                kind not in ("submit", "file", "password") and bool(a.get("value")))
            if sent and not (kind == "hidden" and found.current):
                found.current.append(a.get("value", "on"))
        elif tag == "button" and a.get("type", "submit") == "submit":
            self._add(a["name"], "submit", a.get("value", ""))
        elif tag == "textarea":
            self._textarea = self._add(a["name"], "textarea", maxlength=maxlength)
            self._textarea.current = [""]
        elif tag == "select":
            self._select = self._add(a["name"], "select", multiple="multiple" in a)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)

    def handle_data(self, data: str) -> None:
        if self._textarea is not None:
            self._textarea.current[0] += data

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._form = None
        elif tag == "select":
            self._select = None
        elif tag == "textarea" and self._textarea is not None:
            text = self._textarea.current[0]  # HTML drops the newline after <textarea>
            self._textarea.current = [text[2:] if text.startswith("\r\n") else
                                      text[1:] if text.startswith("\n") else text]
            self._textarea = None


def parse_forms(html: str) -> list[Form]:
    parser = _FormParser()
    parser.feed(html)
    parser.close()
    return parser.forms


def forms_posting_to(app: Flask, page_url: str, html: str, endpoint: str,
                     args: dict[str, Any], method: str = "POST") -> Form | None:
    """The union of the page's forms that send ``method`` to ``endpoint`` with ``args``."""
    adapter = app.url_map.bind("localhost")
    merged: Form | None = None
    for form in parse_forms(html):
        if form.method != method:
            continue
        target = urlsplit(urljoin(page_url, form.action or page_url))
        try:
            found, found_args = adapter.match(target.path, method=method)
        except HTTPException:
            continue
        if found != endpoint or any(found_args.get(k) != v for k, v in args.items()
                                    if k in found_args):
            continue
        if merged is None:
            merged = Form(target.path, method, form.multipart)
        merged.multipart |= form.multipart
        for name, f in form.fields.items():
            have = merged.fields.setdefault(name, FormField(
                name, f.kind, [], f.inputmode, f.maxlength, f.multiple, f.accept, f.current))
            have.options += [o for o in f.options if o not in have.options]
    return merged


# --- recording which parameters a view reads --------------------------------------------------

_READ: dict[str, set[str]] = {"args": set(), "form": set()}


class _RecordingValues(ImmutableMultiDict):  # type: ignore[type-arg]
    """Form values that note every name a view asks for."""

    sink = "form"

    def __getitem__(self, key: Any) -> Any:
        _READ[self.sink].add(key)
        return super().__getitem__(key)

    def get(self, key: Any, default: Any = None, type: Any = None) -> Any:
        _READ[self.sink].add(key)
        return super().get(key, default, type)

    def getlist(self, key: Any, type: Any = None) -> Any:
        _READ[self.sink].add(key)
        return super().getlist(key, type)

    def __contains__(self, key: Any) -> bool:
        _READ[self.sink].add(key)
        return super().__contains__(key)


class _RecordingQuery(_RecordingValues):
    sink = "args"


class _RecordingRequest(Request):
    parameter_storage_class = _RecordingValues

    @cached_property
    def args(self) -> _RecordingQuery:  # type: ignore[override]
        return _RecordingQuery(Request.args.fget(self))  # type: ignore[attr-defined]


def parameters_read(app: Flask, send: Any, where: str) -> set[str]:
    """The names the view reads from the query string (``where="args"``) or the form while
    ``send()`` runs one request."""
    for names in _READ.values():
        names.clear()
    previous = app.request_class
    app.request_class = _RecordingRequest
    try:
        send()
    finally:
        app.request_class = previous
    return set(_READ[where]) - {"csrf_token"}


# --- a browser on the test client -------------------------------------------------------------


class Site:
    """The test client as a browser of each role, in a world whose changes are undone."""

    def __init__(self, app: Flask, client: Any, world: World) -> None:
        self.app, self.client, self.world = app, client, world
        self._rules = {r.endpoint: r for r in app.url_map.iter_rules()}

    def rule(self, endpoint: str) -> Rule:
        return self._rules[endpoint]

    def url_of(self, endpoint: str, args: dict[str, Any]) -> str:
        url = build_url(self.rule(endpoint), args)
        return f"{url}?{PAGE_QUERY[endpoint]}" if endpoint in PAGE_QUERY else url

    @contextmanager
    def rolled_back(self) -> Iterator[None]:
        """Whatever the requests inside write is undone afterwards."""
        nested = db.session.begin_nested()
        db.session.connection()  # the SAVEPOINT is taken now, before the requests write
        try:
            yield
        finally:
            if nested.is_active:
                nested.rollback()
            db.session.expire_all()

    def browser(self, role: str, locale: str) -> None:
        """Sign in as ``role`` (a fresh session) reading ``locale``; no rate limit is near."""
        limiter.reset()
        sign_in(self.client, self.world.users.get(role))
        self.client.set_cookie("lang", locale)

    def reads(self, role: str, cookie: str) -> str:
        """The language pages are in for ``role``: the account's own choice (a form may just
        have saved one), else the browser's cookie."""
        from consult.accounts.models import User

        user_id = self.world.users.get(role)
        chosen = db.session.get(User, user_id).locale if user_id is not None else None
        return chosen if chosen in LOCALES else cookie

    def send(self, url: str, method: str = "GET", pairs: list[tuple[str, Any]] | None = None,
             multipart: bool = False, token: Any = VALID) -> Any:
        """A request as a browser sends it; a form carries the session's CSRF token unless
        ``token`` is None (none at all) or another value."""
        if method == "GET":
            return self.client.get(url)
        if token is VALID:
            token = self.client.csrf_token()
        body, content_type = encode(
            ([("csrf_token", token)] if token is not None else []) + list(pairs or []),
            multipart)
        return self.client.open(url, method=method, data=body, content_type=content_type,
                                csrf=False)

    def find_form(self, rule: Rule, method: str, role: str, args: dict[str, Any]
                  ) -> Form | None:
        """The form that sends ``method`` to the rule: on its own page, on its host page, or
        on any page of its world (for a route that is in neither)."""
        pages: list[tuple[str, str]] = []
        if "GET" in (rule.methods or ()):
            pages.append((rule.endpoint, "GET"))
        if rule.endpoint in HOSTS:
            pages.append(HOSTS[rule.endpoint])
        pages += [(other.endpoint, "GET") for other in view_rules(self.app)
                  if "GET" in (other.methods or ()) and set(other.arguments) <= set(args)
                  and (other.endpoint, "GET") not in pages]
        for page, page_method in pages:
            form = self._form_on(page, page_method, role, args, rule, method)
            if form is not None:
                return form
        return None

    def _form_on(self, page: str, page_method: str, role: str, args: dict[str, Any],
                 target: Rule, method: str) -> Form | None:
        page_url = self.url_of(page, args)
        with self.rolled_back():
            self.browser(role, "zh_Hans")
            if page_method == "GET":
                response = self.client.get(page_url)
            else:  # a page answering a form, e.g. the ballot's review screen
                form = self._form_on(page, "GET", role, args, self.rule(page), "POST")
                if form is None:
                    return None
                # That look was rolled back, and the session row it signed in with with it.
                self.browser(role, "zh_Hans")
                response = self.send(page_url, "POST", [
                    (n, v) for n, vs in baselines(form, args, page).items() for v in vs],
                    form.multipart)
            if response.mimetype != "text/html":
                return None
            return forms_posting_to(self.app, page_url, response.get_data(as_text=True),
                                    target.endpoint, {k: args[k] for k in target.arguments},
                                    method)


# --- values -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Upload:
    data: bytes
    filename: str
    content_type: str


def png_bytes(color: str = "red") -> bytes:
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (24, 16), color).save(buffer, format="PNG")
    return buffer.getvalue()


MARKER = "data-hostile"
XSS = (
    f'<script>alert("xss")</script>"><img src=x onerror=alert(1) {MARKER}>'
    f"[a](javascript:alert(1))<svg onload=alert(1) {MARKER}>",
    '<script>alert("xss")</script>',
    f'"><img src=x onerror=alert(1) {MARKER}>',
    f"'><svg onload=alert(1) {MARKER}>",
    f'<a href="javascript:alert(1)" {MARKER}>x</a>',
    "[click me](javascript:alert(1))",
    "![x](javascript:alert(1))",
    '<iframe src="javascript:alert(1)"></iframe>',
    "<svg><script>alert(1)</script></svg>",
    "<<script>script>alert(1)<</script>/script>",
    f"<details open ontoggle=alert(1) {MARKER}>",
    '<a href="&#106;avascript:alert(1)">x</a>',
    "[x](JaVaScRiPt:alert(1))",
    "<b onclick=x>",
    "javascript:alert(document.cookie)",
    "{{ 7*7 }}{% raw %}${7*7}",
)
SQL = ("' OR 1=1 --", "'; DROP TABLE household; --", '" OR ""="',
       "1 UNION SELECT password_hash FROM user_account --", "%' AND 1=0 --", "\\'; --", "%_%")
BAD_UNICODE = ("\ud800", "a\udfffb", "\x00", "nul\x00byte", "\x1b[2J", "\u202egnp.exe",
               "e" + "\u0301" * 300, "\ufeff", "\uffff\ufffe", "\u200b\u200d", "👩‍👩‍👧‍👦",
               "\r\n\r\n", "\t", "𝕏𝔸", "\x7f", "\u0085", "\u2028\u2029", "\u3000")
HUGE = ("A" * 100_000, "中" * 100_000, "<script>" * 12_500)
HUGE_NUMBER = "99999999999999999999"
NUMBERS = ("²", "١٢", "-1", "0", "-99999999999999999999", HUGE_NUMBER, "2147483648",
           "9223372036854775808", "1e308", "NaN", "inf", "-0", "0x1A", "1_000", "１２", "٣",
           "12.345", "1,5", " 7 ", "+5", "1" * 400)
DATES = ("2026-02-30T10:00", "2026-13-01T10:00", "9999-12-31T23:59", "0001-01-01T00:00",
         "0000-00-00T00:00", "10000-01-01T00:00", "2026-05-01", "2026-05-01T25:61",
         "yesterday", "2026-05-01T10:00:00+08:00", "1970-01-01T00:00")
URLS = ("//evil.example/", "https://evil.example/", "javascript:alert(1)", "/\\evil.example",
        "\\\\evil.example", "http:evil.example", " //evil.example", "/%2F%2Fevil.example")
FILES = (
    Upload(png_bytes(), "photo.png", "image/png"),
    Upload(b"", "empty.jpg", "image/jpeg"),
    Upload(b"<html><script>alert(1)</script></html>", "photo.jpg", "image/jpeg"),
    Upload(b"MZ\x90\x00\x03" + bytes(200), "photo.jpg", "image/jpeg"),
    Upload(b"PK\x03\x04" + bytes(200), "minutes.pdf", "application/pdf"),
    Upload(b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>',
           "photo.svg", "image/svg+xml"),
    Upload(png_bytes(), '"><img src=x onerror=alert(1) data-hostile>.png', "image/png"),
    Upload(png_bytes(), "../../../etc/passwd.png", "image/png"),
    Upload(png_bytes(), "nul\x00\x1b\u202egnp.png", "image/png"),
    Upload(bytes(range(256)) * 4, "noise.csv", "text/csv"),
)

STORED = XSS[0]  # in every text of the world
NAME = XSS[2]    # in names, which are shorter
COMMUNITY = "和平社区"  # the world's community, named so that a grids file can name it
GRIDS_FILE = f"社区,网格,小区\n{COMMUNITY},第一网格,劳动局家属院\n".encode()

# Free text fields: a markup payload here should be stored, and then shown escaped.
_NOT_FREE_TEXT = {"username", "password", "confirm", "current", "code", "area", "floor",
                  "phone", "cost", "spend", "final_cost", "percent", "target", "serial",
                  "next", "fraction", "publicity_days", "proxy_cap", "owner_key"}


def is_free_text(f: FormField) -> bool:
    if f.kind == "textarea":
        return True
    return (f.kind in ("text", "search") and not f.inputmode and f.name not in _NOT_FREE_TEXT
            and not f.name.endswith("fraction"))


_BY_NAME = {
    "username": "fuzz.user", "password": factories.PASSWORD, "confirm": factories.PASSWORD,
    "current": factories.PASSWORD, "code": "123456789012", "area": "85.32", "floor": "3",
    "room": "501", "unit": "2", "phone": "13812345678", "owner_key": "key-1",
    "cost": "1200.50", "spend": "300", "final_cost": "1100", "percent": "40",
    "serial": "A-001", "publicity_days": "7", "proxy_cap": "", "street": "解放街道",
    "vote_deadline": "2031-06-01T10:00", "solicitation_deadline": "2031-05-01T10:00",
}
_BY_KIND = {"datetime-local": "2026-03-01T10:00", "date": "2026-03-01", "number": "7",
            "email": "a@example.org", "tel": "13812345678", "url": "https://example.org/"}


# Where the heuristics below would fill in a form wrongly: an opinion recorded without a
# household names no unit or room.
BASELINE: dict[str, dict[str, list[Any]]] = {
    # "Next", not an item's "Read the details" (a browser sends only the button pressed).
    "ballots.vote": {"details": [""]},
    "consultations.opinion_record": {"unit": [""], "room": [""]},
    # A paper-ballot file for the one household of the world nobody entered anything for.
    "ballots.import_file": {"file": [Upload(
        "楼栋,单元,房号,议项,表决意见,方式\n2号楼,1,102,1,同意,书面\n2号楼,1,102,2,反对,书面\n"
        .encode(), "ballots.csv", "text/csv")]},
    # The world's compound put into a grid of its community.
    "registry.import_grids": {"file": [Upload(GRIDS_FILE, "grids.csv", "text/csv")]},
}


def baselines(form: Form, world_args: dict[str, Any], endpoint: str) -> dict[str, list[Any]]:
    """What a careful user sends in ``form``, field by field (the CSRF token aside)."""
    values = {n: baseline(f, world_args) for n, f in form.fields.items() if n != "csrf_token"}
    values.update({n: v for n, v in BASELINE.get(endpoint, {}).items() if n in values})
    return values


def baseline(f: FormField, world_args: dict[str, Any]) -> list[Any]:
    """A value a careful user would enter, as a list of form values: what the page already
    holds, else something sensible for the field."""
    if f.kind == "file":
        return [FILES[0]]
    if f.kind == "checkbox":
        return list(f.current)
    if f.kind in ("select", "radio", "hidden", "submit"):
        if f.current:
            return f.current[:None if f.multiple else 1]
        usable = [o for o in f.options if o != ""]
        if not usable:
            return [f.options[0]] if f.options else []
        return [usable[0]]
    if f.current and any(f.current) and f.kind != "password":
        return list(f.current)
    if f.name == "target":
        return [str(world_args["other_opinion_id"])]
    name = f.name.rsplit("-", 1)[-1]
    if name in _BY_NAME:
        return [_BY_NAME[name]]
    if name.endswith("fraction"):
        return [""]
    if f.kind in _BY_KIND:
        return [_BY_KIND[f.kind]]
    if f.inputmode == "numeric":
        return ["40"]
    if f.inputmode == "decimal":
        return ["12.50"]
    if f.kind == "textarea":
        return ["第一行\n第二行"]
    return ["测试内容"]


def xss_for(f: FormField) -> str:
    """The richest markup payload that fits the field."""
    limit = f.maxlength or 10_000
    return next((p for p in XSS if len(p) <= limit), "<b>")


# --- sending ----------------------------------------------------------------------------------


def encode(pairs: Iterable[tuple[str, Any]], multipart: bool) -> tuple[bytes, str]:
    """A form body as a browser would send it; text that is not valid Unicode (lone
    surrogates) goes out as the invalid UTF-8 bytes a broken client would send."""
    pairs = list(pairs)
    if not multipart and not any(isinstance(v, Upload) for _, v in pairs):
        body = urlencode([(k, str(v)) for k, v in pairs], encoding="utf-8",
                         errors="surrogatepass")
        return body.encode("ascii"), "application/x-www-form-urlencoded"
    boundary = "----hostile" + secrets.token_hex(12)
    chunks: list[bytes] = []
    for name, value in pairs:
        head = f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"'
        if isinstance(value, Upload):
            filename = value.filename.replace('"', "%22").replace("\r", "").replace("\n", "")
            chunks.append((f'{head}; filename="{filename}"\r\nContent-Type: '
                           f"{value.content_type}\r\n\r\n").encode("utf-8", "surrogatepass")
                          + value.data + b"\r\n")
        else:
            chunks.append(f"{head}\r\n\r\n".encode() + str(value).encode(
                "utf-8", "surrogatepass") + b"\r\n")
    chunks.append(f"--{boundary}--\r\n".encode())
    return b"".join(chunks), f"multipart/form-data; boundary={boundary}"


def query_string(params: dict[str, list[str]]) -> str:
    pairs = [(k, v) for k, values in params.items() for v in values]
    return urlencode(pairs, encoding="utf-8", errors="surrogatepass")


def path_segment(value: str) -> str:
    return quote(value.encode("utf-8", "surrogatepass"), safe="")


# --- checks -----------------------------------------------------------------------------------

_SCRIPT_SCHEMES = ("javascript:", "vbscript:", "data:text/html")
_URL_ATTRS = {"href", "src", "action", "formaction", "xlink:href", "srcdoc", "data", "poster"}
_FORBIDDEN_TAGS = {"script", "iframe", "object", "embed", "style", "base"}


# The app's own scripts: static files of its own (a copy button), never inline code.
_OWN_SCRIPTS = frozenset({"/static/js/copy.js"})


def _own_script(tag: str, attrs: list[tuple[str, str | None]]) -> bool:
    """Whether an element is the app's own <script src> of a static file it serves."""
    return tag == "script" and dict(attrs).get("src") in _OWN_SCRIPTS


class _MarkupCheck(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.problems: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _FORBIDDEN_TAGS and not _own_script(tag, attrs):
            self.problems.append(f"<{tag}> element")
        for name, value in attrs:
            if name.startswith("on"):
                self.problems.append(f"event handler {name}= on <{tag}>")
            if name == MARKER:
                self.problems.append(f"injected <{tag} {MARKER}>")
            cleaned = re.sub(r"[\x00-\x20]", "", value or "").lower()
            if name in _URL_ATTRS and cleaned.startswith(_SCRIPT_SCHEMES):
                self.problems.append(f"{name}={value!r} on <{tag}>")

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)


def markup_problems(html: str) -> list[str]:
    """Elements and attributes no page of the app has of its own (its only JavaScript is the
    static files of ``_OWN_SCRIPTS``), so any of them can only come from user input that was
    not escaped."""
    checker = _MarkupCheck()
    checker.feed(html)
    checker.close()
    return checker.problems


def _msgid(lazy: Any) -> str:
    return lazy._args[0]


# English texts that must not show on a page in Chinese: our error pages' own msgids and
# WTForms' built-in messages (translated only if the app wires up WTForms' catalogs).
ENGLISH_ONLY = (
    *(_msgid(t) for t in TITLES.values()), *(_msgid(m) for m in DEFAULT_MESSAGES.values()),
    "Not a valid integer value", "Not a valid decimal value", "Not a valid float value",
    "Not a valid datetime value", "Not a valid date value", "Not a valid choice",
    "Invalid Choice", "This field is required.", "The CSRF token", "Field must be",
    "Bad Request", "Internal Server Error", "Request Entity Too Large",
)


def _wtforms_messages(locale: str) -> dict[str, str]:
    from babel.support import Translations
    from wtforms.i18n import messages_path

    catalog = Translations.load(messages_path(), [locale], domain="wtforms")._catalog
    return {k: v for k, v in catalog.items() if isinstance(k, str) and k and v}


def _other_script() -> dict[str, tuple[str, ...]]:
    """WTForms' own messages as written for the other Chinese script, where they differ."""
    simplified, traditional = _wtforms_messages("zh"), _wtforms_messages("zh_TW")
    both = [k for k in simplified if k in traditional and simplified[k] != traditional[k]]
    return {"zh_Hans": tuple(traditional[k] for k in both),
            "zh_Hant": tuple(simplified[k] for k in both)}


OTHER_SCRIPT = _other_script()


def expected_locale(cookie: str, lang_param: list[str] | None) -> str:
    """The language a page must be in: ``?lang=`` when it names a language we serve (the first
    value, as Werkzeug reads it), else the browser's cookie (the test users chose none)."""
    if lang_param:
        chosen = normalize_locale(lang_param[0])
        if chosen:
            return chosen
    return cookie


def check_response(response: Any, locale: str, where: str) -> list[str]:
    """What is wrong with an answer: a server error, a redirect off the site, a page in the
    wrong language or with markup from user input."""
    problems: list[str] = []
    status = response.status_code
    if status >= 500:
        return [f"{where}: {status}"]
    if not 200 <= status < 500:
        problems.append(f"{where}: unexpected status {status}")
    if 300 <= status < 400:
        location = urlsplit(response.headers.get("Location", ""))
        if location.scheme not in ("", "http", "https") or location.netloc not in (
                "", "localhost"):
            problems.append(f"{where}: redirects off the site to {location.geturl()!r}")
        return problems
    if response.mimetype != "text/html":
        return problems
    html = response.get_data(as_text=True)
    found = re.search(r'<html lang="([^"]*)"', html)
    if found is None:
        problems.append(f"{where}: {status} page without <html lang>")
    elif found.group(1) != HTML_LANG[locale]:
        problems.append(f"{where}: page in {found.group(1)}, the user reads {locale}")
    if locale != "en":
        leaks = [text for text in (*ENGLISH_ONLY, *OTHER_SCRIPT[locale]) if text in html]
        if leaks:
            problems.append(f"{where}: not in {locale}: {leaks}")
    problems += [f"{where}: {p}" for p in markup_problems(html)]
    return problems


def snapshot() -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table, to show that a refused request changed nothing."""
    rows: dict[str, list[tuple[Any, ...]]] = {}
    for table in db.metadata.sorted_tables:
        rows[table.name] = sorted(
            (tuple(map(repr, row)) for row in db.session.execute(sa.select(table))), key=str)
    return rows
