"""Every printed document: rendered for real with WeasyPrint and the Noto CJK fonts, then read
back with pypdf."""

from __future__ import annotations

import io
import re
import subprocess
from datetime import timedelta
from pathlib import Path

import pytest
from pypdf import PdfReader
from sqlalchemy import select

from consult.accounts import service as accounts
from consult.consultations import meetings
from consult.consultations.states import Action
from consult.core.errors import Conflict
from consult.core.models import utcnow
from consult.extensions import db
from consult.implementation import service as works
from consult.notices import service as notices
from consult.notices.models import NoticeKind, PrintJob, PrintKind
from consult.notices.pdf import PrintingUnavailable
from consult.process import printing, workflow
from tests import factories
from tests.conftest import audit_actions


def read(data: bytes) -> PdfReader:
    assert data.startswith(b"%PDF-")
    return PdfReader(io.BytesIO(data))


def text_of(data: bytes) -> str:
    """The text, without the letter-spacing titles get (决 议 公 示 → 决议公示)."""
    text = "\n".join(page.extract_text() for page in read(data).pages)
    return re.sub(r"(?<=[\u4e00-\u9fff]) (?=[\u4e00-\u9fff])", "", text)


def fonts_of(data: bytes) -> dict[str, bool]:
    """Every font used: its name, and whether its program is embedded in the file."""
    found = {}
    for page in read(data).pages:
        for font in (page["/Resources"].get("/Font") or {}).values():
            font = font.get_object()
            descendants = font.get("/DescendantFonts")
            descriptor = (descendants[0].get_object() if descendants else font).get(
                "/FontDescriptor")
            descriptor = descriptor.get_object() if descriptor else {}
            found[str(font["/BaseFont"])] = any(
                key in descriptor for key in ("/FontFile", "/FontFile2", "/FontFile3"))
    return found


def discussing(compound, **kwargs):
    c = factories.make_consultation(compound, items=2, **kwargs)
    factories.walk_to(c, "discussing")
    c.vote_deadline = utcnow() + timedelta(days=10)
    return c


def test_vote_notice_announces_the_vote_and_can_be_verified(client, compound):
    c = discussing(compound)
    c.vote_opens_at = utcnow() + timedelta(days=3)
    notice = printing.issue_vote_notice(None, c)
    data = printing.render_kind(None, c, "vote-notice")
    text = text_of(data)
    assert "投票公告" in text and "改造项目1" in text and "改造项目2" in text
    assert "8 户" in text and "492.00" in text  # the roll's totals, before the roll
    assert notice.verify_code in text and f"/verify/{notice.verify_code}" in text
    assert re.search(r"第 1 页\s*共 \d+ 页", text)  # page numbers
    page = client.get(f"/verify/{notice.verify_code}")
    assert page.status_code == 200 and notice.content_sha256 in page.text
    assert audit_actions()[-1] == "notice.published"


def test_reissuing_the_vote_notice_supersedes_the_first(client, compound):
    c = discussing(compound)
    first = printing.issue_vote_notice(None, c)
    second = printing.issue_vote_notice(None, c)
    assert first.superseded_at is not None and second.superseded_at is None
    page = client.get(f"/verify/{first.verify_code}", headers={"Accept-Language": "en"})
    assert "no longer current" in page.text
    with pytest.raises(Conflict):
        notices.file_objection(None, second, compound.buildings[0].households[0], "x")


def test_vote_notice_needs_the_discussion_stage_and_a_deadline(compound):
    c = factories.make_consultation(compound, stage="soliciting")
    with pytest.raises(Conflict):
        printing.issue_vote_notice(None, c)
    c = discussing(compound)
    c.vote_deadline = None
    with pytest.raises(Conflict, match="deadline"):
        printing.issue_vote_notice(None, c)


def test_resolution_notice_prints_the_tally_chart_and_households(compound):
    c = factories.make_consultation(compound, items=2)
    factories.walk_to(c, "resolution_public")
    notice = notices.current_notice(c, NoticeKind.RESOLUTION)
    data = printing.notice_pdf(notice)
    text = text_of(data)
    assert "决议公示" in text and "同意户数：8/8 = 100.00% > 1/2" in text
    assert "各户表决情况" in text and "1号楼" in text and "60.00" in text  # the appendix
    assert "业主1号楼0" not in text and "13812345678" not in text  # never names or phones
    assert notice.verify_code in text and notice.content_sha256 in text
    fonts = fonts_of(data)
    assert fonts and all(fonts.values()), fonts  # every font embedded, none substituted
    assert any("Noto-Sans-CJK-SC" in name for name in fonts)
    assert not any("CJK-JP" in name for name in fonts), fonts  # no Japanese glyph shapes


def test_result_notice_prints_costs_inspections_photos_and_satisfaction(compound):
    from tests.access.uploads import png_upload

    c = factories.make_consultation(compound, items=1)
    now = factories.walk_to(c, "implementing")
    item = c.items[0]
    works.add_progress(None, c, works.progress_data(item_id=None, percent=100, spend="950",
                                                    note="完工", is_final=True),
                       [png_upload("site.png")], now=now)
    works.add_inspection(None, c, "质量合格", now=now)
    works.complete_item(None, item, 95_000, "验收通过", now=now)
    workflow.apply(c, Action.PUBLISH_RESULT, None, now=now)
    works.evaluate(None, c, compound.buildings[0].households[0], "satisfied", now=now)
    notice = notices.current_notice(c, NoticeKind.RESULT)
    data = printing.notice_pdf(notice)
    text = text_of(data)
    assert "实施结果公示" in text and "950.00" in text and "1,000.00" in text
    assert "质量合格" in text and "验收通过" in text
    assert "满意" in text and "1" in text
    images = [name for page in read(data).pages
              for name, obj in (page["/Resources"].get("/XObject") or {}).items()
              if obj.get_object().get("/Subtype") == "/Image"]
    assert images  # the progress photo is printed


def test_paper_ballots_one_page_per_household_prefilled(compound):
    c = discussing(compound)
    factories.walk_to(c, "voting")
    data = printing.render_kind(None, c, "ballots")
    reader = read(data)
    assert len(reader.pages) == 8
    first = text_of(data).split("纸质表决票")[1]  # the first household's page
    household = compound.buildings[0].households[0]
    assert household.owner_name in first and "改造项目1" in first
    assert f"{c.id}-1-{household.id:06d}" in first  # the serial the QR code carries too
    # The household written as on every other page, room included.
    assert f"1单元 {household.room}室" in first


def test_opinion_forms_and_minutes(compound):
    c = factories.make_consultation(compound, stage="soliciting")
    forms = text_of(printing.render_kind(None, c, "solicitation"))
    assert forms.count("征求意见表") == 8 and "给排水管道" in forms
    meetings.record(None, c, meetings.meeting_data(
        held_at_local=utcnow().replace(tzinfo=None), place="社区会议室",
        attendees={"community": "李书记"}, minutes="讨论**充电桩**位置", decisions="同意"))
    minutes = text_of(printing.render_kind(None, c, "minutes"))
    assert "会议纪要" in minutes and "社区会议室" in minutes and "充电桩" in minutes
    assert "**" not in minutes  # Markdown is rendered, not printed raw
    # Printed by someone reading English (the tests' command language), in the minutes' own.
    assert "Community" not in minutes and "李书记" in minutes


def test_access_letters_carry_working_codes(compound):
    c = factories.make_consultation(compound, stage="soliciting")
    data = printing.render_kind(None, c, "access-letters")
    text = text_of(data)
    codes = re.findall(r"(\d{4} \d{4} \d{4})", text)
    assert len(read(data).pages) == 8 and len(set(codes)) == 8
    user = accounts.redeem_access_code(codes[0])
    assert user.role == "resident"
    assert audit_actions().count("accounts.access_code.issued") == 8


def test_documents_not_available_at_this_stage_are_409(client, login_as, compound):
    c = factories.make_consultation(compound, stage="discussing")
    for kind in ("resolution", "result", "vote-notice", "minutes", "solicitation"):
        with pytest.raises(Conflict):
            printing.render_kind(None, c, kind)
    login_as("committee", compound=compound)
    r = client.post(f"/consultations/{c.id}/print/solicitation",
                    headers={"Accept-Language": "en"})
    assert r.status_code == 409 and "Opinion forms are printed" in r.text


def test_html_and_long_unbroken_text_print_as_text(compound):
    building = compound.buildings[0]
    long = "W" * 92  # as long as the column allows, and far wider than the page
    factories.make_household(building, room="909", owner_name="<b>王</b>" + long)
    c = factories.make_consultation(compound, stage="soliciting")
    data = printing.render_kind(None, c, "solicitation")
    reader = read(data)
    assert len(reader.pages) == 9  # one page each, the long name wraps instead of spilling
    text = "\n".join(p.extract_text() for p in reader.pages)
    assert long not in text  # wrapped onto several lines
    assert "<b>王</b>" + long in text.replace("\n", "")  # printed as it was typed


# Past the CJK fonts: an Extension C ideograph, a private-use character (a phone's own symbol),
# an Egyptian hieroglyph.
RARE = "\U0002A700"
PRIVATE = "\ue000"


def colour_pixels(data: bytes, folder: Path) -> int:
    """Pixels of page 1 (rasterised by poppler at 50 dpi) that are strongly coloured: text and
    rules are black. The page is kept as page-1.png in ``folder``."""
    from PIL import Image

    (folder / "page.pdf").write_bytes(data)
    subprocess.run(["pdftoppm", "-png", "-r", "50", "-singlefile", str(folder / "page.pdf"),
                    str(folder / "page-1")], check=True)
    image = Image.open(folder / "page-1.png").convert("RGB")
    return sum(1 for r, g, b in image.get_flattened_data() if max(r, g, b) - min(r, g, b) > 80)


def test_minutes_with_an_emoji_and_characters_no_font_has_print_for_everyone(
        client, compound, monkeypatch, tmp_path):
    """One emoji in the minutes once made them unprintable: the emoji prints in colour, and a
    character no font has prints as its Unicode name, never as an empty box."""
    from consult.notices import pdf

    monkeypatch.setattr(pdf, "_UNPRINTABLE", set(), raising=False)  # as in a fresh process
    c = factories.make_consultation(compound, stage="discussing")
    meetings.record(None, c, meetings.meeting_data(
        held_at_local=utcnow().replace(tzinfo=None), place="社区会议室😀",
        attendees={"community": f"李书记{RARE}"},
        minutes=f"大家都同意😀👍🏽，王{RARE}发言。{PRIVATE}", decisions="同意"))
    r = client.get(f"/consultations/{c.id}/minutes.pdf")
    assert r.status_code == 200 and r.mimetype == "application/pdf"
    text = text_of(r.data)
    assert "社区会议室😀" in text and "大家都同意😀👍🏽" in text
    assert f"王[CJK UNIFIED IDEOGRAPH-{ord(RARE):X}]发言" in text
    assert f"李书记[CJK UNIFIED IDEOGRAPH-{ord(RARE):X}]" in text and "[U+E000]" in text
    assert RARE not in text and PRIVATE not in text
    fonts = fonts_of(r.data)
    assert any("Noto-Color-Emoji" in name for name in fonts) and all(fonts.values()), fonts
    assert colour_pixels(r.data, tmp_path) > 20  # the emoji are drawn, in colour
    assert sorted(pdf._UNPRINTABLE) == [PRIVATE, RARE]
    # The next document spells them out straight away, and prints the same.
    assert text_of(client.get(f"/consultations/{c.id}/minutes.pdf").data) == text


def test_a_notice_with_a_character_no_font_has_prints_its_name(compound):
    c = factories.make_consultation(compound, items=1)
    c.items[0].title = "𓀀 象形文字"  # outside every installed font
    factories.walk_to(c, "discussing")
    c.vote_deadline = utcnow() + timedelta(days=5)
    notice = printing.issue_vote_notice(None, c)
    text = text_of(printing.notice_pdf(notice))
    assert "[EGYPTIAN HIEROGLYPH A001] 象形文字" in text and "𓀀" not in text


def test_a_batch_prints_a_rare_character_in_an_owners_name_as_its_name(compound):
    factories.make_household(compound.buildings[0], room="909", owner_name=f"王{RARE}")
    c = factories.make_consultation(compound, stage="soliciting")
    text = re.sub(r"\s+", " ", text_of(printing.render_kind(None, c, "solicitation")))
    assert f"王[CJK UNIFIED IDEOGRAPH-{ord(RARE):X}]" in text


def test_without_a_cjk_font_the_endpoint_says_so(client, app, compound):
    c = factories.make_consultation(compound, items=1)
    factories.walk_to(c, "resolution_public")
    notice = notices.current_notice(c, NoticeKind.RESOLUTION)
    app.config["CJK_FONT_AVAILABLE"] = False
    try:
        r = client.get(f"/notices/{notice.id}.pdf", headers={"Accept-Language": "en"})
    finally:
        app.config["CJK_FONT_AVAILABLE"] = True
    assert r.status_code == 503 and "fonts-noto-cjk" in r.text
    r = client.get(f"/notices/{notice.id}.pdf")
    assert r.status_code == 200 and r.mimetype == "application/pdf"


def test_notice_language_follows_the_consultation(compound):
    c = factories.make_consultation(compound, items=1)
    c.locale = "zh_Hant"
    factories.walk_to(c, "resolution_public")
    notice = notices.current_notice(c, NoticeKind.RESOLUTION)
    data = printing.notice_pdf(notice)
    assert "決議公示" in text_of(data)
    assert any("Noto-Sans-CJK-TC" in name for name in fonts_of(data))


def test_batch_print_job_runs_after_the_request(client, login_as, compound):
    login_as("committee", compound=compound)
    c = discussing(compound)
    factories.walk_to(c, "voting")
    r = client.post(f"/consultations/{c.id}/print/ballots")
    job = db.session.scalars(select(PrintJob)).one()
    assert r.status_code == 302 and r.headers["Location"].endswith(f"/print-jobs/{job.id}")
    assert (job.status, job.done, job.total) == ("done", 8, 8)
    page = client.get(f"/print-jobs/{job.id}", headers={"Accept-Language": "en"})
    assert "Download the PDF" in page.text
    pdf = client.get(f"/print-jobs/{job.id}/file")
    assert pdf.status_code == 200 and len(read(pdf.data).pages) == 8
    assert audit_actions()[-2:] == ["print.requested", "print.finished"]


def test_a_running_job_page_refreshes_itself(client, login_as, compound):
    login_as("committee", compound=compound)
    c = factories.make_consultation(compound, stage="soliciting")
    job = printing.request_job(None, c, PrintKind.SOLICITATION)
    page = client.get(f"/print-jobs/{job.id}").text
    assert 'http-equiv="refresh"' in page and "<progress" in page
    assert client.get(f"/print-jobs/{job.id}/file").status_code == 404


def test_render_pdf_command(runner, tmp_path, compound):
    c = factories.make_consultation(compound, stage="soliciting")
    out = tmp_path / "forms.pdf"
    result = runner.invoke(args=["notices", "render-pdf", str(c.id), "solicitation", "-o",
                                 str(out)], env={"CONSULT_LANG": "en"})
    assert result.exit_code == 0, result.output
    assert len(read(out.read_bytes()).pages) == 8
    result = runner.invoke(args=["notices", "render-pdf", str(c.id), "resolution", "-o", str(out)],
                           env={"CONSULT_LANG": "en"})
    assert result.exit_code == 1 and "published once the vote is counted" in result.output


def test_the_command_progress_bar_follows_how_far_printing_got():
    from consult.core.commands import ProgressBar

    bar = ProgressBar("Printing")
    for done in (50, 100, 150, 200, 216):  # what a 216-page batch reports, chunk by chunk
        bar.at(done, 216)
    assert bar.bar.pos == 216 and bar.bar.length == 216
    bar.close()


def test_printed_links_use_the_public_address(client, app, login_as, compound, monkeypatch):
    c = factories.make_consultation(compound, items=1)
    factories.walk_to(c, "resolution_public")
    notice = notices.current_notice(c, NoticeKind.RESOLUTION)
    login_as("committee", compound=compound)
    monkeypatch.setitem(app.config, "PUBLIC_URL", "https://yishi.example.cn/consult")
    # printed from a request on another address (an office intranet, say)
    r = client.get(f"/notices/{notice.id}.pdf", base_url="http://10.0.0.5:8000")
    text = text_of(r.data).replace("\n", "")  # a long address may wrap
    assert f"https://yishi.example.cn/consult/verify/{notice.verify_code}" in text
    assert "10.0.0.5" not in text


def test_a_batch_is_printed_chunk_by_chunk_and_joined_in_order(compound, monkeypatch):
    from consult.notices import pdf

    monkeypatch.setattr(pdf, "CHUNK", 3)
    c = factories.make_consultation(compound, stage="soliciting")
    seen = []
    data = printing.batch_pdf(None, c, PrintKind.SOLICITATION,
                              progress=lambda done, total: seen.append((done, total)))
    assert seen == [(3, 8), (6, 8), (8, 8)]
    reader = read(data)
    assert len(reader.pages) == 8 and reader.metadata.title
    serials = [re.search(r"\d+-Y-(\d{6})", page.extract_text()).group(1)
               for page in reader.pages]
    expected = [f"{h:06d}" for h in printing.households_for(c, PrintKind.SOLICITATION)]
    assert serials == expected
    assert all(fonts_of(data).values())


def test_a_job_cut_off_by_a_restart_says_so_and_can_be_printed_again(client, login_as,
                                                                     compound):
    login_as("committee", compound=compound)
    c = factories.make_consultation(compound, stage="soliciting")
    job = printing.request_job(None, c, PrintKind.SOLICITATION)
    job.status, job.done = "running", 3
    db.session.flush()
    assert job.in_progress and not job.stalled
    job.updated_at = utcnow() - timedelta(minutes=11)  # no progress since: its process is gone
    db.session.flush()
    assert job.stalled and not job.in_progress
    page = client.get(f"/print-jobs/{job.id}", headers={"Accept-Language": "en"}).text
    assert "stopped at 3 of 8 pages" in page and 'http-equiv="refresh"' not in page
    r = client.post(f"/consultations/{c.id}/print/solicitation")
    again = db.session.scalars(select(PrintJob).order_by(PrintJob.id.desc())).first()
    assert r.headers["Location"].endswith(f"/print-jobs/{again.id}") and again.status == "done"


def test_a_failed_job_shows_why_and_offers_to_print_again(client, login_as, compound,
                                                          monkeypatch):
    login_as("committee", compound=compound)
    c = factories.make_consultation(compound, stage="soliciting")
    monkeypatch.setattr(printing, "batch_pdf", lambda *a, **k: (_ for _ in ()).throw(
        PrintingUnavailable("没有中文字体")))
    r = client.post(f"/consultations/{c.id}/print/solicitation")
    job = db.session.scalars(select(PrintJob)).one()
    assert job.status == "failed" and job.error == "没有中文字体"
    page = client.get(r.headers["Location"], headers={"Accept-Language": "en"}).text
    assert "没有中文字体" in page and "Print again" in page
    assert audit_actions()[-1] == "print.failed"


def test_no_transaction_is_held_while_a_chunk_is_laid_out(compound, monkeypatch):
    """On SQLite an open writing transaction would make every ballot wait for the layout."""
    from consult.notices import pdf

    real, held = pdf._write, []

    def watching(html: str) -> bytes:
        held.append(db.session().in_transaction())
        return real(html)

    monkeypatch.setattr(pdf, "_write", watching)
    monkeypatch.setattr(pdf, "CHUNK", 4)
    c = factories.make_consultation(compound, stage="soliciting")
    job = printing.request_job(None, c, PrintKind.ACCESS_LETTERS)
    printing.run_job(job.id)
    assert job.error == "" and job.status == "done" and held == [False, False]
