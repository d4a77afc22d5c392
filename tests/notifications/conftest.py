"""A real SMTP server (aiosmtpd on 127.0.0.1, a free port, its own thread) that records what it
receives, and factories for orders with receipts waiting in the outbox."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from email.message import EmailMessage

import pytest

from db.models import Customer, LineItem, Order, OutboxMessage, Payment
from domain.statuses import OrderStatus, PaymentStatus
from notifications.mailer import SmtpMailer
from tests.smtp_server import SmtpServer
from tests.testkit import make_price

SENDER = "PayQL Receipts <receipts@payql.test>"


@pytest.fixture
async def smtp() -> AsyncIterator[SmtpServer]:
    server = SmtpServer()
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
def mailer(smtp: SmtpServer) -> SmtpMailer:
    return SmtpMailer("127.0.0.1", smtp.port, sender=SENDER, timeout=5)


@dataclass
class ReceiptCase:
    message: OutboxMessage
    email: str | None
    payment: Payment


async def make_receipt(
    currency: str,
    lines: list[tuple[str, int, int]],
    *,
    email: str | None = "",
    gateway_reference: str | None = None,
) -> ReceiptCase:
    """A PAID order with `lines` of (product name, unit amount, quantity), its captured payment and
    its receipt in the outbox. `email=""` gives the customer a fresh unique address."""
    address = f"buyer-{uuid.uuid4().hex[:10]}@example.test" if email == "" else email
    customer = await Customer.create(external_id=f"customer-{uuid.uuid4().hex}", email=address)
    total = sum(unit * quantity for _, unit, quantity in lines)
    order = await Order.create(customer=customer, currency=currency, total_amount=total, status=OrderStatus.PAID)
    for name, unit, quantity in lines:
        price = await make_price(unit, currency, name=name)
        await LineItem.create(
            order=order,
            price=price,
            product_name=name,
            quantity=quantity,
            currency=currency,
            unit_amount=unit,
            total_amount=unit * quantity,
        )
    payment_id = uuid.uuid4()
    payment = await Payment.create(
        id=payment_id,
        order=order,
        gateway="sandbox",
        gateway_reference=gateway_reference or f"ch_{uuid.uuid4().hex[:16]}",
        idempotency_key=f"payment-{payment_id}",
        payment_method="pm_card_visa",
        status=PaymentStatus.PAID,
        currency=currency,
        amount=total,
        amount_authorized=total,
        amount_captured=total,
    )
    message = await OutboxMessage.create(
        kind="receipt", dedupe_key=f"receipt:order:{order.id}", payload={"order_id": str(order.id)}
    )
    return ReceiptCase(message=message, email=address, payment=payment)


def text_of(message: EmailMessage) -> str:
    """The plain-text body of a received (parsed) message."""
    body = message.get_body(preferencelist=("plain",))
    assert isinstance(body, EmailMessage)
    content: str = body.get_content()
    return content


def html_of(message: EmailMessage) -> str:
    """The HTML body of a received (parsed) message."""
    body = message.get_body(preferencelist=("html",))
    assert isinstance(body, EmailMessage)
    content: str = body.get_content()
    return content
