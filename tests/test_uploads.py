import io
from datetime import datetime
from typing import Any

from consult.uploads import service as uploads
from tests import factories
from tests.access.uploads import png_upload


def test_photos_are_re_encoded_without_metadata(compound):
    from PIL import Image

    c = factories.make_consultation(compound, stage="discussing")
    buffer = io.BytesIO()
    exif = Image.Exif()
    exif[0x010F] = "PhoneMaker"  # camera make; GPS would be stripped the same way
    Image.new("RGB", (3000, 2000), "blue").save(buffer, format="JPEG", exif=exif)
    buffer.seek(0)
    from werkzeug.datastructures import FileStorage

    stored = uploads.store(None, FileStorage(buffer, "IMG_0001.JPG"), consultation=c,
                           images_only=True)
    data = uploads.read(stored)
    with Image.open(io.BytesIO(data)) as image:
        assert max(image.size) == 2400 and not image.getexif()
    assert stored.mimetype == "image/jpeg" and b"PhoneMaker" not in data


def test_files_of_a_draft_stay_hidden_until_it_is_published(client, login_as, compound):
    draft = factories.make_consultation(compound)
    attachment = uploads.store(None, png_upload(), consultation=draft)
    assert client.get(f"/files/{attachment.id}").status_code == 404
    draft.stage = "soliciting"
    assert client.get(f"/files/{attachment.id}").status_code == 200


def test_file_responses_cannot_be_sniffed_into_html(client, compound):
    c = factories.make_consultation(compound, stage="discussing")
    attachment = uploads.store(None, png_upload(), consultation=c)
    r = client.get(f"/files/{attachment.id}")
    assert r.headers["X-Content-Type-Options"] == "nosniff"
    assert r.mimetype == "image/jpeg"


def _pdf_upload(name: str) -> Any:
    from pypdf import PdfWriter
    from werkzeug.datastructures import FileStorage

    buffer = io.BytesIO()
    writer = PdfWriter()
    writer.add_blank_page(width=595, height=842)
    writer.write(buffer)
    buffer.seek(0)
    return FileStorage(buffer, name, content_type="application/pdf")


SANDBOX = "default-src 'none'; sandbox; frame-ancestors 'none'"


def test_an_uploaded_pdf_is_a_download_that_can_run_nothing_on_our_site(client, compound):
    """A crafted PDF (scripts, forms, links) must not open in the browser as a page of the
    site: it is a download, under a policy that lets nothing in it run."""
    c = factories.make_consultation(compound, stage="discussing")
    pdf = uploads.store(None, _pdf_upload("会议纪要.pdf"), consultation=c)
    r = client.get(f"/files/{pdf.id}")
    assert r.status_code == 200 and r.mimetype == "application/pdf"
    assert r.headers["Content-Disposition"] == (
        f"attachment; filename=\"file-{pdf.id}.pdf\"; "
        "filename*=UTF-8''%E4%BC%9A%E8%AE%AE%E7%BA%AA%E8%A6%81.pdf")
    assert r.headers["Content-Security-Policy"] == SANDBOX
    assert r.headers["X-Content-Type-Options"] == "nosniff"


def test_photos_stay_inline_but_under_the_same_policy(client, compound):
    c = factories.make_consultation(compound, stage="discussing")
    photo = uploads.store(None, png_upload('"><b>x.png'), consultation=c)
    r = client.get(f"/files/{photo.id}")
    assert r.headers["Content-Disposition"].startswith(f'inline; filename="file-{photo.id}.jpg";')
    assert "%22%3E%3Cb%3Ex.jpg" in r.headers["Content-Disposition"]  # the name cannot break out
    assert r.headers["Content-Security-Policy"] == SANDBOX
    assert r.headers["X-Content-Type-Options"] == "nosniff"


def test_a_staff_only_file_is_kept_out_of_caches(client, login_as, compound):
    from consult.uploads.models import Visibility

    c = factories.make_consultation(compound, stage="voting")
    document = uploads.store(None, _pdf_upload("委托书.pdf"), consultation=c,
                             visibility=Visibility.STAFF)
    login_as("committee", compound=compound)
    r = client.get(f"/files/{document.id}")
    assert r.status_code == 200 and r.headers["Cache-Control"] == "no-store"
    assert r.headers["Content-Disposition"].startswith("attachment;")


def test_the_meeting_page_offers_its_pdfs_as_downloads(client, compound):
    from consult.consultations import meetings

    c = factories.make_consultation(compound, stage="discussing")
    meeting = meetings.record(None, c, meetings.meeting_data(
        held_at_local=datetime(2026, 3, 5, 19, 30), place="会议室", attendees={},
        minutes="", decisions=""), [_pdf_upload("纪要.pdf"), png_upload()])
    page = client.get(f"/consultations/{c.id}/meetings/{meeting.id}",
                      headers={"Accept-Language": "en"}).text
    pdf = next(a for a in meeting.attachments if a.mimetype == "application/pdf")
    assert f'href="/files/{pdf.id}" download>PDF · 纪要.pdf' in page and "(download)" in page
    assert "<embed" not in page and "<iframe" not in page and "<object" not in page
