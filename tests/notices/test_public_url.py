"""Every address printed on paper or shown for residents to type is the public one: PUBLIC_URL
when it is set, else the address the request came to (a print job keeps the one it was asked
from), else, for a command, the command line's address."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest

from consult.core.models import utcnow
from consult.notices import pdf
from consult.notices.models import PrintJob, PrintKind
from consult.process import printing
from tests import factories
from tests.notices.test_pdf import text_of

PUBLIC = "https://yishi.example.cn/consult"
INTRANET = "http://10.0.0.5:8000"
URL = re.compile(r"https?://[^\s<>\"'）)，。]+")


@pytest.fixture
def public_url(app, monkeypatch):
    monkeypatch.setitem(app.config, "PUBLIC_URL", PUBLIC)
    return PUBLIC


@pytest.fixture
def encoded(monkeypatch):
    """Every address put into a QR code, which the PDF's text does not show."""
    seen: list[str] = []
    real = pdf.qr_svg

    def recording(data: str, scale: int = 3):
        seen.append(data)
        return real(data, scale)

    monkeypatch.setattr(pdf, "qr_svg", recording)
    return seen


def vote_notice(compound):
    c = factories.make_consultation(compound, items=2)
    factories.walk_to(c, "discussing")
    c.vote_deadline = utcnow() + timedelta(days=10)
    return printing.issue_vote_notice(None, c)


def addresses(data: bytes) -> list[str]:
    # A long address may wrap at the end of a line; the PDF's text joins lines with "\n".
    return URL.findall(text_of(data).replace("\n", ""))


def test_every_url_in_a_printed_vote_notice_starts_with_public_url(
        client, login_as, compound, public_url, encoded):
    notice = vote_notice(compound)
    login_as("committee", compound=compound)
    # Printed from an office intranet address: the paper still sends residents to the site.
    r = client.get(f"/notices/{notice.id}.pdf", base_url=INTRANET)
    assert r.status_code == 200
    printed = addresses(r.data) + encoded
    assert any(u.endswith("/code") for u in printed)  # where to sign in with the letter's code
    assert any(f"/verify/{notice.verify_code}" in u for u in printed)
    assert printed and all(u.startswith(PUBLIC + "/") for u in printed), printed


def test_without_public_url_the_notice_shows_the_address_it_was_printed_from(
        client, login_as, compound, encoded):
    notice = vote_notice(compound)
    login_as("committee", compound=compound)
    r = client.get(f"/notices/{notice.id}.pdf", base_url=INTRANET)
    printed = addresses(r.data) + encoded
    assert f"{INTRANET}/code" in printed and f"{INTRANET}/verify/{notice.verify_code}" in printed
    assert all(u.startswith(INTRANET + "/") for u in printed), printed
    assert "127.0.0.1:5000" not in text_of(r.data)
    # The page shows the same address to type.
    page = client.get(f"/notices/{notice.id}", base_url=INTRANET).text
    assert f"{INTRANET}/code" in page and "127.0.0.1:5000" not in page


def test_a_print_job_keeps_the_address_it_was_asked_from(compound, encoded):
    c = factories.make_consultation(compound, stage="soliciting")
    job = printing.request_job(None, c, PrintKind.ACCESS_LETTERS)
    printing.run_job(job.id, INTRANET)  # in a worker: no request, no PUBLIC_URL
    from consult.extensions import db

    assert db.session.get(PrintJob, job.id).status == "done"
    assert encoded and all(u.startswith(INTRANET + "/code") for u in encoded), encoded


def test_a_command_prints_on_public_url_or_the_command_line_address(app, compound, encoded,
                                                                    monkeypatch):
    c = factories.make_consultation(compound, stage="soliciting")
    printing.render_kind(None, c, "access-letters")
    assert encoded and all(u.startswith(printing.COMMAND_LINE_URL + "/") for u in encoded)
    encoded.clear()
    monkeypatch.setitem(app.config, "PUBLIC_URL", PUBLIC + "/")  # a trailing slash is not doubled
    printing.render_kind(None, c, "access-letters")
    assert encoded and all(u.startswith(PUBLIC + "/code?") for u in encoded), encoded


def test_the_access_code_page_names_the_public_address(client, login_as, compound, public_url):
    household = compound.buildings[0].households[0]
    login_as("committee", compound=compound)
    r = client.post(f"/registry/households/{household.id}/access-code")
    assert r.status_code == 200
    assert f"{PUBLIC}/code" in r.text and "http://localhost/code" not in r.text
