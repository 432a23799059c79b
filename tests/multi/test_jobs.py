"""Choosing how a job runs (consult.core.jobs), and what a queued job may name."""

from __future__ import annotations

import secrets
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from rq import Queue

from consult.core import jobs
from consult.process import printing
from tests.multi.test_two_instances import REDIS_URL, _redis_or_skip


@pytest.fixture
def rq_app(app: Flask) -> Iterator[Flask]:
    client = _redis_or_skip()
    name = f"consult-jobs-{secrets.token_hex(4)}"
    saved = {k: app.config.get(k) for k in ("JOBS_INLINE", "JOBS_BACKEND", "REDIS_URL",
                                            "JOBS_QUEUE")}
    app.config.update(JOBS_INLINE=False, JOBS_BACKEND="rq", REDIS_URL=REDIS_URL,
                      JOBS_QUEUE=name)
    try:
        yield app
    finally:
        app.config.update(saved)
        Queue(name, connection=client).delete(delete_jobs=True)


def test_the_rq_backend_queues_the_job_by_name_and_runs_nothing_itself(rq_app: Flask) -> None:
    with rq_app.app_context():
        jobs.submit(printing.run_job, 12345)
        queued = jobs.queue()
        assert queued.count == 1
        job = queued.jobs[0]
    assert job.func_name == "consult.core.jobs.perform"
    assert job.args == ("consult.process.printing.run_job", 12345)
    assert job.timeout == rq_app.config["JOBS_TIMEOUT_SECONDS"]


def test_a_queued_job_names_only_the_projects_own_functions() -> None:
    assert jobs.resolve("consult.process.printing.run_job") is printing.run_job
    for name in ("os.system", "subprocess.run", "builtins.eval"):
        with pytest.raises(ValueError):
            jobs.resolve(name)
    with pytest.raises(ValueError):
        jobs.dotted_name(print)
    with pytest.raises(ValueError):
        jobs.dotted_name(lambda: None)


def test_an_unknown_backend_is_refused(app: Flask) -> None:
    saved = app.config["JOBS_INLINE"], app.config.get("JOBS_BACKEND")
    app.config.update(JOBS_INLINE=False, JOBS_BACKEND="celery")
    try:
        with app.app_context(), pytest.raises(RuntimeError, match="JOBS_BACKEND"):
            jobs.submit(printing.run_job, 1)
    finally:
        app.config["JOBS_INLINE"], app.config["JOBS_BACKEND"] = saved



def test_a_bare_worker_builds_the_app_with_the_packages_factory() -> None:
    """A plain ``rq worker`` imports only the job's module; the package, imported first, tells
    it how to build the app (the core itself names no app)."""
    probe = ("import consult.core.jobs as jobs, consult; "
             "assert jobs._app_factory is consult.create_app")
    done = subprocess.run([sys.executable, "-c", probe], cwd=Path(__file__).parents[2],
                          capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
