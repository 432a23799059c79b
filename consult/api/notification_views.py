"""A person's notification centre through the API: their own notifications in their
language, marking them read, and how they want to be notified, through
``notifications.service`` as the centre's pages do."""

from __future__ import annotations

import json
from typing import Any

from flask_login import current_user
from marshmallow import Schema, fields, validate
from werkzeug.wrappers import Response

from consult.api.common import IF_NONE_MATCH, Blueprint, PageArgs, PageOf, conditional, page
from consult.core.policy import require
from consult.extensions import db
from consult.notifications import service as notifications
from consult.notifications.events import EVENT_LABELS
from consult.notifications.models import Channel, Notification

bp = Blueprint("api_notifications", __name__, url_prefix="/api/v1",
               description="The signed-in person's notifications and preferences.")

SIGNED_IN: list[dict[str, list[str]]] = [{"bearer": []}]


class NotificationOut(Schema):
    id = fields.Integer(required=True, metadata={"example": 88})
    event = fields.String(required=True, metadata={"example": "stage_opened"})
    title = fields.String(required=True, metadata={
        "description": "In the language of the account, else Accept-Language.",
        "example": "加装电梯：投票开始"})
    body = fields.String(required=True, metadata={
        "example": "投票开放至 2026-12-20 18:00：请为您的住户投票。"})
    link = fields.String(required=True, metadata={
        "description": "The path of the web page it opens.", "example": "/consultations/7"})
    params = fields.Dict(required=True, metadata={
        "description": "The event's plain values (ids, titles, ISO times).",
        "example": {"consultation": "加装电梯", "consultation_id": 7}})
    created_at = fields.DateTime(required=True, metadata={"example": "2026-12-04T08:00:00+00:00"})
    unread = fields.Boolean(required=True, metadata={"example": True})


class NotificationPage(PageOf):
    items = fields.List(fields.Nested(NotificationOut), required=True)
    unread = fields.Integer(required=True, metadata={
        "description": "Unread notifications in all.", "example": 2})


class ReadAllOut(Schema):
    marked = fields.Integer(required=True, metadata={
        "description": "How many were unread and are read now.", "example": 3})


_CHANNELS = [c.value for c in Channel]
_OFF_EXAMPLE = {"email": ["vote_closing"], "sms": []}


class PreferencesIn(Schema):
    email = fields.String(load_default="", validate=validate.Length(max=300), metadata={
        "description": "Where emails go; empty for none.", "example": "name@example.com"})
    off = fields.Dict(keys=fields.String(validate=validate.OneOf(_CHANNELS)),
                      values=fields.List(fields.String(validate=validate.OneOf(
                          list(EVENT_LABELS))), validate=validate.Length(max=20)),
                      load_default=dict, metadata={
                          "description": "Per channel, the events switched off; events "
                                         "the person cannot receive are ignored.",
                          "example": _OFF_EXAMPLE})
    quiet_start = fields.String(load_default="", validate=validate.Length(max=10), metadata={
        "description": "Quiet hours start, HH:MM local time; empty for none.",
        "example": "22:00"})
    quiet_end = fields.String(load_default="", validate=validate.Length(max=10),
                              metadata={"example": "07:00"})


class EventOut(Schema):
    code = fields.String(required=True, metadata={"example": "vote_closing"})
    label = fields.String(required=True, metadata={
        "example": "A vote closes within 48 hours and your household has not voted"})


class PreferencesOut(Schema):
    email = fields.String(required=True, allow_none=True,
                          metadata={"example": "name@example.com"})
    off = fields.Dict(keys=fields.String(), values=fields.List(fields.String()),
                      required=True, metadata={"example": _OFF_EXAMPLE})
    quiet_start = fields.String(required=True, metadata={"example": "22:00"})
    quiet_end = fields.String(required=True, metadata={"example": "07:00"})
    events = fields.List(fields.Nested(EventOut), required=True, metadata={
        "description": "The events this person can receive."})
    channels = fields.List(fields.String(), required=True,
                           metadata={"example": _CHANNELS})


def _out(found: Notification) -> dict[str, Any]:
    title, body = notifications.text_of(found)
    return {"id": found.id, "event": found.event, "title": title, "body": body,
            "link": found.link, "params": json.loads(found.params_json or "{}"),
            "created_at": found.created_at, "unread": found.read_at is None}


def _preferences() -> dict[str, Any]:
    prefs = notifications.preferences_of(current_user)
    codes = notifications.events_for(current_user)
    return {"email": prefs.email,
            "off": {c.value: sorted(e for e in codes if not prefs.wants(c, e))
                    for c in Channel},
            "quiet_start": notifications.format_minutes(prefs.quiet_start),
            "quiet_end": notifications.format_minutes(prefs.quiet_end),
            "events": [{"code": e, "label": str(EVENT_LABELS[e])} for e in codes],
            "channels": _CHANNELS}


@bp.route("/me/notifications", methods=["GET"])
@require("notifications.own")
@conditional
@bp.arguments(PageArgs, location="query")
@bp.response(200, NotificationPage)
@bp.doc(parameters=[IF_NONE_MATCH], security=SIGNED_IN)
@bp.errors(304, 400, 401)
def notification_list(args: dict[str, Any]) -> dict[str, Any]:
    """The signed-in person's own notifications, newest first, in their language."""
    stmt = notifications.own_notifications(current_user)
    rows, cursor = page(stmt.order_by(None).order_by(Notification.id.desc()),
                        Notification.id, args)
    return {"items": [_out(n) for n in rows], "next_cursor": cursor,
            "unread": notifications.unread_count(current_user.id)}


@bp.route("/me/notifications/<int:notification_id>/read", methods=["POST"])
@require("notifications.own")
@bp.response(204)
@bp.doc(security=SIGNED_IN)
@bp.errors(401, 404)
def notification_read(notification_id: int) -> Response:
    """Mark one of the person's own notifications read (anyone else's: 404)."""
    notifications.mark_read(current_user, notification_id)
    db.session.commit()
    return Response(status=204)


@bp.route("/me/notifications/read-all", methods=["POST"])
@require("notifications.own")
@bp.response(200, ReadAllOut)
@bp.doc(security=SIGNED_IN)
@bp.errors(401)
def notification_read_all() -> dict[str, Any]:
    """Mark every unread notification of the person read."""
    marked = notifications.mark_all_read(current_user)
    db.session.commit()
    return {"marked": marked}


@bp.route("/me/notification-preferences", methods=["GET"])
@require("notifications.own")
@conditional
@bp.response(200, PreferencesOut)
@bp.doc(parameters=[IF_NONE_MATCH], security=SIGNED_IN)
@bp.errors(304, 401)
def preferences() -> dict[str, Any]:
    """How the person is notified: the events switched off per channel, an email address,
    quiet hours (the defaults if never chosen)."""
    return _preferences()


@bp.route("/me/notification-preferences", methods=["PUT"])
@require("notifications.own")
@bp.arguments(PreferencesIn)
@bp.response(200, PreferencesOut)
@bp.doc(security=SIGNED_IN)
@bp.errors(400, 401)
def preferences_put(body: dict[str, Any]) -> dict[str, Any]:
    """Replace the person's preferences, with the preferences page's checks and messages."""
    notifications.save_preferences(current_user, body["email"], body["off"],
                                   body["quiet_start"], body["quiet_end"])
    out = _preferences()
    db.session.commit()
    return out
