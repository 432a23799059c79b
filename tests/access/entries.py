"""The committee's entry of paper ballots: a household's ballot page, entries waiting and
their decision, corrections, written authorisations and the web import."""

from typing import Any

from consult.ballots import entries
from consult.ballots.models import BallotChannel
from consult.consultations.models import Consultation
from consult.extensions import db
from tests import factories
from tests.access import EDITORS, EXPECTED, READERS, WORLD_BUILDERS

EXPECTED.update({
    "ballots.household": ("GET", READERS),
    "ballots.authorise": ("POST", EDITORS),
    "ballots.waiting": ("GET", READERS),
    "ballots.decide": ("GET", EDITORS),
    "ballots.corrections": ("GET", READERS),
    "ballots.import_file": ("GET", EDITORS),
    "ballots.import_confirm": ("POST", EDITORS),
})


def build(world: dict[str, Any]) -> None:
    """In the world's open vote, entered twice: a paper ballot whose two entries differ (made
    by two members who are not the ones signing in), for the decision page."""
    consultation = db.session.get(Consultation, world["consultation_id"])
    assert consultation is not None and consultation.vote_opened_at is not None
    consultation.double_entry = True
    household = world["compound"].buildings[0].households[1]
    item = consultation.items[0]
    first, second = (factories.make_user("committee", compound=world["compound"])
                     for _ in range(2))
    lead = entries.enter(first, consultation, household,
                         entries.Paper(BallotChannel.PAPER, {item.id: "agree"}))
    entries.enter(second, consultation, household,
                  entries.Paper(BallotChannel.PAPER, {item.id: "disagree"}))
    world["entry_id"] = lead.id


WORLD_BUILDERS.append(build)
