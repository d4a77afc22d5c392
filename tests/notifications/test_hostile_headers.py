"""What reaches an email's headers when the input is hostile or foreign, end to end (render, dispatch,
real SMTP or the mailbox): the recipient comes from an unvalidated JWT claim and subjects carry
merchant-written plan and product names.

A malformed recipient is refused (DEAD at once, with the reason) and never half-sent; no control
character ever reaches a header; non-ASCII subjects, names and bodies come back as written."""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Mapping
from email.utils import getaddresses
from pathlib import Path
from typing import Any

import pytest

from db.models import Customer, OutboxMessage, OutboxStatus, Price, PriceType, Product, RecurringInterval, Subscription
from domain.statuses import SubscriptionStatus
from notifications.dispatch import dispatch_outbox_message
from notifications.mailer import MailboxMailer, SmtpMailer
from notifications.templates import DEDUPE_KEY_HEADER, TEMPLATES, Email, message_id_for
from tests.notifications.conftest import SmtpServer, html_of, make_receipt, text_of

pytestmark = pytest.mark.usefixtures("server")

HOSTILE_KIND = "test.hostile_headers"


def control_characters_in(text: str) -> list[str]:
    return [char for char in text if ord(char) < 0x20 or 0x7F <= ord(char) < 0xA0 or char in "\u2028\u2029"]


@pytest.fixture
def hostile_email(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Email]]:
    """A template for `HOSTILE_KIND` that returns whatever Email the test puts under "email"."""
    slot: dict[str, Email] = {}

    async def hostile(payload: Mapping[str, Any]) -> Email:
        return slot["email"]

    monkeypatch.setitem(TEMPLATES, HOSTILE_KIND, hostile)
    yield slot


async def dispatch_hostile(slot: dict[str, Email], content: Email, mailer: Any) -> OutboxMessage:
    slot["email"] = content
    message = await OutboxMessage.create(kind=HOSTILE_KIND, dedupe_key=f"hostile:{uuid.uuid4()}")
    await dispatch_outbox_message(message.id, mailer=mailer)
    return await OutboxMessage.get(id=message.id)


MALFORMED_RECIPIENTS = [
    "a@",
    "@b.example",
    "not an address",
    "a@b@c.example",
    "a b@c.example",
    "a@b.example, c@d.example",
    "a@b.example; c@d.example",
    "Ann <a@b.example>, Bob <c@d.example>",
    "a@b.example\r\nBcc: victim@else.example",
    "a@b.example\nX-Injected: yes",
    "Ann\r <a@b.example>",
    "a@b.example\x00",
    "a..b@c.example",
    ".a@c.example",
    "a.@c.example",
    "a@c..example",
    "a@-c.example",
    "a@c_d.example",
    "a@[127.0.0.1]",
    '"quoted local"@c.example',
    "a@b.example>",
    "<a@b.example",
    "Ann <a@b.example> trailing",
    "x" * 65 + "@c.example",
    "a@" + ".".join(["d" * 63] * 4) + ".example",
    "üser@c.example",
    "a@xn--.example",
]


@pytest.mark.parametrize("recipient", MALFORMED_RECIPIENTS)
async def test_a_malformed_recipient_is_dead_at_once_and_nothing_is_sent(
    smtp: SmtpServer, mailer: SmtpMailer, recipient: str
) -> None:
    case = await make_receipt("USD", [("Widget", 500, 1)], email=recipient)
    await dispatch_outbox_message(case.message.id, mailer=mailer)
    dead = await OutboxMessage.get(id=case.message.id)
    assert (dead.status, dead.attempts, dead.sent_at) == (OutboxStatus.DEAD, 1, None)
    assert dead.last_error is not None and dead.last_error.startswith("invalid recipient address: ")
    assert smtp.received == []


async def test_the_refusal_reason_says_why_without_repeating_the_address(smtp: SmtpServer, mailer: SmtpMailer) -> None:
    reasons = {}
    for recipient in ("a@b.example, c@d.example", "üser@c.example", "a@b.example\r\nBcc: victim@else.example"):
        case = await make_receipt("USD", [("Widget", 500, 1)], email=recipient)
        await dispatch_outbox_message(case.message.id, mailer=mailer)
        reasons[recipient] = (await OutboxMessage.get(id=case.message.id)).last_error or ""
    assert "exactly one address" in reasons["a@b.example, c@d.example"]
    assert "SMTPUTF8" in reasons["üser@c.example"]
    assert "control character" in reasons["a@b.example\r\nBcc: victim@else.example"]
    assert not any("victim" in reason or "üser" in reason for reason in reasons.values())


@pytest.mark.parametrize(
    ("recipient", "name", "address"),
    [
        ("  buyer@Shop.example  ", "", "buyer@Shop.example"),
        ("<buyer@shop.example>", "", "buyer@shop.example"),
        ("Ada Lovelace <ada@shop.example>", "Ada Lovelace", "ada@shop.example"),
        ('"Lovelace, Ada (Countess)" <ada@shop.example>', "Lovelace, Ada (Countess)", "ada@shop.example"),
        ("José Müller-Łukasz 山田 <jose@shop.example>", "José Müller-Łukasz 山田", "jose@shop.example"),
        ("o'brien+receipts@shop.example", "", "o'brien+receipts@shop.example"),
        ("kunde@bücher.example", "", "kunde@xn--bcher-kva.example"),
        ("kunde@FAß.example", "", "kunde@xn--fa-hia.example"),
    ],
)
async def test_a_well_formed_recipient_is_delivered_to_that_one_address(
    smtp: SmtpServer, mailer: SmtpMailer, recipient: str, name: str, address: str
) -> None:
    case = await make_receipt("USD", [("Widget", 500, 1)], email=recipient)
    await dispatch_outbox_message(case.message.id, mailer=mailer)
    assert (await OutboxMessage.get(id=case.message.id)).status is OutboxStatus.SENT
    [received] = smtp.received
    assert received.rcpt_tos == [address]
    assert getaddresses([str(received.message["To"])]) == [(name, address)]
    assert received.message["To"].addresses[0].display_name == name


async def test_a_merchant_written_plan_name_cannot_inject_headers_and_keeps_its_accents(
    smtp: SmtpServer, mailer: SmtpMailer
) -> None:
    product = await Product.create(name="Été ☀ Pro\r\nBcc: victim@else.example\r\n\r\nforged body")
    price = await Price.create(
        product=product,
        currency="EUR",
        unit_amount=1500,
        type=PriceType.RECURRING,
        recurring_interval=RecurringInterval.MONTH,
    )
    customer = await Customer.create(external_id=f"cus-{uuid.uuid4().hex}", email="subscriber@shop.example")
    subscription_id = uuid.uuid4()
    subscription = await Subscription.create(
        id=subscription_id,
        customer=customer,
        price=price,
        gateway="sandbox",
        gateway_reference=f"sub_{subscription_id.hex[:12]}",
        idempotency_key=f"subscription-{subscription_id}",
        status=SubscriptionStatus.CANCELED,
        currency="EUR",
        unit_amount=1500,
        payment_method="pm_card_visa",
    )
    message = await OutboxMessage.create(
        kind="subscription_dunning_ended",
        dedupe_key=f"dunning-ended:{subscription.id}",
        payload={"subscription_id": str(subscription.id), "final_action": "CANCEL"},
    )
    await dispatch_outbox_message(message.id, mailer=mailer)

    assert (await OutboxMessage.get(id=message.id)).status is OutboxStatus.SENT
    [received] = smtp.received
    assert received.rcpt_tos == ["subscriber@shop.example"]
    sent = received.message
    assert "Bcc" not in sent
    assert sent["Subject"] == "Your Été ☀ Pro Bcc: victim@else.example forged body subscription was canceled"
    framing = ["Content-Type", "Content-Transfer-Encoding", "MIME-Version"]
    assert sorted(sent.keys()) == sorted([*framing, "To", "Subject", "Date", "Message-ID", DEDUPE_KEY_HEADER, "From"])
    assert "Été ☀ Pro" in text_of(sent)  # the body keeps the name as written: it cannot reach a header


@pytest.mark.parametrize(
    "subject",
    [
        "Reçu n° 42 — Ünïcödé ✓ 山田 🍮",
        "a\rb\nc\r\nd\te\x00f\x1bg\x7fh\x85i\u2028j\u2029k",
        "Literal =?utf-8?q?not_an_encoded_word?= stays literal",
        "Long " + "très long sujet " * 30,
        "Long ASCII " + "subject-words " * 30,
        "  leading and trailing spaces  ",
    ],
)
async def test_a_subject_arrives_as_written_with_control_characters_flattened_to_spaces(
    smtp: SmtpServer, mailer: SmtpMailer, hostile_email: dict[str, Email], tmp_path: Path, subject: str
) -> None:
    expected = " ".join("".join(" " if control_characters_in(char) else char for char in subject).split())
    content = Email(to="buyer@shop.example", subject=subject, text="Body\n")
    await dispatch_hostile(hostile_email, content, mailer)
    await dispatch_hostile(hostile_email, content, MailboxMailer(tmp_path))
    [received] = smtp.received
    [written] = MailboxMailer(tmp_path).list_messages()
    for message in (received.message, written):
        assert message["Subject"] == expected
        assert control_characters_in(message["Subject"]) == []
        assert not message.defects and not message["Subject"].defects
    raw = next(tmp_path.glob("*.eml")).read_bytes()
    assert raw.isascii()
    assert all(len(line) <= 78 for line in raw.split(b"\r\n"))


async def test_non_ascii_bodies_and_a_long_html_line_arrive_intact_in_short_lines(
    smtp: SmtpServer, mailer: SmtpMailer, hostile_email: dict[str, Email], tmp_path: Path
) -> None:
    text = "Crème brûlée 2 pcs — 12,50 €\r\nlone CR\rand 山田 🍮\n" + "x" * 2000 + "\n"
    html = "<html><body>" + "<p>Crème brûlée 🍮</p>" * 300 + "</body></html>\n"
    content = Email(to="buyer@shop.example", subject="Receipt", text=text, html=html)
    await dispatch_hostile(hostile_email, content, mailer)
    await dispatch_hostile(hostile_email, content, MailboxMailer(tmp_path))
    [received] = smtp.received
    [written] = MailboxMailer(tmp_path).list_messages()
    for message in (received.message, written):
        assert message.get_content_type() == "multipart/alternative"
        assert text_of(message).replace("\r\n", "\n").replace("\r", "\n") == text.replace("\r\n", "\n").replace(
            "\r", "\n"
        )
        assert html_of(message) == html
    raw = next(tmp_path.glob("*.eml")).read_bytes()
    assert raw.isascii()
    assert all(len(line) <= 78 for line in raw.split(b"\r\n"))


async def test_a_plain_text_only_email_is_a_single_text_part(
    smtp: SmtpServer, mailer: SmtpMailer, hostile_email: dict[str, Email]
) -> None:
    await dispatch_hostile(hostile_email, Email(to="buyer@shop.example", subject="S", text="Grüße\n"), mailer)
    [received] = smtp.received
    assert received.message.get_content_type() == "text/plain"
    assert received.message.get_content().replace("\r\n", "\n") == "Grüße\n"


async def test_a_dedupe_key_with_a_control_character_is_refused(
    smtp: SmtpServer, mailer: SmtpMailer, hostile_email: dict[str, Email]
) -> None:
    hostile_email["email"] = Email(to="buyer@shop.example", subject="S", text="T\n")
    message = await OutboxMessage.create(kind=HOSTILE_KIND, dedupe_key=f"hostile:{uuid.uuid4()}\r\nBcc: x@y.example")
    await dispatch_outbox_message(message.id, mailer=mailer)
    dead = await OutboxMessage.get(id=message.id)
    assert (dead.status, dead.attempts) == (OutboxStatus.DEAD, 1)
    assert dead.last_error == f"the {DEDUPE_KEY_HEADER} header would not be printable ASCII"
    assert smtp.received == []


async def test_text_that_is_not_unicode_is_refused_not_retried(
    smtp: SmtpServer, mailer: SmtpMailer, hostile_email: dict[str, Email]
) -> None:
    dead = await dispatch_hostile(hostile_email, Email(to="a@shop.example", subject="S", text="bad \udc80\n"), mailer)
    assert (dead.status, dead.attempts) == (OutboxStatus.DEAD, 1)
    assert smtp.received == []


async def test_the_dedupe_header_and_message_id_are_the_outbox_rows(
    smtp: SmtpServer, mailer: SmtpMailer, hostile_email: dict[str, Email]
) -> None:
    row = await dispatch_hostile(hostile_email, Email(to="a@shop.example", subject="S", text="T\n"), mailer)
    [received] = smtp.received
    assert received.message[DEDUPE_KEY_HEADER] == row.dedupe_key
    assert received.message["Message-ID"] == message_id_for(row.dedupe_key)
    assert received.message["Date"].datetime is not None


@pytest.mark.parametrize(
    "sender",
    [
        "PayQL <payql@shop.example>\r\nBcc: victim@else.example",
        "PayQL\n <payql@shop.example>",
        "not an address",
        "a@b.example, c@d.example",
        "",
    ],
)
def test_a_malformed_sender_is_refused_when_the_mailer_is_built(sender: str, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="sender"):
        MailboxMailer(tmp_path, sender=sender)
    with pytest.raises(ValueError, match="sender"):
        SmtpMailer("127.0.0.1", 25, sender=sender)


async def test_a_non_ascii_sender_name_is_encoded_and_the_envelope_is_its_address(
    smtp: SmtpServer, hostile_email: dict[str, Email]
) -> None:
    mailer = SmtpMailer("127.0.0.1", smtp.port, sender="Boutique Élise <shop@boutique.example>", timeout=5)
    await dispatch_hostile(hostile_email, Email(to="a@shop.example", subject="S", text="T\n"), mailer)
    [received] = smtp.received
    assert received.mail_from == "shop@boutique.example"
    assert received.message["From"].addresses[0].display_name == "Boutique Élise"
    assert received.message["From"].addresses[0].addr_spec == "shop@boutique.example"
