"""Defect feedback: households, supervisors and grid workers report; a report's page is its
household's and its compound's staff's; the committee handles reports and sets the warranty;
the list per compound is public."""

from typing import Any

from consult.uploads import service as uploads
from consult.uploads.models import Visibility
from tests import factories
from tests.access import EDITORS, EVERYONE, EXPECTED, READERS, STAFF_ROLE, WORLD_BUILDERS
from tests.access.uploads import png_upload

# Who may see a report: its household (the signed-in resident's) and the compound's staff.
REPORT_READERS = READERS | {"resident"}

EXPECTED.update({
    # A household for itself, a supervisor or a grid worker of the compound (for a household).
    "feedback.new": ("GET", frozenset({"resident", "supervisor", "grid_worker"})),
    "feedback.show": ("GET", REPORT_READERS),
    # Reaching the step form needs the report's page; which step is whose is the service's
    # check (tests/feedback/test_rules.py).
    "feedback.move": ("POST", REPORT_READERS),
    "feedback.photo": ("GET", REPORT_READERS),
    # Filtered to one's compounds: every staff role opens it.
    "feedback.index": ("GET", STAFF_ROLE),
    "feedback.public": ("GET", EVERYONE),
    "feedback.warranty": ("GET", EDITORS),
})


def build(world: dict[str, Any]) -> None:
    """A report by the signed-in resident's household on a consultation whose result is out."""
    from consult.core.models import utcnow
    from consult.extensions import db
    from consult.feedback.models import DefectReport

    consultation = factories.make_consultation(world["compound"], stage="result_public")
    item = consultation.items[0]
    item.completed_at = utcnow()
    household = world["household"]
    report = DefectReport(consultation_id=consultation.id, item_id=item.id,
                          building_id=household.building_id, household_id=household.id,
                          reporter_role="resident", text="路灯不亮", state="open")
    report.photos.append(uploads.store(None, png_upload(), consultation=consultation,
                                       visibility=Visibility.STAFF))
    db.session.add(report)
    db.session.flush()
    world["report_id"] = report.id
    world["photo_id"] = report.photos[0].id


WORLD_BUILDERS.append(build)
