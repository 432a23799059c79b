"""A real SMTP server on 127.0.0.1 (aiosmtpd), and households with accounts."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from consult.notifications import service as notifications
from tests import factories


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Recorder:
    """Keeps every message accepted; refuses the next ``refuse`` messages with a 451."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self.refused = 0
        self.refuse = 0

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.refuse > 0:
            self.refuse -= 1
            self.refused += 1
            return "451 4.3.0 Try again later"
        message = message_from_bytes(envelope.content, policy=policy.default)
        assert isinstance(message, EmailMessage)
        self.messages.append(message)
        return "250 OK"

    def to(self, address: str) -> list[EmailMessage]:
        return [m for m in self.messages if m["To"] == address]


@pytest.fixture
def smtp(app: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[Recorder]:
    """A real SMTP server started for the test; the app sends to it."""
    recorder = Recorder()
    port = free_port()
    controller = Controller(recorder, hostname="127.0.0.1", port=port)
    controller.start()
    monkeypatch.setitem(app.config, "SMTP_HOST", "127.0.0.1")
    monkeypatch.setitem(app.config, "SMTP_PORT", port)
    monkeypatch.setitem(app.config, "SMTP_FROM", "notices@example.org")
    monkeypatch.setitem(app.config, "PUBLIC_URL", "https://yishi.example.org")
    try:
        yield recorder
    finally:
        controller.stop()


def households_with_accounts(compound: Any, emails: bool = True) -> list[Any]:
    """An account for every household of the compound, each with an email address when
    ``emails`` (the household's room in the address)."""
    users = []
    for building in compound.buildings:
        for household in building.households:
            user = factories.make_user("resident", household=household)
            if emails:
                notifications.save_preferences(user, f"h{household.id}@example.org", {}, "", "")
            users.append(user)
    return users
