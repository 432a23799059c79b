"""Reminders for the compound's WeChat group and notice board: the message of each stage open
to households, in the consultation's language, with the counts and the public link and no
household's name; the A4 poster rendered for real, its QR code read back from a picture of the
page; and who may have them."""

from __future__ import annotations

import re
import subprocess
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from flask_babel import force_locale
from sqlalchemy import select

from consult.ballots import service as ballots
from consult.ballots.models import BallotChannel
from consult.consultations import opinions
from consult.consultations.states import Action
from consult.core.models import utcnow
from consult.extensions import db
from consult.implementation import service as works
from consult.notices import service as notices
from consult.notices.models import NoticeKind
from consult.process import reminders, workflow
from consult.registry.models import Household
from tests import factories
from tests.notices.test_document_language import english_words, other_script
from tests.notices.test_pdf import fonts_of, read, text_of

PUBLIC = "https://yishi.example.cn/consult"
LOCALES = ("zh_Hans", "zh_Hant", "en")


@pytest.fixture
def public_url(app, monkeypatch):
    monkeypatch.setitem(app.config, "PUBLIC_URL", PUBLIC)
    return PUBLIC


def _households(c: Any) -> list[Household]:
    return list(db.session.scalars(ballots.households_in_scope(c)))


def soliciting(compound: Any, locale: str = "zh_Hans", gave: int = 3) -> Any:
    """Opinions collected until a deadline in five days, ``gave`` households (one of them
    twice) having given one."""
    c = factories.make_consultation(compound, title="3号楼加装电梯")
    c.locale = locale
    c.solicitation_deadline = utcnow() + timedelta(days=5)
    workflow.apply(c, Action.START_SOLICITING, None)
    for n, household in enumerate(_households(c)[:gave]):
        for text in ("楼道灯坏了", "希望加装电梯")[: 2 if n == 0 else 1]:
            opinions.submit(None, c, household,
                            opinions.opinion_data(category="other", text=text))
    db.session.flush()
    return c


def voting(compound: Any, locale: str = "zh_Hans", voted: int = 3) -> Any:
    """The vote open for ten more days, ``voted`` households of the roll having voted."""
    c = factories.make_consultation(compound, title="3号楼加装电梯", items=2)
    factories.walk_to(c, "discussing")
    c.locale = locale
    c.vote_deadline = utcnow() + timedelta(days=10)
    workflow.apply(c, Action.OPEN_VOTE, None)
    entries = list(db.session.scalars(ballots.roll_entries(c)))
    for entry in entries[:voted]:
        household = db.session.get_one(Household, entry.household_id)
        ballots.cast(None, c, household, {i.id: "agree" for i in c.items}, BallotChannel.PAPER)
    db.session.flush()
    return c


def resolution(compound: Any, locale: str = "zh_Hans") -> Any:
    """The resolution on public notice (every household of the roll voted)."""
    c = factories.make_consultation(compound, title="3号楼加装电梯", items=1)
    c.locale = locale
    factories.walk_to(c, "resolution_public")
    return c


def result(compound: Any, locale: str = "zh_Hans", rated: int = 2) -> tuple[Any, Any]:
    """The result of the works on public notice, ``rated`` households having rated them;
    returns the consultation and the time the walk reached (the notice is up from then)."""
    c = factories.make_consultation(compound, title="3号楼加装电梯", items=1)
    c.locale = locale
    now = factories.walk_to(c, "implementing")
    works.add_progress(None, c, works.progress_data(item_id=None, percent=100, spend="950",
                                                    note="完工", is_final=True), [], now=now)
    works.complete_item(None, c.items[0], 95_000, "验收通过", now=now)
    workflow.apply(c, Action.PUBLISH_RESULT, None, now=now)
    for household in _households(c)[:rated]:
        works.evaluate(None, c, household, "satisfied", now=now)
    return c, now


def no_personal_data(text: str, compound: Any) -> None:
    """No owner's name or phone, nor any household's room, in what goes to a group chat."""
    for building in compound.buildings:
        for household in building.households:
            assert household.owner_name not in text
            assert not household.phone or household.phone not in text
    assert "业主" not in text


# --- the WeChat message -------------------------------------------------------------------


# The words of each stage, as each catalog writes them.
WORDS = {
    "soliciting": {"zh_Hans": ("正在征集居民意见", "已有 3 / 8 户提出意见"),
                   "zh_Hant": ("正在徵集居民意見", "已有 3 / 8 戶提出意見"),
                   "en": ("collecting residents' opinions",
                          "3 / 8 households have given their opinion")},
    "voting": {"zh_Hans": ("投票进行中", "已有 3 / 8 户投票"),
               "zh_Hant": ("投票進行中", "已有 3 / 8 戶投票"),
               "en": ("Voting is open", "3 / 8 households have voted")},
    "resolution_public": {"zh_Hans": ("决议正在公示", "共有 8 / 8 户参与表决"),
                          "zh_Hant": ("決議正在公示", "共有 8 / 8 戶參與表決"),
                          "en": ("resolution is on public notice",
                                 "8 / 8 households took part in the vote")},
    "result_public": {"zh_Hans": ("改造结果正在公示", "已有 2 / 8 户评价"),
                      "zh_Hant": ("改造結果正在公示", "已有 2 / 8 戶評價"),
                      "en": ("result of the works is on public notice",
                             "2 / 8 households have rated the works")},
}


def _made(stage: str, compound: Any, locale: str) -> tuple[Any, Any]:
    if stage == "soliciting":
        return soliciting(compound, locale), None
    if stage == "voting":
        return voting(compound, locale), None
    if stage == "resolution_public":
        return resolution(compound, locale), None
    return result(compound, locale)


def _link(stage: str, c: Any) -> str:
    if stage == "soliciting":
        return f"{PUBLIC}/consultations/{c.id}/opinions/new"
    if stage == "voting":
        return f"{PUBLIC}/consultations/{c.id}/vote"
    if stage == "result_public":
        return f"{PUBLIC}/consultations/{c.id}/evaluation"
    notice = notices.current_notice(c, NoticeKind.RESOLUTION)
    return f"{PUBLIC}/notices/{notice.id}"


@pytest.mark.parametrize("locale", LOCALES)
@pytest.mark.parametrize("stage", sorted(WORDS))
def test_the_message_of_each_stage_in_the_consultations_language(
        app, compound, public_url, stage, locale):
    c, now = _made(stage, compound, locale)
    # Made from a request in another language: the message keeps the consultation's.
    reader = "en" if locale != "en" else "zh_Hant"
    with app.test_request_context(headers={"Accept-Language": reader.replace("_", "-")}):
        reminder = reminders.reminder_for(c, now)
    assert reminder is not None
    text = reminder.message
    for words in WORDS[stage][locale]:
        assert words in text, text
    assert c.title in text and compound.name in text
    # The link is the public one, to where households take part, alone on the text's last
    # but one line so a phone makes it a tap target.
    link = _link(stage, c)
    assert reminder.url == link and link in text
    assert re.findall(r"https?://\S+", text) == [link]
    # The deadline in Beijing time, with its weekday.
    assert reminder.deadline is not None and reminder.deadline_text in text
    assert re.search(r"\d{2}:\d{2}", reminder.deadline_text)
    no_personal_data(text, compound)
    if locale == "en":
        assert not re.search(r"[\u4e00-\u9fff]", text.replace(c.title, "").replace(
            compound.name, "")), text
    else:
        assert english_words(text.replace(link, "")) == [], text
        # The title and the compound's name are the committee's own words, as typed.
        words = text.replace(c.title, "").replace(compound.name, "")
        assert other_script(words, locale) == [], text


def test_the_deadline_is_the_local_time_and_day(app, compound, public_url):
    c = voting(compound)
    # 09:30 UTC on Monday 14 December 2026 is 17:30 in Beijing.
    c.vote_deadline = utcnow().replace(year=2026, month=12, day=14, hour=9, minute=30,
                                       second=0, microsecond=0)
    now = c.vote_deadline - timedelta(days=1)
    with app.test_request_context():
        assert "截止时间：12月14日周一 17:30" in reminders.reminder_for(c, now).message
        c.locale = "en"
        assert "until Mon 14 Dec, 17:30" in reminders.reminder_for(c, now).message


def test_no_reminder_when_no_stage_waits_for_households(app, compound):
    drafting = factories.make_consultation(compound)
    assert reminders.reminder_for(drafting) is None
    c = voting(compound)
    assert reminders.reminder_for(c, c.vote_deadline + timedelta(seconds=1)) is None
    discussing = factories.make_consultation(compound)
    factories.walk_to(discussing, "discussing")
    assert reminders.reminder_for(discussing) is None


def test_a_survey_counts_only_households_that_answered(app, compound):
    c = factories.make_consultation(compound, rule="survey", items=1)
    factories.walk_to(c, "discussing")
    c.vote_deadline = utcnow() + timedelta(days=3)
    workflow.apply(c, Action.OPEN_VOTE, None)
    first, second = _households(c)[:2]
    ballots.cast(None, c, first, {c.items[0].id: "agree"}, BallotChannel.DOOR_TO_DOOR)
    ballots.cast(None, c, second, {c.items[0].id: "not_reached"}, BallotChannel.DOOR_TO_DOOR)
    assert reminders.participation(c, c.stage_enum) == (1, 8)


# --- on the consultation's page ------------------------------------------------------------


def test_the_committee_sees_the_message_to_copy_on_the_page(client, login_as, compound,
                                                            public_url):
    c = voting(compound)
    login_as("committee", compound=compound)
    page = client.get(f"/consultations/{c.id}").text
    assert 'id="reminder-text"' in page and "readonly" in page
    assert "已有 3 / 8 户投票" in page and f"{PUBLIC}/consultations/{c.id}/vote" in page
    assert 'data-copy="reminder-text" hidden' in page and "/static/js/copy.js" in page
    assert f"/consultations/{c.id}/poster.pdf" in page
    # A member reading English still gets the Chinese message for the Chinese group.
    page = client.get(f"/consultations/{c.id}", headers={"Accept-Language": "en"}).text
    assert "Remind the neighbours" in page and "已有 3 / 8 户投票" in page


@pytest.mark.parametrize("role", ["resident", "grid_worker", "anonymous", "elsewhere"])
def test_nobody_else_sees_the_message(client, login_as, compound, role):
    c = voting(compound)
    if role == "resident":
        login_as("resident", household=compound.buildings[0].households[0])
    elif role == "elsewhere":
        login_as("committee", compound=factories.make_compound("别的小区"))
    elif role != "anonymous":
        login_as(role, compound=compound)
    page = client.get(f"/consultations/{c.id}").text
    assert "reminder-text" not in page and "copy.js" not in page and "poster.pdf" not in page


def test_a_supervisor_sees_it_too(client, login_as, compound):
    c = soliciting(compound)
    login_as("supervisor", compound=compound)
    page = client.get(f"/consultations/{c.id}").text
    assert "已有 3 / 8 户提出意见" in page


# --- the poster -----------------------------------------------------------------------------


def page_image(data: bytes, folder: Path) -> Any:
    """Page 1 as poppler draws it at 150 dpi."""
    from PIL import Image

    (folder / "poster.pdf").write_bytes(data)
    subprocess.run(["pdftoppm", "-png", "-r", "150", "-singlefile", str(folder / "poster.pdf"),
                    str(folder / "poster")], check=True)
    return Image.open(folder / "poster.png")


def embedded_fonts(data: bytes, folder: Path) -> str:
    """What poppler's ``pdffonts`` says of the file's fonts."""
    (folder / "fonts.pdf").write_bytes(data)
    return subprocess.run(["pdffonts", str(folder / "fonts.pdf")], check=True,
                          capture_output=True, text=True).stdout


def decoded(image: Any) -> list[str]:
    import zxingcpp

    return [code.text for code in zxingcpp.read_barcodes(image)]


@pytest.mark.parametrize("locale, face, words", [
    ("zh_Hans", "NotoSansCJKSC", ("投票进行中", "截止时间", "扫码投票", "纸质")),
    ("zh_Hant", "NotoSansCJKTC", ("投票進行中", "截止時間", "掃碼投票", "紙質")),
    ("en", "NotoSansCJKSC", ("Voting is open", "Open until", "Scan with your phone to vote",
                             "paper form")),
])
def test_the_poster_prints_the_vote_with_a_qr_code_to_it(
        app, client, login_as, compound, public_url, tmp_path, caplog, locale, face, words):
    c = voting(compound, locale)
    login_as("committee", compound=compound)
    with caplog.at_level("WARNING", logger="weasyprint"):
        r = client.get(f"/consultations/{c.id}/poster.pdf",
                       headers={"Accept-Language": "en" if locale != "en" else "zh-CN"})
    assert r.status_code == 200 and r.mimetype == "application/pdf"
    assert r.headers["Content-Disposition"].startswith("attachment;")
    assert f"-{c.id}.pdf" in r.headers["Content-Disposition"]
    assert ".notdef" not in caplog.text  # no character printed as an empty box
    text = text_of(r.data)
    assert "3号楼加装电梯" in text and compound.name in text
    for word in words:
        assert word in text, text
    with app.test_request_context(), force_locale(locale):
        deadline = reminders.deadline_text(c.vote_deadline, year=True)
    assert deadline in text.replace("\n", " "), (deadline, text)
    # Nothing personal and no count (it would be stale by the next day on the board).
    no_personal_data(text, compound)
    assert "3 / 8" not in text
    fonts = embedded_fonts(r.data, tmp_path)
    assert face in fonts.replace("-", ""), fonts
    assert all(line.split()[-5] == "yes" for line in fonts.splitlines()[2:]), fonts  # emb
    assert "CJKJP" not in fonts.replace("-", "")  # no Japanese glyph shapes
    assert fonts_of(r.data) and all(fonts_of(r.data).values())
    # The QR code, read from a 150 dpi picture of the page, is the vote's public address.
    image = page_image(r.data, tmp_path)
    assert decoded(image) == [f"{PUBLIC}/consultations/{c.id}/vote"]
    # One A4 page (210 × 297 mm is 595 × 842 points).
    pages = read(r.data).pages
    assert len(pages) == 1
    assert (round(float(pages[0].mediabox.width)), round(float(pages[0].mediabox.height))) == (
        595, 842)


def test_the_poster_of_the_opinions_and_the_file_name(client, login_as, compound, public_url,
                                                      tmp_path):
    c = soliciting(compound)
    login_as("admin")
    r = client.get(f"/consultations/{c.id}/poster.pdf")
    assert r.status_code == 200
    assert "filename*=UTF-8''%E5%85%AC%E7%A4%BA%E6%A0%8F%E6%B5%B7%E6%8A%A5" in r.headers[
        "Content-Disposition"]  # 公示栏海报-<id>.pdf
    text = text_of(r.data)
    assert "我们想听您的意见" in text and "扫码提出意见" in text
    assert decoded(page_image(r.data, tmp_path)) == [
        f"{PUBLIC}/consultations/{c.id}/opinions/new"]


def test_no_poster_when_no_stage_waits_for_households(client, login_as, compound):
    c = factories.make_consultation(compound)
    factories.walk_to(c, "discussing")
    login_as("committee", compound=compound)
    r = client.get(f"/consultations/{c.id}/poster.pdf")
    assert r.status_code == 409


@pytest.mark.parametrize("role", ["resident", "grid_worker", "elsewhere", "other_supervisor"])
def test_the_poster_is_refused_to_others(client, login_as, compound, role):
    c = voting(compound)
    if role == "resident":
        login_as("resident", household=compound.buildings[0].households[0])
    elif role == "elsewhere":
        login_as("committee", compound=factories.make_compound("别的小区"))
    elif role == "other_supervisor":
        login_as("supervisor", compound=factories.make_compound("另一个小区"))
    else:
        login_as(role, compound=compound)
    r = client.get(f"/consultations/{c.id}/poster.pdf")
    assert r.status_code == 403 and r.mimetype != "application/pdf"


def test_the_poster_sends_an_anonymous_visitor_to_sign_in(client, compound):
    c = voting(compound)
    r = client.get(f"/consultations/{c.id}/poster.pdf")
    assert r.status_code == 302 and "/login" in r.headers["Location"]


def test_the_poster_of_a_draft_is_not_found_elsewhere(client, login_as, compound):
    c = factories.make_consultation(compound)
    login_as("committee", compound=factories.make_compound("别的小区"))
    assert client.get(f"/consultations/{c.id}/poster.pdf").status_code in (403, 404)
    assert client.get("/consultations/999999/poster.pdf").status_code == 404


def test_making_a_reminder_writes_nothing(client, login_as, compound, public_url):
    from consult.audit.models import AuditEvent

    c = voting(compound)
    login_as("committee", compound=compound)
    before = db.session.scalar(select(AuditEvent.seq).order_by(AuditEvent.seq.desc()).limit(1))
    assert client.get(f"/consultations/{c.id}").status_code == 200
    assert client.get(f"/consultations/{c.id}/poster.pdf").status_code == 200
    after = db.session.scalar(select(AuditEvent.seq).order_by(AuditEvent.seq.desc()).limit(1))
    assert before == after


def test_result_reminder_uses_the_result_notice_period(app, compound, public_url):
    c, now = result(compound)
    notice = notices.current_notice(c, NoticeKind.RESULT)
    with app.test_request_context():
        reminder = reminders.reminder_for(c, now)
        assert reminder.deadline == notice.period_ends_at
        assert reminders.reminder_for(c, notice.period_ends_at) is None


@pytest.mark.parametrize("locale", ["zh_Hans", "en"])
def test_the_longest_title_still_fits_one_page_with_a_readable_code(
        app, compound, public_url, tmp_path, locale):
    c = voting(compound, locale)
    c.title = "关于3号楼2单元加装电梯及楼道改造的意见征集" * 9 + "。" * 2  # 200 characters
    assert len(c.title) == 200
    compound.address = "某某市某某区某某街道某某路128号（劳动局家属院东门）"
    with app.test_request_context():
        data = reminders.poster_file(c).read()
    assert len(read(data).pages) == 1
    assert decoded(page_image(data, tmp_path)) == [f"{PUBLIC}/consultations/{c.id}/vote"]


@pytest.mark.parametrize("stage, words", [
    ("resolution_public", ("决议公示中", "扫码查看公示", "如有异议")),
    ("result_public", ("评价工程", "扫码评价", "是否满意")),
])
def test_the_posters_of_the_notices(app, compound, public_url, tmp_path, stage, words):
    c, now = _made(stage, compound, "zh_Hans")
    with app.test_request_context(headers={"Accept-Language": "en"}):
        data = reminders.poster_file(c, now).read()
    text = text_of(data)
    for word in words:
        assert word in text, text
    no_personal_data(text, compound)
    assert decoded(page_image(data, tmp_path)) == [_link(stage, c)]
