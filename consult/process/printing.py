"""The printed documents: notices, paper ballots, opinion forms, access-code letters, minutes.

Notices are rendered from their frozen content, so a reprint is the same notice. Forms and
letters are printed one page per household; for a whole compound that is hundreds of pages,
so they are made by a print job after the request, with its progress recorded as it goes.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from flask import current_app, has_request_context, request
from flask_babel import force_locale, ngettext
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from consult.accounts import service as accounts
from consult.audit import service as audit
from consult.audit.actions import describe, describe_kinds, describe_objects
from consult.audit.presenting import Field, describe_fields
from consult.ballots import service as ballots
from consult.ballots.explain import CHOICE_LABELS, rule_label, rule_sentences
from consult.consultations import meetings as meeting_service
from consult.consultations import service as consultation_service
from consult.consultations.models import CATEGORY_LABELS, Consultation, Meeting
from consult.consultations.states import FINAL_STAGES, Stage
from consult.core.database import intend_write
from consult.core.errors import Conflict, NotFound
from consult.core.models import utcnow
from consult.extensions import db
from consult.notices import pdf
from consult.notices import service as notices
from consult.notices.models import NOTICE_KIND_LABELS, Notice, NoticeKind, PrintJob, PrintKind
from consult.registry.models import Household, household_label

log = logging.getLogger(__name__)

describe({
    "print.requested": _l("Printing requested"),
    "print.finished": _l("Printing finished"),
    "print.failed": _l("Printing failed"),
}, kind="printing")
describe_kinds({"printing": _l("Printing")})
describe_objects({"print_job": _l("Print job")})

PRINT_KIND_LABELS = {
    PrintKind.BALLOTS: _l("Paper ballots"),
    PrintKind.SOLICITATION: _l("Opinion forms"),
    PrintKind.ACCESS_LETTERS: _l("Access-code letters"),
}

# How the audit trail reads a print job's events (the notices printed are of their own kind).
describe_fields({"kind": Field(_l("Printed document"),
                               values={**NOTICE_KIND_LABELS, **PRINT_KIND_LABELS}),
                 "pages": Field(_l("Pages"))},
                actions=["print.requested", "print.finished", "print.failed"])

KINDS = ("vote-notice", "resolution", "result", "ballots", "solicitation", "access-letters",
         "minutes")
NOTICE_KINDS = {"vote-notice": NoticeKind.VOTE, "resolution": NoticeKind.RESOLUTION,
                "result": NoticeKind.RESULT}


# --- addresses --------------------------------------------------------------------------------


# Where a command prints when neither PUBLIC_URL nor a request says where the site is.
COMMAND_LINE_URL = "http://127.0.0.1:5000"


def public_base() -> str:
    """The address residents open: ``PUBLIC_URL`` when it is set, else the address the current
    request came to (a page or a print asked for from a browser), else ``COMMAND_LINE_URL``."""
    configured = str(current_app.config.get("PUBLIC_URL") or "").rstrip("/")
    if configured:
        return configured
    if has_request_context():
        return request.url_root.rstrip("/")
    return COMMAND_LINE_URL


@contextmanager
def site_context(base_url: str | None = None) -> Any:
    """Outside a request (a command, a print job), build links on ``base_url`` (the address a
    print job was asked from) or the public address."""
    if has_request_context():
        yield
        return
    with current_app.test_request_context(base_url=base_url or public_base()):
        intend_write()  # print jobs write (progress, access codes)
        yield


def link(endpoint: str, **values: Any) -> str:
    """A full address on the public address (``public_base``) for paper and for addresses
    shown on a page: a QR code must open from a resident's phone, whichever address the
    committee member happened to print from."""
    public = urlsplit(public_base())
    adapter = current_app.url_map.bind(public.netloc, script_name=public.path or "/",
                                       url_scheme=public.scheme)
    return adapter.build(endpoint, values, force_external=True)


@contextmanager
def document_language(locale: str) -> Any:
    """Where a document's words are made: in its own ``locale`` (the notice's, or the
    consultation's for minutes, forms and letters), whoever prints it from whichever request,
    command or worker; its links on the public address.

    Only what goes into the document belongs inside: a refusal (Conflict, no font, every
    layout slot taken) is for the person printing, in their language."""
    with site_context(), force_locale(locale):
        yield


def _context(**values: Any) -> dict[str, Any]:
    return {"qr_svg": pdf.qr_svg, **values}


def _file_name(title: Any, identifier: object, locale: str) -> str:
    with force_locale(locale):
        return f"{title}-{identifier}.pdf"


def notice_file_name(notice: Notice) -> str:
    """The name a notice is downloaded under, in its own language ("决议公示-PZ36CPLN.pdf")."""
    return _file_name(NOTICE_KIND_LABELS[NoticeKind(notice.kind)], notice.verify_code,
                      notice.locale)


def minutes_file_name(consultation: Consultation) -> str:
    """The name the printed minutes are downloaded under, in their language."""
    return _file_name(_l("Meeting minutes"), consultation.id, consultation.locale)


def job_file_name(job: PrintJob) -> str:
    """The name a printed batch is downloaded under, in its consultation's language."""
    return _file_name(PRINT_KIND_LABELS[PrintKind(job.kind)], job.consultation_id,
                      job.consultation.locale)


# --- notices ----------------------------------------------------------------------------------


def notice_file(notice: Notice) -> pdf.Stored:
    """A published notice as PDF, rendered from its frozen content in its own language, and
    laid out once for as long as that content stays the same (see ``pdf_cache``)."""
    consultation = notice.consultation
    if consultation is None:
        raise NotFound(_("No such notice."))  # a ranking: printed by its scoring round
    content = json.loads(notice.content_json)
    evaluation = as_of = None
    if notice.kind == NoticeKind.RESULT:
        from consult.implementation.service import evaluation_tally

        evaluation = evaluation_tally(consultation)  # live: households rate while it is up
        # The tally is dated by the day, as a notice board's "截至…" is: a time of printing
        # would make every copy a new document. Rating ends with the publicity period, and
        # so does the date.
        as_of = utcnow()
        if notice.period_ends_at is not None:
            as_of = min(as_of, notice.period_ends_at)
    with document_language(notice.locale):
        html = pdf.page_html("pdf/notice.html", notice.locale, **_context(
            notice=notice, content=content, c=consultation, evaluation=evaluation, as_of=as_of,
            running_header=f"{consultation.compound.name} · {content['consultation']['title']}",
            running_right=_("Verification code %(code)s", code=notice.verify_code),
            verify_url=link("notices.verify", code=notice.verify_code),
            proof_url=link("proofs.check", consultation_id=consultation.id)))
    return pdf.render_stored(f"notice-{notice.id}", html)


def notice_pdf(notice: Notice) -> bytes:
    """A published notice as PDF bytes (``notice_file``)."""
    return notice_file(notice).read()


def vote_notice_content(consultation: Consultation) -> dict[str, Any]:
    """What the vote notice (投票公告) announces, frozen when it is issued."""
    rule = ballots.rule_of(consultation)
    totals = ballots.scope_totals(consultation)
    return {
        "kind": NoticeKind.VOTE.value,
        **notices.notice_heading(consultation),
        "summary_text": consultation.summary,
        "items": [{"number": i.number, "title": i.title, "description": i.description,
                   "estimated_cost_fen": i.estimated_cost_fen} for i in consultation.items],
        "rule": {"code": rule.code, "label": rule_label(rule), "sentences": rule_sentences(rule)},
        "scope": consultation_service.scope_text(consultation),
        "roll": {"households": totals.households, "owners": totals.owners,
                 "area_m2": f"{totals.area_dm2 // 100}.{totals.area_dm2 % 100:02d}"},
        "vote": {"opens_at": _iso(consultation.vote_opens_at),
                 "deadline": _iso(consultation.vote_deadline)},
        "secrecy": consultation.secrecy,
        "proxy_cap": consultation.proxy_cap,
    }


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def issue_vote_notice(actor: Any, consultation: Consultation, now: datetime | None = None
                      ) -> Notice:
    """Issue (or reissue) the vote notice while the proposal is discussed, before voting."""
    now = now or utcnow()
    if consultation.stage != Stage.DISCUSSING:
        raise Conflict(_("The vote notice is issued while the proposal is discussed, before "
                         "voting opens."))
    if not consultation.items:
        raise Conflict(_("The proposal needs at least one item."))
    if consultation.vote_deadline is None or consultation.vote_deadline <= now:
        raise Conflict(_("Set a voting deadline in the future first."))
    with document_language(consultation.locale):
        content = vote_notice_content(consultation)
    return notices.publish(actor, consultation, NoticeKind.VOTE, now, content=content,
                           period_ends_at=consultation.vote_deadline)


def current_notice_or_409(consultation: Consultation, kind: NoticeKind) -> Notice:
    notice = notices.current_notice(consultation, kind)
    if notice is None:
        messages = {
            NoticeKind.VOTE: _("The vote notice has not been issued yet."),
            NoticeKind.RESOLUTION: _("The resolution notice is published once the vote is "
                                     "counted."),
            NoticeKind.RESULT: _("The result notice is published once the works are done."),
        }
        raise Conflict(messages[kind])
    return notice


def minutes_file(consultation: Consultation) -> pdf.Stored:
    """Every meeting of a consultation, as printed minutes (会议纪要); laid out again only
    when a meeting is recorded or edited."""
    found = list(db.session.scalars(select(Meeting).where(
        Meeting.consultation_id == consultation.id).order_by(Meeting.held_at)))
    if not found:
        raise Conflict(_("No meeting has been recorded for this consultation."))
    with document_language(consultation.locale):
        html = pdf.page_html("pdf/minutes.html", consultation.locale, **_context(
            c=consultation, meetings=found,
            attendees={m.id: meeting_service.attendees_of(m) for m in found},
            links={m.id: link("consultations.meeting", consultation_id=consultation.id,
                              meeting_id=m.id) for m in found},
            running_header=f"{consultation.compound.name} · {consultation.title}"))
    return pdf.render_stored(f"minutes-{consultation.id}", html)


def minutes_pdf(consultation: Consultation) -> bytes:
    """The printed minutes as PDF bytes (``minutes_file``)."""
    return minutes_file(consultation).read()


# --- forms and letters ------------------------------------------------------------------------


@dataclass
class Sheet:
    household_id: int
    building: str
    unit: str
    room: str
    area_dm2: int
    owner: str
    serial: str
    qr_url: str

    @property
    def label(self) -> str:
        """Building, unit and room, written as everywhere else in the document's language."""
        return household_label(self.building, self.unit, self.room)


def check_batch(consultation: Consultation, kind: PrintKind) -> None:
    """Raise Conflict when this kind of batch does not fit the consultation's stage."""
    stage = consultation.stage_enum
    if kind is PrintKind.BALLOTS and not (
            stage == Stage.DISCUSSING or consultation.vote_is_open()):
        raise Conflict(_("Paper ballots are printed before or while the vote is open."))
    if kind is PrintKind.SOLICITATION and stage not in (Stage.DRAFT, Stage.SOLICITING):
        raise Conflict(_("Opinion forms are printed before or while opinions are collected."))
    if kind is PrintKind.ACCESS_LETTERS and stage in FINAL_STAGES:
        raise Conflict(_("This consultation is over; no new letters are needed."))


def available_batches(consultation: Consultation) -> list[str]:
    """The batches the committee can print at the consultation's stage."""
    available = []
    for kind in PrintKind:
        try:
            check_batch(consultation, kind)
        except Conflict:
            continue
        available.append(kind.value)
    return available


def households_for(consultation: Consultation, kind: PrintKind) -> list[int]:
    """Whom a batch is printed for: the frozen roll once voting opened, otherwise everyone in
    scope; access letters only for households without an account yet."""
    if kind is PrintKind.BALLOTS and consultation.vote_opened_at is not None:
        return [e.household_id for e in db.session.scalars(ballots.roll_entries(consultation))]
    stmt = ballots.households_in_scope(consultation).order_by(None).with_only_columns(
        Household.id)
    ids = list(db.session.scalars(stmt))
    if kind is PrintKind.ACCESS_LETTERS:
        from consult.accounts.models import User

        have = set(db.session.scalars(select(User.household_id).where(
            User.household_id.in_(ids))))
        ids = [h for h in ids if h not in have]
    households = {h.id: h for h in db.session.scalars(select(Household).where(
        Household.id.in_(ids)))}
    return [h.id for h in sorted(households.values(),
                                 key=lambda h: (h.building.sort_key, h.sort_key))]


def needs_confirmation(kind: PrintKind) -> bool:
    """Whether printing the batch is asked again first: access letters replace codes."""
    return kind is PrintKind.ACCESS_LETTERS


def letters_consequences(consultation: Consultation) -> list[str]:
    """What printing the access letters will do, with the numbers (what their confirmation
    page shows): how many households get a new code, and how many unused codes stop
    working."""
    household_ids = households_for(consultation, PrintKind.ACCESS_LETTERS)
    lines = [ngettext(
        "A letter with a new access code is printed for %(num)s household of the "
        "consultation's scope that has no account yet.",
        "A letter with a new access code is printed for each of the %(num)s households of the "
        "consultation's scope that have no account yet.", len(household_ids))]
    revoked = accounts.households_with_open_codes(household_ids)
    if revoked:
        lines.append(ngettext(
            "The unused code of %(num)s household stops working: only its new letter lets it "
            "sign in.",
            "The unused codes of %(num)s households stop working: only their new letters let "
            "them sign in.", revoked))
    else:
        lines.append(_("None of these households holds an unused code yet."))
    return lines


def _sheet(consultation: Consultation, household: Household, kind: PrintKind) -> Sheet:
    if kind is PrintKind.BALLOTS:
        serial = f"{consultation.id}-{consultation.round}-{household.id:06d}"
        qr = link("ballots.enter", consultation_id=consultation.id, household_id=household.id,
                  serial=serial)
    else:
        serial = f"{consultation.id}-Y-{household.id:06d}"
        qr = link("consultations.opinion_record", consultation_id=consultation.id,
                  building_id=household.building_id, unit=household.unit, room=household.room)
    return Sheet(household.id, household.building.name, household.unit, household.room,
                 household.area_dm2, household.owner_name, serial, qr)


def batch_pdf(actor: Any, consultation: Consultation, kind: PrintKind,
              progress: Callable[[int, int], None] | None = None,
              after_chunk: Callable[[], None] | None = None) -> bytes:
    """Every household's page of a batch. Access letters issue a fresh code to each household
    (its earlier unused code stops working). ``after_chunk`` is called after each chunk's data
    is read (and its codes issued), before the chunk is laid out: callers that run long commit
    there, so the codes are kept and no lock is held through the layout."""
    check_batch(consultation, kind)
    household_ids = households_for(consultation, kind)
    header = f"{consultation.compound.name} · {consultation.title}"

    def context(chunk: list[int]) -> dict[str, Any]:
        households = [db.session.get_one(Household, h) for h in chunk]
        if kind is PrintKind.ACCESS_LETTERS:
            letters = []
            for household in households:
                code = accounts.issue_access_code(actor, household)
                letters.append({"label": household.label, "code": accounts.format_code(code),
                                "qr_url": link("accounts.code_login", code=code),
                                "plain_url": link("accounts.code_login")})
            return _context(c=consultation, letters=letters, issued=utcnow(),
                            running_header=header)
        channel = ballots.BallotChannel.PAPER
        return _context(
            c=consultation, kind=kind.value, running_header=header,
            sheets=[_sheet(consultation, h, kind) for h in households],
            choices=[(c.value, CHOICE_LABELS[c.value])
                     for c in ballots.allowed_choices(consultation, channel)],
            categories=list(CATEGORY_LABELS.items()),
            rule_label=rule_label(ballots.rule_of(consultation)),
            deadline=consultation.vote_deadline)

    template = "pdf/letters.html" if kind is PrintKind.ACCESS_LETTERS else "pdf/forms.html"
    # ``render_batch`` makes each chunk, ``context`` included, in the consultation's language.
    with site_context():
        return pdf.render_batch(template, consultation.locale, household_ids, context, progress,
                                release=after_chunk)


# --- print jobs -------------------------------------------------------------------------------


def request_job(actor: Any, consultation: Consultation, kind: PrintKind) -> PrintJob:
    """Ask for a batch to be printed after the request; returns the queued job (flushed)."""
    check_batch(consultation, kind)
    job = PrintJob(consultation_id=consultation.id, kind=kind.value,
                   total=len(households_for(consultation, kind)),
                   requested_by_id=getattr(actor, "id", None))
    db.session.add(job)
    db.session.flush()
    audit.record(actor, "print.requested", job, {"kind": kind.value, "pages": job.total},
                 compound_id=consultation.compound_id)
    return job


def run_job(job_id: int, base_url: str | None = None) -> None:
    """Print a queued job, recording progress after every chunk (each in its own commit);
    its links on ``base_url``, the public address when the job was asked for."""
    from consult.accounts.models import User

    job = db.session.get(PrintJob, job_id)
    if job is None or job.status != "queued":
        return
    actor = db.session.get(User, job.requested_by_id) if job.requested_by_id else None
    job.status = "running"
    db.session.commit()

    def progress(done: int, total: int) -> None:
        job.done, job.total = done, total
        db.session.commit()

    try:
        with site_context(base_url):
            data = batch_pdf(actor, job.consultation, PrintKind(job.kind), progress,
                             after_chunk=db.session.commit)
        path = pdf.job_path(job.id)
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_suffix(".part")
        temporary.write_bytes(data)
        temporary.replace(path)
        job.sha256 = hashlib.sha256(data).hexdigest()
        job.status, job.finished_at = "done", utcnow()
        audit.record(actor, "print.finished", job, {"kind": job.kind, "pages": job.total,
                                                    "sha256": job.sha256},
                     compound_id=job.consultation.compound_id)
        db.session.commit()
    except Exception as exc:
        log.exception("print job %s failed", job_id)
        db.session.rollback()
        failed = db.session.get_one(PrintJob, job_id)
        failed.status, failed.finished_at = "failed", utcnow()
        failed.error = str(getattr(exc, "message", "") or _("The printing failed."))[:500]
        audit.record(actor, "print.failed", failed, {"kind": failed.kind},
                     compound_id=failed.consultation.compound_id)
        db.session.commit()


def get_job_or_404(job_id: int) -> PrintJob:
    job = db.session.get(PrintJob, job_id)
    if job is None:
        raise NotFound(_("No such print job."))
    return job


def render_kind(actor: Any, consultation: Consultation, kind: str,
                progress: Callable[[int, int], None] | None = None) -> bytes:
    """Any document by its DESIGN name (as ``flask notices render-pdf`` takes it)."""
    if kind in NOTICE_KINDS:
        return notice_pdf(current_notice_or_409(consultation, NOTICE_KINDS[kind]))
    if kind == "minutes":
        return minutes_pdf(consultation)
    try:
        batch = PrintKind(kind)
    except ValueError:
        raise NotFound(_("Unknown document: %(kind)s.", kind=kind)) from None
    return batch_pdf(actor, consultation, batch, progress, after_chunk=db.session.commit)
