"""The notification centre: a person's own notifications, marking them read, preferences."""

from __future__ import annotations

from flask import Blueprint, current_app, flash, redirect, render_template, url_for
from flask_babel import gettext as _
from flask_babel import ngettext
from flask_login import current_user
from werkzeug.wrappers import Response

from consult.core.forms import page_number, page_size, save_form
from consult.core.policy import require
from consult.extensions import db
from consult.notifications import channels
from consult.notifications import service as notifications
from consult.notifications.forms import (
    MarkAllReadForm,
    MarkReadForm,
    box_name,
    preferences_form,
)
from consult.notifications.models import Channel

bp = Blueprint("notifications", __name__, url_prefix="/notifications")


@bp.get("")
@require("notifications.own")
def index() -> str:
    page = notifications.page_of(current_user, page_number(), page_size())
    return render_template(
        "notifications/index.html", page=page, texts=notifications.text_of,
        unread=notifications.unread_count(current_user.id), read_form=MarkReadForm(),
        all_form=MarkAllReadForm())


@bp.post("/read")
@require("notifications.own")
def mark_read() -> Response:
    form = MarkReadForm()
    if form.validate_on_submit():
        # Anyone else's notification is "not found" (404), like one that does not exist.
        notifications.mark_read(current_user, form.notification_id.data)
        db.session.commit()
    else:
        flash(_("Choose a notification to mark read."), "warning")
    return redirect(url_for("notifications.index"))


@bp.post("/read-all")
@require("notifications.own")
def mark_all_read() -> Response:
    if MarkAllReadForm().validate_on_submit():
        done = notifications.mark_all_read(current_user)
        db.session.commit()
        flash(ngettext("%(num)s notification marked read.", "%(num)s notifications marked read.",
                       done), "success")
    return redirect(url_for("notifications.index"))


@bp.route("/preferences", methods=["GET", "POST"])
@require("notifications.own")
def preferences() -> Response | str:
    codes = notifications.events_for(current_user)
    prefs = notifications.preferences_of(current_user)
    data: dict[str, object] = {box_name(channel, event): prefs.wants(channel, event)
                               for event in codes for channel in Channel}
    data.update(email=prefs.email or "", quiet_start=notifications.format_minutes(
        prefs.quiet_start), quiet_end=notifications.format_minutes(prefs.quiet_end))
    form = preferences_form(codes, data=data)
    off = {channel.value: [event for event in codes
                           if not getattr(form, box_name(channel, event)).data]
           for channel in Channel}
    if save_form(form, lambda: notifications.save_preferences(
            current_user, form.email.data or "", off, form.quiet_start.data or "",
            form.quiet_end.data or ""), _("Your notification preferences are saved.")):
        return redirect(url_for("notifications.preferences"))
    return render_template(
        "notifications/preferences.html", form=form, codes=codes, Channel=Channel,
        box_name=box_name, enabled=channels.enabled_channels(current_app.config),
        has_phone=bool(current_user.household and current_user.household.phone))

