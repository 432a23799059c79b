"""The notice-board poster of a consultation (the WeChat message is on its page)."""

from __future__ import annotations

from flask import Blueprint
from werkzeug.wrappers import Response

from consult.core.policy import require
from consult.notices import render_slots
from consult.notices.views import _disposition, _printers_busy, pdf_response
from consult.process import loading, reminders

bp = Blueprint("reminders", __name__, url_prefix="/consultations")
# Every layout slot taken: the same "come back in a few seconds" page as for the notices.
bp.register_error_handler(render_slots.PrintersBusy, _printers_busy)

# What the poster says follows the stage and its deadline: browsers ask again each time (a 304
# when it is unchanged), and no shared cache keeps a staff member's download.
POSTER_CACHE_CONTROL = "private, no-cache"


@bp.get("/<int:consultation_id>/poster.pdf")
@require("consultation.remind")
def poster(consultation_id: int) -> Response:
    """An A4 poster for the notice board, with a large QR code to where households take part,
    offered as a download."""
    consultation = loading.load(consultation_id)
    response = pdf_response(reminders.poster_file(consultation),
                            reminders.poster_file_name(consultation),
                            f"poster-{consultation.id}.pdf", POSTER_CACHE_CONTROL)
    response.headers["Content-Disposition"] = _disposition(
        "attachment", reminders.poster_file_name(consultation), f"poster-{consultation.id}.pdf")
    return response
