"""Big imports while households vote: 100,000 households uploaded on the web, and paper
ballots entered from the command line, against gunicorn on a database of the suite's kind.

No vote may wait more than a second and every vote must succeed, however big the file: the
imports check their file without the write lock and write it in short transactions (see
``consult.registry.service.import_households``). A file with a bad row writes nothing.
"""

from __future__ import annotations

import re
import secrets
import statistics
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from consult.core.models import utcnow
from consult.registry.models import Building, Compound, Household, ImportJob, StagedHousehold
from tests import live
from tests.reliability.conftest import Voters, sign_in, write_figures

VOTERS = 4
ROWS = 100_000
BALLOT_BUILDINGS = 5  # 2,000 households on the roll of the paper-ballot vote
LONGEST_WAIT_S = 1.0
JOB_DEADLINE_S = 300  # a stuck job fails the test instead of hanging it


@pytest.fixture
def live_server(database_url: str, tmp_path: Path,
                monkeypatch: pytest.MonkeyPatch) -> Iterator[live.LiveServer]:
    # The embedded set-up: two workers, jobs on a thread pool inside them (no Redis).
    monkeypatch.setenv("JOBS_BACKEND", "thread")
    server, stop = live.start(database_url, tmp_path, workers=2)
    try:
        yield server
    finally:
        stop()


def households_file(rows: int, bad_lines: dict[int, str] | None = None) -> bytes:
    """``rows`` new households of the seeded compound in 250 new buildings; ``bad_lines`` puts
    another area on some lines (line 2 is the first row)."""
    lines = ["小区,楼栋,单元,楼层,房号,专有部分面积,业主姓名,业主标识,联系电话"]
    for n in range(rows):
        building, rest = divmod(n, 400)
        unit, flat = divmod(rest, 200)
        floor, door = divmod(flat, 10)
        area = (bad_lines or {}).get(n + 2, f"{60 + n % 70}.{n % 100:02d}")
        lines.append(f"并发小区,导入{building + 1}号楼,{unit + 1},{floor + 1},"
                     f"{floor + 1}{door + 1:02d},{area},业主{n},,")
    return ("\n".join(lines) + "\n").encode()


def upload(browser: live.Browser, path: str, fields: dict[str, str], filename: str,
           data: bytes) -> live.Reply:
    """POST a multipart form with one file, as a browser's upload does."""
    boundary = secrets.token_hex(16)
    parts = [f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'
             .encode() for name, value in fields.items()]
    parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="file"; '
                 f'filename="{filename}"\r\nContent-Type: text/csv\r\n\r\n'.encode() + data
                 + b"\r\n")
    parts.append(f"--{boundary}--\r\n".encode())
    request = urllib.request.Request(
        browser.base + path, data=b"".join(parts), method="POST",
        headers={"Content-Type": f"multipart/form-data; boundary={boundary}",
                 "Accept-Language": "en"})
    try:
        with browser.opener.open(request, timeout=120) as response:
            return live.Reply(response.status, response.read().decode(), None)
    except urllib.error.HTTPError as exc:
        return live.Reply(exc.code, exc.read().decode(errors="replace"),
                          exc.headers.get("Location"))


def import_through_the_page(browser: live.Browser, compound_id: int, data: bytes
                            ) -> tuple[live.Reply, dict[str, Any]]:
    """Upload ``data`` on the compound's import page and follow the job's page, refreshing
    it as the browser does, until the import is over: returns the last page (the form again,
    with the problems, if it was refused) and what the job's page showed meanwhile."""
    form_path = f"/registry/compounds/{compound_id}/import"
    token = browser.csrf(browser.get(form_path).text)
    started = time.perf_counter()
    reply = upload(browser, form_path, {"csrf_token": token, "create_buildings": "y"},
                   "households.csv", data)
    answered = time.perf_counter() - started
    assert reply.status == 302 and reply.location and "/registry/imports/" in reply.location, (
        reply.status, reply.text[:500])
    job_page = reply.location
    seen: list[str] = []
    deadline = time.monotonic() + JOB_DEADLINE_S
    while time.monotonic() < deadline:
        page = browser.get(job_page)
        if page.status == 302:  # refused: back to the form
            assert page.location
            seen.append("back to the form")
            return browser.get(page.location), {"upload_answered_s": round(answered, 2),
                                                "seen": seen, "took_s": round(
                                                    time.perf_counter() - started, 1)}
        assert page.status == 200, page.status
        status = re.search(r'<p role="status">\s*(.*?)\s*</p>', page.text, re.S)
        seen.append(status.group(1).split("…")[0] if status else "finished")
        if 'http-equiv="refresh"' not in page.text:
            return page, {"upload_answered_s": round(answered, 2), "seen": seen,
                          "took_s": round(time.perf_counter() - started, 1)}
        time.sleep(0.25)  # the page refreshes itself every 2 s; a test need not wait that long
    raise AssertionError(f"the import did not finish in {JOB_DEADLINE_S} s: {seen[-3:]}")


_BALLOT_VOTE = """
from datetime import timedelta
from sqlalchemy import select
from consult.consultations import service
from consult.process import workflow
from consult.consultations.states import Action
from consult.core.models import utcnow
from consult.registry.models import Building, Compound
compound = db.session.scalars(select(Compound).where(Compound.name == "并发小区")).one()
buildings = [b.id for b in db.session.scalars(select(Building).where(
    Building.compound_id == compound.id, Building.name.in_(PARAMS["buildings"])))]
c = service.create(None, compound, service.settings(
    title="纸质票", summary="", rule_code="household_majority", secrecy="open",
    locale="zh_Hans", solicitation_deadline=None, vote_deadline=None, publicity_days=7,
    proxy_cap=None))
for title in ("管道", "路面"):
    service.add_item(None, c, service.item_data(title=title, description="", cost="100"))
for action in (Action.START_SOLICITING, Action.START_PROPOSING, Action.START_DISCUSSION):
    workflow.apply(c, action, None)
service.set_scope(None, c, [(b, None) for b in buildings])
c.vote_deadline = utcnow() + timedelta(days=1)
workflow.apply(c, Action.OPEN_VOTE, None)
db.session.commit()
result = c.id
"""


def test_big_imports_while_households_vote_keep_every_vote_quick_and_write_all_or_nothing(
        live_server, live_database, db_kind, tmp_path):
    server = live_server
    seeded = live.seed_votes(server, VOTERS, voted=1, committee=1)
    vote = seeded["votes"][0]
    database = live_database(server)
    with database.engine.connect() as conn:
        compound_id = conn.scalar(sa.select(Compound.id).where(Compound.name == "并发小区"))

    def counts() -> dict[str, int]:
        with database.engine.connect() as conn:
            return {
                "households": conn.scalar(sa.select(sa.func.count(Household.id))),
                "buildings": conn.scalar(sa.select(sa.func.count(Building.id))),
                "staged": conn.scalar(sa.select(sa.func.count(StagedHousehold.id))),
            }

    before = counts()
    committee = sign_in(server, seeded["committee"])[seeded["committee"][0]]
    bad = households_file(ROWS, {50_002: "五十", ROWS + 1: "-3"})
    good = households_file(ROWS)
    figures: dict[str, Any] = {"voters": VOTERS, "rows": ROWS, "file_bytes": len(good)}
    with Voters(server, vote["consultation"], vote["items"], seeded["users"]) as voters:
        while len(voters.confirmed) < VOTERS and not voters.errors:  # voting is under way
            time.sleep(0.05)

        # A file with two bad rows among 100,000: refused, every problem by line and column,
        # nothing written; the user is back on the form.
        start = time.perf_counter()
        page, figures["bad_file"] = import_through_the_page(committee, compound_id, bad)
        figures["bad_file"]["votes_meanwhile"] = voters.votes_between(start, time.perf_counter())
        assert page.status == 200 and 'enctype="multipart/form-data"' in page.text
        assert "2 problems found; nothing was imported." in page.text
        assert re.search(r"<td>50002</td><td>F \(专有部分面积\)</td><td>“五十” is not a number",
                         page.text)
        assert re.search(r"<td>100001</td><td>F \(专有部分面积\)</td><td>The area must be",
                         page.text)
        assert counts() == before

        # The same file corrected: imported whole.
        start = time.perf_counter()
        page, figures["good_file"] = import_through_the_page(committee, compound_id, good)
        figures["good_file"]["votes_meanwhile"] = voters.votes_between(start,
                                                                       time.perf_counter())
        assert f"Import finished: {ROWS:,} new, 0 changed, 0 unchanged." in page.text
        assert "250 new buildings." in page.text
        assert any(s.startswith(("Checking row", "Checked. Writing"))
                   for s in figures["good_file"]["seen"]), figures["good_file"]["seen"]
        after = counts()
        assert after["households"] == before["households"] + ROWS
        assert after["buildings"] == before["buildings"] + 250
        # The job clears its staging table after it reports the import done.
        deadline = time.monotonic() + JOB_DEADLINE_S
        while counts()["staged"] and time.monotonic() < deadline:
            time.sleep(0.1)
        assert counts()["staged"] == 0

        # Paper ballots of 2,000 households entered from the command line.
        ballot_vote = server.python(
            f"PARAMS = {{'buildings': {[f'导入{n}号楼' for n in range(1, 6)]!r}}}\n"
            + _BALLOT_VOTE)
        ballots = ["楼栋,单元,房号,议项,表决意见,方式,编号"]
        for n in range(BALLOT_BUILDINGS * 400):
            building, rest = divmod(n, 400)
            unit, flat = divmod(rest, 200)
            floor, door = divmod(flat, 10)
            for item in (1, 2):
                ballots.append(f"导入{building + 1}号楼,{unit + 1},{floor + 1}{door + 1:02d},"
                               f"{item},同意,书面,P-{n}")
        path = tmp_path / "ballots.csv"
        path.write_text("\n".join(ballots) + "\n", encoding="utf-8")
        start = time.perf_counter()
        done = server.flask("ballots", "import", str(ballot_vote), str(path))
        figures["paper_ballots"] = {"households": BALLOT_BUILDINGS * 400, "rows": 2 * 2000,
                                    "took_s": round(time.perf_counter() - start, 1),
                                    "votes_meanwhile": voters.votes_between(
                                        start, time.perf_counter())}
        assert done.returncode == 0, done.stderr
        assert "Recorded the ballots of 2000 households (2000 new, 0 changed)" in done.stdout
    assert not voters.errors, voters.errors[:5]

    # Every vote succeeded, and none waited long.
    times = sorted(seconds for _start, seconds, _what in voters.requests)
    slowest = max(voters.requests, key=lambda r: r[1])
    figures["votes"] = {
        "acknowledged": len(voters.confirmed), "requests": len(times),
        "median_ms": round(statistics.median(times) * 1000, 1),
        "p99_ms": round(times[int(len(times) * 0.99) - 1] * 1000, 1),
        "slowest_ms": round(slowest[1] * 1000, 1), "slowest": slowest[2]}
    write_figures("imports", db_kind, figures)
    assert all(f["votes_meanwhile"] > 0 for f in (figures["bad_file"], figures["good_file"],
                                                  figures["paper_ballots"])), figures
    assert slowest[1] < LONGEST_WAIT_S, figures["votes"]

    # What was written is whole: the ballots and the audit chain check out.
    assert len(database.check_whole(vote["consultation"])) == VOTERS
    assert len(database.check_whole(ballot_vote)) == 2000
    with database.engine.connect() as conn:
        jobs = conn.execute(sa.select(ImportJob.status, ImportJob.data.is_(None))
                            .order_by(ImportJob.id)).all()
    assert jobs == [("failed", True), ("done", True)]  # the uploads are not kept
    verified = server.flask("audit", "verify")
    assert verified.returncode == 0, verified.stdout + verified.stderr


def test_an_import_cut_off_by_a_killed_server_writes_nothing(live_server, live_database,
                                                            tmp_path):
    """SIGKILL to every gunicorn process while a big upload is being staged: after the
    restart the registry is as before, the job says it was interrupted once it is stale, and
    the next import clears what it staged."""
    server = live_server
    seeded = live.seed_votes(server, 1, committee=1)
    database = live_database(server)
    with database.engine.connect() as conn:
        compound_id = conn.scalar(sa.select(Compound.id).where(Compound.name == "并发小区"))
        households_before = conn.scalar(sa.select(sa.func.count(Household.id)))
    committee = sign_in(server, seeded["committee"])[seeded["committee"][0]]
    form_path = f"/registry/compounds/{compound_id}/import"
    token = committee.csrf(committee.get(form_path).text)
    reply = upload(committee, form_path, {"csrf_token": token, "create_buildings": "y"},
                   "households.csv", households_file(ROWS))
    assert reply.status == 302
    deadline = time.monotonic() + JOB_DEADLINE_S
    while time.monotonic() < deadline:  # until rows are being staged
        with database.engine.connect() as conn:
            if conn.scalar(sa.select(sa.func.count(StagedHousehold.id))):
                break
        time.sleep(0.05)
    server.kill()
    with database.engine.connect() as conn:
        assert conn.scalar(sa.select(sa.func.count(StagedHousehold.id))) > 0
        assert conn.scalar(sa.select(sa.func.count(Household.id))) == households_before
        # The job's process is gone; after IMPORT_JOB_STALLED_AFTER it counts as interrupted.
        conn.execute(sa.update(ImportJob).values(updated_at=utcnow() - timedelta(hours=1)))
        conn.commit()
    restarted = live.serve(server.env, workers=1)
    server.process = restarted.process  # the fixture stops the new one
    server.url = restarted.url
    small = tmp_path / "small.csv"
    small.write_bytes(households_file(10))
    done = subprocess.run([str(live.VENV_BIN / "flask"), "--app", "wsgi", "registry",
                           "import-households", str(small), "--create-buildings"],
                          env=server.env, cwd=live.ROOT, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    with database.engine.connect() as conn:
        assert conn.scalar(sa.select(sa.func.count(StagedHousehold.id))) == 0
        assert conn.scalar(sa.select(sa.func.count(Household.id))) == households_before + 10
        jobs = conn.execute(sa.select(ImportJob.status, ImportJob.message, ImportJob.data)
                            .order_by(ImportJob.id)).all()
    assert [j[0] for j in jobs] == ["failed", "done"]
    assert "server was restarted" in jobs[0][1] and jobs[0][2] is None
