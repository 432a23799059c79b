"""Consultation pages, the proposal, voting and notices."""

from datetime import timedelta
from typing import Any

from consult.consultations import service
from consult.core.models import utcnow
from consult.extensions import db
from consult.notices.models import Notice, NoticeKind, Objection
from tests import factories
from tests.access import (
    EDITORS,
    EVERYONE,
    EXPECTED,
    READERS,
    RECORDERS,
    RESIDENT,
    WORLD_BUILDERS,
)

EXPECTED.update({
    "consultations.index": ("GET", EVERYONE),
    "consultations.new": ("GET", EDITORS | {"committee_elsewhere"}),
    "consultations.show": ("GET", EVERYONE),
    "consultations.edit": ("GET", EDITORS),
    "consultations.scope": ("GET", EDITORS),
    "consultations.stage": ("POST", EDITORS),
    "consultations.item_new": ("GET", EDITORS),
    "consultations.item_edit": ("GET", EDITORS),
    "consultations.item_delete": ("POST", EDITORS),
    "consultations.attachments": ("GET", EDITORS),
    "consultations.revisions": ("GET", EVERYONE),
    "consultations.revision": ("GET", EVERYONE),
    "ballots.vote": ("GET", RESIDENT),
    "ballots.confirm": ("POST", RESIDENT),
    "ballots.receipt": ("GET", RESIDENT),
    "ballots.index": ("GET", READERS),
    "ballots.enter": ("GET", RECORDERS),
    "ballots.export_roll": ("POST", READERS),
    "ballots.tally": ("GET", READERS),  # live count while voting: staff only
    "notices.show": ("GET", EVERYONE),
    "notices.object_": ("POST", RESIDENT),
    "notices.answer": ("POST", EDITORS),
    "notices.verify": ("GET", EVERYONE),
})


def build(world: dict[str, Any]) -> None:
    """A consultation in voting (open), and a resolution notice with an objection."""
    voting = factories.make_consultation(world["compound"], items=0)
    service.add_item(None, voting, service.item_data(title="更换供水管", description="",
                                                     cost="1000"))  # revision 1
    factories.walk_to(voting, "discussing")
    voting.vote_deadline = utcnow() + timedelta(days=5)
    from consult.consultations.states import Action
    from consult.process import workflow

    workflow.apply(voting, Action.OPEN_VOTE, None)
    world.setdefault("consultation_id", voting.id)
    world.setdefault("item_id", voting.items[0].id)
    world.setdefault("number", 1)
    published = factories.make_consultation(world["compound"], items=1)
    factories.walk_to(published, "resolution_public")
    notice = db.session.scalars(db.select(Notice).where(
        Notice.consultation_id == published.id, Notice.kind == NoticeKind.RESOLUTION)).one()
    objection = Objection(notice=notice, household_id=world["household"].id, text="不同意")
    db.session.add(objection)
    db.session.flush()
    world.update(notice_id=notice.id, objection_id=objection.id, code=notice.verify_code)


WORLD_BUILDERS.append(build)
