"""The ranking notice of a scoring round as PDF, from its frozen content."""

from __future__ import annotations

import json

from flask_babel import force_locale
from flask_babel import gettext as _

from consult.notices import pdf
from consult.notices.models import NOTICE_KIND_LABELS, Notice, NoticeKind
from consult.process.printing import document_language, link


def ranking_file(notice: Notice) -> pdf.Stored:
    """A published ranking as PDF, in its own language, laid out once for its content."""
    content = json.loads(notice.content_json)
    with document_language(notice.locale):
        html = pdf.page_html(
            "scoring/pdf_ranking.html", notice.locale, notice=notice, content=content,
            qr_svg=pdf.qr_svg, running_header=content["round"]["name"],
            running_right=_("Verification code %(code)s", code=notice.verify_code),
            verify_url=link("notices.verify", code=notice.verify_code))
    return pdf.render_stored(f"notice-{notice.id}", html)


def ranking_file_name(notice: Notice) -> str:
    """The name the ranking is downloaded under, in its own language."""
    with force_locale(notice.locale):
        return f"{NOTICE_KIND_LABELS[NoticeKind.RANKING]}-{notice.verify_code}.pdf"
