"""A real SMTP server for tests: aiosmtpd on 127.0.0.1 and a free port, in its own thread, recording
every message it accepts."""

from __future__ import annotations

import asyncio
import email
from dataclasses import dataclass, field
from email import policy
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller

from tests.ports import free_port


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    message: EmailMessage


@dataclass
class RecordingHandler:
    """aiosmtpd handler: keeps every message; refuses recipients listed in `refuse`."""

    received: list[Received] = field(default_factory=list)
    refuse: set[str] = field(default_factory=set)
    logins: list[tuple[str, str]] = field(default_factory=list)

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, options: list[str]) -> str:
        if address in self.refuse:
            return "550 5.1.1 no such mailbox"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        parsed = email.message_from_bytes(envelope.original_content, policy=policy.default)
        assert isinstance(parsed, EmailMessage)
        self.received.append(Received(envelope.mail_from, list(envelope.rcpt_tos), parsed))
        return "250 Message accepted for delivery"


class SmtpServer:
    """Start/stop an aiosmtpd Controller on a fixed port, so a test can take the server down and up."""

    def __init__(self) -> None:
        self.port = free_port()
        self.handler = RecordingHandler()
        self._controller: Controller | None = None

    @property
    def received(self) -> list[Received]:
        return self.handler.received

    def messages_to(self, address: str) -> list[EmailMessage]:
        return [item.message for item in self.received if address in item.rcpt_tos]

    async def start(self, **kwargs: Any) -> None:
        controller = Controller(self.handler, hostname="127.0.0.1", port=self.port, **kwargs)
        await asyncio.to_thread(controller.start)
        self._controller = controller

    async def stop(self) -> None:
        if self._controller is not None:
            controller, self._controller = self._controller, None
            await asyncio.to_thread(controller.stop)
