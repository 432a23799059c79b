"""Meeting records: times in Beijing time, attendees by role, Markdown, attachments."""

import io
import json
from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select
from werkzeug.datastructures import FileStorage

from consult.consultations import meetings
from consult.consultations.models import Meeting
from consult.core.errors import Conflict, ValidationFailed
from consult.extensions import db
from consult.uploads.models import Attachment
from tests import factories
from tests.access.uploads import png_upload
from tests.conftest import audit_actions

EN = {"Accept-Language": "en"}


def _count(model) -> int:
    return db.session.scalar(select(func.count()).select_from(model)) or 0


def _pdf(name: str = "纪要.pdf") -> FileStorage:
    """A real one-page PDF: uploads open PDFs to check them, a header alone is refused."""
    from pypdf import PdfWriter

    buffer = io.BytesIO()
    writer = PdfWriter()
    writer.add_blank_page(width=595, height=842)
    writer.write(buffer)
    buffer.seek(0)
    return FileStorage(buffer, name, content_type="application/pdf")


def _data(**overrides):
    values = {"held_at_local": datetime(2026, 3, 5, 19, 30), "place": "居委会会议室",
              "attendees": {"community": "社区书记", "representatives": "3号楼 张三等5人"},
              "minutes": "讨论了**管道**改造", "decisions": "- 同意分两期施工"}
    values.update(overrides)
    return meetings.meeting_data(**values)


@pytest.fixture
def discussing(compound):
    return factories.make_consultation(compound, stage="discussing")


def test_time_is_entered_in_beijing_and_stored_in_utc(discussing):
    meeting = meetings.record(None, discussing, _data())
    assert meeting.held_at == datetime(2026, 3, 5, 11, 30, tzinfo=UTC)
    assert json.loads(meeting.attendees_json) == {"community": "社区书记",
                                                  "representatives": "3号楼 张三等5人"}
    assert [label for label, _names in meetings.attendees_of(meeting)] == [
        "Community (社区)", "Resident representatives"]
    assert audit_actions() == ["meeting.recorded"]


def test_meeting_data_reports_every_field():
    with pytest.raises(ValidationFailed) as exc:
        meetings.meeting_data(held_at_local=None, place=" ", attendees={"others": "x" * 1001},
                              minutes="", decisions="")
    assert set(exc.value.errors) == {"held_at", "place", "others"}


@pytest.mark.parametrize("stage", ["closed", "withdrawn"])
def test_no_records_once_closed_or_withdrawn(compound, stage):
    consultation = factories.make_consultation(compound, stage=stage)
    with pytest.raises(Conflict):
        meetings.record(None, consultation, _data())
    assert _count(Meeting) == 0 and audit_actions() == []


def test_update_records_changes_without_copying_names(discussing):
    meeting = meetings.record(None, discussing, _data(), [png_upload()])
    photo = meeting.attachments[0]
    meetings.update(None, meeting, _data(place="小区广场", attendees={"others": "李四"}),
                    [_pdf()], [photo.id])
    assert meeting.place == "小区广场"
    assert [a.mimetype for a in meeting.attachments] == ["application/pdf"]
    assert audit_actions() == ["meeting.recorded", "meeting.updated"]
    from consult.audit.models import AuditEvent

    payload = db.session.scalars(select(AuditEvent.payload).where(
        AuditEvent.action == "meeting.updated")).one()
    assert "李四" not in payload and "张三" not in payload and "小区广场" in payload
    with pytest.raises(ValidationFailed):
        meetings.update(None, meeting, _data(), remove_ids=[999999])


def test_committee_records_a_meeting_with_attachments(client, login_as, discussing, compound):
    login_as("committee", compound=compound)
    r = client.post(f"/consultations/{discussing.id}/meetings/new", data={
        "held_at": "2026-03-05T19:30", "place": "<b>会议室</b>", "community": "社区",
        "committee": "业委会主任", "representatives": "", "contractors": "施工方",
        "others": "", "minutes": "## 议程\n<script>x()</script>", "decisions": "**同意**",
        "files": [png_upload(), _pdf()]}, content_type="multipart/form-data")
    assert r.status_code == 302, r.text
    meeting = db.session.scalars(select(Meeting)).one()
    assert meeting.held_at == datetime(2026, 3, 5, 11, 30, tzinfo=UTC)
    assert sorted(a.mimetype for a in meeting.attachments) == ["application/pdf", "image/jpeg"]
    assert all(a.visibility == "public" for a in meeting.attachments)
    client.post("/logout")
    page = client.get(f"/consultations/{discussing.id}/meetings/{meeting.id}", headers=EN).text
    assert "&lt;b&gt;会议室&lt;/b&gt;" in page and "<script>x()</script>" not in page
    assert "<strong>同意</strong>" in page and "19:30" in page
    assert "施工方" in page
    listing = client.get(f"/consultations/{discussing.id}/meetings").text
    assert f"/meetings/{meeting.id}" in listing


def test_a_bad_attachment_stores_nothing(client, login_as, discussing, compound):
    login_as("committee", compound=compound)
    r = client.post(f"/consultations/{discussing.id}/meetings/new", data={
        "held_at": "2026-03-05T19:30", "place": "会议室",
        "files": [png_upload(), FileStorage(io.BytesIO(b"PK\x03\x04zip"), "x.docx")]},
        content_type="multipart/form-data", headers=EN)
    assert r.status_code == 400 and "x.docx" in r.text
    assert _count(Meeting) == 0 and _count(Attachment) == 0 and audit_actions() == []


def test_missing_time_is_shown_next_to_the_field(client, login_as, discussing, compound):
    login_as("committee", compound=compound)
    r = client.post(f"/consultations/{discussing.id}/meetings/new",
                    data={"held_at": "", "place": ""}, headers=EN)
    assert r.status_code == 400 and 'id="held_at-error"' in r.text and 'id="place-error"' in r.text
    assert _count(Meeting) == 0


def test_edit_shows_beijing_time_and_saves(client, login_as, discussing, compound):
    meeting = meetings.record(None, discussing, _data())
    login_as("committee", compound=compound)
    url = f"/consultations/{discussing.id}/meetings/{meeting.id}/edit"
    form = client.get(url).text
    assert 'value="2026-03-05T19:30"' in form and "社区书记" in form
    r = client.post(url, data={"held_at": "2026-03-06T09:00", "place": "广场",
                               "community": "社区书记"})
    assert r.status_code == 302
    assert meeting.held_at == datetime(2026, 3, 6, 1, 0, tzinfo=UTC)
    assert json.loads(meeting.attendees_json) == {"community": "社区书记"}
    assert audit_actions() == ["meeting.recorded", "meeting.updated"]


def test_withdrawn_consultation_refuses_new_meetings(client, login_as, compound):
    consultation = factories.make_consultation(compound, stage="withdrawn")
    login_as("committee", compound=compound)
    r = client.post(f"/consultations/{consultation.id}/meetings/new",
                    data={"held_at": "2026-03-05T19:30", "place": "会议室"}, headers=EN)
    assert r.status_code == 409 and _count(Meeting) == 0


def test_meeting_of_another_consultation_is_not_found(client, login_as, discussing, compound):
    other = factories.make_consultation(compound, stage="discussing")
    meeting = meetings.record(None, other, _data())
    login_as("committee", compound=compound)
    assert client.get(f"/consultations/{discussing.id}/meetings/{meeting.id}").status_code == 404
    r = client.post(f"/consultations/{discussing.id}/meetings/{meeting.id}/edit",
                    data={"held_at": "2026-03-06T09:00", "place": "x"})
    assert r.status_code == 404 and meeting.place == "居委会会议室"


def test_residents_read_but_do_not_record(client, login_as, discussing, compound):
    meeting = meetings.record(None, discussing, _data())
    login_as("resident", household=compound.buildings[0].households[0])
    assert client.get(f"/consultations/{discussing.id}/meetings/{meeting.id}").status_code == 200
    r = client.post(f"/consultations/{discussing.id}/meetings/new",
                    data={"held_at": "2026-03-05T19:30", "place": "x"})
    assert r.status_code == 403 and _count(Meeting) == 1


# Year 1 in Beijing is year 0 in UTC, which Python cannot hold; 9999 is no meeting either.
OUT_OF_RANGE = ["0001-01-01T00:00", "0001-01-01T07:59", "1999-12-31T23:59", "2101-01-01T00:00",
                "9999-12-31T23:59"]


@pytest.mark.parametrize("when", OUT_OF_RANGE)
def test_a_date_outside_2000_to_2100_is_an_error_at_the_field(client, login_as, discussing,
                                                              compound, when):
    login_as("committee", compound=compound)
    r = client.post(f"/consultations/{discussing.id}/meetings/new", data={
        "held_at": when, "place": "居委会会议室", "community": "社区书记",
        "minutes": "讨论了管道改造"}, headers=EN)
    assert r.status_code == 400
    assert 'id="held_at-error"' in r.text
    assert "Enter a date between the years 2000 and 2100." in r.text
    # Everything typed is still there, the date included, to be corrected.
    assert f'value="{when}"' in r.text and "居委会会议室" in r.text and "社区书记" in r.text
    assert "讨论了管道改造" in r.text
    assert _count(Meeting) == 0 and audit_actions() == []


def test_the_date_range_is_told_in_the_readers_language_and_to_the_date_picker(
        client, login_as, discussing, compound):
    meeting = meetings.record(None, discussing, _data())
    login_as("committee", compound=compound)
    url = f"/consultations/{discussing.id}/meetings/{meeting.id}/edit"
    form = client.get(url).text
    assert 'min="2000-01-01T00:00"' in form and 'max="2100-12-31T23:59"' in form
    r = client.post(url, data={"held_at": "0001-01-01T00:00", "place": "广场"},
                    headers={"Accept-Language": "zh-TW"})
    assert r.status_code == 400 and "請填寫 2000 年至 2100 年之間的日期。" in r.text
    assert meeting.held_at == datetime(2026, 3, 5, 11, 30, tzinfo=UTC)


def test_the_service_refuses_a_date_outside_the_range_too():
    with pytest.raises(ValidationFailed) as exc:
        _data(held_at_local=datetime(1, 1, 1, 7, 59))
    assert list(exc.value.errors) == ["held_at"]
