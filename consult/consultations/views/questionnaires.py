"""问卷: the committee's builder, a household's answers online, paper sheets and their entry,
the results with their charts, free answers taken up as opinions, and the XLSX export."""

from __future__ import annotations

import json
from urllib.parse import quote

from flask import flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user
from werkzeug.wrappers import Response

from consult.consultations import opinions
from consult.consultations import questionnaires as service
from consult.consultations import service as consultation_service
from consult.consultations.forms.questionnaires import (
    AnswersForm,
    HeadingForm,
    PaperForm,
    QuestionForm,
    TakeUpForm,
)
from consult.consultations.models import Consultation
from consult.consultations.questionnaire_models import (
    QUESTION_KIND_LABELS,
    RESPONSE_CHANNEL_LABELS,
    Question,
    Questionnaire,
    QuestionnaireResponse,
    ResponseChannel,
)
from consult.consultations.states import Stage
from consult.consultations.views import bp
from consult.core.errors import NotFound, ValidationFailed
from consult.core.forms import id_arg, save_form
from consult.core.policy import can, require
from consult.extensions import db
from consult.process import loading
from consult.process import questionnaire_sheets as sheet_printing
from consult.registry.forms import ConfirmForm
from consult.registry.models import Building, Household


def _labels() -> dict[str, object]:
    return {"kind_labels": {k.value: v for k, v in QUESTION_KIND_LABELS.items()},
            "channel_labels": {k.value: v for k, v in RESPONSE_CHANNEL_LABELS.items()},
            "choices_of": service.choices_of, "field_name": service.field_name,
            "display_value": service.display_value}


# --- the builder ------------------------------------------------------------------------------


def _builder(consultation: Consultation, heading: HeadingForm | None = None,
             question_form: QuestionForm | None = None, status: int = 200
             ) -> tuple[str, int]:
    questionnaire = service.questionnaire_of(consultation)
    if heading is None:
        heading = HeadingForm(obj=questionnaire) if questionnaire else HeadingForm(
            title=_("Service needs questionnaire"))
    return render_template(
        "questionnaires/builder.html", c=consultation, q=questionnaire, heading=heading,
        question_form=question_form or QuestionForm(), button=ConfirmForm(),
        answered=service.response_count(questionnaire) if questionnaire else 0,
        building=consultation.stage_enum in service.BUILDING_STAGES,
        locked_message=service.LOCKED_MESSAGE, **_labels()), status


@bp.route("/<int:consultation_id>/questionnaire/build", methods=["GET", "POST"])
@require("questionnaire.manage")
def questionnaire_build(consultation_id: int) -> Response | tuple[str, int]:
    """The questionnaire's heading (starting it) and its questions."""
    consultation = loading.load(consultation_id)
    form = HeadingForm()
    if save_form(form, lambda: service.save_heading(current_user, consultation, form.title.data,
                                                    form.intro.data), _("Saved.")):
        return redirect(url_for("consultations.questionnaire_build",
                                consultation_id=consultation.id))
    return _builder(consultation, heading=form if form.is_submitted() else None,
                    status=400 if form.errors else 200)


@bp.post("/<int:consultation_id>/questionnaire/questions")
@require("questionnaire.manage")
def questionnaire_question_add(consultation_id: int) -> Response | tuple[str, int]:
    consultation = loading.load(consultation_id)
    questionnaire = service.get_or_404(consultation)
    form = QuestionForm()
    if save_form(form, lambda: service.add_question(current_user, questionnaire, _data(form)),
                 _("Question added.")):
        return redirect(url_for("consultations.questionnaire_build",
                                consultation_id=consultation.id, _anchor="questions"))
    return _builder(consultation, question_form=form, status=400)


def _data(form: QuestionForm) -> service.QuestionData:
    return service.question_data(kind=form.kind.data, text=form.text.data,
                                 required=bool(form.required_answer.data),
                                 choices=form.choices.data)


def _question(consultation: Consultation, question_id: int) -> tuple[Questionnaire, Question]:
    questionnaire = service.get_or_404(consultation)
    return questionnaire, service.get_question_or_404(questionnaire, question_id)


@bp.route("/<int:consultation_id>/questionnaire/questions/<int:question_id>",
          methods=["GET", "POST"])
@require("questionnaire.manage")
def questionnaire_question(consultation_id: int, question_id: int
                           ) -> Response | tuple[str, int]:
    """Edit one question."""
    consultation = loading.load(consultation_id)
    questionnaire, question = _question(consultation, question_id)
    form = QuestionForm()
    if not form.is_submitted():
        form = QuestionForm(data={"kind": question.kind, "text": question.text,
                                  "required_answer": question.required,
                                  "choices": "\n".join(service.choices_of(question))})
    if save_form(form, lambda: service.edit_question(current_user, question, _data(form)),
                 _("Saved.")):
        return redirect(url_for("consultations.questionnaire_build",
                                consultation_id=consultation.id, _anchor=f"q-{question.id}"))
    return render_template(
        "questionnaires/question.html", c=consultation, q=questionnaire, question=question,
        form=form, answered=service.has_responses(questionnaire),
        locked_message=service.LOCKED_MESSAGE), 400 if form.errors else 200


@bp.post("/<int:consultation_id>/questionnaire/questions/<int:question_id>/remove")
@require("questionnaire.manage")
def questionnaire_question_remove(consultation_id: int, question_id: int) -> Response:
    consultation = loading.load(consultation_id)
    _questionnaire, question = _question(consultation, question_id)
    form = ConfirmForm()
    if form.validate_on_submit():
        service.remove_question(current_user, question)
        db.session.commit()
        flash(_("Question removed."), "success")
    return redirect(url_for("consultations.questionnaire_build",
                            consultation_id=consultation.id, _anchor="questions"))


@bp.post("/<int:consultation_id>/questionnaire/questions/<int:question_id>/move")
@require("questionnaire.manage")
def questionnaire_question_move(consultation_id: int, question_id: int) -> Response:
    consultation = loading.load(consultation_id)
    _questionnaire, question = _question(consultation, question_id)
    form = ConfirmForm()
    if form.validate_on_submit():
        service.move_question(current_user, question, request.form.get("direction") == "up")
        db.session.commit()
    return redirect(url_for("consultations.questionnaire_build",
                            consultation_id=consultation.id, _anchor=f"q-{question.id}"))


@bp.post("/<int:consultation_id>/questionnaire/publish")
@require("questionnaire.manage")
def questionnaire_publish(consultation_id: int) -> Response:
    consultation = loading.load(consultation_id)
    questionnaire = service.get_or_404(consultation)
    form = ConfirmForm()
    if form.validate_on_submit():
        service.publish(current_user, questionnaire)
        db.session.commit()
        flash(_("The questionnaire is published: households can answer it."), "success")
    return redirect(url_for("consultations.questionnaire_build",
                            consultation_id=consultation.id))


# --- answering --------------------------------------------------------------------------------


def _answers_page(template: str, consultation: Consultation, questionnaire: Questionnaire,
                  household: Household, values: dict[str, list[str]],
                  errors: dict[str, list[str]], form: AnswersForm | PaperForm,
                  response: QuestionnaireResponse | None, status: int, **extra: object
                  ) -> tuple[str, int]:
    return render_template(
        template, c=consultation, q=questionnaire, household=household, values=values,
        errors=errors, form=form, response=response, open=service.is_open(questionnaire),
        **_labels(), **extra), status


def _stored_form_values(questionnaire: Questionnaire,
                        response: QuestionnaireResponse | None) -> dict[str, list[str]]:
    """The stored answers as the form's fields hold them (field → values)."""
    values: dict[str, list[str]] = {}
    stored = service.stored_values(response)
    for question in questionnaire.questions:
        if question.id not in stored:
            continue
        raw = stored[question.id]
        values[service.field_name(question)] = (
            [str(v) for v in json.loads(raw)] if question.kind == "multiple" else [raw])
    return values


def _posted_values(questionnaire: Questionnaire) -> dict[str, list[str]]:
    return {service.field_name(q): request.form.getlist(service.field_name(q))
            for q in questionnaire.questions}


@bp.route("/<int:consultation_id>/questionnaire", methods=["GET", "POST"])
@require("consultation.participate")
def questionnaire_answer(consultation_id: int) -> Response | tuple[str, int]:
    """A household answers, or changes its answers while opinions are collected; afterwards
    its answers are shown, read only."""
    consultation, household = loading.load_participating(consultation_id)
    questionnaire = service.get_or_404(consultation)
    if questionnaire.published_at is None:
        raise NotFound(_("The questionnaire has not been published yet."))
    response = service.response_of(questionnaire, household)
    form = AnswersForm()
    values = _stored_form_values(questionnaire, response)
    errors: dict[str, list[str]] = {}
    if form.is_submitted():
        values = _posted_values(questionnaire)
    if form.validate_on_submit():
        service.check_open(questionnaire)
        try:
            answers = service.parse_answers(questionnaire, request.form.getlist)
        except ValidationFailed as exc:
            errors = exc.errors
            # Each message sits at its question; the summary goes on top, once.
            form.form_errors.append(exc.message)
        else:
            saved = save_form(form, lambda: service.answer_online(
                current_user, questionnaire, household, answers),
                _("Thank you. Your answers have been saved; you can change them until the "
                  "opinions close."))
            if saved:
                return redirect(url_for("consultations.questionnaire_answer",
                                        consultation_id=consultation.id))
    status = 400 if (form.errors or errors) else 200
    return _answers_page("questionnaires/answer.html", consultation, questionnaire, household,
                         values, errors, form, response, status)


# --- paper ------------------------------------------------------------------------------------


@bp.get("/<int:consultation_id>/questionnaire/paper")
@require("questionnaire.enter")
def questionnaire_paper_find(consultation_id: int) -> Response | tuple[str, int]:
    """Choose the household whose sheet is typed in, by building, unit and room; and print
    the sheets of a building."""
    consultation = loading.load(consultation_id)
    questionnaire = service.get_or_404(consultation)
    errors: dict[str, list[str]] = {}
    building_id = id_arg("building_id")
    unit = request.args.get("unit", "")[:20]
    room = request.args.get("room", "")[:20]
    if building_id or room:
        try:
            household = opinions.find_household(consultation, building_id, unit, room)
        except ValidationFailed as exc:
            errors = exc.errors
        else:
            if household is not None:
                return redirect(url_for("consultations.questionnaire_paper",
                                        consultation_id=consultation.id,
                                        household_id=household.id))
    return render_template(
        "questionnaires/paper_find.html", c=consultation, q=questionnaire, errors=errors,
        building_id=building_id, unit=unit, room=room,
        buildings=consultation.compound.buildings), 400 if errors else 200


def _household_in(consultation: Consultation, household_id: int) -> Household:
    household = db.session.get(Household, household_id)
    if household is None or not consultation_service.household_in_scope(consultation, household):
        raise NotFound(_("This household is not among those the consultation concerns."))
    return household


@bp.route("/<int:consultation_id>/questionnaire/paper/<int:household_id>",
          methods=["GET", "POST"])
@require("questionnaire.enter")
def questionnaire_paper(consultation_id: int, household_id: int
                        ) -> Response | tuple[str, int]:
    """Type in one household's paper sheet (the sheet's QR code opens this page)."""
    consultation = loading.load(consultation_id)
    questionnaire = service.get_or_404(consultation)
    household = _household_in(consultation, household_id)
    response = service.response_of(questionnaire, household)
    form = PaperForm()
    values = _stored_form_values(questionnaire, response)
    errors: dict[str, list[str]] = {}
    if form.is_submitted():
        values = _posted_values(questionnaire)
    if form.validate_on_submit():
        try:
            answers = service.parse_answers(questionnaire, request.form.getlist)
        except ValidationFailed as exc:
            errors = exc.errors
            # Each message sits at its question; the summary goes on top, once.
            form.form_errors.append(exc.message)
        else:
            saved = save_form(form, lambda: service.enter_paper(
                current_user, questionnaire, household, answers,
                confirm_replace=bool(form.confirm_replace.data), reason=form.reason.data),
                _("Paper answers of %(household)s saved.", household=household.label))
            if saved:
                return redirect(url_for("consultations.questionnaire_paper_find",
                                        consultation_id=consultation.id,
                                        building_id=household.building_id))
    status = 400 if errors else 409 if form.confirm_replace.errors else (
        400 if form.errors else 200)
    return _answers_page("questionnaires/paper.html", consultation, questionnaire, household,
                         values, errors, form, response, status,
                         online=response is not None
                         and response.channel == ResponseChannel.ONLINE)


@bp.get("/<int:consultation_id>/questionnaire/sheets/<int:building_id>.pdf")
@require("questionnaire.enter")
def questionnaire_sheets(consultation_id: int, building_id: int) -> Response:
    """A building's sheets, one A4 page per household of the consultation's scope."""
    consultation = loading.load(consultation_id)
    questionnaire = service.get_or_404(consultation)
    building = db.session.get(Building, building_id)
    if building is None or building.compound_id != consultation.compound_id:
        raise NotFound(_("No such building."))
    households = [h for h in building.households
                  if consultation_service.household_in_scope(consultation, h)]
    if not households:
        raise NotFound(_("No household of this building is among those the consultation "
                         "concerns."))
    data = sheet_printing.sheets_pdf(questionnaire, households)
    name = sheet_printing.file_name(questionnaire, building.name)
    return Response(data, mimetype="application/pdf", headers={
        "Content-Disposition": f"inline; filename*=UTF-8''{quote(name)}"})


# --- results ----------------------------------------------------------------------------------


@bp.get("/<int:consultation_id>/questionnaire/results")
@require("questionnaire.results")
def questionnaire_results(consultation_id: int) -> str:
    consultation = loading.load(consultation_id)
    questionnaire = service.get_or_404(consultation)
    return render_template(
        "questionnaires/results.html", c=consultation, q=questionnaire,
        results=dict(zip([q.id for q in questionnaire.questions],
                         service.results(questionnaire), strict=True)),
        answered=service.response_count(questionnaire),
        taken_up=service.taken_up(questionnaire), take_up_form=TakeUpForm(),
        can_take_up=can(current_user, "questionnaire.manage", consultation)
        and consultation.stage_enum is Stage.SOLICITING,
        **_labels())


@bp.post("/<int:consultation_id>/questionnaire/answers/<int:answer_id>/opinion")
@require("questionnaire.manage")
def questionnaire_take_up(consultation_id: int, answer_id: int) -> Response:
    """Turn a free answer into an opinion of the consultation, in one step (once)."""
    consultation = loading.load(consultation_id)
    questionnaire = service.get_or_404(consultation)
    answer = service.get_answer_or_404(questionnaire, answer_id)
    form = TakeUpForm()
    if form.validate_on_submit():
        opinion, made = service.take_up_as_opinion(current_user, answer, form.category.data)
        db.session.commit()
        flash(_("The answer is now opinion #%(n)s.", n=opinion.id) if made else
              _("This answer was already taken up as opinion #%(n)s.", n=opinion.id),
              "success" if made else "info")
    return redirect(url_for("consultations.questionnaire_results",
                            consultation_id=consultation.id, _anchor=f"answer-{answer.id}"))


@bp.get("/<int:consultation_id>/questionnaire/export.xlsx")
@require("questionnaire.results")
def questionnaire_export(consultation_id: int) -> Response:
    consultation = loading.load(consultation_id)
    questionnaire = service.get_or_404(consultation)
    data = service.export_xlsx(questionnaire)
    name = f"{_('Questionnaire')}-{consultation.id}.xlsx"
    return Response(data, mimetype=(
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"), headers={
        "Content-Disposition": f"attachment; filename*=UTF-8''{quote(name)}"})
