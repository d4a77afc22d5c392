"""Receipts rendered from the database and delivered over real SMTP: totals in each currency's own
exponent, the payment reference, the dedupe header and a Message-ID that is stable across retries."""

from __future__ import annotations

import email
import uuid
from email import policy
from email.message import EmailMessage, Message

import pytest

from db.models import OutboxMessage, OutboxStatus, Payment
from domain.statuses import PaymentStatus
from notifications.dispatch import dispatch_outbox_message
from notifications.mailer import SmtpMailer
from notifications.mime import wire_bytes
from notifications.templates import DEDUPE_KEY_HEADER, message_id_for, render
from tests.notifications.conftest import SENDER, ReceiptCase, SmtpServer, html_of, make_receipt, text_of

pytestmark = pytest.mark.usefixtures("server")


async def send_receipt(case: ReceiptCase, smtp: SmtpServer, mailer: SmtpMailer) -> EmailMessage:
    await dispatch_outbox_message(case.message.id, mailer=mailer)
    assert case.email is not None
    received = smtp.messages_to(case.email)
    assert len(received) == 1
    row = await OutboxMessage.get(id=case.message.id)
    assert row.status is OutboxStatus.SENT
    assert row.sent_at is not None
    assert row.attempts == 1
    return received[0]


@pytest.mark.parametrize(
    ("currency", "lines", "expected_lines", "expected_total"),
    [
        (
            "USD",
            [("Widget", 1999, 2), ("Sticker", 5, 1)],
            ["1 x Sticker at 0.05 USD = 0.05 USD", "2 x Widget at 19.99 USD = 39.98 USD"],
            "40.03 USD",
        ),
        (
            "JPY",
            [("Matcha", 1500, 3), ("Mochi", 80, 1)],
            ["3 x Matcha at 1500 JPY = 4500 JPY", "1 x Mochi at 80 JPY = 80 JPY"],
            "4580 JPY",
        ),
        (
            "KWD",
            [("Dates", 1250, 2), ("Cardamom", 5, 1)],
            ["1 x Cardamom at 0.005 KWD = 0.005 KWD", "2 x Dates at 1.250 KWD = 2.500 KWD"],
            "2.505 KWD",
        ),
    ],
)
async def test_a_receipt_is_sent_once_with_totals_in_the_currency_exponent(
    smtp: SmtpServer,
    mailer: SmtpMailer,
    currency: str,
    lines: list[tuple[str, int, int]],
    expected_lines: list[str],
    expected_total: str,
) -> None:
    case = await make_receipt(currency, lines, gateway_reference=f"ch_receipt_{currency.lower()}")
    message = await send_receipt(case, smtp, mailer)

    text = text_of(message)
    assert [line.strip() for line in text.splitlines() if " x " in line] == expected_lines
    assert f"Total: {expected_total}" in text
    assert f"Paid: {expected_total}" in text
    assert f"Payment reference: sandbox ch_receipt_{currency.lower()}" in text
    assert str(case.message.payload["order_id"]) in text
    html = html_of(message)
    assert f"Total: {expected_total}" in html
    assert f"ch_receipt_{currency.lower()}" in html

    assert message["To"] == case.email
    assert message["From"] == SENDER
    assert message["Subject"].startswith("Your receipt for order ")
    assert message[DEDUPE_KEY_HEADER] == case.message.dedupe_key
    assert message["Message-ID"] == message_id_for(case.message.dedupe_key)
    # The envelope matches the headers.
    assert smtp.received[-1].mail_from == "receipts@payql.test"


async def test_product_names_are_escaped_in_the_html_part(smtp: SmtpServer, mailer: SmtpMailer) -> None:
    case = await make_receipt("EUR", [("<b>Bold</b> & co", 1000, 1)])
    message = await send_receipt(case, smtp, mailer)
    assert "1 x <b>Bold</b> & co at 10.00 EUR" in text_of(message)
    html = html_of(message)
    assert "&lt;b&gt;Bold&lt;/b&gt; &amp; co" in html
    assert "<b>Bold</b>" not in html


async def test_the_message_id_is_the_same_on_every_attempt() -> None:
    case = await make_receipt("USD", [("Widget", 100, 1)])
    first = await render("receipt", case.message.dedupe_key, case.message.payload)
    second = await render("receipt", case.message.dedupe_key, case.message.payload)
    assert first["Message-ID"] == second["Message-ID"] == message_id_for(case.message.dedupe_key)
    assert message_id_for("receipt:order:other") != first["Message-ID"]


async def test_a_send_whose_reply_was_lost_is_retried_with_the_same_message_id(
    smtp: SmtpServer, mailer: SmtpMailer
) -> None:
    """At least once: the server got the mail but we saw an error; the retry is recognisable."""

    class ReplyLost:
        calls = 0

        async def send(self, message: Message) -> None:
            self.calls += 1
            await mailer.send(message)
            if self.calls == 1:
                raise ConnectionResetError("connection lost after DATA")

    flaky = ReplyLost()
    case = await make_receipt("USD", [("Widget", 100, 1)])
    await dispatch_outbox_message(case.message.id, mailer=flaky)
    assert (await OutboxMessage.get(id=case.message.id)).status is OutboxStatus.FAILED
    await OutboxMessage.filter(id=case.message.id).update(next_attempt_at=None)
    await dispatch_outbox_message(case.message.id, mailer=flaky)

    assert case.email is not None
    copies = smtp.messages_to(case.email)
    assert len(copies) == 2
    assert copies[0]["Message-ID"] == copies[1]["Message-ID"]
    assert copies[0][DEDUPE_KEY_HEADER] == copies[1][DEDUPE_KEY_HEADER] == case.message.dedupe_key
    assert (await OutboxMessage.get(id=case.message.id)).status is OutboxStatus.SENT


async def another_payment(case: ReceiptCase, reference: str, *, captured: bool) -> Payment:
    """A second payment of the case's order that was declined; `captured`: the gateway later reported
    it taken after all (it keeps its decline, which is how the one-live-payment index allows it)."""
    payment_id = uuid.uuid4()
    amount = case.payment.amount
    return await Payment.create(
        id=payment_id,
        order_id=case.payment.order_id,
        gateway="sandbox",
        gateway_reference=reference,
        idempotency_key=f"payment-{payment_id}",
        payment_method="pm_card_visa",
        status=PaymentStatus.PAID if captured else PaymentStatus.FAILED,
        decline_code="card_declined",
        currency=case.payment.currency,
        amount=amount,
        amount_authorized=amount if captured else 0,
        amount_captured=amount if captured else 0,
    )


async def test_the_receipt_names_the_payment_that_took_the_money_the_latest_if_two_did() -> None:
    case = await make_receipt("USD", [("Widget", 100, 1)], gateway_reference="ch_first_capture")
    await another_payment(case, "ch_declined_later", captured=False)
    assert "Payment reference: sandbox ch_first_capture" in text_of(await rendered(case))

    await another_payment(case, "ch_second_capture", captured=True)
    assert "Payment reference: sandbox ch_second_capture" in text_of(await rendered(case))


async def test_a_receipt_for_a_named_payment_names_that_one() -> None:
    case = await make_receipt("USD", [("Widget", 100, 1)], gateway_reference="ch_named")
    await another_payment(case, "ch_later", captured=True)
    message = await rendered(case, payment_id=str(case.payment.id))
    assert "Payment reference: sandbox ch_named" in text_of(message)


async def rendered(case: ReceiptCase, **payload: str) -> EmailMessage:
    """The receipt as its reader gets it: rendered, written as on the wire and parsed back."""
    message = await render("receipt", case.message.dedupe_key, {**case.message.payload, **payload})
    parsed = email.message_from_bytes(wire_bytes(message), policy=policy.default)
    assert isinstance(parsed, EmailMessage)
    return parsed
