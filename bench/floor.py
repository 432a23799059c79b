"""The floor probe: the least any web app on this stack could do for a vote.

A bench-only Flask app on the standard library's ``sqlite3`` (no ORM, no templates, no
translations, no sessions table), served by gunicorn beside the real app, with the vote's
three-request shape and the vote's whole write set:

1. ``GET /floor/<consultation>/vote``: the signed-in household (a signed cookie), its
   consultation's items read, a form with a CSRF token;
2. ``POST`` of the answers: CSRF and the answers checked against the items, a review form with
   a one-time submission token;
3. ``POST …/confirm``: checked again, then, under ``BEGIN IMMEDIATE``, the ballot inserted or
   its version raised, its choices replaced, and an audit event chained to the previous one
   (SHA-256 over the canonical JSON of its fields and the previous hash) with the head moved;
   COMMIT (WAL, ``synchronous=FULL`` as the app); a 302.

The vote's throughput against this one says how far the app is from what its writes cost.
Never part of the app: ``bench.floor:app`` is only served by the bench (``serve``), on a
database file of its own (``FLOOR_DB``).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
import sqlite3
import threading
from datetime import UTC, datetime
from functools import cache
from html import escape
from pathlib import Path
from typing import Any

from flask import Flask, abort, g, make_response, redirect, request
from itsdangerous import BadSignature, URLSafeSerializer

SCHEMA = """
CREATE TABLE IF NOT EXISTS item (id INTEGER PRIMARY KEY, consultation_id INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS ix_item_consultation ON item (consultation_id);
CREATE TABLE IF NOT EXISTS ballot (
    id INTEGER PRIMARY KEY, consultation_id INTEGER NOT NULL, round INTEGER NOT NULL,
    household TEXT NOT NULL, version INTEGER NOT NULL, cast_at TEXT NOT NULL,
    UNIQUE (consultation_id, round, household));
CREATE TABLE IF NOT EXISTS ballot_choice (
    ballot_id INTEGER NOT NULL, item_id INTEGER NOT NULL, choice TEXT NOT NULL,
    PRIMARY KEY (ballot_id, item_id));
CREATE TABLE IF NOT EXISTS audit_event (
    seq INTEGER PRIMARY KEY, created_at TEXT NOT NULL, actor TEXT NOT NULL,
    action TEXT NOT NULL, object_id TEXT NOT NULL, payload TEXT NOT NULL,
    prev_hash TEXT NOT NULL, hash TEXT NOT NULL UNIQUE);
CREATE TABLE IF NOT EXISTS audit_head (id INTEGER PRIMARY KEY, seq INTEGER, hash TEXT);
INSERT OR IGNORE INTO audit_head VALUES (1, 0, printf('%.64d', 0));
"""
CHOICES = frozenset({"agree", "disagree", "abstain"})
_local = threading.local()


def setup(path: str, items: dict[int, list[int]]) -> None:
    """Create the probe's tables in ``path`` with the consultations' items (before serving)."""
    with sqlite3.connect(path) as connection:
        connection.execute("PRAGMA journal_mode=WAL")
        connection.executescript(SCHEMA)
        connection.executemany("INSERT OR IGNORE INTO item VALUES (?, ?)", [
            (item, consultation) for consultation, ids in items.items() for item in ids])


def _db() -> sqlite3.Connection:
    connection = getattr(_local, "connection", None)
    if connection is None:
        connection = sqlite3.connect(os.environ["FLOOR_DB"], isolation_level=None,
                                     check_same_thread=False)
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("PRAGMA synchronous=FULL")
        connection.execute("PRAGMA busy_timeout=30000")
        _local.connection = connection
    return connection


app = Flask(__name__)


@cache
def _secret() -> str:
    return os.environ["FLOOR_SECRET"]  # the same in every worker: each one checks the cookies


def _signer() -> URLSafeSerializer:
    return URLSafeSerializer(_secret(), salt="floor")


def _household() -> str:
    try:
        return str(_signer().loads(request.cookies.get("floor", "")))
    except BadSignature:
        abort(403)


def _token(kind: str, household: str) -> str:
    return hmac.new(_secret().encode(), f"{kind}:{household}".encode(),
                    hashlib.sha256).hexdigest()


def _items(consultation: int) -> list[int]:
    rows = _db().execute("SELECT id FROM item WHERE consultation_id = ? ORDER BY id",
                         (consultation,)).fetchall()
    if not rows:
        abort(404)
    return [row[0] for row in rows]


def _answers(items: list[int]) -> dict[int, str]:
    answers = {item: request.form.get(f"item_{item}", "") for item in items}
    if any(choice not in CHOICES for choice in answers.values()):
        abort(400)
    return answers


def _form(action: str, household: str, answers: dict[int, str], submission: str = "") -> str:
    fields = "".join(f'<input type="hidden" name="item_{item}" value="{escape(choice)}">'
                     for item, choice in answers.items())
    extra = (f'<input name="submission" type="hidden" value="{submission}">'
             if submission else "")
    return (f'<!doctype html><form method="post" action="{escape(action)}">'
            f'<input name="csrf_token" type="hidden" value="{_token("csrf", household)}">'
            f"{extra}{fields}<button>send</button></form>")


@app.get("/floor/login/<household>")
def login(household: str) -> Any:
    response = make_response("ok")
    response.set_cookie("floor", _signer().dumps(household))
    return response


@app.route("/floor/<int:consultation>/vote", methods=["GET", "POST"])
def vote(consultation: int) -> str:
    household = _household()
    items = _items(consultation)
    if request.method == "GET":
        return _form(request.path, household, dict.fromkeys(items, ""))
    if request.form.get("csrf_token") != _token("csrf", household):
        abort(400)
    answers = _answers(items)
    g.submission = secrets.token_hex(8)
    return _form(f"{request.path}/confirm", household, answers,
                 f"{g.submission}.{_token(g.submission, household)}")


@app.post("/floor/<int:consultation>/vote/confirm")
def confirm(consultation: int) -> Any:
    household = _household()
    if request.form.get("csrf_token") != _token("csrf", household):
        abort(400)
    nonce, _dot, mac = request.form.get("submission", "").partition(".")
    if not nonce or mac != _token(nonce, household):
        abort(400)
    answers = _answers(_items(consultation))
    now = datetime.now(UTC).isoformat()
    payload = json.dumps({"consultation_id": consultation, "household": household,
                          "choices": {str(k): v for k, v in answers.items()}},
                         sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    db = _db()
    db.execute("BEGIN IMMEDIATE")
    try:
        ballot = db.execute(
            "INSERT INTO ballot (consultation_id, round, household, version, cast_at) "
            "VALUES (?, 1, ?, 1, ?) ON CONFLICT (consultation_id, round, household) "
            "DO UPDATE SET version = version + 1, cast_at = excluded.cast_at RETURNING id",
            (consultation, household, now)).fetchone()[0]
        db.execute("DELETE FROM ballot_choice WHERE ballot_id = ?", (ballot,))
        db.executemany("INSERT INTO ballot_choice VALUES (?, ?, ?)",
                       [(ballot, item, choice) for item, choice in answers.items()])
        seq, prev = db.execute("SELECT seq, hash FROM audit_head WHERE id = 1").fetchone()
        fields = json.dumps([seq + 1, now, household, "ballot.cast", str(ballot), payload, prev],
                            separators=(",", ":"), ensure_ascii=False)
        digest = hashlib.sha256(fields.encode()).hexdigest()
        db.execute("INSERT INTO audit_event VALUES (?, ?, ?, 'ballot.cast', ?, ?, ?, ?)",
                   (seq + 1, now, household, str(ballot), payload, prev, digest))
        db.execute("UPDATE audit_head SET seq = ?, hash = ? WHERE id = 1", (seq + 1, digest))
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise
    return redirect(f"/floor/{consultation}/ballot")


def counts(path: Path) -> tuple[int, int]:
    """Ballots and audit events the probe wrote (checked after the run)."""
    with sqlite3.connect(path) as connection:
        ballots = connection.execute("SELECT COUNT(*) FROM ballot").fetchone()[0]
        events = connection.execute("SELECT COUNT(*) FROM audit_event").fetchone()[0]
    return ballots, events
