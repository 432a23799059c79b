"""``flask consultations …``: what moves consultations on without anybody clicking."""

from __future__ import annotations

from flask.cli import AppGroup
from flask_babel import ngettext

from consult.core.commands import transactional
from consult.process import workflow

group = AppGroup("consultations", help="Consultations and their stages.")


@group.command("close-expired")
@transactional
def close_expired_command() -> list[str]:
    """Apply passed deadlines (close solicitations and votes); run it from cron."""
    done = workflow.close_expired()
    return [*(f"{consultation_id}: {action.value}" for consultation_id, action in done),
            ngettext("%(num)s consultation updated.", "%(num)s consultations updated.",
                     len(done))]
