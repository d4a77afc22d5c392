"""Events for the merchant's endpoints, written by the status writers in the changing transaction: one
test per event type, through the writer that makes the change; no phantom event when the transaction
rolls back; an object's versions only grow; nothing is written without a subscribed endpoint; a
once-only event is written once however often its fact is applied."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest

from db import disputes, merchant_events, refunds, subscriptions
from db.merchant_models import MerchantDelivery, MerchantEndpoint, MerchantEvent
from db.models import (
    Customer,
    Dispute,
    EventSource,
    Invoice,
    Order,
    Payment,
    Price,
    PriceType,
    Product,
    RecurringInterval,
    Subscription,
)
from db.transitions import Actor, PaymentUpdate, apply_payment_update, cancel_unpaid_order, lock_order, lock_payment
from db.unit_of_work import unit_of_work
from domain.dunning import BillingPolicy
from domain.money import Money
from domain.statuses import DisputeStatus, InvoiceStatus, OrderStatus, PaymentStatus, RefundStatus, SubscriptionStatus
from gateways.types import DisputeResult, InvoiceResult, SubscriptionResult

pytestmark = pytest.mark.usefixtures("server")

P = PaymentStatus
AMOUNT = 2500
ACTOR = Actor("gateway:sandbox", reason="test")
# Nothing listens here: the server's delivery jobs fail quietly; these tests read rows only.
NOWHERE = "http://127.0.0.1:9/hooks"


@pytest.fixture
async def endpoint() -> AsyncIterator[MerchantEndpoint]:
    row = await MerchantEndpoint.create(url=NOWHERE, event_types=["*"], secret="whsec_test")
    yield row
    await MerchantEndpoint.filter(id=row.id).delete()


async def types_for(object_id: object) -> list[str]:
    return [e.type for e in await MerchantEvent.filter(object_id=str(object_id)).order_by("id")]


async def envelope_of(object_id: object, event_type: str) -> dict[str, Any]:
    event = await MerchantEvent.get(object_id=str(object_id), type=event_type)
    document: dict[str, Any] = json.loads(event.body)
    return document


async def make_payment(status: PaymentStatus = P.PENDING) -> Payment:
    customer = await Customer.create(external_id=f"customer-{uuid.uuid4().hex}")
    order_status = OrderStatus.PAID if status is P.PAID else OrderStatus.PROCESSING
    order = await Order.create(customer=customer, currency="EUR", total_amount=AMOUNT, status=order_status)
    payment_id = uuid.uuid4()
    paid = status is P.PAID
    return await Payment.create(
        id=payment_id,
        order=order,
        gateway="sandbox",
        gateway_reference=f"pi_{payment_id.hex}",
        idempotency_key=f"payment-{payment_id}",
        payment_method="pm_card_visa",
        status=status,
        currency="EUR",
        amount=AMOUNT,
        amount_authorized=AMOUNT if paid else 0,
        amount_captured=AMOUNT if paid else 0,
    )


async def move_payment(payment: Payment, status: PaymentStatus, **kwargs: Any) -> None:
    amounts: dict[str, Any] = {"amount_authorized": AMOUNT, "amount_captured": AMOUNT} if status is P.PAID else {}
    async with unit_of_work() as uow:
        order, locked = await lock_payment(payment.id, uow)
        update = PaymentUpdate(status=status, gateway_status=status.lower(), **(amounts | kwargs))
        await apply_payment_update(order, locked, update, source=EventSource.WEBHOOK, actor=ACTOR, uow=uow)


@pytest.mark.usefixtures("endpoint")
async def test_a_paid_payment_announces_payment_succeeded_and_order_paid() -> None:
    payment = await make_payment()
    await move_payment(payment, P.PAID)
    assert await types_for(payment.id) == ["payment.succeeded"]
    assert await types_for(payment.order_id) == ["order.paid"]
    order_paid = await envelope_of(payment.order_id, "order.paid")
    assert order_paid["data"]["status"] == "PAID"
    assert order_paid["data"]["total"] == {"amount": AMOUNT, "currency": "EUR", "exponent": 2, "decimal": "25.00"}
    assert order_paid["object"] == "order" and order_paid["objectId"] == str(payment.order_id)
    assert order_paid["apiVersion"] == merchant_events.API_VERSION and order_paid["id"].startswith("evt_")


@pytest.mark.usefixtures("endpoint")
async def test_a_failed_payment_announces_payment_failed() -> None:
    payment = await make_payment()
    await move_payment(payment, P.FAILED, decline_code="card_declined", failure_message="Declined.")
    assert await types_for(payment.id) == ["payment.failed"]
    assert (await envelope_of(payment.id, "payment.failed"))["data"]["declineCode"] == "card_declined"


@pytest.mark.usefixtures("endpoint")
async def test_a_payment_needing_action_announces_payment_requires_action() -> None:
    payment = await make_payment()
    await move_payment(
        payment, P.REQUIRES_ACTION, next_action={"type": "REDIRECT", "redirect_url": "https://x.example"}
    )
    assert await types_for(payment.id) == ["payment.requires_action"]


@pytest.mark.usefixtures("endpoint")
async def test_a_canceled_order_announces_order_canceled() -> None:
    payment = await make_payment()
    await move_payment(payment, P.FAILED)
    async with unit_of_work() as uow:
        order = await lock_order(payment.order_id, uow)
        assert await cancel_unpaid_order(order, ACTOR, uow)
    assert await types_for(payment.order_id) == ["order.canceled"]


async def refund_of(payment: Payment, status: RefundStatus) -> uuid.UUID:
    async with unit_of_work() as uow:
        order, locked = await lock_payment(payment.id, uow)
        refund = await refunds.create_refund(order, locked, 1000, "test", ACTOR, uow)
    async with unit_of_work() as uow:
        order, locked, row = await refunds.lock_refund(refund.id, uow)
        await refunds.apply_refund_status(order, locked, row, status, source=EventSource.WEBHOOK, actor=ACTOR, uow=uow)
    return refund.id


@pytest.mark.usefixtures("endpoint")
async def test_a_refund_that_succeeds_announces_refund_succeeded() -> None:
    refund_id = await refund_of(await make_payment(P.PAID), RefundStatus.SUCCEEDED)
    assert await types_for(refund_id) == ["refund.succeeded"]
    assert (await envelope_of(refund_id, "refund.succeeded"))["data"]["amount"]["amount"] == 1000


@pytest.mark.usefixtures("endpoint")
async def test_a_refund_that_fails_announces_refund_failed() -> None:
    refund_id = await refund_of(await make_payment(P.PAID), RefundStatus.FAILED)
    assert await types_for(refund_id) == ["refund.failed"]


def dispute(payment: Payment, status: DisputeStatus) -> DisputeResult:
    return DisputeResult(
        reference=f"dp_{payment.id.hex}",
        payment_reference=payment.gateway_reference or "",
        status=status,
        amount=Money(AMOUNT, "EUR"),
        reason="fraudulent",
    )


async def mirror_dispute(payment: Payment, status: DisputeStatus) -> Dispute:
    async with unit_of_work() as uow:
        order, locked = await lock_payment(payment.id, uow)
        result = dispute(payment, status)
        await disputes.apply_dispute_result(order, locked, result, source=EventSource.WEBHOOK, actor=ACTOR, uow=uow)
    return await Dispute.get(gateway="sandbox", gateway_reference=result.reference)


@pytest.mark.usefixtures("endpoint")
async def test_a_new_dispute_announces_dispute_created_once() -> None:
    payment = await make_payment(P.PAID)
    first = await mirror_dispute(payment, DisputeStatus.NEEDS_RESPONSE)
    await mirror_dispute(payment, DisputeStatus.NEEDS_RESPONSE)
    assert await types_for(first.id) == ["dispute.created"]


@pytest.mark.usefixtures("endpoint")
async def test_a_closed_dispute_announces_dispute_closed() -> None:
    payment = await make_payment(P.PAID)
    opened = await mirror_dispute(payment, DisputeStatus.NEEDS_RESPONSE)
    await mirror_dispute(payment, DisputeStatus.LOST)
    assert await types_for(opened.id) == ["dispute.created", "dispute.closed"]
    closed = await envelope_of(opened.id, "dispute.closed")
    assert closed["data"]["status"] == "LOST"
    assert "evidence" not in closed["data"]  # sealed personal data never leaves in an event
    assert closed["objectVersion"] == (await envelope_of(opened.id, "dispute.created"))["objectVersion"] + 1


async def make_subscription() -> Subscription:
    customer = await Customer.create(external_id=f"customer-{uuid.uuid4().hex}")
    product = await Product.create(name="Plan")
    price = await Price.create(
        product=product,
        currency="EUR",
        unit_amount=AMOUNT,
        type=PriceType.RECURRING,
        recurring_interval=RecurringInterval.MONTH,
    )
    subscription_id = uuid.uuid4()
    async with unit_of_work() as uow:
        subscription = await Subscription.create(
            id=subscription_id,
            customer_id=customer.id,
            price_id=price.id,
            gateway="sandbox",
            gateway_reference=f"sub_{subscription_id.hex}",
            idempotency_key=f"subscription-{subscription_id}",
            currency="EUR",
            unit_amount=AMOUNT,
            payment_method="pm_card_visa",
            using_db=uow.connection,
        )
        await subscriptions.record_subscription_created(subscription, ACTOR, uow)
    return subscription


async def apply_subscription(subscription: Subscription, status: SubscriptionStatus, updated: int) -> None:
    result = SubscriptionResult(
        reference=subscription.gateway_reference or "",
        status=status,
        price_id=str(subscription.price_id),
        updated=updated,
    )
    async with unit_of_work() as uow:
        locked = await subscriptions.lock_subscription(subscription.id, uow)
        await subscriptions.apply_subscription_result(locked, result, actor=ACTOR, uow=uow)


@pytest.mark.usefixtures("endpoint")
async def test_a_new_subscription_announces_subscription_created() -> None:
    subscription = await make_subscription()
    assert await types_for(subscription.id) == ["subscription.created"]


@pytest.mark.usefixtures("endpoint")
async def test_a_subscription_that_changes_announces_subscription_updated() -> None:
    subscription = await make_subscription()
    await apply_subscription(subscription, SubscriptionStatus.ACTIVE, 10)
    assert await types_for(subscription.id) == ["subscription.created", "subscription.updated"]
    assert (await envelope_of(subscription.id, "subscription.updated"))["data"]["status"] == "ACTIVE"


@pytest.mark.usefixtures("endpoint")
async def test_a_canceled_subscription_announces_subscription_canceled() -> None:
    subscription = await make_subscription()
    await apply_subscription(subscription, SubscriptionStatus.ACTIVE, 10)
    await apply_subscription(subscription, SubscriptionStatus.CANCELED, 20)
    assert await types_for(subscription.id) == ["subscription.created", "subscription.updated", "subscription.canceled"]


async def apply_invoice(subscription: Subscription, **kwargs: Any) -> Invoice:
    result = InvoiceResult(
        reference=f"in_{subscription.id.hex}",
        subscription_reference=subscription.gateway_reference or "",
        amount_due=Money(AMOUNT, "EUR"),
        billing_reason="subscription_cycle",
        **kwargs,
    )
    async with unit_of_work() as uow:
        locked = await subscriptions.lock_subscription(subscription.id, uow)
        applied = await subscriptions.apply_invoice_result(
            locked, result, now=0, policy=BillingPolicy(), actor=ACTOR, uow=uow
        )
    return applied.invoice


@pytest.mark.usefixtures("endpoint")
async def test_a_paid_invoice_announces_invoice_paid() -> None:
    subscription = await make_subscription()
    await apply_invoice(subscription, status=InvoiceStatus.OPEN)
    invoice = await apply_invoice(subscription, status=InvoiceStatus.PAID, amount_paid=AMOUNT, attempt_count=1)
    assert await types_for(invoice.id) == ["invoice.paid"]
    assert (await envelope_of(invoice.id, "invoice.paid"))["data"]["amountPaid"]["amount"] == AMOUNT


@pytest.mark.usefixtures("endpoint")
async def test_a_failed_invoice_attempt_announces_invoice_payment_failed() -> None:
    subscription = await make_subscription()
    invoice = await apply_invoice(
        subscription, status=InvoiceStatus.OPEN, attempt_count=1, decline_code="card_declined"
    )
    assert await types_for(invoice.id) == ["invoice.payment_failed"]


def test_every_event_type_has_a_test_here() -> None:
    tested = {
        "order.paid", "order.canceled", "payment.succeeded", "payment.failed", "payment.requires_action",
        "refund.succeeded", "refund.failed", "dispute.created", "dispute.closed", "subscription.created",
        "subscription.updated", "subscription.canceled", "invoice.paid", "invoice.payment_failed",
    }  # fmt: skip
    assert set(merchant_events.EVENT_TYPES) == tested


async def test_a_rolled_back_change_leaves_no_event(endpoint: MerchantEndpoint) -> None:
    payment = await make_payment()
    with pytest.raises(RuntimeError, match="after the change"):
        async with unit_of_work() as uow:
            order, locked = await lock_payment(payment.id, uow)
            update = PaymentUpdate(status=P.PAID, amount_authorized=AMOUNT, amount_captured=AMOUNT)
            await apply_payment_update(order, locked, update, source=EventSource.API, actor=ACTOR, uow=uow)
            assert await MerchantEvent.filter(object_id=str(payment.id)).using_db(uow.connection).exists()
            raise RuntimeError("the process fails after the change, before the commit")
    assert await types_for(payment.id) == []
    assert await types_for(payment.order_id) == []
    assert not await MerchantDelivery.filter(endpoint_id=endpoint.id, event__object_id=str(payment.id)).exists()
    # The change and its event commit together when the transaction does.
    await move_payment(payment, P.PAID)
    assert await types_for(payment.id) == ["payment.succeeded"]


async def test_no_event_is_written_without_a_subscribed_endpoint() -> None:
    row = await MerchantEndpoint.create(url=NOWHERE, event_types=["refund.failed"], secret="whsec_test")
    disabled = await MerchantEndpoint.create(url=NOWHERE, event_types=["*"], secret="whsec_test", enabled=False)
    try:
        payment = await make_payment()
        await move_payment(payment, P.PAID)
        assert await types_for(payment.id) == []
    finally:
        await MerchantEndpoint.filter(id__in=[row.id, disabled.id]).delete()


async def test_each_subscribed_endpoint_gets_one_delivery_and_versions_grow(endpoint: MerchantEndpoint) -> None:
    only_payments = await MerchantEndpoint.create(url=NOWHERE, event_types=["payment.requires_action"], secret="s")
    try:
        payment = await make_payment()
        action = {"type": "REDIRECT", "redirect_url": "https://x.example"}
        await move_payment(payment, P.REQUIRES_ACTION, next_action=action)
        await move_payment(payment, P.PROCESSING)
        await move_payment(payment, P.REQUIRES_ACTION, next_action=action, gateway_reference="again")
        events = await MerchantEvent.filter(object_id=str(payment.id)).order_by("id")
        assert [e.object_version for e in events] == [1, 2]
        for event in events:
            endpoints = await MerchantDelivery.filter(event_id=event.id).values_list("endpoint_id", flat=True)
            assert sorted(map(str, endpoints)) == sorted([str(endpoint.id), str(only_payments.id)])
    finally:
        await MerchantEndpoint.filter(id=only_payments.id).delete()
