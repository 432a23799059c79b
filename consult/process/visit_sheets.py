"""The printed A4 visit sheets of a follow-up list (再入户): one page (or more) per team,
in the consultation's language, each household with its address, area, why it is visited,
what is needed, boxes for the outcome and a QR code that opens its visit page."""

from __future__ import annotations

from flask_babel import force_locale
from flask_babel import gettext as _

from consult.ballots import service as ballots
from consult.ballots import visits
from consult.ballots.explain import CHOICE_LABELS
from consult.ballots.models import VISIT_OUTCOME_LABELS, BallotChannel, VisitList, VisitTeam
from consult.notices import pdf
from consult.process.printing import document_language, link
from consult.registry.models import household_label


def file_name(visit_list: VisitList, team: VisitTeam | None = None) -> str:
    """The download's name, in the consultation's language ("入户走访表-3-第一组.pdf")."""
    with force_locale(visit_list.consultation.locale):
        title = _("Visit sheets")
    suffix = f"-{team.position}" if team is not None else ""
    return f"{title}-{visit_list.id}{suffix}.pdf"


def sheets_pdf(visit_list: VisitList, team: VisitTeam | None = None) -> bytes:
    """Every team's sheet (or only ``team``'s), each team starting on a new page."""
    consultation = visit_list.consultation
    teams = [team] if team is not None else list(visit_list.teams)
    with document_language(consultation.locale):
        pages = []
        for each in teams:
            rows = visits.rows(visit_list, each)
            pages.append({
                "team": each,
                "rows": [{
                    "label": household_label(row.roll.building_name, row.roll.unit,
                                             row.roll.room),
                    "area_dm2": row.roll.area_dm2,
                    "reasons": [str(visits.REASON_LABELS[r]) for r in row.reasons],
                    "needs": [str(visits.REASON_NEEDS[r]) for r in row.reasons],
                    "qr_url": link("ballots.visit", consultation_id=consultation.id,
                                   visit_list_id=visit_list.id, visit_id=row.visit.id),
                } for row in rows],
                "area_dm2": sum(row.roll.area_dm2 for row in rows)})
        html_context = {
            "c": consultation, "visit_list": visit_list, "pages": pages,
            "qr_svg": pdf.qr_svg,
            "outcomes": [str(label) for label in VISIT_OUTCOME_LABELS.values()],
            "choices": [str(CHOICE_LABELS[c]) for c in
                        ballots.allowed_choices(consultation, BallotChannel.DOOR_TO_DOOR)],
            "running_header": f"{consultation.compound.name} · {consultation.title}",
        }
        return pdf.render("pdf/visit_sheets.html", consultation.locale, **html_context)
