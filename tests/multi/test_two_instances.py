"""Two app instances behind one database and one Redis, as production runs them
(docs/deploy.md): two gunicorn processes on different ports, each with an instance directory of
its own, sharing only the database, Redis and the upload path.

Whatever one instance does, the other sees: a ballot, a session, a rate limit, an account lock,
an account switched off, and a print job queued on one, run by a real RQ worker process
(``flask jobs worker --burst``) and downloaded from the other.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import subprocess
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import redis
from rq import Queue
from rq.exceptions import NoSuchJobError
from rq.job import Job

from tests import live

REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
CODE_LIMIT = 3  # access-code attempts per minute and client, counted in Redis
LOCKOUT = 4  # wrong passwords in a row that lock an account, counted in the database


def _redis_or_skip() -> redis.Redis:
    client = redis.Redis.from_url(REDIS_URL)
    try:
        client.ping()
    except redis.RedisError:
        if os.environ.get("CI"):
            raise  # CI starts Redis (.ci/run): its absence there is a failure
        pytest.skip(f"no Redis at {REDIS_URL}")
    return client


@dataclass
class Pair:
    a: live.LiveServer
    b: live.LiveServer
    env: dict[str, str]
    seeded: dict[str, Any]
    workdir: Path


@pytest.fixture(scope="module")
def pair(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pair]:
    client = _redis_or_skip()
    workdir = Path(tmp_path_factory.mktemp("multi"))
    url, drop = live.fresh_database(database_url, workdir)
    # Names of our own in the shared Redis, so other runs' counters and jobs never mix in.
    tag = f"consult-multi-{secrets.token_hex(4)}"
    shared = {
        **os.environ, "DATABASE_URL": url, "CONSULT_CONFIG": "development",
        "SECRET_KEY": secrets.token_hex(32), "CONSULT_LANG": "en",
        "UPLOAD_PATH": str(workdir / "shared-uploads"),
        "REDIS_URL": REDIS_URL, "RATELIMIT_STORAGE_URI": REDIS_URL,
        "RATELIMIT_KEY_PREFIX": tag, "JOBS_QUEUE": tag, "JOBS_BACKEND": "rq",
        "ACCESS_CODE_RATE_LIMIT": f"{CODE_LIMIT} per minute",
        "LOGIN_RATE_LIMIT": "1000 per minute", "LOGIN_LOCKOUT_THRESHOLD": str(LOCKOUT),
    }
    shared.pop("JOBS_INLINE", None)

    def instance(name: str) -> dict[str, str]:
        directory = workdir / f"instance-{name}"  # nothing in it is shared
        directory.mkdir()
        return {**shared, "CONSULT_INSTANCE_DIR": str(directory)}

    env_a, env_b = instance("a"), instance("b")
    subprocess.run([str(live.VENV_BIN / "flask"), "--app", "wsgi", "db", "upgrade"], env=env_a,
                   cwd=live.ROOT, check=True, capture_output=True, timeout=300)
    a = live.serve(env_a, workers=2)
    try:
        b = live.serve(env_b, workers=2)
        try:
            seeded = live.seed_votes(a, 4, committee=1)
            yield Pair(a, b, shared, seeded, workdir)
        finally:
            b.stop()
    finally:
        a.stop()
        drop()
        jobs = Queue(tag, connection=client)
        for job_id in (jobs.finished_job_registry.get_job_ids()
                       + jobs.failed_job_registry.get_job_ids()):
            with contextlib.suppress(NoSuchJobError):
                Job.fetch(job_id, connection=client).delete()
        jobs.delete(delete_jobs=True)
        for key in client.scan_iter(f"*{tag}*"):
            client.delete(key)


def test_a_ballot_cast_on_one_is_seen_on_the_other(pair: Pair) -> None:
    vote = pair.seeded["votes"][0]
    consultation, items = vote["consultation"], vote["items"]
    resident = live.Browser(pair.a.url)
    resident.login("h000")
    form = resident.review_vote(consultation, {items[0]: "agree", items[1]: "disagree"})
    # Reviewed on A, confirmed on B (a load balancer may send the two requests anywhere):
    # the same browser's session holds there, and B shows the ballot.
    on_b = resident.clone(pair.b.url)
    confirmed = on_b.post(live.confirm_path(consultation), form)
    assert confirmed.status == 302, confirmed.status
    receipt = on_b.get(f"/consultations/{consultation}/ballot")
    assert receipt.status == 200, receipt.status
    assert "vote is recorded" in receipt.text
    assert "answer-agree" in receipt.text and "answer-disagree" in receipt.text

    committee = live.Browser(pair.b.url)
    committee.login(pair.seeded["committee"][0])
    listed = committee.get(f"/consultations/{consultation}/ballots")
    assert listed.status == 200
    assert "1 of 4 households have a ballot." in listed.text


def test_a_rate_limit_reached_on_one_holds_on_the_other(pair: Pair) -> None:
    on_a, on_b = live.Browser(pair.a.url), live.Browser(pair.b.url)

    def wrong_code(browser: live.Browser) -> int:
        page = browser.get("/code")
        return browser.post("/code", {"csrf_token": browser.csrf(page.text),
                                      "code": "AAAA-BBBB-CCCC"}).status

    # Alternate the instances: each alone stays under the limit, together they reach it.
    statuses = [wrong_code(on_a if n % 2 else on_b) for n in range(CODE_LIMIT)]
    assert 429 not in statuses, statuses
    assert wrong_code(on_a) == 429
    assert wrong_code(on_b) == 429


def test_a_lockout_counted_on_both_locks_on_both(pair: Pair) -> None:
    user = pair.seeded["users"][1]
    browsers = (live.Browser(pair.a.url), live.Browser(pair.b.url))
    for n in range(LOCKOUT):
        browser = browsers[n % 2]
        page = browser.get("/login")
        reply = browser.post("/login", {"csrf_token": browser.csrf(page.text),
                                        "username": user, "password": "wrong-password"})
        assert reply.status in (200, 429), reply.status  # the form again, with its error
    for browser in browsers:  # the right password is refused now, on either instance
        page = browser.get("/login")
        reply = browser.post("/login", {"csrf_token": browser.csrf(page.text),
                                        "username": user, "password": live.PASSWORD})
        assert reply.status != 302, "a locked account signed in"
        assert "locked" in reply.text


def test_a_session_made_on_one_works_and_ends_on_the_other(pair: Pair) -> None:
    member = live.Browser(pair.a.url)
    member.login(pair.seeded["committee"][0])
    consultation = pair.seeded["votes"][0]["consultation"]
    page = f"/consultations/{consultation}/ballots"
    on_b = member.clone(pair.b.url)
    assert on_b.get(page).status == 200

    # Signing out on B ends the browser's session everywhere: the cookie is gone.
    reply = on_b.post("/logout", {"csrf_token": on_b.csrf(on_b.get(page).text)})
    assert reply.status == 302
    on_a = on_b.clone(pair.a.url)
    assert on_a.get(page).status == 302  # to the sign-in page

    # An account switched off on one instance is signed out on both at once, whatever
    # cookie its browsers still hold.
    resident = live.Browser(pair.b.url)
    resident.login("h002")
    ballot = f"/consultations/{consultation}/vote"
    assert resident.get(ballot).status == 200
    assert resident.clone(pair.a.url).get(ballot).status == 200
    pair.a.python("""
from consult.accounts.models import User
db.session.execute(db.update(User).where(User.username == "h002").values(active=False))
db.session.commit()
""")
    assert resident.get(ballot).status == 302
    assert resident.clone(pair.a.url).get(ballot).status == 302


def test_a_print_job_queued_on_one_is_run_by_a_worker_and_served_by_the_other(
        pair: Pair) -> None:
    consultation = pair.seeded["votes"][0]["consultation"]
    member = live.Browser(pair.a.url)
    member.login(pair.seeded["committee"][0])
    token = member.csrf(member.get(f"/consultations/{consultation}").text)
    reply = member.post(f"/consultations/{consultation}/print/ballots", {"csrf_token": token})
    assert reply.status == 302, reply.status
    assert reply.location
    job = urllib.parse.urlsplit(reply.location).path  # /print-jobs/<id>

    # Queued in Redis, not printed by the instance: nothing happens until a worker runs.
    on_b = member.clone(pair.b.url)
    assert on_b.get(f"{job}/file").status == 404
    status = pair.a.python("""
from consult.notices.models import PrintJob
result = [j.status for j in db.session.scalars(db.select(PrintJob))]
""")
    assert status == ["queued"]

    worker = subprocess.run(
        [str(live.VENV_BIN / "flask"), "--app", "wsgi", "jobs", "worker", "--burst"],
        env={**pair.env, "CONSULT_INSTANCE_DIR": str(pair.workdir / "instance-worker")},
        cwd=live.ROOT, capture_output=True, text=True, timeout=300)
    assert worker.returncode == 0, worker.stderr
    assert "Worked the queue until it was empty." in worker.stdout

    page = on_b.get(job)
    assert page.status == 200
    assert "Ready" in page.text, page.text[:2000]
    with on_b.opener.open(f"{pair.b.url}{job}/file", timeout=60) as response:
        assert response.status == 200
        assert response.headers["Content-Type"] == "application/pdf"
        assert response.read().startswith(b"%PDF")
    printed = pair.b.python("""
from consult.notices.models import PrintJob
job = db.session.scalars(db.select(PrintJob)).one()
result = [job.status, job.done, job.total, job.sha256]
""")
    assert printed[0] == "done" and printed[1] == printed[2] == 4 and len(printed[3]) == 64
    # The file the other instance served lies on the shared upload path, the only place it is.
    files = sorted(p.name for p in (pair.workdir / "shared-uploads" / "print").glob("*.pdf"))
    assert files == [f"job-{job.rsplit('/', 1)[1]}.pdf"]


def test_nothing_is_kept_on_an_instances_own_disk(pair: Pair) -> None:
    """After all of the above, the instances' and the worker's own directories hold nothing:
    the database, Redis and the upload path are the only state (the print job's file is under
    the upload path, checked where the job ran)."""
    own = [pair.workdir / f"instance-{name}" for name in ("a", "b", "worker")]
    assert [d.name for d in own if not d.is_dir()] == []  # an empty listing must mean empty
    kept = [str(p.relative_to(pair.workdir)) for d in own for p in d.rglob("*") if p.is_file()]
    assert kept == []
