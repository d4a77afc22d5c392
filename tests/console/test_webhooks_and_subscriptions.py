"""The console's webhook page shows a DEAD delivery with its error and sends it again; the
subscriptions page lists subscriptions with their dunning state and pauses one; the gateways page
lists the configured gateways."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from playwright.async_api import Page, expect

from db.merchant_models import MerchantEndpoint
from db.models import AuditRecord
from payql.wiring import Services
from tests.console.kit import Snapshots
from tests.console.test_staff_console import sign_in
from tests.features.subscriptions.kit import recurring_price, subscribe
from tests.merchant_receiver import Receiver, receiving
from tests.testkit import CHECKOUT, Shopper, checkout_input, eventually, make_price, settle

CREATE = """mutation($input: CreateMerchantEndpointInput!) {
  createMerchantEndpoint(input: $input) { endpoint { id } userErrors { code message } } }"""
DELIVERIES = "query($endpointId: ID) { merchantDeliveries(endpointId: $endpointId) { id status } }"


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    async with receiving() as running:
        yield running


async def test_staff_sends_a_dead_delivery_again(
    page: Page,
    server: str,
    admin: Shopper,
    shopper: Shopper,
    services: Services,
    receiver: Receiver,
    snapshots: Snapshots,
) -> None:
    healthy = asyncio.Event()
    receiver.answer = lambda _request, _before: 200 if healthy.is_set() else 503
    created = await admin.data(CREATE, {"input": {"url": receiver.url, "eventTypes": ["order.paid"]}})
    endpoint_id = created["createMerchantEndpoint"]["endpoint"]["id"]
    try:
        price = await make_price(1_500)
        order_id = (await shopper.data(CHECKOUT, {"input": checkout_input(price)}))["checkout"]["order"]["id"]
        attempts = services.settings.merchant_webhook_max_attempts
        await receiver.wait_for(lambda: len(receiver.of(order_id)) >= attempts)

        async def status_is(wanted: str) -> bool:
            rows = (await admin.data(DELIVERIES, {"endpointId": endpoint_id}))["merchantDeliveries"]
            return bool(rows[0]["status"] == wanted)

        await eventually(lambda: status_is("DEAD"))
        await settle(services)
        [delivery] = (await admin.data(DELIVERIES, {"endpointId": endpoint_id}))["merchantDeliveries"]

        await sign_in(page, server, admin, "#/webhooks")
        await page.get_by_label("Status").select_option("DEAD")
        resend = page.get_by_role("button", name=f"Send delivery {delivery['id']} again")
        row = page.locator("#deliveries tr", has=resend)
        await expect(row).to_contain_text("503")
        await snapshots.take(page, "webhooks")
        healthy.set()
        await row.get_by_role("button").click()
        await expect(page.get_by_role("status")).to_contain_text(f"Delivery {delivery['id']} queued again.")
        await receiver.wait_for(lambda: len(receiver.of(order_id)) == attempts + 1)

        await eventually(lambda: status_is("DELIVERED"))
    finally:
        await MerchantEndpoint.filter(id=endpoint_id).delete()


async def test_the_subscriptions_page_lists_a_subscription_and_pauses_it_once(
    page: Page, server: str, admin: Shopper, shopper: Shopper, services: Services, snapshots: Snapshots
) -> None:
    subscribed = await subscribe(shopper, await recurring_price(1_900))
    await settle(services)
    subscription_id = subscribed["subscription"]["id"]
    await sign_in(page, server, admin, "#/subscriptions")
    row = page.locator("#subscriptions tr", has=page.get_by_text(subscription_id))
    await expect(row).to_contain_text("19.00 USD")
    await expect(row).to_contain_text("ACTIVE")
    await snapshots.take(page, "subscriptions")

    await page.get_by_role("button", name=f"Pause subscription {subscription_id}").click()
    await page.get_by_role("button", name="Confirm: pause").dblclick()
    await expect(row).to_contain_text("PAUSED")
    await page.get_by_role("button", name=f"Resume subscription {subscription_id}").click()
    await page.get_by_role("button", name="Confirm: resume").click()
    await expect(row).to_contain_text("ACTIVE")
    await settle(services)
    paused = await AuditRecord.filter(entity_id=subscription_id, action__contains="pause").count()
    assert paused == 1


async def test_the_gateways_page_lists_the_configured_gateways(
    page: Page, server: str, admin: Shopper, snapshots: Snapshots
) -> None:
    await sign_in(page, server, admin, "#/gateways")
    sandbox = page.locator("#gateways tr", has=page.get_by_role("rowheader", name="sandbox"))
    await expect(sandbox).to_contain_text("yes")
    await expect(sandbox.locator(".circuit")).to_have_text("CLOSED")
    await snapshots.take(page, "gateways")
