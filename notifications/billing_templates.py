"""The subscription emails: a failed renewal (each attempt), a renewal that needs the customer's
authentication, a trial about to end, and the end of dunning. Registered in `notifications.templates`.

Each links to the merchant's page for updating the payment method (`PAYQL_BILLING_UPDATE_PAYMENT_URL`);
none repeats a card number or token.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from db.models import Invoice, Price, Subscription
from notifications.templates import Email, Undeliverable, money, recipient_of, template


async def _subscription(payload: Mapping[str, Any]) -> tuple[Subscription, str]:
    try:
        subscription = await Subscription.get_or_none(id=UUID(str(payload["subscription_id"])))
    except (KeyError, ValueError) as exc:
        raise Undeliverable("payload needs a valid 'subscription_id'") from exc
    if subscription is None:
        raise Undeliverable("subscription not found")
    price = await Price.get(id=subscription.price_id).select_related("product")
    return subscription, price.product.name


async def _invoice(payload: Mapping[str, Any]) -> Invoice:
    try:
        invoice = await Invoice.get_or_none(id=UUID(str(payload["invoice_id"])))
    except (KeyError, ValueError) as exc:
        raise Undeliverable("payload needs a valid 'invoice_id'") from exc
    if invoice is None:
        raise Undeliverable("invoice not found")
    return invoice


def _update_line(payload: Mapping[str, Any]) -> str:
    url = str(payload.get("update_payment_url") or "")
    return f"Update your payment method: {url}" if url else "Update your payment method in your account."


def _day(epoch: object) -> str:
    return datetime.fromtimestamp(int(str(epoch)), UTC).strftime("%Y-%m-%d") if epoch is not None else ""


@template("subscription_payment_failed")
async def payment_failed(payload: Mapping[str, Any]) -> Email:
    """Payload {subscription_id, invoice_id, attempt, next_retry_at, final_action, update_payment_url}."""
    subscription, product = await _subscription(payload)
    invoice = await _invoice(payload)
    amount = money(invoice.amount_due, invoice.currency)
    lines = [f"We could not collect {amount} for your {product} subscription (attempt {payload.get('attempt', 1)})."]
    if payload.get("next_retry_at") is not None:
        lines.append(f"We will try again on {_day(payload['next_retry_at'])}.")
    elif payload.get("final_action") == "CANCEL":
        lines.append("This was the last attempt: the subscription will be canceled.")
    else:
        lines.append("This was the last attempt: access is suspended until the invoice is paid.")
    lines += ["", _update_line(payload)]
    return Email(
        to=await recipient_of(subscription.customer_id),
        subject=f"Payment failed for your {product} subscription",
        text="\n".join(lines) + "\n",
    )


@template("subscription_action_required")
async def action_required(payload: Mapping[str, Any]) -> Email:
    """Payload {subscription_id, invoice_id, update_payment_url}: the bank asks the customer to confirm."""
    subscription, product = await _subscription(payload)
    invoice = await _invoice(payload)
    amount = money(invoice.amount_due, invoice.currency)
    text = (
        f"Your bank asks you to confirm the payment of {amount} for your {product} subscription.\n"
        f"Open your account to confirm it.\n\n{_update_line(payload)}\n"
    )
    return Email(
        to=await recipient_of(subscription.customer_id),
        subject=f"Confirm your {product} payment",
        text=text,
    )


@template("trial_will_end")
async def trial_will_end(payload: Mapping[str, Any]) -> Email:
    """Payload {subscription_id, update_payment_url}."""
    subscription, product = await _subscription(payload)
    ends = subscription.trial_end.strftime("%Y-%m-%d") if subscription.trial_end else "soon"
    amount = money(subscription.unit_amount, subscription.currency)
    text = (
        f"Your {product} trial ends on {ends}. After that you will be charged {amount} per period.\n\n"
        f"{_update_line(payload)}\n"
    )
    return Email(
        to=await recipient_of(subscription.customer_id), subject=f"Your {product} trial ends {ends}", text=text
    )


@template("subscription_dunning_ended")
async def dunning_ended(payload: Mapping[str, Any]) -> Email:
    """Payload {subscription_id, final_action, update_payment_url}: the last retry failed."""
    subscription, product = await _subscription(payload)
    if payload.get("final_action") == "CANCEL":
        text = f"We could not collect the payment for your {product} subscription, so it has been canceled.\n"
        subject = f"Your {product} subscription was canceled"
    else:
        text = f"We could not collect the payment for your {product} subscription; access is suspended.\n"
        subject = f"Your {product} subscription is unpaid"
    return Email(
        to=await recipient_of(subscription.customer_id),
        subject=subject,
        text=text + "\n" + _update_line(payload) + "\n",
    )
