"""Printed documents and print jobs."""

from typing import Any

from consult.consultations import meetings
from consult.core.models import utcnow
from consult.notices import pdf
from consult.notices.models import PrintKind
from consult.process import printing
from tests import factories
from tests.access import EDITORS, EVERYONE, EXPECTED, WORLD_BUILDERS

EXPECTED.update({
    "notices.pdf": ("GET", EVERYONE),
    "notices.minutes": ("GET", EVERYONE),
    "notices.issue_vote_notice": ("POST", EDITORS),
    "notices.print_batch": ("POST", EDITORS),
    "notices.print_job": ("GET", EDITORS),
    "notices.print_file": ("GET", EDITORS),
})


def build(world: dict[str, Any]) -> None:
    """A soliciting consultation with a meeting and a finished print job of opinion forms."""
    c = factories.make_consultation(world["compound"], stage="soliciting")
    meetings.record(None, c, meetings.meeting_data(
        held_at_local=utcnow().replace(tzinfo=None), place="会议室", attendees={},
        minutes="纪要", decisions=""))
    # A finished job without rendering: this matrix is about who gets in (test_pdf renders).
    job = printing.request_job(None, c, PrintKind.SOLICITATION)
    job.status = "done"
    path = pdf.job_path(job.id)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"%PDF-1.7\n%%EOF\n")
    world.setdefault("kind", "solicitation")
    world["job_id"] = job.id
    # notices.minutes and print_batch use the world's consultation: give it a meeting too.
    from consult.consultations.models import Consultation
    from consult.extensions import db

    shared = db.session.get(Consultation, world["consultation_id"])
    meetings.record(None, shared, meetings.meeting_data(
        held_at_local=utcnow().replace(tzinfo=None), place="会议室", attendees={},
        minutes="纪要", decisions=""))


WORLD_BUILDERS.append(build)
