"""The address rule on its own: exactly one mailbox or `InvalidAddress` with the reason, an
internationalised domain in IDNA 2008 A-labels, a non-ASCII display name RFC 2047-encoded."""

from __future__ import annotations

import email
from email import policy

import pytest

from notifications.addresses import InvalidAddress, Mailbox, parse_mailbox


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("buyer@shop.example", Mailbox("", "buyer@shop.example")),
        ("  buyer@shop.example ", Mailbox("", "buyer@shop.example")),
        ("\tbuyer@shop.example", None),  # a tab is a control character
        ("Ada <ada@shop.example>", Mailbox("Ada", "ada@shop.example")),
        ('"Ada \\"A.\\" L." <ada@shop.example>', Mailbox('Ada "A." L.', "ada@shop.example")),
        ("John Q. Public <jqp@shop.example>", Mailbox("John Q. Public", "jqp@shop.example")),
        ("payments@localhost", Mailbox("", "payments@localhost")),
        ("kunde@Bücher.example", Mailbox("", "kunde@xn--bcher-kva.example")),
        ("kunde@faß.example", Mailbox("", "kunde@xn--fa-hia.example")),  # IDNA 2003 would say fass.example
        ("kunde@xn--bcher-kva.example", Mailbox("", "kunde@xn--bcher-kva.example")),
    ],
)
def test_one_mailbox_is_read_as_written(raw: str, expected: Mailbox | None) -> None:
    if expected is None:
        with pytest.raises(InvalidAddress):
            parse_mailbox(raw)
    else:
        assert parse_mailbox(raw) == expected


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("", "empty"),
        ("   ", "empty"),
        ("a@b.example, c@d.example", "exactly one address"),
        ("a@b.example; c@d.example", "exactly one address"),
        ("a@b@c.example", "exactly one address"),
        ("Ann, Bob <a@b.example>", "exactly one address"),
        ("a@b.example\r\nBcc: v@x.example", "control character"),
        ("Ann\x1b <a@b.example>", "control character"),
        ("a@b.example\u2028", "control character"),
        ("a@b.example\x85", "control character"),
        ("a@", "local part, '@' and a domain"),
        ("@b.example", "local part, '@' and a domain"),
        ("not an address", "local part, '@' and a domain"),
        ("a b@c.example", "dot-atom"),
        ("a..b@c.example", "dot-atom"),
        ('"a"@c.example', "dot-atom"),
        ("x" * 65 + "@c.example", "dot-atom"),
        ("üser@c.example", "SMTPUTF8"),
        ("a@c..example", "host name"),
        ("a@c.example.", "host name"),
        ("a@-c.example", "host name"),
        ("a@[127.0.0.1]", "host name"),
        ("a@" + "d" * 64 + ".example", "host name"),
        ("a@xn--.example", "IDNA"),
        ("a@bü\u200dcher.example", "IDNA"),
        ("Ann <a@b.example", "local part"),
        ("a@b.example>", "'>' without '<'"),
        ('"Ann <a@b.example>', "quotes"),
        ('"Ann\\" <a@b.example>', "quotes"),
        ("Ann@home <a@b.example>", "special characters"),
        ("a" * 600 + "@b.example", "longer than any address"),
        ("a" * 64 + "@" + ".".join(["d" * 63] * 3) + ".ex", "longer than any address"),
    ],
)
def test_anything_else_is_refused_with_its_reason(raw: str, reason: str) -> None:
    with pytest.raises(InvalidAddress, match=reason.replace(".", r"\.").replace("(", r"\(")):
        parse_mailbox(raw)


@pytest.mark.parametrize(
    ("mailbox", "header"),
    [
        (Mailbox("", "a@b.example"), "a@b.example"),
        (Mailbox("Ada", "a@b.example"), "Ada <a@b.example>"),
        (Mailbox("Lovelace, Ada", "a@b.example"), '"Lovelace, Ada" <a@b.example>'),
        (Mailbox("Élise", "a@b.example"), "=?utf-8?b?w4lsaXNl?= <a@b.example>"),
    ],
)
def test_the_header_is_ascii_and_reads_back_as_the_same_mailbox(mailbox: Mailbox, header: str) -> None:
    assert mailbox.header == header
    parsed = email.message_from_string(f"To: {header}\n\n", policy=policy.default)["To"].addresses
    assert [(one.display_name, one.addr_spec) for one in parsed] == [(mailbox.name, mailbox.address)]
