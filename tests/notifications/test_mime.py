"""The message builder and the wire serializer on their own: the fast header path writes exactly
what compat32's folding would, a message reads back as built, and a header can only hold what the
three doors let through."""

from __future__ import annotations

import email
from email import policy
from email.errors import HeaderParseError
from email.header import Header
from email.message import EmailMessage
from email.policy import Policy, compat32

import pytest

from notifications.mime import SMTP32, InvalidHeader, build_message, header_text, token, wire_bytes

COMPAT32_CRLF = compat32.clone(linesep="\r\n")


@pytest.mark.parametrize(
    "value",
    [
        "",
        "x",
        "  leading",
        "trailing  ",
        "a  b\tc",
        "buyer@shop.example",
        "<0123456789abcdef0123456789abcdef01234567@outbox.payql>",
        "Sun, 06 Dec 2026 08:25:56 +0000",
        "=?utf-8?q?x?=",
        "a; b, c: d",
        "x" * 66,
        "x" * 67,
        "word " * 20,
        "a\r\nBcc: v@x.example",
        "a\nb",
        "é",
    ],
)
def test_the_fast_header_path_writes_what_compat32_folding_writes(value: str) -> None:
    for name in ("To", "Subject", "X-PayQL-Dedupe-Key"):
        assert folded(SMTP32, name, value) == folded(COMPAT32_CRLF, name, value)


def folded(header_policy: Policy, name: str, value: str) -> bytes | str:
    try:
        return header_policy.fold_binary(name, value)
    except HeaderParseError as exc:  # compat32 refuses an embedded header; so must the fast path
        return f"refused: {exc}"


def test_a_subject_is_flattened_and_encoded_only_when_it_must_be() -> None:
    assert header_text("Subject", " Pro\r\nBcc: v@x.example\t\x00 plan ") == "Pro Bcc: v@x.example plan"
    encoded = header_text("Subject", "Été\nplan")
    assert isinstance(encoded, Header) and str(encoded) == "Été plan"
    assert isinstance(header_text("Subject", "looks =?utf-8?q?encoded?="), Header)


@pytest.mark.parametrize("value", ["", " lead", "trail ", "a\r\nb", "tab\there", "é", "nul\x00"])
def test_a_token_is_printable_ascii_or_refused(value: str) -> None:
    with pytest.raises(InvalidHeader, match="X-Key header would not be printable ASCII"):
        token("X-Key", value)


def message(html: str | None) -> bytes:
    built = build_message(
        to="Élise <elise@shop.example>",
        subject="Reçu 🍮",
        text="Grüße\n",
        html=html,
        date="Sun, 06 Dec 2026 08:25:56 +0000",
        message_id="<abc@outbox.payql>",
        extra={"X-Key": "k:1"},
    )
    built["From"] = "PayQL <payments@localhost>"
    return wire_bytes(built)


def test_the_same_email_gives_the_same_bytes_and_reads_back_as_built() -> None:
    raw = message("<p>Grüße</p>\n")
    assert raw == message("<p>Grüße</p>\n")  # the boundary is derived, not random
    assert raw.isascii() and b"\r\n" in raw and b"\n" not in raw.replace(b"\r\n", b"")
    parsed = email.message_from_bytes(raw, policy=policy.default)
    assert isinstance(parsed, EmailMessage)
    assert str(parsed["Subject"]) == "Reçu 🍮"
    assert parsed["To"].addresses[0].display_name == "Élise"
    assert parsed["X-Key"] == "k:1"
    assert [part.get_content_type() for part in parsed.iter_parts()] == ["text/plain", "text/html"]
    assert [part.get("MIME-Version") for part in parsed.iter_parts()] == [None, None]
    assert [part.get_content() for part in parsed.iter_parts()] == ["Grüße\n", "<p>Grüße</p>\n"]
    assert not parsed.defects


def test_an_email_message_is_written_with_its_own_policy() -> None:
    legacy = EmailMessage()
    legacy["To"] = "a@shop.example"
    legacy["Subject"] = "Grüße " * 20
    legacy.set_content("x\n")
    assert wire_bytes(legacy) == legacy.as_bytes(policy=policy.SMTP)
