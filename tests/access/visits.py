"""Door-to-door follow-up: visit lists, their split, printed sheets and each visit's page."""

from typing import Any

from consult.ballots import visits
from consult.consultations.models import Consultation
from consult.extensions import db
from tests.access import EDITORS, EXPECTED, RECORDERS, WORLD_BUILDERS

# Committee members in scope and administrators make the lists; they and the grid workers of
# the compound's grid read them and record visits. Supervisors and residents see none.
EXPECTED.update({
    "ballots.visits_index": ("GET", RECORDERS),
    "ballots.visits_new": ("GET", EDITORS),
    "ballots.visit_list": ("GET", RECORDERS),
    "ballots.visit_sheets_pdf": ("GET", RECORDERS),
    "ballots.visit": ("GET", RECORDERS),
})


def build(world: dict[str, Any]) -> None:
    """A visit list of the world's open vote (every household without a ballot), two teams."""
    consultation = db.session.get(Consultation, world["consultation_id"])
    assert consultation is not None and consultation.vote_is_open()
    planned = visits.plan(consultation, [visits.NOT_VOTED], None, "一组: 甲\n二组: 乙", "count")
    visit_list = visits.create_list(None, consultation, planned)
    world["visit_list_id"] = visit_list.id
    world["visit_id"] = visits.rows(visit_list)[0].visit.id


WORLD_BUILDERS.append(build)
