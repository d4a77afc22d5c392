"""The two mailers: the mailbox folder (embedded default) writes readable .eml files atomically
and lists them; SMTP passes credentials and refuses nothing silently."""

from __future__ import annotations

import email
from email import policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.smtp import AuthResult, LoginPassword

from db.models import OutboxMessage, OutboxStatus
from notifications.dispatch import dispatch_outbox_message
from notifications.mailer import DEFAULT_SENDER, MailboxMailer, SmtpMailer
from notifications.templates import DEDUPE_KEY_HEADER, message_id_for
from tests.notifications.conftest import SENDER, SmtpServer, make_receipt

pytestmark = pytest.mark.usefixtures("server")


def plain_message(subject: str, message_id: str | None) -> EmailMessage:
    message = EmailMessage()
    message["To"] = "someone@example.test"
    message["Subject"] = subject
    if message_id is not None:
        message["Message-ID"] = message_id
    message.set_content(f"Body of {subject}\n")
    return message


async def test_the_mailbox_writes_readable_eml_files_and_lists_them(tmp_path: Path) -> None:
    mailbox = MailboxMailer(tmp_path / "mailbox")
    assert mailbox.list_messages() == []  # the folder does not exist yet

    first = await make_receipt("JPY", [("Matcha", 1500, 2)])
    second = await make_receipt("KWD", [("Dates", 1250, 1)])
    for case in (first, second):
        await dispatch_outbox_message(case.message.id, mailer=mailbox)
        assert (await OutboxMessage.get(id=case.message.id)).status is OutboxStatus.SENT

    files = sorted((tmp_path / "mailbox").iterdir())
    assert len(files) == 2
    assert all(path.suffix == ".eml" for path in files)  # no temporary file left behind
    for path in files:
        parsed = email.message_from_bytes(path.read_bytes(), policy=policy.default)
        assert parsed["From"] == DEFAULT_SENDER

    listed = mailbox.list_messages()
    assert [message["To"] for message in listed] == [first.email, second.email]
    assert [message[DEDUPE_KEY_HEADER] for message in listed] == [first.message.dedupe_key, second.message.dedupe_key]
    assert [message["Message-ID"] for message in listed] == [
        message_id_for(first.message.dedupe_key),
        message_id_for(second.message.dedupe_key),
    ]
    jpy_body = listed[0].get_body(preferencelist=("plain",))
    assert isinstance(jpy_body, EmailMessage)
    assert "Total: 3000 JPY" in jpy_body.get_content()
    kwd_body = listed[1].get_body(preferencelist=("plain",))
    assert isinstance(kwd_body, EmailMessage)
    assert "Total: 1.250 KWD" in kwd_body.get_content()


async def test_the_same_message_id_replaces_its_file(tmp_path: Path) -> None:
    mailbox = MailboxMailer(tmp_path, sender="Shop <shop@example.test>")
    await mailbox.send(plain_message("one", "<same@outbox.payql>"))
    await mailbox.send(plain_message("one again", "<same@outbox.payql>"))
    await mailbox.send(plain_message("no id", None))
    await mailbox.send(plain_message("no id either", None))
    subjects = sorted(message["Subject"] for message in mailbox.list_messages())
    assert subjects == ["no id", "no id either", "one again"]
    assert {message["From"] for message in mailbox.list_messages()} == {"Shop <shop@example.test>"}
    assert sorted(path.name for path in tmp_path.iterdir() if not path.name.endswith(".eml")) == []


async def test_a_failed_write_leaves_no_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    mailbox = MailboxMailer(tmp_path)

    def broken_replace(source: Any, target: Any) -> None:
        raise OSError("disk full")

    monkeypatch.setattr("notifications.mailer.os.replace", broken_replace)
    with pytest.raises(OSError, match="disk full"):
        await mailbox.send(plain_message("lost", "<lost@outbox.payql>"))
    assert list(tmp_path.iterdir()) == []


async def test_smtp_sends_credentials_and_keeps_an_existing_from(smtp: SmtpServer) -> None:
    await smtp.stop()
    logins: list[tuple[bytes, bytes]] = []

    def authenticator(server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any) -> AuthResult:
        assert isinstance(auth_data, LoginPassword)
        logins.append((auth_data.login, auth_data.password))
        return AuthResult(success=auth_data.password == b"s3cret")

    await smtp.start(authenticator=authenticator, auth_require_tls=False)
    mailer = SmtpMailer("127.0.0.1", smtp.port, username="payql", password="s3cret", start_tls=False, sender=SENDER)
    message = plain_message("authenticated", "<auth@outbox.payql>")
    message["From"] = "Billing <billing@example.test>"
    await mailer.send(message)

    assert logins == [(b"payql", b"s3cret")]
    assert [item.message["Subject"] for item in smtp.received] == ["authenticated"]
    assert smtp.received[0].message["From"] == "Billing <billing@example.test>"
    assert "s3cret" not in repr(mailer)
