"""Building an email as a MIME message and writing it as the bytes that go on the wire.

The message is a compat32 `email.mime` tree (a text/plain part, or multipart/alternative with an
HTML part) whose headers are all ASCII strings made safe here: `EmailMessage` parses every header
through the header registry and refolds it on output, which cost about seven times the CPU of
the same message built this way (`bench.receipt_mime`). Every header value passes one of three doors:

- the recipient: `addresses.parse_mailbox` (exactly one mailbox, or refused);
- text (the subject, which may hold merchant-written plan and product names): control characters
  flattened to spaces, whitespace collapsed, RFC 2047-encoded when it is not plain ASCII. Flattened
  rather than refused: a payment-failed notice matters more than a stray newline in a plan name,
  and once flattened nothing is left to inject;
- tokens we make ourselves (the Message-ID, the dedupe key): printable ASCII or refused.

Both bodies are UTF-8 in base64, so no body line is long or 8-bit, and no line of a part can start
with "--": the multipart boundary cannot occur in them, which is why it is fixed (derived from the
message id) instead of the generator's random one, which it would search every part for.

What must never happen here: a CR, LF or other control character in a header; an address that is
not exactly the one parsed; a header folded by anything but the standard library's folding.
"""

from __future__ import annotations

import hashlib
import re
from email.header import Header
from email.message import EmailMessage, Message
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.policy import SMTP as SMTP_POLICY
from email.policy import Compat32, Policy

from notifications.addresses import CONTROL, parse_mailbox

MAX_FOLDED_LINE = 78
_TOKEN = re.compile("[\x21-\x7e](?:[\x20-\x7e]*[\x21-\x7e])?")


class InvalidHeader(ValueError):
    """A value cannot be put in a header as it stands; the message says which and why."""


def build_message(
    *, to: str, subject: str, text: str, html: str | None, date: str, message_id: str, extra: dict[str, str]
) -> Message:
    """The message for one email, From left to the mailer. Raises `InvalidAddress` for a bad
    recipient, `InvalidHeader` for a token that cannot be a header, `UnicodeEncodeError` for text
    that is not Unicode (a lone surrogate)."""
    recipient = parse_mailbox(to).header
    headers: dict[str, str | Header] = {"To": recipient, "Subject": header_text("Subject", subject)}
    headers |= {"Date": token("Date", date), "Message-ID": token("Message-ID", message_id)}
    headers |= {name: token(name, value) for name, value in extra.items()}
    plain = MIMEText(text, "plain", "utf-8")
    message: Message
    if html is None:
        message = plain
    else:
        message = MIMEMultipart("alternative", boundary=_boundary(message_id))
        message.attach(_part(plain))
        message.attach(_part(MIMEText(html, "html", "utf-8")))
    for name, value in headers.items():
        # compat32 keeps a Header as it is and encodes it when written (its documented way to carry
        # non-ASCII text); typeshed types the value of a plain Message as str only.
        message[name] = value  # type: ignore[assignment]
    return message


def _boundary(message_id: str) -> str:
    return "=_payql." + hashlib.sha256(message_id.encode()).hexdigest()[:32]


def _part(part: MIMEText) -> MIMEText:
    del part["MIME-Version"]  # the top-level header says it; a part's copy is noise
    return part


def header_text(name: str, value: str) -> str | Header:
    """Free text for a header (a subject): control characters become spaces, whitespace runs one
    space; encoded as RFC 2047 words when it is not plain ASCII, or when it holds "=?" (which a
    reader would otherwise decode as an encoded word)."""
    flat = " ".join(CONTROL.sub(" ", value).split())
    if flat.isascii() and "=?" not in flat:
        return flat
    return Header(flat, "utf-8", header_name=name)


def token(name: str, value: str) -> str:
    """A value we make ourselves (an id, a key, a date): printable ASCII, no outer spaces, or refused."""
    if not _TOKEN.fullmatch(value):
        raise InvalidHeader(f"the {name} header would not be printable ASCII")
    return value


class _Smtp32(Compat32):
    """compat32 with CRLF line ends, and a short printable ASCII header written as it is instead of
    through `email.header.Header` (which returns it unchanged, at a tenth of the cost)."""

    def fold_binary(self, name: str, value: str) -> bytes:
        if (
            isinstance(value, str)
            and value.isascii()
            and value.isprintable()
            and len(name) + 2 + len(value) <= MAX_FOLDED_LINE
        ):
            return f"{name}: {value}{self.linesep}".encode("ascii")
        return super().fold_binary(name, value)


SMTP32: Policy = _Smtp32(linesep="\r\n")


def wire_bytes(message: Message) -> bytes:
    """The message as sent and as stored (CRLF line ends): compat32 messages with `SMTP32`, an
    `EmailMessage` (a test's, an operator script's) with its own `policy.SMTP`."""
    policy = SMTP_POLICY if isinstance(message, EmailMessage) else SMTP32
    return message.as_bytes(policy=policy)
