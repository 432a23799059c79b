"""The SMS adapter (Tencent Cloud SMS API 3.0, ``SendSms``) against a local HTTP server that
checks the request as the provider documents it: headers, JSON body, TC3-HMAC-SHA256."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from sqlalchemy import select

from consult.extensions import db
from consult.notifications import events
from consult.notifications import service as notifications
from consult.notifications.commands import send_pending
from consult.notifications.models import OutboxMessage
from tests import factories

SECRET_ID, SECRET_KEY = "AKIDtest", "secret-key-for-tests"


def _hmac(key: bytes, text: str) -> bytes:
    return hmac.new(key, text.encode("utf-8"), hashlib.sha256).digest()


def expected_authorization(headers: Any, body: bytes) -> str:
    """The Authorization header as Tencent Cloud's API 3.0 signature document defines it,
    computed here from what the server received."""
    timestamp = int(headers["X-TC-Timestamp"])
    date = datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d")
    canonical_headers = (f"content-type:{headers['Content-Type']}\n"
                         f"host:{headers['Host']}\n")
    canonical_request = "\n".join(["POST", "/", "", canonical_headers, "content-type;host",
                                   hashlib.sha256(body).hexdigest()])
    scope = f"{date}/sms/tc3_request"
    string_to_sign = "\n".join(["TC3-HMAC-SHA256", str(timestamp), scope,
                                hashlib.sha256(canonical_request.encode()).hexdigest()])
    key = _hmac(_hmac(_hmac(("TC3" + SECRET_KEY).encode(), date), "sms"), "tc3_request")
    signature = hmac.new(key, string_to_sign.encode(), hashlib.sha256).hexdigest()
    return (f"TC3-HMAC-SHA256 Credential={SECRET_ID}/{scope}, "
            f"SignedHeaders=content-type;host, Signature={signature}")


class Provider:
    """What the fake provider received, and whether each request was signed correctly."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.fail_next = False


@pytest.fixture
def provider(app: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[Provider]:
    state = Provider()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            signed = self.headers["Authorization"] == expected_authorization(self.headers, body)
            state.requests.append({"path": self.path, "headers": self.headers,
                                   "json": json.loads(body), "signed": signed})
            if not signed:
                answer = {"Response": {"Error": {"Code": "AuthFailure.SignatureFailure",
                                                 "Message": "bad signature"}}}
            elif state.fail_next:
                state.fail_next = False
                answer = {"Response": {"Error": {"Code": "LimitExceeded", "Message": "busy"}}}
            else:
                answer = {"Response": {"SendStatusSet": [{"Code": "Ok", "Message": "send success"}],
                                       "RequestId": "r-1"}}
            data = json.dumps(answer).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    for name, value in {
        "SMS_PROVIDER": "tencent", "SMS_ENDPOINT": f"http://127.0.0.1:{server.server_port}/",
        "SMS_SECRET_ID": SECRET_ID, "SMS_SECRET_KEY": SECRET_KEY, "SMS_APP_ID": "1400000001",
        "SMS_SIGN_NAME": "议事厅", "SMS_TEMPLATE_ID": "123456", "SMS_REGION": "ap-guangzhou",
        "PUBLIC_URL": "https://yishi.example.org",
    }.items():
        monkeypatch.setitem(app.config, name, value)
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()


def test_sms_is_off_without_a_provider(compound):
    user = factories.make_user("resident", household=compound.buildings[0].households[0])
    notifications.notify(events.BALLOT_CORRECTED, [user], {"consultation": "x"}, "/", "off")
    assert db.session.scalars(select(OutboxMessage)).all() == []


def test_the_sms_request_is_signed_and_shaped_as_the_provider_documents(compound, provider):
    user = factories.make_user("resident", household=compound.buildings[0].households[0])
    user.household.phone = "13812345678"
    notifications.notify(events.BALLOT_CORRECTED, [user], {"consultation": "加装电梯"},
                         "/consultations/7", "sms-1")
    [row] = db.session.scalars(select(OutboxMessage)).all()
    assert (row.channel, row.address) == ("sms", "13812345678")
    provider.fail_next = True  # the provider refuses once: tried again later
    first = send_pending()
    assert (first.sent, first.failed) == (0, 1)
    assert "LimitExceeded" in (row.last_error or "")
    row.next_attempt_at = row.next_attempt_at.replace(year=2000)  # due again now
    db.session.flush()
    assert send_pending().sent == 1
    assert send_pending().sent == 0
    assert len(provider.requests) == 2
    request = provider.requests[-1]
    assert request["signed"], request["headers"]["Authorization"]
    headers = request["headers"]
    assert headers["X-TC-Action"] == "SendSms" and headers["X-TC-Version"] == "2021-01-11"
    assert headers["X-TC-Region"] == "ap-guangzhou"
    assert headers["Content-Type"] == "application/json; charset=utf-8"
    body = request["json"]
    assert body["PhoneNumberSet"] == ["+8613812345678"]
    assert (body["SmsSdkAppId"], body["SignName"], body["TemplateId"]) == (
        "1400000001", "议事厅", "123456")
    assert "加装电梯" in body["TemplateParamSet"][0]
    assert body["TemplateParamSet"][1] == "https://yishi.example.org/consultations/7"


def test_a_wrong_key_is_refused_by_the_provider_and_not_marked_sent(compound, provider,
                                                                    monkeypatch, app):
    monkeypatch.setitem(app.config, "SMS_SECRET_KEY", "not-the-key")
    user = factories.make_user("resident", household=compound.buildings[0].households[0])
    notifications.notify(events.BALLOT_CORRECTED, [user], {"consultation": "x"}, "/", "bad")
    assert send_pending().failed == 1
    assert provider.requests[-1]["signed"] is False
    [row] = db.session.scalars(select(OutboxMessage)).all()
    assert row.sent_at is None and "SignatureFailure" in (row.last_error or "")
