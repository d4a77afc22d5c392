"""Where emails go: a `Mailer` protocol, SMTP for production and a local mailbox folder for the
embedded default (development, demos, tests).

A mailer only delivers; it never touches the database. It raises `PermanentSendError` when a retry
cannot help (every recipient refused with a 5xx), any other exception for a transient failure.
Both write the same bytes (`notifications.mime.wire_bytes`). The sender comes from settings and is
checked when the mailer is built (`ValueError`), so a bad PAYQL_MAIL_SENDER stops the start, not
every send.
"""

from __future__ import annotations

import asyncio
import email
import hashlib
import os
import tempfile
import uuid
from email import policy
from email.message import EmailMessage, Message
from email.utils import getaddresses
from pathlib import Path
from typing import Protocol

import aiosmtplib

from notifications.addresses import InvalidAddress, Mailbox, parse_mailbox
from notifications.mime import wire_bytes

DEFAULT_SENDER = "PayQL <payql@localhost>"


class PermanentSendError(Exception):
    """The receiving server refused the message for good; retrying cannot help."""


class Mailer(Protocol):
    async def send(self, message: Message) -> None:
        """Deliver `message` (adds a From header when it has none). Raises on failure."""
        ...


class SmtpMailer:
    """Sends through an SMTP server with aiosmtplib, one connection per message.

    `use_tls` is implicit TLS (port 465); `start_tls=None` upgrades when the server offers it,
    True requires it, False never upgrades. `sender` is the From header and envelope sender.
    """

    def __init__(
        self,
        host: str,
        port: int,
        *,
        username: str | None = None,
        password: str | None = None,
        use_tls: bool = False,
        start_tls: bool | None = None,
        timeout: float = 10,
        sender: str,
    ) -> None:
        self.host = host
        self.port = port
        self.sender = sender
        self._from = sender_mailbox(sender)
        self._username = username
        self._password = password
        self._use_tls = use_tls
        self._start_tls = start_tls
        self._timeout = timeout

    def __repr__(self) -> str:
        return f"SmtpMailer(host={self.host!r}, port={self.port!r}, sender={self.sender!r})"

    async def send(self, message: Message) -> None:
        if "From" not in message:
            message["From"] = self._from.header
        sender, recipients = envelope(message)
        try:
            await aiosmtplib.send(
                wire_bytes(message),
                sender=sender,
                recipients=recipients,
                hostname=self.host,
                port=self.port,
                username=self._username,
                password=self._password,
                use_tls=self._use_tls,
                start_tls=self._start_tls,
                timeout=self._timeout,
            )
        except aiosmtplib.SMTPRecipientsRefused as exc:
            if exc.recipients and all(500 <= refused.code < 600 for refused in exc.recipients):
                codes = ", ".join(f"{refused.code} {refused.message}" for refused in exc.recipients)
                raise PermanentSendError(f"recipient refused: {codes}") from exc
            raise


class MailboxMailer:
    """Writes each message as an .eml file into `folder`, atomically (temp file, then rename).

    The file name is derived from the Message-ID, so sending the same message again replaces its
    file instead of adding a second one.
    """

    def __init__(self, folder: Path, *, sender: str = DEFAULT_SENDER) -> None:
        self.folder = Path(folder)
        self.sender = sender
        self._from = sender_mailbox(sender)

    def __repr__(self) -> str:
        return f"MailboxMailer(folder={str(self.folder)!r})"

    async def send(self, message: Message) -> None:
        if "From" not in message:
            message["From"] = self._from.header
        data = wire_bytes(message)
        await asyncio.to_thread(self._write, _file_name(message), data)

    def _write(self, name: str, data: bytes) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        handle, temp_name = tempfile.mkstemp(dir=self.folder, prefix=".incoming-", suffix=".tmp")
        try:
            with os.fdopen(handle, "wb") as file:
                file.write(data)
                file.flush()
                os.fsync(file.fileno())
            os.replace(temp_name, self.folder / name)
        except BaseException:
            Path(temp_name).unlink(missing_ok=True)
            raise

    def message_paths(self) -> list[Path]:
        """The delivered .eml files, oldest first."""
        if not self.folder.is_dir():
            return []
        paths = [path for path in self.folder.glob("*.eml") if path.is_file()]
        return sorted(paths, key=lambda path: (path.stat().st_mtime_ns, path.name))

    def list_messages(self) -> list[EmailMessage]:
        """Every delivered message, oldest first (for the CLI and tests)."""
        messages = []
        for path in self.message_paths():
            parsed = email.message_from_bytes(path.read_bytes(), policy=policy.default)
            assert isinstance(parsed, EmailMessage)
            messages.append(parsed)
        return messages


def sender_mailbox(sender: str) -> Mailbox:
    try:
        return parse_mailbox(sender)
    except InvalidAddress as exc:
        raise ValueError(f"invalid sender address: {exc}") from exc


def envelope(message: Message) -> tuple[str, list[str]]:
    """MAIL FROM and RCPT TO, read from the headers as aiosmtplib would (From; To and Cc). A Bcc
    header is refused: these bytes are sent as they are, so it would reach every recipient."""
    if "Bcc" in message:
        raise ValueError("a message with a Bcc header cannot be sent as it stands")
    senders = getaddresses([str(value) for value in message.get_all("From", [])])
    recipients = [str(value) for name in ("To", "Cc") for value in message.get_all(name, [])]
    return (senders[0][1] if senders else ""), [address for _, address in getaddresses(recipients)]


def _file_name(message: Message) -> str:
    message_id = message.get("Message-ID")
    key = str(message_id) if message_id else uuid.uuid4().hex
    return hashlib.sha256(key.encode()).hexdigest()[:32] + ".eml"
