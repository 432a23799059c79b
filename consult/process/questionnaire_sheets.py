"""The printed A4 questionnaire sheets: one page per household, with its building, unit and
room, each question with boxes to tick (or lines to write on), and a QR code that opens the
household's paper-entry page for the staff who type the sheet in."""

from __future__ import annotations

from collections.abc import Sequence

from flask_babel import force_locale
from flask_babel import gettext as _

from consult.consultations import questionnaires
from consult.consultations.questionnaire_models import Questionnaire
from consult.notices import pdf
from consult.process.printing import document_language, link
from consult.registry.models import Household


def file_name(questionnaire: Questionnaire, suffix: str) -> str:
    """The download's name, in the consultation's language ("问卷-3-1号楼.pdf")."""
    with force_locale(questionnaire.consultation.locale):
        title = _("Questionnaire")
    return f"{title}-{questionnaire.consultation_id}-{suffix}.pdf"


def sheets_pdf(questionnaire: Questionnaire, households: Sequence[Household]) -> bytes:
    """One page per household, in the consultation's language."""
    consultation = questionnaire.consultation
    with document_language(consultation.locale):
        sheets = [{
            "label": household.label,
            "serial": f"{consultation.id}-Q-{household.id:06d}",
            "qr_url": link("consultations.questionnaire_paper", consultation_id=consultation.id,
                           household_id=household.id),
        } for household in households]
        return pdf.render(
            "questionnaires/sheets_pdf.html", consultation.locale, c=consultation,
            questionnaire=questionnaire, sheets=sheets, qr_svg=pdf.qr_svg,
            questions=questionnaires.questions_for_sheet(questionnaire),
            running_header=f"{consultation.compound.name} · {consultation.title}")
