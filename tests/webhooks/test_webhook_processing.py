"""Webhooks that arrive twice, concurrently, out of order, late, or never; handlers that fail.

Each scenario loses the API answer first (the sandbox's `timeout` fault: it charges, the answer
is lost), so only webhooks or reconciliation can tell PayQL what happened.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from db.models import AuditRecord, Order, OutboxMessage, Payment, PaymentEvent, WebhookEvent
from gateways.sandbox.processor import SandboxProcessor
from gateways.sandbox.processor.webhook_switches import WebhookSwitches
from payql.wiring import Services
from tests.smtp_server import SmtpServer
from tests.testkit import CHECKOUT, Shopper, checkout_input, email_of, make_price, settle
from tests.webhooks.conftest import post_event
from webhooks import processing
from webhooks.store import reset_for_replay


@pytest.fixture
def faults(sandbox: SandboxProcessor) -> Iterator[SandboxProcessor]:
    yield sandbox
    sandbox.clear_faults()


async def checkout_with_lost_answer(
    shopper: Shopper, sandbox: SandboxProcessor, payment_method: str = "pm_card_visa", amount: int = 4500
) -> Payment:
    price = await make_price(amount)
    sandbox.arm_fault("timeout", 1)
    result = (await shopper.data(CHECKOUT, {"input": checkout_input(price, payment_method)}))["checkout"]
    assert [e["code"] for e in result["userErrors"]] == ["GATEWAY_UNAVAILABLE"]
    return await Payment.get(id=result["payment"]["id"])


async def events_for(
    sandbox: SandboxProcessor, payment: Payment, event_type: str | None = None
) -> list[dict[str, Any]]:
    found = []
    for event in await sandbox.list_events():
        obj = event["data"]["object"]
        ours = obj.get("metadata", {}).get("payql_payment_id") == str(payment.id)
        if ours and (event_type is None or event["type"] == event_type):
            found.append(event)
    return found


async def assert_paid_once(payment: Payment, shopper: Shopper, mail: SmtpServer) -> None:
    order = await Order.get(id=payment.order_id)
    assert order.status == "PAID"
    assert await PaymentEvent.filter(payment_id=payment.id, type="CAPTURED").count() == 1
    assert await AuditRecord.filter(entity_id=str(payment.id), status_after="PAID").count() == 1
    assert await AuditRecord.filter(entity_id=str(order.id), status_after="PAID").count() == 1
    assert await OutboxMessage.filter(dedupe_key=f"receipt:{order.id}").count() == 1
    assert len(mail.messages_to(email_of(shopper.subject))) == 1


async def test_one_event_delivered_five_times_applies_once(
    shopper: Shopper,
    faults: SandboxProcessor,
    switches: WebhookSwitches,
    http: httpx.AsyncClient,
    services: Services,
    mail_server: SmtpServer,
) -> None:
    switches.hold()
    payment = await checkout_with_lost_answer(shopper, faults)
    assert (await Order.get(id=payment.order_id)).status == "PROCESSING"
    [succeeded] = await events_for(faults, payment, "payment_intent.succeeded")
    for _ in range(5):
        assert (await post_event(http, succeeded)).status_code == 200
    switches.reset()  # the sandbox's own (held) deliveries arrive too: more duplicates
    await settle(services)
    assert await WebhookEvent.filter(event_id=succeeded["id"]).count() == 1
    await assert_paid_once(payment, shopper, mail_server)


async def test_twenty_concurrent_deliveries_of_one_event_apply_once(
    shopper: Shopper,
    faults: SandboxProcessor,
    switches: WebhookSwitches,
    http: httpx.AsyncClient,
    services: Services,
    mail_server: SmtpServer,
) -> None:
    switches.hold()
    payment = await checkout_with_lost_answer(shopper, faults)
    [succeeded] = await events_for(faults, payment, "payment_intent.succeeded")
    answers = await asyncio.gather(*(post_event(http, succeeded) for _ in range(20)))
    assert all(a.status_code == 200 for a in answers)
    assert sum(1 for a in answers if a.json()["duplicate"] is False) == 1
    switches.reset()
    await settle(services)
    await assert_paid_once(payment, shopper, mail_server)


async def test_a_lifecycle_delivered_in_reverse_order_ends_in_the_true_state(
    shopper: Shopper,
    faults: SandboxProcessor,
    switches: WebhookSwitches,
    services: Services,
    mail_server: SmtpServer,
) -> None:
    switches.hold()
    payment = await checkout_with_lost_answer(shopper, faults, "pm_card_authenticationRequired", 6000)
    reference = (await faults.list_payment_intents())[-1].id
    await faults.complete_authentication(reference, succeed=True)
    await faults.refund(reference, idempotency_key=f"test-refund-{payment.id}", amount=2000)
    held_types = [e["type"] for e in await events_for(faults, payment)]
    assert held_types.index("payment_intent.requires_action") < held_types.index("payment_intent.succeeded")
    switches.release(reverse=True)  # the refund first, then the success, then "requires action"
    await settle(services)
    payment = await Payment.get(id=payment.id)
    assert payment.status == "PAID"
    assert (payment.amount_captured, payment.amount_refunded) == (6000, 2000)
    order = await Order.get(id=payment.order_id)
    assert order.status == "PARTIALLY_REFUNDED"
    assert await PaymentEvent.filter(payment_id=payment.id, type="REFUNDED").count() == 1
    assert [e.amount for e in await PaymentEvent.filter(payment_id=payment.id, type="REFUNDED")] == [2000]
    assert await AuditRecord.filter(entity_id=str(payment.id), status_after="REQUIRES_ACTION").count() == 0


async def test_a_dropped_success_webhook_is_settled_by_reconciliation(
    shopper: Shopper,
    faults: SandboxProcessor,
    switches: WebhookSwitches,
    services: Services,
    mail_server: SmtpServer,
) -> None:
    switches.drop(10)
    payment = await checkout_with_lost_answer(shopper, faults)
    await settle(services)
    assert (await Payment.get(id=payment.id)).status == "PENDING"
    await services.jobs.reconcile()
    await settle(services)
    await assert_paid_once(payment, shopper, mail_server)
    assert await PaymentEvent.filter(payment_id=payment.id, source="RECONCILIATION").count() == 1


async def test_a_handler_that_fails_twice_is_retried_and_applied_once(
    shopper: Shopper,
    faults: SandboxProcessor,
    switches: WebhookSwitches,
    services: Services,
    mail_server: SmtpServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    switches.hold()
    payment = await checkout_with_lost_answer(shopper, faults)
    [succeeded] = await events_for(faults, payment, "payment_intent.succeeded")
    real_apply = processing.apply_event
    failures: dict[str, int] = {}

    async def flaky_apply(row: WebhookEvent, gateway: Any, billing: Any) -> bool:
        if row.event_id == succeeded["id"] and failures.get(row.event_id, 0) < 2:
            failures[row.event_id] = failures.get(row.event_id, 0) + 1
            raise ConnectionError("database hiccup")
        return await real_apply(row, gateway, billing)

    monkeypatch.setattr(processing, "apply_event", flaky_apply)
    switches.drop(0)
    switches.reset()
    await settle(services)
    row = await WebhookEvent.get(event_id=succeeded["id"])
    assert (row.status, row.attempts, failures[succeeded["id"]]) == ("PROCESSED", 3, 2)
    await assert_paid_once(payment, shopper, mail_server)


async def test_a_poison_event_ends_dead_and_replay_applies_it_once_fixed(
    shopper: Shopper,
    faults: SandboxProcessor,
    switches: WebhookSwitches,
    services: Services,
    mail_server: SmtpServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    switches.hold()
    payment = await checkout_with_lost_answer(shopper, faults)
    [succeeded] = await events_for(faults, payment, "payment_intent.succeeded")
    real_apply = processing.apply_event

    async def poisoned(row: WebhookEvent, gateway: Any, billing: Any) -> bool:
        if row.event_id == succeeded["id"]:
            raise ValueError("cannot parse this event")
        return await real_apply(row, gateway, billing)

    monkeypatch.setattr(processing, "apply_event", poisoned)
    switches.reset()
    await settle(services)
    row = await WebhookEvent.get(event_id=succeeded["id"])
    assert row.status == "DEAD"
    assert row.attempts == services.jobs.retry.max_attempts
    assert row.last_error is not None and "cannot parse this event" in row.last_error and "Traceback" in row.last_error

    monkeypatch.setattr(processing, "apply_event", real_apply)
    assert await reset_for_replay(row.id)
    await services.jobs.process_webhook(row.id)
    await settle(services)
    row = await WebhookEvent.get(id=row.id)
    assert row.status == "PROCESSED" and row.attempts == 1
    await assert_paid_once(payment, shopper, mail_server)
