"""Bringing our mirror of a subscription up to what its gateway says, from any source: an API
answer, a webhook, the dunning job or reconciliation. Resolvers and the webhook pipeline both call
these; the state rules themselves live in `db.subscriptions`. An invoice's payment is brought up
to date like any other payment, through `payment_sync`.

Gateway reads happen outside database transactions; a transaction never waits on the network.
"""

from __future__ import annotations

import logging
from uuid import UUID

from db import subscriptions as mirror
from db.models import EventSource, Invoice, Payment, Subscription
from db.transitions import Actor, PaymentUpdate
from db.unit_of_work import unit_of_work
from domain.dunning import BillingPolicy
from domain.statuses import InvoiceStatus, PaymentStatus
from gateways.base import PaymentGateway
from gateways.billing import BillingGateway
from gateways.errors import InvalidGatewayRequest, NotSupported
from gateways.types import InvoiceResult, PaymentResult, SubscriptionResult
from resolvers.payment_sync import sync_payment

logger = logging.getLogger(__name__)


class UnknownSubscription(LookupError):
    """The gateway names a subscription PayQL did not create (another integration on the account)."""


async def find_subscription(gateway: str, reference: str, payql_subscription_id: str | None) -> Subscription:
    if payql_subscription_id:
        try:
            found = await Subscription.get_or_none(id=UUID(payql_subscription_id), gateway=gateway)
        except ValueError:
            found = None
        if found is not None:
            return found
    found = await Subscription.get_or_none(gateway=gateway, gateway_reference=reference)
    if found is None:
        raise UnknownSubscription(f"no {gateway} subscription {reference}")
    return found


async def sync_subscription(
    gateway: PaymentGateway,
    billing: BillingGateway,
    subscription_id: UUID,
    result: SubscriptionResult,
    *,
    actor: Actor,
    policy: BillingPolicy,
) -> Subscription:
    """Apply the gateway's copy of the subscription and of its latest invoice (with its payment)."""
    # The billing clock dates dunning facts, which only an invoice brings; it is read (a gateway call)
    # before the transaction, and only then.
    latest = result.latest_invoice
    now = await billing.billing_now(result.reference) if latest is not None else None
    payment: Payment | None = None
    invoice: Invoice | None = None
    async with unit_of_work() as uow:
        subscription = await mirror.lock_subscription(subscription_id, uow)
        await mirror.apply_subscription_result(subscription, result, actor=actor, uow=uow)
        if latest is not None and now is not None:
            applied = await mirror.apply_invoice_result(
                subscription, latest, now=now, policy=policy, actor=actor, uow=uow
            )
            invoice, payment = applied.invoice, applied.payment
    if payment is not None and invoice is not None:
        await sync_invoice_payment(gateway, invoice, payment, actor)
    return subscription


async def sync_invoice(
    gateway: PaymentGateway,
    billing: BillingGateway,
    subscription_id: UUID,
    result: InvoiceResult,
    *,
    actor: Actor,
    policy: BillingPolicy,
) -> None:
    now = await billing.billing_now(result.subscription_reference)
    async with unit_of_work() as uow:
        subscription = await mirror.lock_subscription(subscription_id, uow)
        applied = await mirror.apply_invoice_result(subscription, result, now=now, policy=policy, actor=actor, uow=uow)
    if applied.payment is not None:
        await sync_invoice_payment(gateway, applied.invoice, applied.payment, actor)


async def sync_invoice_payment(gateway: PaymentGateway, invoice: Invoice, payment: Payment, actor: Actor) -> None:
    """Bring the invoice's payment up to date like any other payment.

    A paid invoice is itself the gateway's word that its payment was captured in full (PayPal's
    billing cycles are sales, which its order API cannot read); otherwise the payment is read back.
    """
    fact: PaymentResult | PaymentUpdate
    if invoice.status is InvoiceStatus.PAID:
        fact = PaymentUpdate(
            status=PaymentStatus.PAID,
            amount_authorized=invoice.amount_paid,
            amount_captured=invoice.amount_paid,
            gateway_status="invoice_paid",
        )
    elif payment.gateway_reference is None:
        return
    else:
        try:
            fact = await gateway.retrieve(payment.gateway_reference)
        except (NotSupported, InvalidGatewayRequest) as error:
            logger.info("invoice payment %s cannot be read back: %s", payment.id, error.message)
            return
    await sync_payment(payment.id, fact, source=EventSource.RECONCILIATION, actor=actor)


async def queue_trial_ending_email(subscription_id: UUID, policy: BillingPolicy) -> None:
    async with unit_of_work() as uow:
        subscription = await mirror.lock_subscription(subscription_id, uow)
        await mirror.queue_trial_ending_email(subscription, policy, uow)
