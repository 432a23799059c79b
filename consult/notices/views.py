"""Notice pages: the resolution and result notices, objections and answers, verification."""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, url_for
from flask_babel import gettext as _
from flask_login import current_user
from werkzeug.wrappers import Response

from consult.consultations import loading
from consult.consultations.models import Consultation
from consult.core.forms import save_form
from consult.core.models import utcnow
from consult.core.policy import authorize, can, require
from consult.notices import service as notices
from consult.notices.forms import AnswerForm, ObjectionForm
from consult.notices.models import Notice, NoticeKind

bp = Blueprint("notices", __name__)


def _page(notice: Notice, consultation: Consultation, objection_form: ObjectionForm) -> str:
    evaluation = None
    if notice.kind == NoticeKind.RESULT:
        from consult.implementation.service import evaluation_tally

        evaluation = evaluation_tally(consultation)
    household = getattr(current_user, "household", None)
    may_object = (household is not None and notices.in_period(notice, utcnow())
                  and can(current_user, "consultation.participate", household))
    return render_template(
        "notices/show.html", notice=notice, c=consultation, content=notices.content_of(notice),
        evaluation=evaluation, may_object=may_object, objection_form=objection_form,
        answer_form=AnswerForm(), in_period=notices.in_period(notice, utcnow()),
        can_answer=can(current_user, "consultation.manage", consultation))


@bp.get("/notices/<int:notice_id>")
@require("consultation.view")
def show(notice_id: int) -> str:
    notice = notices.get_notice_or_404(notice_id)
    consultation = loading.load(notice.consultation_id)
    return _page(notice, consultation, ObjectionForm())


@bp.post("/notices/<int:notice_id>/objections")
@require("consultation.participate")
def object_(notice_id: int) -> Response | str:
    notice = notices.get_notice_or_404(notice_id)
    consultation = loading.load(notice.consultation_id)
    household = loading.acting_household(consultation)
    form = ObjectionForm()
    if save_form(form, lambda: notices.file_objection(current_user, notice, household,
                                                      form.text.data),
                 _("Your objection has been filed; the committee will answer it publicly.")):
        return redirect(url_for("notices.show", notice_id=notice.id, _anchor="objections"))
    return _page(notice, consultation, form)


@bp.post("/objections/<int:objection_id>/answer")
@require("consultation.manage")
def answer(objection_id: int) -> Response:
    objection = notices.get_objection_or_404(objection_id)
    authorize(current_user, "consultation.manage", objection)
    form = AnswerForm()
    if not save_form(form, lambda: notices.answer_objection(current_user, objection,
                                                            form.text.data),
                     _("The answer is published.")):
        flash(" ".join(form.text.errors) or _("Write an answer."), "danger")
    return redirect(url_for("notices.show", notice_id=objection.notice_id, _anchor="objections"))


@bp.get("/verify/<code>")
@require("public.view")
def verify(code: str) -> str:
    """Anyone holding a printed notice can check it is genuine and still in force."""
    notice = notices.by_verify_code(code)
    return render_template("notices/verify.html", notice=notice, code=code[:16],
                           content=notices.content_of(notice) if notice else None), (
        200 if notice else 404)
