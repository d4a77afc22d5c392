"""The sandbox billing engine's state across processes, its clock route, catching up after the processor's
own clock moved, past-due renewals, and the period arithmetic underneath."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette
from starlette.routing import Mount

from domain.statuses import InvoiceStatus, SubscriptionStatus
from gateways.errors import GatewayUnavailable
from gateways.sandbox.processor import SandboxProcessor, sandbox_routes
from gateways.sandbox.processor.billing_periods import add_intervals, next_period_end, prorated
from gateways.types import UsageReport
from tests.gateways.billing_helpers import (
    BASE_URL,
    DAY,
    JAN_1,
    at,
    data_object,
    events_of,
    frozen_processor,
    gateway_on,
    plan,
    subscription_request,
)
from tests.gateways.sandbox_access import STAFF_HEADERS, guard_for_tests


@pytest.fixture
async def pair(tmp_path: Path) -> AsyncIterator[tuple[SandboxProcessor, SandboxProcessor]]:
    """Two processors on one state file, as `payql serve` and `payql worker` share one."""
    path = tmp_path / "sandbox.sqlite3"
    first, second = frozen_processor(state_path=path), frozen_processor(state_path=path)
    await first.open()
    await second.open()
    yield first, second
    await first.aclose()
    await second.aclose()


async def test_billing_state_is_shared_through_the_state_file(pair: tuple[SandboxProcessor, SandboxProcessor]) -> None:
    first, second = pair
    serve, worker = gateway_on(first), gateway_on(second)
    created = await serve.create_subscription(subscription_request(price=plan("price_calls", 10, metered=True)))
    await serve.report_usage(UsageReport(created.reference, "price_calls", 5, JAN_1, "use-1"))

    seen = await worker.retrieve_subscription(created.reference)
    assert seen == created
    # The replayed key is known to the other process too: it counts once.
    await worker.report_usage(UsageReport(created.reference, "price_calls", 5, JAN_1, "use-1"))
    await worker.advance_customer_clock("cust_1", at(2027, 2, 1) - JAN_1)

    assert await serve.billing_now(created.reference) == at(2027, 2, 1)
    renewed = await serve.retrieve_subscription(created.reference)
    assert renewed.current_period_start == at(2027, 2, 1)
    assert renewed.latest_invoice is not None
    assert renewed.latest_invoice.amount_due.amount == 50
    assert renewed.updated > created.updated


async def test_a_reopened_state_file_keeps_subscriptions_and_clocks(tmp_path: Path) -> None:
    path = tmp_path / "sandbox.sqlite3"
    processor = frozen_processor(state_path=path)
    created = await gateway_on(processor).create_subscription(subscription_request(trial_days=7))
    await gateway_on(processor).advance_customer_clock("cust_1", 2 * DAY)
    await processor.aclose()

    reopened = frozen_processor(state_path=path)
    gateway = gateway_on(reopened)
    try:
        assert await gateway.billing_now(created.reference) == JAN_1 + 2 * DAY
        assert (await gateway.retrieve_subscription(created.reference)).status is SubscriptionStatus.TRIALING
        await gateway.advance_customer_clock("cust_1", 5 * DAY)
        assert (await gateway.retrieve_subscription(created.reference)).status is SubscriptionStatus.ACTIVE
        assert len(await events_of(reopened, "customer.subscription.trial_will_end")) == 1
    finally:
        await reopened.aclose()


@pytest.fixture
async def client() -> AsyncIterator[tuple[httpx.AsyncClient, SandboxProcessor]]:
    processor = frozen_processor()
    app = Starlette(routes=[Mount("/sandbox", routes=sandbox_routes(processor, guard=guard_for_tests()))])
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url=BASE_URL, headers=STAFF_HEADERS
    ) as http:
        yield http, processor


async def test_a_customers_clock_advances_through_the_route(client: tuple[httpx.AsyncClient, SandboxProcessor]) -> None:
    http, processor = client
    created = await gateway_on(processor).create_subscription(subscription_request())

    response = await http.post("/sandbox/customers/cust_1/clock/advance", json={"seconds": 31 * DAY})

    assert response.status_code == 200
    assert response.json() == {"now": at(2027, 2, 1)}
    renewed = await gateway_on(processor).retrieve_subscription(created.reference)
    assert renewed.current_period_start == at(2027, 2, 1)
    assert processor.clock.offset == 0  # only that customer's clock moved


@pytest.mark.parametrize("body", [{"seconds": -1}, {"seconds": 1.5}, {}])
async def test_the_customer_clock_route_refuses_to_go_back(
    client: tuple[httpx.AsyncClient, SandboxProcessor], body: dict[str, object]
) -> None:
    http, processor = client
    created = await gateway_on(processor).create_subscription(subscription_request())

    response = await http.post("/sandbox/customers/cust_1/clock/advance", json=body)

    assert response.status_code == 400
    assert await gateway_on(processor).billing_now(created.reference) == JAN_1


async def test_run_due_catches_up_after_the_processors_own_clock_moved() -> None:
    processor = frozen_processor()
    gateway = gateway_on(processor)
    created = await gateway.create_subscription(subscription_request())
    await processor.advance_clock(31 * DAY)

    await processor.billing.run_due()

    renewed = await gateway.retrieve_subscription(created.reference)
    assert renewed.current_period_start == at(2027, 2, 1)
    assert renewed.latest_invoice is not None and renewed.latest_invoice.status is InvoiceStatus.PAID


async def test_a_read_brings_the_subscription_up_to_its_clock() -> None:
    processor = frozen_processor()
    gateway = gateway_on(processor)
    created = await gateway.create_subscription(subscription_request())
    await processor.advance_clock(31 * DAY)  # like real time passing: nobody advanced the customer's clock

    renewed = await gateway.retrieve_subscription(created.reference)

    assert renewed.current_period_start == at(2027, 2, 1)
    assert len(await events_of(processor, "invoice.paid")) == 2


async def test_a_timed_out_create_is_answered_by_its_retry() -> None:
    processor = frozen_processor()
    gateway = gateway_on(processor)
    processor.arm_fault("timeout")

    with pytest.raises(GatewayUnavailable):
        await gateway.create_subscription(subscription_request("flaky"))
    retried = await gateway.create_subscription(subscription_request("flaky"))

    assert retried.status is SubscriptionStatus.ACTIVE
    assert len(await events_of(processor, "customer.subscription.created")) == 1
    assert len(await processor.list_payment_intents()) == 1


async def test_a_past_due_subscription_keeps_renewing_and_is_active_once_all_is_paid() -> None:
    processor = frozen_processor()
    gateway = gateway_on(processor)
    created = await gateway.create_subscription(subscription_request())
    await gateway.update_default_payment_method(created.reference, "pm_card_chargeDeclined", idempotency_key="pm-1")
    await gateway.advance_customer_clock("cust_1", at(2027, 3, 1) - JAN_1)
    failed = [data_object(event)["id"] for event in await events_of(processor, "invoice.payment_failed")]
    assert len(failed) == 2  # February's and March's, each charged once
    await gateway.update_default_payment_method(created.reference, "pm_card_visa", idempotency_key="pm-2")

    older = await gateway.pay_invoice(str(failed[0]), idempotency_key="retry-1")
    assert older.status is InvoiceStatus.PAID
    assert (await gateway.retrieve_subscription(created.reference)).status is SubscriptionStatus.PAST_DUE
    newer = await gateway.pay_invoice(str(failed[1]), idempotency_key="retry-2")

    assert newer.status is InvoiceStatus.PAID
    assert (await gateway.retrieve_subscription(created.reference)).status is SubscriptionStatus.ACTIVE
    again = await gateway.pay_invoice(str(failed[1]), idempotency_key="retry-2")
    assert again == newer


def test_months_keep_the_anchor_day_clamped_to_short_months() -> None:
    jan_31 = at(2027, 1, 31)

    assert add_intervals(jan_31, "month", 1) == at(2027, 2, 28)
    assert add_intervals(jan_31, "month", 2) == at(2027, 3, 31)
    assert add_intervals(at(2028, 2, 29), "year", 1) == at(2029, 2, 28)
    assert next_period_end(jan_31, "month", 1, at(2027, 2, 28)) == at(2027, 3, 31)
    assert next_period_end(jan_31, "month", 1, at(2027, 2, 27)) == at(2027, 2, 28)
    assert next_period_end(JAN_1, "week", 2, JAN_1) == JAN_1 + 14 * DAY


def test_proration_rounds_half_away_from_zero() -> None:
    assert prorated(3, 1, 2) == 2  # 1.5
    assert prorated(-3, 1, 2) == -2
    assert prorated(3000, 21, 31) == 2032  # 2032.26
    assert prorated(100, 0, 10) == 0
    assert prorated(100, 20, 10) == 100  # never more than the whole period
