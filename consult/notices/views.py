"""Notice pages: the resolution and result notices, objections and answers, verification."""

from __future__ import annotations

from urllib.parse import quote

from flask import (
    Blueprint,
    flash,
    make_response,
    redirect,
    render_template,
    request,
    send_file,
    url_for,
)
from flask_babel import force_locale
from flask_babel import gettext as _
from flask_login import current_user
from markupsafe import Markup
from werkzeug.wrappers import Response

from consult.consultations.models import Consultation
from consult.core import jobs
from consult.core.errors import Conflict, NotFound, ValidationFailed
from consult.core.forms import page_number, page_size, save_form
from consult.core.handlers import error_response, wants_json
from consult.core.models import utcnow
from consult.core.pagination import window_of_list
from consult.core.policy import authorize, can, load, require
from consult.extensions import db
from consult.notices import pdf as pdf_module
from consult.notices import render_slots
from consult.notices import service as notices
from consult.notices.forms import AnswerForm, ObjectionForm
from consult.notices.models import Notice, NoticeKind, PrintKind
from consult.process import loading, printing
from consult.registry.forms import ConfirmForm

bp = Blueprint("notices", __name__)


def _page(notice: Notice, consultation: Consultation, objection_form: ObjectionForm,
          answering: tuple[int, AnswerForm] | None = None) -> str:
    """The notice with its objections; ``answering``: the objection whose answer was refused,
    and its form, to show again with what was typed."""
    evaluation = None
    if notice.kind == NoticeKind.RESULT:
        from consult.implementation.service import evaluation_tally

        evaluation = evaluation_tally(consultation)
    household = getattr(current_user, "household", None)
    may_object = (household is not None and notice.kind != NoticeKind.VOTE
                  and notices.in_period(notice, utcnow())
                  and can(current_user, "consultation.participate", household))
    content = notices.content_of(notice)
    # The households' appendix of an open ballot lists the whole roll: the page shows it a
    # page at a time (the printed notice has it all).
    appendix = window_of_list(content.get("households") or [], page_number(), page_size())
    with force_locale(notice.locale):
        # The template escapes every value; its output is the notice's finished HTML.
        article = Markup(render_template(  # noqa: S704
            "notices/_article.html", notice=notice, content=content, evaluation=evaluation,
            households=appendix.items))
    return render_template(
        "notices/show.html", notice=notice, c=consultation, content=content, article=article,
        appendix=appendix, objections=notices.objections_of(notice),
        evaluation=evaluation, may_object=may_object, objection_form=objection_form,
        answer_form=answering[1] if answering else AnswerForm(),
        answering=answering[0] if answering else None,
        in_period=notices.in_period(notice, utcnow()),
        can_answer=can(current_user, "consultation.manage", consultation))


def _consultation_id(notice: Notice) -> int:
    """The consultation a notice belongs to; a ranking belongs to none (its pages are the
    scoring rounds')."""
    if notice.consultation_id is None:
        raise NotFound(_("No such notice."))
    return notice.consultation_id


@bp.get("/notices/<int:notice_id>")
@require("consultation.view")
def show(notice_id: int) -> str | Response:
    notice = notices.get_notice_or_404(notice_id)
    if notice.scoring_round_id is not None:
        return redirect(url_for("scoring.notice", ranking_id=notice.id))
    consultation = loading.load(_consultation_id(notice))
    return _page(notice, consultation, ObjectionForm())


@bp.post("/notices/<int:notice_id>/objections")
@require("consultation.participate")
def object_(notice_id: int) -> Response | tuple[str, int]:
    notice = notices.get_notice_or_404(notice_id)
    consultation, household = loading.load_participating(_consultation_id(notice))
    form = ObjectionForm()
    if save_form(form, lambda: notices.file_objection(current_user, notice, household,
                                                      form.text.data),
                 _("Your objection has been filed; the committee will answer it publicly.")):
        return redirect(url_for("notices.show", notice_id=notice.id, _anchor="objections"))
    # The page again, with what was typed and the reason beside it: the form's action ends
    # in #objection-form, so the browser shows this answer at the form, not at the top.
    return _page(notice, consultation, form), 400


@bp.post("/objections/<int:objection_id>/answer")
@require("consultation.manage")
def answer(objection_id: int) -> Response | tuple[str, int]:
    objection = load(notices.get_objection_or_404, objection_id)
    form = AnswerForm()
    if save_form(form, lambda: notices.answer_objection(current_user, objection, form.text.data),
                 _("The answer is published.")):
        return redirect(url_for("notices.show", notice_id=objection.notice_id,
                                _anchor="objections"))
    notice = notices.get_notice_or_404(objection.notice_id)
    return _page(notice, loading.load(_consultation_id(notice)), ObjectionForm(),
                 (objection.id, form)), 400


@bp.get("/verify/<code>")
@require("public.view")
def verify(code: str) -> tuple[str, int]:
    """Anyone holding a printed notice can check it is genuine and still in force."""
    notice = notices.by_verify_code(code)
    return render_template("notices/verify.html", notice=notice, code=code[:16],
                           content=notices.content_of(notice) if notice else None), (
        200 if notice else 404)


# --- printing ---------------------------------------------------------------------------------

# A frozen notice stays the same for good; a result notice's evaluation tally moves while
# households rate, so it is kept briefly. Minutes change when a meeting is edited: browsers ask
# again each time (a 304 if unchanged).
NOTICE_MAX_AGE_S = 3600
RESULT_MAX_AGE_S = 300
MINUTES_CACHE_CONTROL = "private, no-cache"


def _notice_cache_control(notice: Notice) -> str:
    """A notice is a public document that proxies may keep too, but a shared cache may keep a
    response together with its cookies: a signed-in member's session, or the language cookie
    that ``?lang=`` sets. Those responses are for the browser alone."""
    max_age = RESULT_MAX_AGE_S if notice.kind == NoticeKind.RESULT else NOTICE_MAX_AGE_S
    shared = not current_user.is_authenticated and not request.args
    return f"{'public' if shared else 'private'}, max-age={max_age}"


def _disposition(disposition: str, name: str, fallback: str) -> str:
    """A file offered under its name in the document's language (RFC 6266), and under a plain
    ASCII one for the rare client that cannot read that."""
    return f"{disposition}; filename=\"{fallback}\"; filename*=UTF-8''{quote(name, safe='')}"


def pdf_response(stored: pdf_module.Stored, name: str, fallback: str,
                  cache_control: str) -> Response:
    """A stored PDF as a file, with its content's hash as a (weak) ETag, so a browser that has
    it already gets a 304; ranges are served for readers that fetch a PDF in pieces."""
    response: Response
    if stored.path is not None:
        response = send_file(stored.path, mimetype="application/pdf", conditional=False,
                             etag=False, last_modified=None, max_age=None)
    else:  # could not be stored (logged): the bytes all the same
        response = Response(stored.data, mimetype="application/pdf")
    response.headers["Content-Disposition"] = _disposition("inline", name, fallback)
    response.headers["Cache-Control"] = cache_control
    response.set_etag(stored.key, weak=True)
    if stored.path is None:
        return response.make_conditional(request)
    return response.make_conditional(request, accept_ranges=True,
                                     complete_length=response.content_length)


@bp.errorhandler(render_slots.PrintersBusy)
def _printers_busy(exc: render_slots.PrintersBusy) -> Response:
    """Every layout slot is taken: say so, and when to come back, instead of waiting."""
    db.session.rollback()
    if wants_json():
        body, status = error_response(exc.status_code, exc.message)
        response = make_response(body, status)
    else:
        response = make_response(render_template(
            "notices/print_busy.html", message=exc.message, retry_after=exc.retry_after),
            exc.status_code)
    response.headers["Retry-After"] = str(exc.retry_after)
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/notices/<int:notice_id>.pdf")
@require("consultation.view")
def pdf(notice_id: int) -> Response:
    """A notice for the notice board, rendered from its frozen content (laid out once)."""
    notice = notices.get_notice_or_404(notice_id)
    if notice.scoring_round_id is not None:
        return redirect(url_for("scoring.notice_pdf", ranking_id=notice.id))
    loading.load(_consultation_id(notice))
    return pdf_response(printing.notice_file(notice), printing.notice_file_name(notice),
                         f"notice-{notice.verify_code}.pdf", _notice_cache_control(notice))


@bp.post("/consultations/<int:consultation_id>/vote-notice")
@require("consultation.manage")
def issue_vote_notice(consultation_id: int) -> Response:
    consultation = loading.load(consultation_id)
    if not ConfirmForm().validate_on_submit():
        raise ValidationFailed(_("The form could not be read."))
    notice = printing.issue_vote_notice(current_user, consultation)
    db.session.commit()
    flash(_("The vote notice is issued; print it for the notice board."), "success")
    return redirect(url_for("notices.show", notice_id=notice.id))


@bp.get("/consultations/<int:consultation_id>/minutes.pdf")
@require("consultation.view")
def minutes(consultation_id: int) -> Response:
    consultation = loading.load(consultation_id)
    return pdf_response(printing.minutes_file(consultation),
                         printing.minutes_file_name(consultation),
                         f"minutes-{consultation.id}.pdf", MINUTES_CACHE_CONTROL)


@bp.post("/consultations/<int:consultation_id>/print/<kind>")
@require("consultation.manage")
def print_batch(consultation_id: int, kind: str) -> Response:
    """Start printing a page per household; the job runs after this request."""
    consultation = loading.load(consultation_id)
    try:
        batch = PrintKind(kind)
    except ValueError:
        raise NotFound(_("Unknown document: %(kind)s.", kind=kind)) from None
    if batch is PrintKind.ACCESS_LETTERS:
        authorize(current_user, "registry.access_codes", consultation)
    form = ConfirmForm()
    if not form.validate_on_submit():
        raise ValidationFailed(_("The form could not be read."))
    if printing.needs_confirmation(batch) and request.form.get("confirmed") != "1":
        try:
            printing.check_batch(consultation, batch)
        except Conflict as exc:
            flash(exc.message, "danger")
            return redirect(url_for("consultations.show", consultation_id=consultation.id))
        return make_response(render_template(
            "notices/confirm_print.html", c=consultation, kind=batch, form=form,
            label=printing.PRINT_KIND_LABELS[batch],
            consequences=printing.letters_consequences(consultation)))
    job = printing.request_job(current_user, consultation, batch)
    db.session.commit()
    jobs.submit(printing.run_job, job.id, printing.public_base())
    return redirect(url_for("notices.print_job", job_id=job.id))


@bp.get("/print-jobs/<int:job_id>")
@require("consultation.manage")
def print_job(job_id: int) -> str:
    job = load(printing.get_job_or_404, job_id)
    return render_template("notices/print_job.html", job=job)


@bp.get("/print-jobs/<int:job_id>/file")
@require("consultation.manage")
def print_file(job_id: int) -> Response:
    job = load(printing.get_job_or_404, job_id)
    path = pdf_module.job_path(job.id)
    if job.status != "done" or not path.exists():
        raise NotFound(_("This print job has no file (yet)."))
    return Response(path.read_bytes(), mimetype="application/pdf", headers={
        "Cache-Control": "no-store",
        "Content-Disposition": _disposition("attachment", printing.job_file_name(job),
                                            f"{job.kind}-{job.consultation_id}.pdf")})
