"""Idempotency-Key: a change sent again with the same key gets the first answer.

A phone on a bad network cannot tell a lost request from a lost answer, so it sends the
change again with the same key. The key is kept per account with a fingerprint of the request
(method, path, JSON body) and the answer, in the transaction of the change itself: either both
are committed or neither. The same key with the same request replays the answer; the same key
with another request is refused (409 ``idempotency_key_reused``). A refused change (invalid
input, vote closed) is rolled back with its key, so the key may be used again.
"""

from __future__ import annotations

import hashlib
import json
from datetime import timedelta
from typing import Any

from flask import Response, request
from flask_babel import gettext as _
from sqlalchemy import delete

from consult.api.models import IdempotentRequest
from consult.core.database import insert_or_lock
from consult.core.errors import Conflict
from consult.core.models import utcnow
from consult.extensions import db

HEADER = "Idempotency-Key"
# Keys older than this are forgotten (a retry comes within minutes).
KEEP = timedelta(days=1)


class KeyReused(Conflict):
    code = "idempotency_key_reused"


def fingerprint() -> str:
    """The request a key stands for: method, path and body (as JSON, whatever its spacing)."""
    body = request.get_json(silent=True)
    text = json.dumps([request.method, request.path, body], sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def begin(user: Any, key: str) -> tuple[IdempotentRequest, Response | None]:
    """Claim ``key`` for this request: the claim, and the first answer to replay if the same
    request came before. Raises KeyReused for another request under the same key. A second
    copy sent while the first is under way waits for it (the row is locked)."""
    now = utcnow()
    db.session.execute(delete(IdempotentRequest).where(
        IdempotentRequest.user_id == user.id, IdempotentRequest.created_at < now - KEEP))
    wanted = fingerprint()
    claim, created = insert_or_lock(IdempotentRequest, {"user_id": user.id, "key": key},
                                    {"request_hash": wanted, "created_at": now})
    if created:
        return claim, None
    if claim.request_hash != wanted:
        raise KeyReused(_("This Idempotency-Key was used for another request. Use a new key "
                          "for each change."))
    if claim.status is None or claim.body is None:  # not answered: take it over
        return claim, None
    return claim, Response(claim.body, status=claim.status, mimetype="application/json",
                           headers={"Idempotent-Replayed": "true"})


def finish(claim: IdempotentRequest, status: int, body: Any) -> None:
    """Keep the answer with the claim (flushed, committed with the change)."""
    claim.status = status
    claim.body = json.dumps(body, ensure_ascii=False, separators=(",", ":"))
    db.session.flush()
