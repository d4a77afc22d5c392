"""The emails PayQL sends, one template function per outbox `kind`.

A template reads what it needs from the database and returns an `Email` (recipient, subject,
plain text and an optional HTML alternative); `render` wraps it into a MIME message with a
Message-ID derived from the outbox dedupe key, so every retry of one message carries the same id.
A malformed recipient, or a dedupe key no header can carry, makes the message `Undeliverable`;
a subject is made safe, not refused (`notifications.mime`).

To add a kind (payment failed, dunning, trial ending, dispute), write one function:

    @template("payment_failed")
    async def payment_failed(payload: Mapping[str, Any]) -> Email: ...

A template raises `Undeliverable` when retrying cannot help (no recipient, the order is gone).
"""

from __future__ import annotations

import hashlib
import html
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import Message
from email.utils import format_datetime
from typing import Any
from uuid import UUID

from tortoise import connections

from db.models import Customer, Dispute, LineItem, Order, Payment
from db.row_reads import read_rows, read_rows_with
from domain.money import Money
from notifications.addresses import InvalidAddress
from notifications.mime import InvalidHeader, build_message

DEDUPE_KEY_HEADER = "X-PayQL-Dedupe-Key"
MESSAGE_ID_DOMAIN = "outbox.payql"


class Undeliverable(Exception):
    """The message can never be sent as it stands; the dispatcher marks it DEAD with this reason."""


@dataclass(frozen=True, slots=True)
class Email:
    to: str
    subject: str
    text: str
    html: str | None = None


Template = Callable[[Mapping[str, Any]], Awaitable[Email]]

TEMPLATES: dict[str, Template] = {}


def template(kind: str) -> Callable[[Template], Template]:
    """Register the template function for outbox messages of `kind`."""

    def register(function: Template) -> Template:
        if kind in TEMPLATES:
            raise ValueError(f"a template for {kind!r} exists already")
        TEMPLATES[kind] = function
        return function

    return register


def message_id_for(dedupe_key: str) -> str:
    """A Message-ID that is the same on every attempt of one outbox message."""
    digest = hashlib.sha256(dedupe_key.encode()).hexdigest()[:40]
    return f"<{digest}@{MESSAGE_ID_DOMAIN}>"


async def render(kind: str, dedupe_key: str, payload: Mapping[str, Any]) -> Message:
    """The MIME message for one outbox message (`notifications.mime`). From is left to the mailer."""
    function = TEMPLATES.get(kind)
    if function is None:
        raise Undeliverable(f"no template for kind {kind!r}")
    content = await function(payload)
    try:
        return build_message(
            to=content.to,
            subject=content.subject,
            text=content.text,
            html=content.html,
            date=format_datetime(datetime.now(UTC)),
            message_id=message_id_for(dedupe_key),
            extra={DEDUPE_KEY_HEADER: dedupe_key},
        )
    except InvalidAddress as exc:
        raise Undeliverable(f"invalid recipient address: {exc}") from exc
    except InvalidHeader as exc:
        raise Undeliverable(str(exc)) from exc
    except UnicodeEncodeError as exc:  # a lone surrogate: no retry can encode it
        raise Undeliverable(f"the email's text is not valid Unicode: {exc.reason} at {exc.start}") from exc


def money(amount: int, currency: str) -> str:
    """'19.99 USD', '1500 JPY', '1.250 KWD': the currency's own exponent, never a float."""
    return str(Money(amount, currency))


async def recipient_of(customer_id: UUID) -> str:
    customers = await read_rows(Customer, "id = $1", [customer_id], connections.get("default"))
    return _address_of(customers[0] if customers else None)


def _address_of(customer: Customer | None) -> str:
    email = (customer.email or "").strip() if customer is not None else ""
    if not email:
        raise Undeliverable("no recipient")
    return email


def _uuid_from(payload: Mapping[str, Any], key: str) -> UUID:
    try:
        return UUID(str(payload[key]))
    except (KeyError, ValueError) as exc:
        raise Undeliverable(f"payload needs a valid {key!r}") from exc


def _payment_reference(payment: Payment) -> str:
    return f"{payment.gateway} {payment.gateway_reference or payment.id}"


@template("receipt")
async def receipt(payload: Mapping[str, Any]) -> Email:
    """Payload {"order_id"} (and optionally "payment_id"): the order's lines, totals and payment."""
    # Every receipt reads these (one per paid order): their SQL is written out once (`db.row_reads`).
    database = connections.get("default")
    orders = await read_rows_with(Order, "customer", '"orders"."id" = $1', [_uuid_from(payload, "order_id")], database)
    if not orders:
        raise Undeliverable("order not found")
    order = orders[0]
    to = _address_of(order.customer)
    lines = await read_rows(LineItem, "order_id = $1 ORDER BY product_name, id", [order.id], database)
    if "payment_id" in payload:
        where, values = "order_id = $1 AND id = $2", [order.id, _uuid_from(payload, "payment_id")]
    else:  # the payment that took the money; the latest if the order was paid twice
        where, values = "order_id = $1 AND amount_captured > 0 ORDER BY created_at DESC, id DESC LIMIT 1", [order.id]
    payments = await read_rows(Payment, where, values, database)
    payment = payments[0] if payments else None

    total = money(order.total_amount, order.currency)
    rows = [
        (
            str(line.quantity),
            line.product_name,
            money(line.unit_amount, line.currency),
            money(line.total_amount, line.currency),
        )
        for line in lines
    ]
    text = [f"Thank you for your order {order.id}.", "", "Items:"]
    text += [f"  {qty} x {name} at {unit} = {line_total}" for qty, name, unit, line_total in rows]
    text += ["", f"Total: {total}"]
    if payment is not None:
        text.append(f"Paid: {money(payment.amount_captured, payment.currency)}")
        text.append(f"Payment reference: {_payment_reference(payment)}")
    text += ["", "Keep this email as your receipt."]

    e = html.escape
    cells = "".join(
        f"<tr><td>{e(qty)}</td><td>{e(name)}</td><td>{e(unit)}</td><td>{e(line_total)}</td></tr>"
        for qty, name, unit, line_total in rows
    )
    parts = [
        f"<p>Thank you for your order <code>{e(str(order.id))}</code>.</p>",
        "<table><thead><tr><th>Qty</th><th>Item</th><th>Unit price</th><th>Amount</th></tr></thead>",
        f"<tbody>{cells}</tbody></table>",
        f"<p><strong>Total: {e(total)}</strong></p>",
    ]
    if payment is not None:
        parts.append(f"<p>Paid: {e(money(payment.amount_captured, payment.currency))}<br>")
        parts.append(f"Payment reference: <code>{e(_payment_reference(payment))}</code></p>")
    parts.append("<p>Keep this email as your receipt.</p>")

    return Email(
        to=to,
        subject=f"Your receipt for order {str(order.id)[:8].upper()}",
        text="\n".join(text) + "\n",
        html="<html><body>" + "".join(parts) + "</body></html>\n",
    )


@template("dispute_due_soon")
async def dispute_due_soon(payload: Mapping[str, Any]) -> Email:
    """Payload {"dispute_id", "to"}: tells the merchant a dispute's evidence is due soon and not yet sent."""
    dispute = await Dispute.get_or_none(id=_uuid_from(payload, "dispute_id"))
    if dispute is None:
        raise Undeliverable("dispute not found")
    to = str(payload.get("to") or "").strip()
    if not to:
        raise Undeliverable("no recipient")
    payment = await Payment.get(id=dispute.payment_id)
    due = dispute.evidence_due_by.strftime("%Y-%m-%d %H:%M UTC") if dispute.evidence_due_by else "soon"
    amount = money(dispute.amount, dispute.currency)
    text = [
        f"A dispute ({dispute.reason or 'no reason given'}) of {amount} on order {payment.order_id} "
        "needs your evidence.",
        f"Evidence is due by {due}. Without it the dispute is lost and the money stays with the cardholder.",
        "",
        f"Dispute: {dispute.id} ({dispute.gateway} {dispute.gateway_reference})",
        f"Payment: {_payment_reference(payment)}",
        "",
        "Record fulfillments and notes, then submit the evidence (submitDisputeEvidence).",
    ]
    return Email(
        to=to,
        subject=f"Dispute evidence due {due}: {amount} on order {str(payment.order_id)[:8].upper()}",
        text="\n".join(text) + "\n",
    )
