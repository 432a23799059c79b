"""Every printed document speaks one language, its own, whoever prints it.

A consultation in Simplified Chinese and one in Traditional Chinese are taken through every
stage, and at each stage every document kind available then is printed in every way it can
be: from a request of a member reading the other Chinese script, from one reading English,
by ``flask render-pdf`` under ``CONSULT_LANG=en`` and under Debian's ``LANG=C.UTF-8``, and by
a print job run by a worker under those two. The text read back from each PDF must hold no
English word (addresses, hashes and codes aside) and no character that exists only in the
other Chinese script. Everything the residents and the committee typed is written in the
consultation's own script, so any such character is the program's.

Laying out PDFs is slow: the documents are printed once, by a module fixture, and the tests
only read what was printed.
"""

from __future__ import annotations

import contextvars
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest
from flask import Flask

from consult.consultations import meetings
from consult.consultations.states import Action
from consult.core import jobs
from consult.core.models import utcnow
from consult.extensions import db
from consult.implementation import service as works
from consult.notices import pdf
from consult.notices import service as notices
from consult.notices.models import NoticeKind, PrintKind
from consult.process import printing, workflow
from tests import factories
from tests.conftest import CSRFClient, rolled_back
from tests.notices.test_pdf import text_of

LOCALES = ("zh_Hans", "zh_Hant")
OTHER_SCRIPT = {"zh_Hans": "zh_Hant", "zh_Hant": "zh_Hans"}

# Characters that are written differently in the two scripts, Simplified first. Only pairs
# where neither character is also in use in the other script (not 后/後, 准/準, 范/範 …).
PAIRS = ("验驗 页頁 议議 证證 码碼 决決 会會 纪紀 录錄 户戶 区區 发發 书書 业業 项項 选選 "
         "满滿 实實 检檢 号號 楼樓 单單 积積 总總 员員 请請 扫掃 维維 问問 对對 这這 们們 "
         "时時 间間 为為 与與 说說 见見 签簽 开開 关關 统統 计計 结結 纸紙 质質 "
         "联聯 审審 链鏈 树樹 报報 办辦 种種 应應 确確 认認 复複 无無 赞贊 张張 样樣 "
         "览覽 讯訊 装裝 电電 华華 园園 价價 费費 预預 访訪 机機 将將 数數 据據").replace(" ", "")
SIMPLIFIED_ONLY = frozenset(PAIRS[0::2])
TRADITIONAL_ONLY = frozenset(PAIRS[1::2])
NOT_IN = {"zh_Hans": TRADITIONAL_ONLY, "zh_Hant": SIMPLIFIED_ONLY}

# What the committee and the residents typed, in each consultation's own script (Simplified,
# Traditional).
WRITTEN = {
    "community": ("和平社区", "和平社區"), "compound": ("幸福花园", "幸福花園"),
    "building": ("1号楼", "1號樓"), "owners": (("张伟", "刘芳"), ("張偉", "劉芳")),
    "title": ("加装电梯方案", "加裝電梯方案"),
    "summary": ("居民议事，共同决定。", "居民議事，共同決定。"),
    "item": ("加装电梯", "加裝電梯"),
    "description": ("为每个单元加装一部电梯", "為每個單元加裝一部電梯"),
    "place": ("社区会议室", "社區會議室"), "attendee": ("李书记", "李書記"),
    "minutes": ("讨论电梯位置", "討論電梯位置"), "decisions": ("同意加装", "同意加裝"),
    "progress": ("完工", "完工"), "inspection": ("质量合格", "品質合格"),
    "completion": ("验收通过", "驗收通過"),
}
TYPED = {locale: {key: pair[n] for key, pair in WRITTEN.items()}
         for n, locale in enumerate(LOCALES)}

# Each document's title, as its own language prints it.
TITLES = {
    "vote-notice": {"zh_Hans": "投票公告", "zh_Hant": "投票公告"},
    "resolution": {"zh_Hans": "决议公示", "zh_Hant": "決議公示"},
    "result": {"zh_Hans": "实施结果公示", "zh_Hant": "實施結果公示"},
    "minutes": {"zh_Hans": "会议纪要", "zh_Hant": "會議紀錄"},
    "ballots": {"zh_Hans": "纸质表决票", "zh_Hant": "紙本表決票"},
    "solicitation": {"zh_Hans": "征求意见表", "zh_Hant": "徵求意見表"},
    "access-letters": {"zh_Hans": "访问码", "zh_Hant": "訪問碼"},
}
BATCHES = ("ballots", "solicitation", "access-letters")

# The environments a command or a worker runs in: one that asks for English, and Debian's
# default, which names no language at all (so the program's default, Simplified Chinese).
ENVIRONMENTS = {
    "en": {"CONSULT_LANG": "en"},
    "C": {"CONSULT_LANG": None, "LC_ALL": None, "LC_MESSAGES": None, "LANG": "C.UTF-8"},
}


def cases_for(kind: str) -> set[str]:
    """Every way a document of ``kind`` is printed (print jobs print the batches only)."""
    cases = {"request-other", "request-en", "command-en", "command-C"}
    return cases | {"job-en", "job-C"} if kind in BATCHES else cases


@dataclass
class Printed:
    text: str
    filename: str | None = None  # the name offered for download (requests only)


def english_words(text: str) -> list[str]:
    """Words in Latin letters, leaving out addresses, hashes (hex digits only) and codes (no
    lower-case letter: verification codes, "SHA", "RFC")."""
    text = re.sub(r"https?://\S+", " ", text)
    return [word for word in re.findall(r"[A-Za-z]{2,}", text)
            if re.search(r"[a-z]", word) and not re.fullmatch(r"[a-f]+", word)]


def lines_with_latin(text: str) -> list[str]:
    """The lines to look at when a document holds English words."""
    return [line for line in text.splitlines() if english_words(line)]


def other_script(text: str, locale: str) -> list[str]:
    """Characters in ``text`` that only the other Chinese script writes so."""
    return sorted({char for char in text if char in NOT_IN[locale]})


def download_name(content_disposition: str) -> str:
    """The file name a browser offers: the UTF-8 one (RFC 6266) when there is one."""
    found = re.search(r"filename\*=UTF-8''([^;\s]+)", content_disposition)
    if found:
        return unquote(found.group(1))
    found = re.search(r'filename="([^"]*)"', content_disposition)
    assert found, content_disposition
    return found.group(1)


# --- printing everything, once ----------------------------------------------------------------


class Printer:
    """Prints documents of one consultation in every way, and keeps what was printed."""

    def __init__(self, app: Flask, consultation: Any, locale: str, folder: Path) -> None:
        self.app, self.c, self.locale, self.folder = app, consultation, locale, folder
        self.printed: dict[str, dict[str, Printed]] = {}
        self.clients = {}
        for case, language in (("request-other", OTHER_SCRIPT[locale]), ("request-en", "en")):
            client = app.test_client()
            assert isinstance(client, CSRFClient)
            # A member whose own setting, and whose browser, ask for another language.
            member = factories.make_user("committee", compound=consultation.compound,
                                         locale=language)
            factories.sign_in(client, member)
            self.clients[case] = (client, {"Accept-Language": language.replace("_", "-")})

    def keep(self, kind: str, case: str, data: bytes, filename: str | None = None) -> None:
        self.printed.setdefault(kind, {})[case] = Printed(text_of(data), filename)

    def by_request(self, kind: str) -> None:
        c = self.c
        for case, (client, headers) in self.clients.items():
            if kind in printing.NOTICE_KINDS:
                notice = notices.current_notice(c, printing.NOTICE_KINDS[kind])
                r = client.get(f"/notices/{notice.id}.pdf", headers=headers)
            elif kind == "minutes":
                r = client.get(f"/consultations/{c.id}/minutes.pdf", headers=headers)
            else:  # a batch: a print job, run after the request, then its file
                started = client.post(f"/consultations/{c.id}/print/{kind}",
                                      data={"confirmed": "1"}, headers=headers)
                assert started.status_code == 302, started.text
                r = client.get(f"{started.headers['Location']}/file", headers=headers)
            assert r.status_code == 200, (kind, case, r.text[:500])
            self.keep(kind, case, r.data, download_name(r.headers["Content-Disposition"]))

    def by_command(self, kind: str) -> None:
        runner = self.app.test_cli_runner()
        for name, env in ENVIRONMENTS.items():
            out = self.folder / f"{self.locale}-{kind}-{name}.pdf"
            result = runner.invoke(args=["render-pdf", str(self.c.id), kind, "-o", str(out)],
                                   env=env)
            assert result.exit_code == 0, (kind, name, result.output)
            self.keep(kind, f"command-{name}", out.read_bytes())

    def by_worker(self, kind: str) -> None:
        """A print job run by a worker, as ``flask jobs worker`` runs it: in an app context of
        its own, with no request and the worker's environment."""
        for name, env in ENVIRONMENTS.items():
            job = printing.request_job(None, self.c, PrintKind(kind))
            with pytest.MonkeyPatch.context() as patch:
                for variable, value in env.items():
                    if value is None:
                        patch.delenv(variable, raising=False)
                    else:
                        patch.setenv(variable, value)
                contextvars.Context().run(self._work, job.id)
            db.session.refresh(job)
            assert job.status == "done", (kind, name, job.error)
            self.keep(kind, f"job-{name}", pdf.job_path(job.id).read_bytes())

    def _work(self, job_id: int) -> None:
        with self.app.app_context():
            jobs.perform(jobs.dotted_name(printing.run_job), job_id)

    def everywhere(self, *kinds: str) -> None:
        for kind in kinds:
            self.by_request(kind)
            self.by_command(kind)
            if kind in BATCHES:
                self.by_worker(kind)


def print_every_document(app: Flask, locale: str, folder: Path) -> dict[str, dict[str, Printed]]:
    """Take a consultation in ``locale`` from its start to its result notice, printing every
    document in every way at the stage it is printed at."""
    typed = TYPED[locale]
    community = factories.make_community(typed["community"])
    compound = factories.make_compound(typed["compound"], community)
    building = factories.make_building(compound, typed["building"])
    households = [factories.make_household(building, room=f"10{n + 1}", owner_name=owner,
                                           area_dm2=8000 + 100 * n)
                  for n, owner in enumerate(typed["owners"])]
    c = factories.make_consultation(compound, items=1, title=typed["title"], stage="soliciting")
    c.locale, c.summary = locale, typed["summary"]
    c.items[0].title, c.items[0].description = typed["item"], typed["description"]
    meetings.record(None, c, meetings.meeting_data(
        held_at_local=utcnow().replace(tzinfo=None), place=typed["place"],
        attendees={"community": typed["attendee"]}, minutes=typed["minutes"],
        decisions=typed["decisions"]))
    db.session.flush()
    printer = Printer(app, c, locale, folder)
    printer.everywhere("solicitation", "access-letters", "minutes")

    factories.walk_to(c, "discussing")
    c.vote_deadline = utcnow() + timedelta(days=10)
    printing.issue_vote_notice(None, c)
    printer.everywhere("vote-notice", "ballots")

    now = factories.walk_to(c, "implementing")
    printer.everywhere("resolution")

    item = c.items[0]
    works.add_progress(None, c, works.progress_data(item_id=None, percent=100, spend="900",
                                                    note=typed["progress"], is_final=True),
                       [], now=now)
    works.add_inspection(None, c, typed["inspection"], now=now)
    works.complete_item(None, item, 90_000, typed["completion"], now=now)
    workflow.apply(c, Action.PUBLISH_RESULT, None, now=now)
    works.evaluate(None, c, households[0], "satisfied", now=now)
    assert notices.current_notice(c, NoticeKind.RESULT) is not None
    printer.everywhere("result")
    return printer.printed


@pytest.fixture(scope="module")
def printed(app: Flask, tmp_path_factory: pytest.TempPathFactory
            ) -> Iterator[dict[str, dict[str, dict[str, Printed]]]]:
    """locale → document kind → case → what was printed. Written in a transaction that is
    rolled back before the tests read it."""
    folder = tmp_path_factory.mktemp("document-language")
    documents = {}
    # A deployment names its public address: then every way of printing gives the same paper
    # (unset, each prints the address it was asked from: tests/notices/test_public_url.py).
    unset = app.config["PUBLIC_URL"]
    app.config["PUBLIC_URL"] = "http://10.20.30.40:8000"
    try:
        for locale in LOCALES:
            with rolled_back(app):
                documents[locale] = print_every_document(app, locale, folder)
    finally:
        app.config["PUBLIC_URL"] = unset
    yield documents


# --- what was printed -------------------------------------------------------------------------


@pytest.mark.parametrize("locale", LOCALES)
@pytest.mark.parametrize("kind", printing.KINDS)
def test_every_document_is_printed_in_its_own_language_by_anyone(printed, locale, kind):
    cases = printed[locale][kind]
    assert set(cases) == cases_for(kind)
    for case, document in cases.items():
        assert TITLES[kind][locale] in document.text, (case, document.text[:300])
        assert english_words(document.text) == [], (case, lines_with_latin(document.text))
        assert other_script(document.text, locale) == [], case
    # Whoever prints it, it is the same document (the access codes aside: each print issues
    # new ones).
    texts = {case: re.sub(r"\d{4} \d{4} \d{4}", "#", document.text)
             for case, document in cases.items()}
    assert len(set(texts.values())) == 1, texts


@pytest.mark.parametrize("locale", LOCALES)
@pytest.mark.parametrize("kind", printing.KINDS)
def test_a_downloaded_document_is_named_in_its_own_language(printed, locale, kind):
    names = {case: document.filename for case, document in printed[locale][kind].items()
             if case.startswith("request-")}
    assert len(names) == 2 and len(set(names.values())) == 1, names
    name = names["request-en"]
    assert name.endswith(".pdf")
    stem = name.removesuffix(".pdf")
    assert english_words(stem) == [] and other_script(stem, locale) == [], name
    title = {"ballots": {"zh_Hans": "纸质表决票", "zh_Hant": "紙本表決票"},
             "solicitation": {"zh_Hans": "征求意见表", "zh_Hant": "徵求意見表"},
             "access-letters": {"zh_Hans": "户访问码通知书", "zh_Hant": "戶訪問碼通知書"},
             }.get(kind, TITLES[kind])[locale]
    assert stem.startswith(title), name


def test_the_table_of_scripts_tells_them_apart():
    assert other_script("第 1 页 共 2 页 · 验证码", "zh_Hant") == ["码", "证", "页", "验"]
    assert other_script("第 1 頁 共 2 頁 · 驗證碼", "zh_Hans") == ["碼", "證", "頁", "驗"]
    assert other_script("第 1 页 共 2 页 · 验证码", "zh_Hans") == []
    assert english_words("Verification code PZ36CPLN · SHA-256 deadbeef "
                         "http://127.0.0.1:5000/verify/PZ36CPLN") == ["Verification", "code"]
