"""一征 and 二议: opinions, the items' opinions and comments, and meeting records."""

from datetime import UTC, datetime
from typing import Any

from consult.consultations.models import Comment, Item, Meeting, Opinion
from consult.extensions import db
from tests import factories
from tests.access import EDITORS, EVERYONE, EXPECTED, RECORDERS, RESIDENT, WORLD_BUILDERS

EXPECTED.update({
    "consultations.opinions": ("GET", EVERYONE),
    "consultations.opinion_summary": ("GET", EVERYONE),
    "consultations.opinion": ("GET", EVERYONE),
    "consultations.opinion_new": ("GET", RESIDENT),
    "consultations.opinion_support": ("POST", RESIDENT),
    "consultations.opinion_record": ("GET", RECORDERS),
    "consultations.opinion_categorise": ("POST", EDITORS),
    "consultations.opinion_merge": ("POST", EDITORS),
    "consultations.item_opinions": ("GET", EDITORS),
    "consultations.item": ("GET", EVERYONE),
    "consultations.comment_post": ("POST", RESIDENT),
    "consultations.comment_post_committee": ("POST", EDITORS),
    "consultations.comment_moderate": ("GET", EDITORS),
    # Only a household's own posts can be withdrawn: the world's opinion and comment are
    # another household's, so the resident is refused (403) like everyone else signed in.
    "consultations.opinion_withdraw": ("GET", frozenset()),
    "consultations.comment_withdraw": ("GET", frozenset()),
    # A support is the household's own by its address; without one the page sends it back.
    "consultations.support_withdraw": ("GET", RESIDENT),
    "consultations.mine": ("GET", RESIDENT),
    "consultations.meetings": ("GET", EVERYONE),
    "consultations.meeting": ("GET", EVERYONE),
    "consultations.meeting_new": ("GET", EDITORS),
    "consultations.meeting_edit": ("GET", EDITORS),
})


def build(world: dict[str, Any]) -> None:
    """An opinion, a comment and a meeting in the world's consultation (a published one of
    our own when no other module made one)."""
    if "consultation_id" not in world:
        consultation = factories.make_consultation(world["compound"], stage="discussing")
        world["consultation_id"] = consultation.id
    consultation_id = world["consultation_id"]
    item_id = world.get("item_id") or db.session.scalar(
        db.select(Item.id).where(Item.consultation_id == consultation_id)
        .order_by(Item.number).limit(1))
    world.setdefault("item_id", item_id)
    other = world["compound"].buildings[0].households[1]
    opinion = Opinion(consultation_id=consultation_id, household_id=other.id,
                      category="pipes", text="楼道水管漏水")
    comment = Comment(item_id=world["item_id"], household_id=other.id, text="同意")
    meeting = Meeting(consultation_id=consultation_id, place="居委会会议室",
                      held_at=datetime(2026, 3, 1, 2, 0, tzinfo=UTC))
    db.session.add_all([opinion, comment, meeting])
    db.session.flush()
    world.setdefault("opinion_id", opinion.id)
    world.setdefault("comment_id", comment.id)
    world.setdefault("meeting_id", meeting.id)


WORLD_BUILDERS.append(build)
