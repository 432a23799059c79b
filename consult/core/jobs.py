"""Slow work (printing hundreds of pages) done after the request has answered.

Three ways to run a job, chosen by ``JOBS_BACKEND`` (config.py):

- ``rq``: the job goes to an RQ queue in Redis (``REDIS_URL``) and is run by an RQ worker
  (``flask jobs worker``) on any machine; this is what production with several app instances
  uses, so no job is lost with the instance that accepted it and none competes with requests.
- ``thread``: a small thread pool inside the app process, each job in its own app context and
  database session: the embedded demo, which has no Redis.
- ``JOBS_INLINE``: within the request (tests).

Whichever runs it, a job's progress lives in the database, so any instance can show it. Callers
commit first and submit afterwards: a worker must find the job's rows committed.
"""

from __future__ import annotations

import importlib
import logging
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from flask import Flask, current_app, has_app_context

from consult.extensions import db

log = logging.getLogger(__name__)
_pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="consult-job")
# Only the project's own functions may be named in a queued job.
_ALLOWED_PREFIX = "consult."
_worker_app: Flask | None = None
# What builds that app under a bare ``rq worker``: the ``consult`` package, which Python
# imports before this module, sets it (``set_app_factory``), so the core names no app.
_app_factory: Callable[[], Flask] | None = None
# The process of ``flask jobs worker``, whose app (and its connection pool) work-horses inherit.
_worker_pid: int | None = None


def _run(app: Flask, function: Callable[..., Any], args: tuple[Any, ...]) -> None:
    with app.app_context():
        try:
            function(*args)
        except Exception:
            log.exception("job %s failed", getattr(function, "__name__", function))
        finally:
            db.session.remove()


def dotted_name(function: Callable[..., Any]) -> str:
    """``module.function``, the name a queued job carries instead of the function itself."""
    name = f"{function.__module__}.{function.__qualname__}"
    if not name.startswith(_ALLOWED_PREFIX) or "<" in name:
        raise ValueError(f"{name} cannot be queued: only module-level consult functions can")
    return name


def resolve(name: str) -> Callable[..., Any]:
    """The function a queued job names (only the project's own module-level functions)."""
    if not name.startswith(_ALLOWED_PREFIX):
        raise ValueError(f"{name!r} is not a consult function")
    module, _, attribute = name.rpartition(".")
    function = getattr(importlib.import_module(module), attribute)
    if not callable(function):
        raise ValueError(f"{name!r} is not callable")
    return function


def set_app_factory(factory: Callable[[], Flask]) -> None:
    """The function that builds the app a bare ``rq worker`` runs jobs in."""
    global _app_factory
    _app_factory = factory


def _app_for_worker() -> Flask:
    """The app a worker runs jobs in: the one whose context ``flask jobs worker`` pushed, or,
    under a bare ``rq worker``, one built from the environment (once per process)."""
    global _worker_app
    if has_app_context():
        return current_app._get_current_object()  # type: ignore[attr-defined]
    if _worker_app is None:
        if _app_factory is None:
            raise RuntimeError("no app factory: set_app_factory was not called")
        _worker_app = _app_factory()
    return _worker_app


def perform(name: str, *args: Any) -> None:
    """Run a queued job on an RQ worker: ``name`` is the function's dotted name.

    Exceptions propagate, so RQ records the job as failed (the print job itself also records
    its failure in the database)."""
    app = _app_for_worker()
    with app.app_context():
        if _worker_pid is not None and os.getpid() != _worker_pid:
            # A work-horse forked from ``flask jobs worker``: the connections it inherited
            # belong to the parent, so it starts a pool of its own (without closing theirs).
            db.engine.dispose(close=False)
        try:
            resolve(name)(*args)
        finally:
            db.session.remove()


def queue(app: Flask | None = None) -> Any:
    """The RQ queue of ``app`` (the current app by default)."""
    from redis import Redis
    from rq import Queue

    app = app or current_app._get_current_object()  # type: ignore[attr-defined]
    url = app.config.get("REDIS_URL")
    if not url:
        raise RuntimeError("JOBS_BACKEND is rq but REDIS_URL is not set")
    return Queue(app.config["JOBS_QUEUE"], connection=Redis.from_url(url),
                 default_timeout=int(app.config["JOBS_TIMEOUT_SECONDS"]))


def submit(function: Callable[..., Any], *args: Any) -> None:
    """Run ``function(*args)`` after the caller's commit; call it once the commit is done."""
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    if app.config.get("JOBS_INLINE"):
        function(*args)
        return
    backend = app.config.get("JOBS_BACKEND", "thread")
    if backend == "rq":
        job = queue(app).enqueue(perform, dotted_name(function), *args,
                                 description=f"{function.__name__}{args!r}")
        log.info("job %s queued as %s", function.__name__, job.id)
        return
    if backend != "thread":
        raise RuntimeError(f"JOBS_BACKEND must be rq or thread, not {backend!r}")
    _pool.submit(_run, app, function, args)


def run_worker(app: Flask, burst: bool = False, name: str | None = None) -> bool:
    """Work the app's queue in this process (``flask jobs worker``), each job in a forked
    work-horse that inherits the app. ``burst``: stop once the queue is empty. Returns whether
    any job was worked."""
    from rq import Worker

    global _worker_pid
    _worker_pid = os.getpid()
    jobs_queue = queue(app)
    worker = Worker([jobs_queue], connection=jobs_queue.connection, name=name)
    return bool(worker.work(burst=burst, with_scheduler=False))
