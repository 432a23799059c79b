"""The JSON API (/api/v1): opened with a bearer token for each role (the matrix signs in
through the API for these routes; anonymous is answered 401, never sent to a page)."""

from typing import Any

from sqlalchemy import select

from consult.ballots import service as ballots
from consult.ballots.models import BallotChannel
from consult.consultations.models import Consultation
from consult.extensions import db
from tests.access import (
    EDITORS,
    EVERYONE,
    EXPECTED,
    LATE_BUILDERS,
    READERS,
    RECORDERS,
    REFUSED_AS,
    RESIDENT,
    SIGNED_IN,
    WORLD_BUILDERS,
)

EXPECTED.update({
    "api_auth.code": ("POST", EVERYONE),
    "api_auth.password": ("POST", EVERYONE),
    "api_auth.refresh": ("POST", EVERYONE),
    "api_auth.logout": ("POST", SIGNED_IN),
    "api_resident.me": ("GET", SIGNED_IN),
    "api_resident.tasks": ("GET", SIGNED_IN),
    "api_resident.consultation_list": ("GET", EVERYONE),
    "api_resident.consultation_detail": ("GET", EVERYONE),
    "api_resident.ballot": ("GET", RESIDENT),
    "api_resident.ballot_put": ("PUT", RESIDENT),
    "api_resident.receipt": ("GET", RESIDENT),
    "api_resident.proof": ("POST", EVERYONE),
    "api_opinions.opinion_list": ("GET", EVERYONE),
    "api_opinions.opinion_create": ("POST", RESIDENT),
    "api_opinions.opinion_support": ("POST", RESIDENT),
    "api_opinions.support_withdraw": ("DELETE", RESIDENT),
    # Only a household's own opinion can be withdrawn: the world's is another household's.
    "api_opinions.opinion_withdraw": ("DELETE", frozenset()),
    "api_staff.steps": ("GET", EDITORS),
    "api_staff.step": ("POST", EDITORS),
    # The world's vote is open: its live count is internal, as on the tally page.
    "api_staff.tally": ("GET", READERS),
    "api_staff.paper_entry": ("POST", RECORDERS),
    "api_notices.notice_list": ("GET", EVERYONE),
    "api_notices.notice_detail": ("GET", EVERYONE),
    "api_notices.verify": ("GET", EVERYONE),
    "api_notices.objection_list": ("GET", EVERYONE),
    # The world's resolution notice is in its publicity period.
    "api_notices.objection_create": ("POST", RESIDENT),
    "api_notices.objection_answer": ("PUT", EDITORS),
    "api_notifications.notification_list": ("GET", SIGNED_IN),
    # The world's notification is another person's: not found, for everyone.
    "api_notifications.notification_read": ("POST", frozenset()),
    "api_notifications.notification_read_all": ("POST", SIGNED_IN),
    "api_notifications.preferences": ("GET", SIGNED_IN),
    "api_notifications.preferences_put": ("PUT", SIGNED_IN),
    # A household its own, the compound's staff all of them.
    "api_feedback.report_list": ("GET", frozenset({"resident"}) | READERS),
    "api_feedback.report_create": ("POST", frozenset({"resident", "supervisor",
                                                     "grid_worker"})),
    "api_feedback.report_detail": ("GET", frozenset({"resident"}) | READERS),
    # Accepting is the committee's; other steps are tested in tests/api/test_feedback.py.
    "api_feedback.report_step": ("POST", EDITORS),
    "api_feedback.public_list": ("GET", EVERYONE),
    # The world's questionnaire is published and closed (its consultation votes).
    "api_questionnaires.questionnaire": ("GET", RESIDENT),
    "api_questionnaires.answers_put": ("PUT", RESIDENT),
    "api_evaluation.evaluation": ("GET", RESIDENT),
    # The world's consultation votes: rating is refused (409), not forbidden.
    "api_evaluation.evaluation_put": ("PUT", RESIDENT),
    "api_comments.comment_list": ("GET", EVERYONE),
    # The world's consultation votes: commenting is refused (409), not forbidden.
    "api_comments.comment_create": ("POST", RESIDENT),
    # Likewise the committee's comment (409); hiding one is possible at any stage.
    "api_comments.committee_comment_create": ("POST", EDITORS),
    "api_comments.comment_moderate": ("POST", EDITORS),
    # Only a household's own comment can be withdrawn: the world's is another household's.
    "api_comments.comment_withdraw": ("DELETE", frozenset()),
    "api_docs.openapi_json": ("GET", EVERYONE),
    "api_docs.docs": ("GET", EVERYONE),
})

REFUSED_AS.update({"api_notifications.notification_read": 404})

# Bodies that pass the request's schema, so the refusal tested is the scope check that comes
# after it (a member of another compound), not the body's validation.
API_BODIES: dict[str, dict[str, Any]] = {
    "api_staff.step": {"action": "start_soliciting"},
    "api_feedback.report_create": {"item_id": 1, "building_id": 1, "text": "路灯不亮"},
    "api_feedback.report_step": {"action": "accept"},
    "api_questionnaires.answers_put": {"answers": {}},
    "api_evaluation.evaluation_put": {"rating": "satisfied"},
    "api_comments.comment_create": {"text": "同意"},
    "api_comments.committee_comment_create": {"text": "谢谢建议"},
    "api_comments.comment_moderate": {"reason": "人身攻击"},
    "api_notices.objection_create": {"text": "面积登记有误"},
    "api_notices.objection_answer": {"text": "已核对，面积无误。"},
    "api_staff.paper_entry": {"channel": "door_to_door",
                              "choices": [{"item_id": 1, "choice": "agree"}]},
}


def build(world: dict[str, Any]) -> None:
    """The signed-in household's online ballot in the world's open vote (its receipt)."""
    consultation = db.session.get(Consultation, world["consultation_id"])
    assert consultation is not None
    ballots.cast(None, consultation, world["household"],
                 {item.id: "agree" for item in consultation.items}, BallotChannel.ONLINE)


LATE_BUILDERS.append(build)


def build_notification(world: dict[str, Any]) -> None:
    """A notification of the world's committee member: nobody the matrix signs in."""
    from consult.notifications import service as notifications
    from consult.notifications.models import Notification

    notifications.notify("staff_todo", [world["user_id"]], {"kind": "papers"},
                         "/dashboard", "access-matrix")
    world["notification_id"] = db.session.scalar(
        select(Notification.id).where(Notification.user_id == world["user_id"]))


WORLD_BUILDERS.append(build_notification)


# Paper ballots waiting, and the overview dashboard. The world's paper ballot (entry_id,
# tests/access/entries.py) has two differing entries by members the matrix does not sign in.
EXPECTED.update({
    "api_entries.entry_list": ("GET", READERS),
    "api_entries.entry_case": ("GET", EDITORS),
    # A body that passes the schema: the paper's answers are then refused (400), not the role.
    "api_entries.entry_decision": ("POST", EDITORS),
    # The world's household has no proxy ballot: refused (409), not forbidden.
    "api_entries.authorisation": ("POST", EDITORS),
    # Staff over their own scope (tests/api/test_dashboard.py), as on the web page.
    "api_dashboard.dashboard_rows": ("GET", READERS | {"committee_elsewhere"}),
})
API_BODIES.update({
    "api_entries.entry_decision": {"pick": "paper", "channel": "paper",
                                   "choices": [{"item_id": 1, "choice": "agree"}]},
    "api_entries.authorisation": {"document": {"filename": "委托书.pdf",
                                               "content_base64": "JVBERi0xLjQK"}},
})
