"""Printed notices and minutes are laid out once per content and then served from a file;
layouts on a host take one of a few slots, and a request that finds none is told to retry."""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import quote

import pytest

from consult.consultations import meetings
from consult.consultations.states import Action
from consult.core.models import utcnow
from consult.implementation import service as works
from consult.notices import pdf, pdf_cache, render_slots
from consult.notices import service as notices
from consult.notices.models import NoticeKind
from consult.process import printing, workflow
from tests import factories
from tests.notices.test_pdf import text_of

EN = {"Accept-Language": "en"}


@pytest.fixture
def storage(app, tmp_path, monkeypatch) -> Path:
    """A cache and slot folder of this test's own; one layout slot, one waiting place."""
    monkeypatch.setitem(app.config, "UPLOAD_PATH", str(tmp_path / "uploads"))
    monkeypatch.setitem(app.config, "PDF_RENDER_LOCK_DIR", str(tmp_path / "locks"))
    monkeypatch.setitem(app.config, "PDF_RENDER_SLOTS", 1)
    monkeypatch.setitem(app.config, "PDF_RENDER_WAITING", 1)
    monkeypatch.setitem(app.config, "PDF_RENDER_WAIT_SECONDS", 5)
    # A deployment that names its public address prints the same paper from any address.
    monkeypatch.setitem(app.config, "PUBLIC_URL", "https://yishi.example.cn")
    return tmp_path / "uploads" / "print" / "cache"


@pytest.fixture
def layouts(monkeypatch) -> list[str]:
    """Every HTML page WeasyPrint lays out, in order."""
    seen: list[str] = []
    real = pdf._layout

    def counting(html: str):
        seen.append(html)
        return real(html)

    monkeypatch.setattr(pdf, "_layout", counting)
    return seen


def stored_files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def resolution_notice(compound):
    c = factories.make_consultation(compound, items=1)
    factories.walk_to(c, "resolution_public")
    return notices.current_notice(c, NoticeKind.RESOLUTION)


def result_notice(compound):
    c = factories.make_consultation(compound, items=1)
    now = factories.walk_to(c, "implementing")
    works.add_progress(None, c, works.progress_data(item_id=None, percent=100, spend="950",
                                                    note="完工", is_final=True), [], now=now)
    works.complete_item(None, c.items[0], 95_000, "验收通过", now=now)
    workflow.apply(c, Action.PUBLISH_RESULT, None, now=now)
    return notices.current_notice(c, NoticeKind.RESULT), now


def test_a_notice_is_laid_out_once_then_served_from_its_file(client, compound, storage,
                                                            layouts):
    notice = resolution_notice(compound)
    first = client.get(f"/notices/{notice.id}.pdf")
    second = client.get(f"/notices/{notice.id}.pdf", base_url="http://10.0.0.5:8000")
    assert first.status_code == second.status_code == 200
    third = client.get(f"/notices/{notice.id}.pdf?lang=en&nonce=1", headers=EN)
    assert len(layouts) == 1  # another address, language or query: the same notice
    assert first.data == second.data == third.data
    assert "决议公示" in text_of(second.data)
    assert second.headers["Content-Disposition"] == (
        f'inline; filename="notice-{notice.verify_code}.pdf"; '
        f"filename*=UTF-8''{quote(f'决议公示-{notice.verify_code}.pdf')}")
    assert second.headers["Cache-Control"] == "public, max-age=3600"
    assert second.headers["Accept-Ranges"] == "bytes"
    [name] = stored_files(storage)
    assert re.fullmatch(rf"notice-{notice.id}-[0-9a-f]{{64}}\.pdf", name)
    assert (storage / name).read_bytes() == first.data

    # A browser that has it already is told so; a reader fetching pieces gets the piece.
    etag = second.headers["ETag"]
    assert etag.startswith('W/"')
    again = client.get(f"/notices/{notice.id}.pdf", headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.data == b""
    piece = client.get(f"/notices/{notice.id}.pdf", headers={"Range": "bytes=0-4"})
    assert piece.status_code == 206 and piece.data == b"%PDF-"
    assert len(layouts) == 1
    assert printing.notice_pdf(notice) == first.data  # the command prints the same file


def test_only_cookie_free_notice_responses_may_be_kept_by_shared_caches(client, login_as,
                                                                        compound, storage):
    """A proxy that kept a committee member's response could hand their session cookie to
    the next reader."""
    notice = resolution_notice(compound)
    anonymous = client.get(f"/notices/{notice.id}.pdf")
    assert anonymous.headers["Cache-Control"] == "public, max-age=3600"
    assert not anonymous.headers.getlist("Set-Cookie")
    in_english = client.get(f"/notices/{notice.id}.pdf?lang=en")
    assert in_english.headers.getlist("Set-Cookie")  # the language is remembered
    assert in_english.headers["Cache-Control"] == "private, max-age=3600"
    login_as("committee", compound=compound)
    member = client.get(f"/notices/{notice.id}.pdf")
    assert member.headers.getlist("Set-Cookie")
    assert member.headers["Cache-Control"] == "private, max-age=3600"
    assert member.data == anonymous.data


def test_a_result_notice_is_laid_out_again_when_its_evaluation_changes(client, compound,
                                                                      storage, layouts):
    notice, now = result_notice(compound)
    households = compound.buildings[0].households
    before = client.get(f"/notices/{notice.id}.pdf")
    assert client.get(f"/notices/{notice.id}.pdf").data == before.data
    assert len(layouts) == 1
    assert before.headers["Cache-Control"] == "public, max-age=300"  # the tally moves

    works.evaluate(None, notice.consultation, households[0], "satisfied", now=now)
    after = client.get(f"/notices/{notice.id}.pdf")
    assert len(layouts) == 2 and after.data != before.data
    text = text_of(after.data)
    assert "1/8" in text or re.search(r"8\s*户中已有\s*1\s*户", text), text
    assert after.headers["ETag"] != before.headers["ETag"]
    works.evaluate(None, notice.consultation, households[0], "dissatisfied", now=now)
    client.get(f"/notices/{notice.id}.pdf")
    assert len(layouts) == 3  # the same number of ratings, another rating

    # The superseded copies go once a newer one has been up for a minute (a response may
    # still be sending them); until then they stay.
    assert len(stored_files(storage)) == 3
    for path in storage.iterdir():
        os.utime(path, (path.stat().st_mtime - 120,) * 2)
    works.evaluate(None, notice.consultation, households[1], "satisfied", now=now)
    latest = client.get(f"/notices/{notice.id}.pdf")
    assert len(stored_files(storage)) == 2  # the newest and the one it follows
    assert (storage / stored_files(storage)[0]).exists()
    assert latest.data in [(storage / n).read_bytes() for n in stored_files(storage)]


def test_the_evaluation_is_dated_by_the_day_until_the_period_ends(compound, storage,
                                                                  layouts, monkeypatch):
    """A time of printing on the notice would make every copy a new document."""
    notice, _ = result_notice(compound)
    morning = datetime(2026, 12, 3, 1, 0, tzinfo=UTC)  # 09:00 in Beijing
    for moment in (morning, morning + timedelta(hours=12)):  # 21:00, the same day
        monkeypatch.setattr(printing, "utcnow", lambda moment=moment: moment)
        text = text_of(printing.notice_pdf(notice))
    assert len(layouts) == 1
    assert "截至2026年12月3日" in text.replace(" ", "")
    monkeypatch.setattr(printing, "utcnow", lambda: morning + timedelta(hours=16))  # next day
    assert "截至2026年12月4日" in text_of(printing.notice_pdf(notice)).replace(" ", "")
    assert len(layouts) == 2

    # After the publicity period nobody can rate: the tally is dated by its end, for good.
    ended = notice.period_ends_at
    for later in (ended + timedelta(days=1), ended + timedelta(days=30)):
        monkeypatch.setattr(printing, "utcnow", lambda later=later: later)
        text = text_of(printing.notice_pdf(notice)).replace(" ", "")
    assert len(layouts) == 3
    assert f"截至{ended.year}年{(ended + timedelta(hours=8)).month}月" in text


def test_minutes_are_laid_out_again_after_a_meeting_changes(client, compound, storage,
                                                           layouts):
    c = factories.make_consultation(compound, stage="soliciting")
    data = {"held_at_local": datetime(2026, 3, 5, 19, 30), "place": "社区会议室",
            "attendees": {"community": "李书记"}, "minutes": "讨论充电桩位置", "decisions": "同意"}
    meeting = meetings.record(None, c, meetings.meeting_data(**data))
    first = client.get(f"/consultations/{c.id}/minutes.pdf")
    assert client.get(f"/consultations/{c.id}/minutes.pdf").data == first.data
    assert len(layouts) == 1
    assert first.headers["Cache-Control"] == "private, no-cache"
    assert first.headers["Content-Disposition"] == (
        f'inline; filename="minutes-{c.id}.pdf"; '
        f"filename*=UTF-8''{quote(f'会议纪要-{c.id}.pdf')}")

    meetings.update(None, meeting, meetings.meeting_data(**{**data, "decisions": "同意，下周施工"}))
    edited = client.get(f"/consultations/{c.id}/minutes.pdf")
    assert len(layouts) == 2 and "下周施工" in text_of(edited.data)
    meetings.record(None, c, meetings.meeting_data(**{
        **data, "held_at_local": datetime(2026, 3, 12, 19, 30), "minutes": "第二次会议"}))
    assert "第二次会议" in text_of(client.get(f"/consultations/{c.id}/minutes.pdf").data)
    assert len(layouts) == 3


def test_a_refused_layout_keeps_nothing_and_a_later_good_one_is_kept(client, compound,
                                                                     storage, monkeypatch):
    """A box that could not be spelled out (WeasyPrint did not say which character) refuses
    the notice; the refusal must not be stored as the notice, and nothing of it stays
    behind."""
    notice = resolution_notice(compound)
    real, seen = pdf._layout, []

    def missing_glyph_once(html: str):
        seen.append(html)
        document = real(html)
        if len(seen) == 1:  # a box, with no code point to spell out
            logging.getLogger("weasyprint").warning(".notdef glyph rendered for a character")
        return document

    monkeypatch.setattr(pdf, "_layout", missing_glyph_once)
    refused = client.get(f"/notices/{notice.id}.pdf", headers=EN)
    assert refused.status_code == 503 and "cannot be printed" in refused.text
    assert stored_files(storage) == []
    assert client.get(f"/notices/{notice.id}.pdf").status_code == 200
    assert client.get(f"/notices/{notice.id}.pdf").status_code == 200
    assert len(seen) == 2 and len(stored_files(storage)) == 1


def test_a_character_no_font_has_is_stored_spelled_out(compound, storage, layouts,
                                                       monkeypatch):
    """The first print of a character no font has lays out twice (the second time with its
    name); the stored copy is the spelled-out one, and is served from then on."""
    monkeypatch.setattr(pdf, "_UNPRINTABLE", set())  # as in a process that never met it
    c = factories.make_consultation(compound, items=1)
    c.items[0].title = "𓀀 象形文字"  # outside every installed font
    factories.walk_to(c, "discussing")
    c.vote_deadline = utcnow() + timedelta(days=5)
    notice = printing.issue_vote_notice(None, c)
    first = printing.notice_pdf(notice)
    assert "[EGYPTIAN HIEROGLYPH A001] 象形文字" in text_of(first)
    assert len(layouts) == 2 and len(stored_files(storage)) == 1
    assert printing.notice_pdf(notice) == first and len(layouts) == 2


def test_every_slot_taken_is_answered_with_503_and_retry_after(client, app, compound, storage,
                                                               layouts):
    notice = resolution_notice(compound)
    kept = resolution_notice(compound)
    client.get(f"/notices/{kept.id}.pdf")  # laid out before the rush
    assert len(layouts) == 1
    with render_slots.layout_slot():  # another request is laying out
        with waiting_place():
            busy = client.get(f"/notices/{notice.id}.pdf", headers=EN)
            chinese = client.get(f"/notices/{notice.id}.pdf")
            as_json = client.get(f"/notices/{notice.id}.pdf",
                                 headers={"Accept": "application/json"})
        served = client.get(f"/notices/{kept.id}.pdf")  # a stored notice needs no slot
    assert busy.status_code == 503 and busy.headers["Retry-After"] == "5"
    assert "try again in a few seconds" in busy.text and busy.headers["Cache-Control"] == "no-store"
    assert chinese.status_code == 503 and "请过几秒钟再试" in chinese.text
    assert 'http-equiv="refresh" content="5"' in chinese.text  # it tries again by itself
    assert f'href="/notices/{notice.id}.pdf"' in chinese.text
    assert as_json.status_code == 503 and as_json.headers["Retry-After"] == "5"
    assert as_json.json["error"]["status"] == 503
    assert served.status_code == 200 and len(layouts) == 1
    assert len(stored_files(storage)) == 1  # nothing of the refused requests

    app.config["PDF_RENDER_WAIT_SECONDS"] = 0  # no waiting at all: a taken slot is enough
    with render_slots.layout_slot():
        assert client.get(f"/notices/{notice.id}.pdf").status_code == 503
    assert client.get(f"/notices/{notice.id}.pdf").status_code == 200  # once free, printed
    assert len(layouts) == 2


@contextmanager
def waiting_place() -> Iterator[None]:
    """Take the one waiting place too, as a second request would."""
    handle = render_slots._take_one(render_slots.lock_folder(), "waiting", 1)
    assert handle is not None
    try:
        yield
    finally:
        os.close(handle)


def test_a_waiting_request_lays_out_when_the_slot_frees(client, compound, storage, layouts,
                                                        monkeypatch):
    notice = resolution_notice(compound)
    holder = render_slots.layout_slot()
    holder.__enter__()
    waited = []

    def other_layout_finishes(seconds: float) -> None:  # instead of sleeping
        waited.append(seconds)
        if len(waited) == 3:
            holder.__exit__(None, None, None)

    monkeypatch.setattr(render_slots.time, "sleep", other_layout_finishes)
    r = client.get(f"/notices/{notice.id}.pdf")
    assert r.status_code == 200 and len(waited) == 3 and len(layouts) == 1


def test_a_waiting_request_that_finds_the_notice_laid_out_meanwhile_uses_it(
        compound, storage, layouts, monkeypatch):
    """Several readers asking for a new notice at once: one lays it out, the others wait for
    the slot and then find the file."""
    notice = resolution_notice(compound)
    first = printing.notice_file(notice)
    original = pdf_cache.find
    calls = []

    def not_yet_on_first_look(name: str, key: str):
        calls.append(key)
        return None if len(calls) == 1 else original(name, key)

    monkeypatch.setattr(pdf_cache, "find", not_yet_on_first_look)
    again = printing.notice_file(notice)
    assert len(layouts) == 1 and len(calls) == 2 and again.path == first.path


def test_a_stored_file_appears_whole_or_not_at_all(compound, storage, monkeypatch, caplog):
    notice = resolution_notice(compound)
    real_replace, renames = os.replace, []

    def watching(source, target):
        target = Path(target)
        # At the rename, the new file is complete under a hidden temporary name, and
        # nothing is under the final name yet.
        assert not target.exists()
        assert Path(source).parent == target.parent and Path(source).name.startswith(".")
        assert Path(source).read_bytes().startswith(b"%PDF-")
        assert Path(source).read_bytes().rstrip().endswith(b"%%EOF")
        renames.append(target)
        real_replace(source, target)

    monkeypatch.setattr(pdf_cache.os, "replace", watching)
    data = printing.notice_pdf(notice)
    assert len(renames) == 1 and renames[0].read_bytes() == data
    assert stored_files(storage) == [renames[0].name]

    # A disk that fills up while writing leaves no piece behind, and the notice is printed.
    other = resolution_notice(compound)

    def disk_full(handle: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(pdf_cache.os, "fsync", disk_full)
    with caplog.at_level(logging.ERROR, logger="consult.notices.pdf_cache"):
        assert printing.notice_pdf(other).startswith(b"%PDF-")
    assert stored_files(storage) == [renames[0].name]
    assert "could not keep" in caplog.text


def test_the_key_follows_the_stylesheets_the_page_links_to(tmp_path, monkeypatch):
    static = tmp_path / "static"
    (static / "css").mkdir(parents=True)
    sheet = static / "css" / "print.css"
    sheet.write_text("body { color: black }")
    monkeypatch.setattr(pdf_cache, "STATIC", static)
    html = '<link rel="stylesheet" href="/static/css/print.css"><p>公告</p>'
    first = pdf_cache.key(html)
    assert pdf_cache.key(html) == first
    sheet.write_text("body { color: navy }")
    os.utime(sheet, ns=(sheet.stat().st_mtime_ns + 1_000_000,) * 2)
    assert pdf_cache.key(html) != first
    assert pdf_cache.key(html + " ") != pdf_cache.key(html)


def test_the_key_follows_the_uploads_the_page_shows(compound):
    """A database restored from a backup may give an attachment id to other bytes."""
    from consult.uploads import service as uploads
    from tests.access.uploads import png_upload

    c = factories.make_consultation(compound, stage="implementing")
    photo = uploads.store(None, png_upload(), consultation=c)
    html = f'<img src="/files/{photo.id}"><p>公告</p>'
    first = pdf_cache.key(html)
    assert pdf_cache.key(html) == first
    photo.sha256 = "0" * 64
    assert pdf_cache.key(html) != first


def test_a_slot_held_by_another_process_counts_too(client, app, compound, storage):
    """gunicorn's workers are processes: a layout in one takes the slot from all of them."""
    import subprocess
    import sys

    notice = resolution_notice(compound)
    app.config["PDF_RENDER_WAITING"] = 0
    folder = render_slots.lock_folder()
    folder.mkdir(parents=True, exist_ok=True)
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import fcntl, os, sys\n"
         f"fd = os.open({str(folder / 'slot-0.lock')!r}, os.O_RDWR | os.O_CREAT)\n"
         "fcntl.flock(fd, fcntl.LOCK_EX)\n"
         "print('held', flush=True)\n"
         "sys.stdin.read()\n"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        assert client.get(f"/notices/{notice.id}.pdf").status_code == 503
    finally:
        holder.stdin.close()
        holder.wait(timeout=30)
    assert client.get(f"/notices/{notice.id}.pdf").status_code == 200  # its lock died with it
