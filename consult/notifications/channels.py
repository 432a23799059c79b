"""Outbound channels: email over SMTP, and SMS through a provider adapter (Tencent Cloud SMS,
API 3.0 ``SendSms`` signed with TC3-HMAC-SHA256). Each sends one outbox row and raises
SendFailed when the message did not go; the outbox then tries again later.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import smtplib
import urllib.error
import urllib.request
from collections.abc import Mapping
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import make_msgid
from typing import Any
from urllib.parse import urlsplit

from flask import current_app
from flask_babel import force_locale
from flask_babel import gettext as _

from consult.notifications import events
from consult.notifications.models import Channel, OutboxMessage


class SendFailed(Exception):
    """The message did not go; the text says why (kept as the row's last error)."""


def enabled_channels(config: Mapping[str, Any]) -> set[Channel]:
    """The channels this installation is set up for: none unless configured."""
    found = set()
    if config.get("SMTP_HOST"):
        found.add(Channel.EMAIL)
    if config.get("SMS_PROVIDER"):
        found.add(Channel.SMS)
    return found


def absolute(link: str) -> str:
    """The link as an address a recipient can open from outside the site."""
    base = (current_app.config.get("PUBLIC_URL") or "http://127.0.0.1:5000").rstrip("/")
    return base + link if link.startswith("/") else link


def compose(row: OutboxMessage) -> tuple[str, str]:
    """Subject and text of a row, in its recipient's language."""
    params = json.loads(row.params_json or "{}")
    with force_locale(row.locale):
        subject = events.title(row.event, params)
        text = "\n\n".join(part for part in (
            events.body(row.event, params),
            _("Open the page: %(link)s", link=absolute(row.link)) if row.link else "",
            _("You receive this because of your notification preferences on the consultation "
              "platform; change them there."),
        ) if part)
    return subject, text


# --- email ------------------------------------------------------------------------------------


def send_email(row: OutboxMessage) -> None:
    """Send the row by SMTP (SMTP_HOST, SMTP_PORT, SMTP_FROM; SMTP_USER/SMTP_PASSWORD and
    SMTP_STARTTLS when set)."""
    config = current_app.config
    subject, text = compose(row)
    message = EmailMessage()
    message["From"] = config["SMTP_FROM"]
    message["To"] = row.address
    message["Subject"] = subject
    # The same id on every attempt: a mail system that did receive an attempt reported as
    # failed can tell the retry is the same message.
    message["Message-ID"] = make_msgid(idstring=f"outbox-{row.id}",
                                       domain=str(config["SMTP_FROM"]).rpartition("@")[2] or None)
    message["Content-Language"] = row.locale.replace("_", "-")
    message.set_content(text)
    try:
        with smtplib.SMTP(config["SMTP_HOST"], int(config["SMTP_PORT"]),
                          timeout=float(config["SMTP_TIMEOUT_SECONDS"])) as smtp:
            if config.get("SMTP_STARTTLS"):
                smtp.starttls()
            if config.get("SMTP_USER"):
                smtp.login(config["SMTP_USER"], config.get("SMTP_PASSWORD") or "")
            smtp.send_message(message)
    except (OSError, smtplib.SMTPException) as exc:
        raise SendFailed(f"smtp: {exc}"[:500]) from exc


# --- SMS: Tencent Cloud SMS API 3.0 -----------------------------------------------------------

TENCENT_SERVICE = "sms"
TENCENT_VERSION = "2021-01-11"


def tc3_signature(secret_key: str, date: str, string_to_sign: str) -> str:
    """TC3-HMAC-SHA256: the key derived from the secret, the day and the service signs."""
    def sign(key: bytes, message: str) -> bytes:
        return hmac.new(key, message.encode(), hashlib.sha256).digest()

    secret_date = sign(("TC3" + secret_key).encode(), date)
    secret_signing = sign(sign(secret_date, TENCENT_SERVICE), "tc3_request")
    return hmac.new(secret_signing, string_to_sign.encode(), hashlib.sha256).hexdigest()


def tencent_request(config: Mapping[str, Any], phone: str, template_params: list[str],
                    timestamp: int) -> tuple[str, bytes, dict[str, str]]:
    """The ``SendSms`` request: URL, JSON body and signed headers."""
    endpoint = str(config.get("SMS_ENDPOINT") or "https://sms.tencentcloudapi.com")
    host = urlsplit(endpoint).netloc
    payload = json.dumps({
        "PhoneNumberSet": [phone if phone.startswith("+") else f"+86{phone}"],
        "SmsSdkAppId": config["SMS_APP_ID"], "SignName": config["SMS_SIGN_NAME"],
        "TemplateId": config["SMS_TEMPLATE_ID"], "TemplateParamSet": template_params,
    }, ensure_ascii=False, separators=(",", ":")).encode()
    content_type = "application/json; charset=utf-8"
    canonical = "\n".join([
        "POST", "/", "", f"content-type:{content_type}\nhost:{host}\n", "content-type;host",
        hashlib.sha256(payload).hexdigest()])
    date = datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d")
    scope = f"{date}/{TENCENT_SERVICE}/tc3_request"
    string_to_sign = "\n".join(["TC3-HMAC-SHA256", str(timestamp), scope,
                                hashlib.sha256(canonical.encode()).hexdigest()])
    signature = tc3_signature(str(config["SMS_SECRET_KEY"]), date, string_to_sign)
    headers = {
        "Authorization": (f"TC3-HMAC-SHA256 Credential={config['SMS_SECRET_ID']}/{scope}, "
                          f"SignedHeaders=content-type;host, Signature={signature}"),
        "Content-Type": content_type, "Host": host, "X-TC-Action": "SendSms",
        "X-TC-Timestamp": str(timestamp), "X-TC-Version": TENCENT_VERSION,
        "X-TC-Region": str(config.get("SMS_REGION") or "ap-guangzhou"),
    }
    return endpoint, payload, headers


def send_sms(row: OutboxMessage, now: datetime) -> None:
    """Send the row by the configured SMS provider (only ``tencent`` is implemented)."""
    config = current_app.config
    provider = config.get("SMS_PROVIDER")
    if provider != "tencent":
        raise SendFailed(f"sms: unknown provider {provider!r}")
    subject, _text = compose(row)
    # The template holds the fixed wording; its two parameters are the headline and the link.
    url, payload, headers = tencent_request(
        config, row.address, [subject[:60], absolute(row.link)], int(now.timestamp()))
    if urlsplit(url).scheme not in ("http", "https"):
        raise SendFailed("sms: SMS_ENDPOINT must be an http(s) address")
    request = urllib.request.Request(  # noqa: S310 - checked just above
        url, data=payload, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(  # noqa: S310 - the configured provider's endpoint
                request, timeout=float(config["SMTP_TIMEOUT_SECONDS"])) as response:
            answer = json.loads(response.read().decode() or "{}").get("Response", {})
    except (OSError, ValueError, urllib.error.URLError) as exc:
        raise SendFailed(f"sms: {exc}"[:500]) from exc
    if "Error" in answer:
        raise SendFailed(f"sms: {answer['Error'].get('Code')}: "
                         f"{answer['Error'].get('Message')}"[:500])
    statuses = answer.get("SendStatusSet") or []
    if not statuses or any(s.get("Code") != "Ok" for s in statuses):
        raise SendFailed(f"sms: {statuses!r}"[:500])


def deliver(row: OutboxMessage, now: datetime) -> None:
    """Send one outbox row by its channel; raises SendFailed."""
    if row.channel == Channel.EMAIL.value:
        send_email(row)
    elif row.channel == Channel.SMS.value:
        send_sms(row, now)
    else:
        raise SendFailed(f"unknown channel {row.channel!r}")
