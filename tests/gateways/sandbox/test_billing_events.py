"""What the sandbox billing engine's events mean to PayQL: `interpret_event` on the events it really emits,
and the status mappings behind it."""

from __future__ import annotations

import pytest

from domain.statuses import InvoiceStatus, NextActionType, PaymentStatus, SubscriptionStatus
from gateways.sandbox import SandboxGateway
from gateways.sandbox.billing_transformers import invoice_status, subscription_status
from gateways.sandbox.processor import SandboxProcessor
from gateways.sandbox.processor.billing_objects import InvoiceState, SubscriptionState
from gateways.sandbox.processor.objects import JsonDict
from gateways.types import (
    EventEffect,
    EventIgnored,
    InvoiceObserved,
    PaymentObserved,
    SubscriptionNotice,
    SubscriptionNoticeKind,
    SubscriptionObserved,
    VerifiedEvent,
)
from tests.gateways.billing_helpers import (
    DAY,
    JAN_1,
    at,
    data_object,
    events_of,
    frozen_processor,
    gateway_on,
    subscription_request,
)


@pytest.fixture
def processor() -> SandboxProcessor:
    return frozen_processor()


@pytest.fixture
def gateway(processor: SandboxProcessor) -> SandboxGateway:
    return gateway_on(processor)


def interpreted(gateway: SandboxGateway, event: JsonDict) -> list[EventEffect]:
    event_id, event_type, created = event["id"], event["type"], event["created"]
    assert isinstance(event_id, str) and isinstance(event_type, str) and isinstance(created, int)
    return gateway.interpret_event(VerifiedEvent(event_id, event_type, created, event))


async def only_event(processor: SandboxProcessor, event_type: str) -> JsonDict:
    [event] = await events_of(processor, event_type)
    return event


async def test_subscription_events_are_observed_with_our_ids_and_the_update_counter(
    processor: SandboxProcessor, gateway: SandboxGateway
) -> None:
    created = await gateway.create_subscription(subscription_request(trial_days=14))
    await gateway.advance_customer_clock("cust_1", 11 * DAY)

    [observed] = interpreted(gateway, await only_event(processor, "customer.subscription.created"))
    notice_effects = interpreted(gateway, await only_event(processor, "customer.subscription.trial_will_end"))

    assert isinstance(observed, SubscriptionObserved)
    assert observed.stale_possible is True
    assert observed.result.reference == created.reference
    assert observed.result.status is SubscriptionStatus.TRIALING
    assert observed.result.payql_subscription_id == "psub_1"
    assert observed.result.price_id == "price_basic"
    assert observed.result.updated == created.updated
    assert observed.result.latest_invoice is None
    first, notice = notice_effects
    assert isinstance(first, SubscriptionObserved)
    assert first.result.updated > created.updated
    assert notice == SubscriptionNotice(created.reference, SubscriptionNoticeKind.TRIAL_WILL_END, at=JAN_1 + 14 * DAY)


async def test_invoice_events_are_observed_with_their_normalized_kind(
    processor: SandboxProcessor, gateway: SandboxGateway
) -> None:
    created = await gateway.create_subscription(subscription_request())

    [finalized] = interpreted(gateway, await only_event(processor, "invoice.finalized"))
    [paid] = interpreted(gateway, await only_event(processor, "invoice.paid"))

    assert isinstance(finalized, InvoiceObserved) and isinstance(paid, InvoiceObserved)
    assert (finalized.event, paid.event) == ("finalized", "paid")
    assert finalized.result.status is InvoiceStatus.OPEN
    assert paid.result.status is InvoiceStatus.PAID
    assert paid.result.subscription_reference == created.reference
    assert paid.result.payql_subscription_id == "psub_1"
    assert paid.result.billing_reason == "subscription_create"
    assert paid.result.amount_paid == 2000
    assert paid.result.payment_reference is not None


async def test_failed_and_action_required_invoices_carry_the_decline_and_the_next_action(
    processor: SandboxProcessor, gateway: SandboxGateway
) -> None:
    declined = await gateway.create_subscription(subscription_request("d", payment_method="pm_card_chargeDeclined"))
    waiting = await gateway.create_subscription(
        subscription_request("w", payment_method="pm_card_authenticationRequired", customer_id="cust_2")
    )

    [failed] = interpreted(gateway, await only_event(processor, "invoice.payment_failed"))
    [action] = interpreted(gateway, await only_event(processor, "invoice.payment_action_required"))

    assert isinstance(failed, InvoiceObserved) and isinstance(action, InvoiceObserved)
    assert failed.event == "payment_failed"
    assert failed.result.subscription_reference == declined.reference
    assert failed.result.status is InvoiceStatus.OPEN
    assert failed.result.decline_code == "generic_decline"
    assert action.event == "action_required"
    assert action.result.subscription_reference == waiting.reference
    assert action.result.next_action is not None
    assert action.result.next_action.type is NextActionType.REDIRECT


async def test_invoice_upcoming_is_a_notice(processor: SandboxProcessor, gateway: SandboxGateway) -> None:
    created = await gateway.create_subscription(subscription_request())
    await gateway.advance_customer_clock("cust_1", at(2027, 1, 29) - JAN_1)

    effects = interpreted(gateway, await only_event(processor, "invoice.upcoming"))

    assert effects == [SubscriptionNotice(created.reference, SubscriptionNoticeKind.INVOICE_UPCOMING, at(2027, 2, 1))]


async def test_an_invoices_payment_intent_events_stay_payment_observations(
    processor: SandboxProcessor, gateway: SandboxGateway
) -> None:
    created = await gateway.create_subscription(subscription_request())
    assert created.latest_invoice is not None

    [observed] = interpreted(gateway, await only_event(processor, "payment_intent.succeeded"))

    assert isinstance(observed, PaymentObserved)
    assert observed.result.reference == created.latest_invoice.payment_reference
    assert observed.result.status is PaymentStatus.PAID
    intent = data_object(await only_event(processor, "payment_intent.succeeded"))
    assert intent["invoice"] == created.latest_invoice.reference


async def test_bookkeeping_events_are_ignored(processor: SandboxProcessor, gateway: SandboxGateway) -> None:
    await gateway.create_subscription(subscription_request())

    for event_type in ("customer.created", "price.created", "invoice.created"):
        [effect] = interpreted(gateway, await only_event(processor, event_type))
        assert isinstance(effect, EventIgnored)


def test_a_malformed_subscription_event_is_ignored_with_a_reason(gateway: SandboxGateway) -> None:
    event: JsonDict = {"id": "evt_1", "type": "customer.subscription.updated", "created": JAN_1, "data": {"object": {}}}

    [effect] = interpreted(gateway, event)

    assert isinstance(effect, EventIgnored)
    assert "malformed" in effect.reason


def test_every_sandbox_subscription_status_maps_and_an_unknown_one_never_grants_access() -> None:
    assert {subscription_status(state) for state in SubscriptionState} == set(SubscriptionStatus)
    assert [subscription_status(state).value.lower() for state in SubscriptionState] == [
        s.value for s in SubscriptionState
    ]
    assert subscription_status("something_new") is SubscriptionStatus.INCOMPLETE


def test_every_sandbox_invoice_status_maps_and_an_unknown_one_is_never_paid() -> None:
    assert [invoice_status(state).value.lower() for state in InvoiceState] == [s.value for s in InvoiceState]
    assert invoice_status("something_new") is InvoiceStatus.DRAFT
