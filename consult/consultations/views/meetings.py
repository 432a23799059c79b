"""Meeting records: the list, one meeting, and the committee's forms."""

from __future__ import annotations

from flask import redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user
from werkzeug.wrappers import Response

from consult.consultations import meetings, opinions
from consult.consultations.forms.meetings import MeetingForm
from consult.consultations.views import bp
from consult.core.forms import page_number, page_size, save_form
from consult.core.markup import render_markdown
from consult.core.policy import can, require
from consult.core.times import utc_to_local
from consult.extensions import db
from consult.process import loading


def _data(form: MeetingForm) -> meetings.MeetingData:
    return meetings.meeting_data(held_at_local=form.held_at.data, place=form.place.data,
                                 attendees=form.attendees(), minutes=form.minutes.data,
                                 decisions=form.decisions.data)


@bp.get("/<int:consultation_id>/meetings", endpoint="meetings")
@require("consultation.view")
def meetings_list(consultation_id: int) -> str:
    consultation = loading.load(consultation_id)
    page = db.paginate(meetings.listing(consultation), page=page_number(),
                       per_page=page_size(), error_out=False)
    return render_template("consultations/meetings/list.html", c=consultation, page=page,
                           attendees_of=meetings.attendees_of,
                           can_manage=can(current_user, "consultation.manage", consultation))


@bp.get("/<int:consultation_id>/meetings/<int:meeting_id>")
@require("consultation.view")
def meeting(consultation_id: int, meeting_id: int) -> str:
    consultation = loading.load(consultation_id)
    found = meetings.get_meeting_or_404(consultation, meeting_id)
    staff = can(current_user, "audit.view", consultation)
    return render_template(
        "consultations/meetings/show.html", c=consultation, m=found,
        attendees=meetings.attendees_of(found), minutes=render_markdown(found.minutes),
        decisions=render_markdown(found.decisions), staff=staff,
        author=opinions.author(found.author_id) if staff else None,
        can_manage=can(current_user, "consultation.manage", consultation))


@bp.route("/<int:consultation_id>/meetings/new", methods=["GET", "POST"])
@require("consultation.manage")
def meeting_new(consultation_id: int) -> Response | tuple[str, int]:
    consultation = loading.load(consultation_id)
    meetings.check_recordable(consultation)
    form = MeetingForm()
    del form.remove
    saved = save_form(form, lambda: meetings.record(current_user, consultation, _data(form),
                                                    form.files.data), _("Meeting recorded."))
    if saved:
        return redirect(url_for("consultations.meeting", consultation_id=consultation.id,
                                meeting_id=saved.value.id))
    return render_template("consultations/meetings/form.html", c=consultation, form=form,
                           m=None), 400 if form.errors else 200


@bp.route("/<int:consultation_id>/meetings/<int:meeting_id>/edit", methods=["GET", "POST"])
@require("consultation.manage")
def meeting_edit(consultation_id: int, meeting_id: int) -> Response | tuple[str, int]:
    consultation = loading.load(consultation_id)
    found = meetings.get_meeting_or_404(consultation, meeting_id)
    meetings.check_recordable(consultation)
    form = MeetingForm(obj=found)
    form.remove.choices = [(a.id, a.filename) for a in found.attachments]
    if request.method == "GET":
        form.held_at.data = utc_to_local(found.held_at)
        for role, value in meetings.attendee_values(found).items():
            getattr(form, role).data = value
    if save_form(form, lambda: meetings.update(current_user, found, _data(form),
                                               form.files.data, form.remove.data or []),
                 _("Saved.")):
        return redirect(url_for("consultations.meeting", consultation_id=consultation.id,
                                meeting_id=found.id))
    return render_template("consultations/meetings/form.html", c=consultation, form=form,
                           m=found), 400 if form.errors else 200
