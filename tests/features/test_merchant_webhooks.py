"""Outgoing webhooks end to end: staff register an endpoint over GraphQL, a real HTTP receiver started
here gets signed events for real checkouts, verifies them with its own verifier written from the
documented scheme, and answers as each test needs (500s, always 500, 200).

Covered: a verifiable order.paid; 500, 500, 200 gives one event three times with its attempts
recorded; a disabled endpoint gets nothing; both secrets verify during a roll; SSRF targets refused;
a crash between commit and delivery still delivers (the sweeper); 100 concurrent checkouts give 100
deliveries and 100 identical ones a single order.paid; DEAD after the last attempt, then a resend
delivers.
"""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest

from db.merchant_models import (
    DeliveryStatus,
    MerchantDelivery,
    MerchantDeliveryAttempt,
    MerchantEndpoint,
    MerchantEvent,
)
from db.unit_of_work import add_change_listener, remove_change_listener
from jobs.merchant_delivery import deliver
from payql.outbound_urls import OutboundPolicy
from payql.wiring import Services
from resolvers import merchant_webhooks
from resolvers.context import Caller, Principal
from resolvers.errors import ErrorCode, UseCaseError
from tests.merchant_receiver import Received, Receiver, receiving
from tests.testkit import CHECKOUT, Shopper, checkout_input, eventually, make_price, new_key, settle

CREATE = """mutation($input: CreateMerchantEndpointInput!) {
  createMerchantEndpoint(input: $input) {
    endpoint { id url eventTypes enabled } secret userErrors { code field message }
  }
}"""
ROLL = """mutation($input: RollMerchantEndpointSecretInput!) {
  rollMerchantEndpointSecret(input: $input) { secret endpoint { previousSecretExpiresAt } userErrors { code message } }
}"""
DISABLE = "mutation($id: ID!) { disableMerchantEndpoint(id: $id) { endpoint { enabled } userErrors { code } } }"
DELIVERIES = """query($eventId: String, $endpointId: ID) {
  merchantDeliveries(eventId: $eventId, endpointId: $endpointId) {
    id eventId eventType status attempts lastStatusCode
    attemptLog { number statusCode latencyMs responseExcerpt error }
  }
}"""
RESEND = "mutation($id: ID!) { resendMerchantDelivery(id: $id) { delivery { status attempts } userErrors { code } } }"
TEST_EVENT = """mutation($id: ID!) {
  sendMerchantTestEvent(endpointId: $id) { delivery { id eventId eventType } userErrors { code message } }
}"""


@pytest.fixture
async def endpoints(admin: Shopper) -> AsyncIterator[list[str]]:
    """Ids of the endpoints a test registers; removed afterwards so later tests' events skip them."""
    created: list[str] = []
    yield created
    await MerchantEndpoint.filter(id__in=created).delete()


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    async with receiving() as running:
        yield running


async def register(admin: Shopper, endpoints: list[str], url: str, event_types: list[str]) -> tuple[str, str]:
    data = await admin.data(CREATE, {"input": {"url": url, "eventTypes": event_types, "description": "test"}})
    payload = data["createMerchantEndpoint"]
    assert payload["userErrors"] == [], payload
    endpoints.append(payload["endpoint"]["id"])
    return payload["endpoint"]["id"], payload["secret"]


async def paid_order(shopper: Shopper, key: str | None = None) -> str:
    price = await make_price(1500)
    data = await shopper.data(CHECKOUT, {"input": checkout_input(price, key=key)})
    assert data["checkout"]["userErrors"] == [], data
    order_id: str = data["checkout"]["order"]["id"]
    return order_id


async def deliveries_of(admin: Shopper, event_id: str) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = (await admin.data(DELIVERIES, {"eventId": event_id}))["merchantDeliveries"]
    return rows


async def test_a_checkout_delivers_a_verifiable_order_paid(
    shopper: Shopper, admin: Shopper, receiver: Receiver, endpoints: list[str]
) -> None:
    _, secret = await register(admin, endpoints, receiver.url, [])
    order_id = await paid_order(shopper)

    def payment_succeeded() -> bool:
        return any(
            r.event["type"] == "payment.succeeded" and r.event["data"]["orderId"] == order_id for r in receiver.requests
        )

    # Each event is its own delivery: they may arrive in either order.
    await receiver.wait_for(lambda: bool(receiver.of(order_id, "order.paid")) and payment_succeeded())
    request = receiver.of(order_id, "order.paid")[0]
    assert request.verifies_with(secret)
    assert not request.verifies_with("whsec_someone_else")
    event = request.event
    assert request.headers["payql-event-id"] == event["id"] and request.headers["payql-event-type"] == "order.paid"
    assert request.headers["content-type"] == "application/json"
    assert event["data"]["id"] == order_id and event["data"]["status"] == "PAID"
    assert event["data"]["total"]["amount"] == 1500 and event["objectVersion"] >= 1


async def test_two_500s_then_a_200_deliver_one_event_three_times_with_its_attempts_recorded(
    shopper: Shopper, admin: Shopper, receiver: Receiver, endpoints: list[str]
) -> None:
    def fail_twice(request: Received, before: list[Received]) -> int:
        tries = sum(1 for r in before if r.event["id"] == request.event["id"])
        return 500 if tries < 2 else 200

    receiver.answer = fail_twice
    _, secret = await register(admin, endpoints, receiver.url, ["order.paid"])
    order_id = await paid_order(shopper)
    await receiver.wait_for(lambda: len(receiver.of(order_id)) >= 3)
    requests = receiver.of(order_id)
    assert {r.event["id"] for r in requests} == {requests[0].event["id"]}
    assert all(r.verifies_with(secret) for r in requests)
    assert {r.body for r in requests} == {requests[0].body}  # byte for byte the same event

    async def delivered() -> bool:
        rows = await deliveries_of(admin, requests[0].event["id"])
        return bool(rows) and rows[0]["status"] == "DELIVERED"

    await eventually(delivered)
    [row] = await deliveries_of(admin, requests[0].event["id"])
    assert (row["attempts"], row["lastStatusCode"], row["eventType"]) == (3, 200, "order.paid")
    assert [a["statusCode"] for a in row["attemptLog"]] == [500, 500, 200]
    assert [a["number"] for a in row["attemptLog"]] == [1, 2, 3]
    assert row["attemptLog"][0]["responseExcerpt"] == "answered 500"
    assert all(a["latencyMs"] is not None and a["error"] is None for a in row["attemptLog"])


async def test_a_disabled_endpoint_gets_nothing(
    shopper: Shopper, admin: Shopper, services: Services, receiver: Receiver, endpoints: list[str]
) -> None:
    async with receiving() as silent:
        disabled_id, _ = await register(admin, endpoints, silent.url, [])
        answer = await admin.data(DISABLE, {"id": disabled_id})
        assert answer["disableMerchantEndpoint"]["endpoint"]["enabled"] is False
        await register(admin, endpoints, receiver.url, [])
        order_id = await paid_order(shopper)
        await receiver.wait_for(lambda: bool(receiver.of(order_id, "order.paid")))
        await settle(services)
        assert silent.requests == []
        assert not await MerchantDelivery.filter(endpoint_id=disabled_id).exists()


async def test_during_a_secret_roll_both_secrets_verify(
    shopper: Shopper, admin: Shopper, receiver: Receiver, endpoints: list[str]
) -> None:
    endpoint_id, old = await register(admin, endpoints, receiver.url, ["order.paid"])
    rolled = await admin.data(ROLL, {"input": {"id": endpoint_id, "overlapSeconds": 3600}})
    new = rolled["rollMerchantEndpointSecret"]["secret"]
    assert new and new != old and rolled["rollMerchantEndpointSecret"]["endpoint"]["previousSecretExpiresAt"]
    order_id = await paid_order(shopper)
    await receiver.wait_for(lambda: bool(receiver.of(order_id)))
    request = receiver.of(order_id)[0]
    assert request.signature.count("v1=") == 2
    assert request.verifies_with(old) and request.verifies_with(new)

    # Rolled again without overlap: only the newest secret signs.
    newest = await admin.data(ROLL, {"input": {"id": endpoint_id, "overlapSeconds": 0}})
    newest_secret = newest["rollMerchantEndpointSecret"]["secret"]
    sent = (await admin.data(TEST_EVENT, {"id": endpoint_id}))["sendMerchantTestEvent"]["delivery"]
    await receiver.wait_for(lambda: any(r.event["id"] == sent["eventId"] for r in receiver.requests))
    [test_request] = [r for r in receiver.requests if r.event["id"] == sent["eventId"]]
    assert test_request.event["type"] == "endpoint.test"
    assert test_request.verifies_with(newest_secret)
    assert not test_request.verifies_with(new) and not test_request.verifies_with(old)


STAFF = Caller(Principal(subject="ssrf-test", is_admin=True))
NO_PRIVATE = OutboundPolicy(require_https=False, allow_private=False)


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8000/hook",
        "http://10.1.2.3/hook",
        "http://[::1]/hook",
        "http://169.254.169.254/latest/meta-data/",
        "http://localhost/hook",  # a hostname resolving to loopback
    ],
)
@pytest.mark.usefixtures("server")
async def test_ssrf_targets_are_refused_when_registered(url: str) -> None:
    before = await MerchantEndpoint.all().count()
    with pytest.raises(UseCaseError) as refused:
        await merchant_webhooks.create_endpoint(STAFF, NO_PRIVATE, url, "", [])
    assert refused.value.code is ErrorCode.INVALID_INPUT and refused.value.field == "url"
    assert await MerchantEndpoint.all().count() == before


async def test_an_endpoint_that_now_resolves_to_a_private_address_is_not_called(
    services: Services, receiver: Receiver
) -> None:
    endpoint = await MerchantEndpoint.create(url=receiver.url, event_types=["*"], secret="whsec_x")
    try:
        # Rows written directly: no job is queued, so only the strict delivery below touches them.
        event = await MerchantEvent.create(
            public_id=f"evt_{uuid.uuid4().hex}", type="endpoint.test", object_type="endpoint",
            object_id=str(endpoint.id), object_version=0, dedupe_key=f"ssrf:{uuid.uuid4()}", body="{}",
        )  # fmt: skip
        delivery = await MerchantDelivery.create(event_id=event.id, endpoint_id=endpoint.id)
        assert services.jobs.merchant_webhooks is not None
        strict = services.jobs.merchant_webhooks.__class__(outbound=NO_PRIVATE, max_attempts=1)
        outcome = await deliver(delivery.id, strict)
        assert outcome is not None and outcome.status is DeliveryStatus.DEAD
        [attempt] = await MerchantDeliveryAttempt.filter(delivery_id=delivery.id)
        assert attempt.status_code is None and attempt.error is not None and "127.0.0.1 is loopback" in attempt.error
        assert receiver.requests == []
    finally:
        await MerchantEndpoint.filter(id=endpoint.id).delete()


async def test_a_crash_between_commit_and_delivery_still_delivers(
    shopper: Shopper, admin: Shopper, services: Services, receiver: Receiver, endpoints: list[str]
) -> None:
    endpoint_id, secret = await register(admin, endpoints, receiver.url, ["order.paid"])
    # The process "dies" right after committing: nothing hears the commit, so no delivery job is queued.
    remove_change_listener(services.after_commit)
    try:
        order_id = await paid_order(shopper)
        await settle(services)
    finally:
        add_change_listener(services.after_commit)
    assert receiver.of(order_id) == []
    [pending] = await MerchantDelivery.filter(endpoint_id=endpoint_id, event__object_id=order_id)
    assert pending.status is DeliveryStatus.PENDING and pending.attempts == 0
    await services.jobs.sweep()  # what the periodic sweeper does after a restart
    await receiver.wait_for(lambda: bool(receiver.of(order_id, "order.paid")))
    assert receiver.of(order_id)[0].verifies_with(secret)


async def test_100_concurrent_checkouts_give_100_deliveries_none_duplicated(
    http: Any,
    admin: Shopper,
    services: Services,
    receiver: Receiver,
    endpoints: list[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # 100 checkouts at once on one process pass the default bulkhead and, on a loaded CI machine, the request
    # deadline: this test is about deliveries (the bulkhead has tests/features/test_gateway_bulkhead.py).
    guard = services.deps.gateways.guard
    roomy = dataclasses.replace(guard.limits, max_concurrent_calls=200, request_deadline_seconds=120.0)
    monkeypatch.setattr(guard, "limits", roomy)
    endpoint_id, _ = await register(admin, endpoints, receiver.url, ["order.paid"])
    shoppers = [Shopper(http, f"customer-{uuid.uuid4().hex[:10]}") for _ in range(100)]
    order_ids = await asyncio.gather(*(paid_order(s) for s in shoppers))
    assert len(set(order_ids)) == 100
    await receiver.wait_for(lambda: {r.event["objectId"] for r in receiver.requests} >= set(order_ids), timeout=120)
    events = await MerchantEvent.filter(object_id__in=order_ids, type="order.paid")
    assert sorted(e.object_id for e in events) == sorted(order_ids)  # one order.paid per order
    deliveries = await MerchantDelivery.filter(endpoint_id=endpoint_id, event_id__in=[e.id for e in events])
    assert len(deliveries) == 100
    await settle(services)
    assert len({r.event["id"] for r in receiver.requests}) == 100


async def test_100_concurrent_identical_checkouts_give_exactly_one_order_paid(
    shopper: Shopper, admin: Shopper, services: Services, receiver: Receiver, endpoints: list[str]
) -> None:
    await register(admin, endpoints, receiver.url, ["order.paid"])
    price = await make_price(2100)
    request = checkout_input(price, key=new_key())
    answers = await asyncio.gather(*(shopper.gql(CHECKOUT, {"input": request}) for _ in range(100)))
    order_ids = {a["data"]["checkout"]["order"]["id"] for a in answers if a["data"]["checkout"]["order"]}
    assert len(order_ids) == 1
    [order_id] = order_ids
    await receiver.wait_for(lambda: bool(receiver.of(order_id)))
    await settle(services)
    assert await MerchantEvent.filter(object_id=order_id, type="order.paid").count() == 1
    assert len({r.event["id"] for r in receiver.of(order_id)}) == 1


async def test_dead_after_the_last_attempt_then_a_resend_delivers(
    shopper: Shopper, admin: Shopper, services: Services, receiver: Receiver, endpoints: list[str]
) -> None:
    healthy = asyncio.Event()
    receiver.answer = lambda _request, _before: 200 if healthy.is_set() else 503
    await register(admin, endpoints, receiver.url, ["order.paid"])
    order_id = await paid_order(shopper)
    max_attempts = services.settings.merchant_webhook_max_attempts
    await receiver.wait_for(lambda: len(receiver.of(order_id)) >= max_attempts)
    event_id = receiver.of(order_id)[0].event["id"]

    async def dead() -> bool:
        return bool((await deliveries_of(admin, event_id))[0]["status"] == "DEAD")

    await eventually(dead)
    await settle(services)
    assert len(receiver.of(order_id)) == max_attempts  # no attempt after the last one
    [row] = await deliveries_of(admin, event_id)
    assert [a["statusCode"] for a in row["attemptLog"]] == [503] * max_attempts

    healthy.set()
    resent = (await admin.data(RESEND, {"id": row["id"]}))["resendMerchantDelivery"]
    assert resent["userErrors"] == [] and resent["delivery"]["status"] == "PENDING"
    await receiver.wait_for(lambda: len(receiver.of(order_id)) == max_attempts + 1)

    async def delivered() -> bool:
        return bool((await deliveries_of(admin, event_id))[0]["status"] == "DELIVERED")

    await eventually(delivered)
    assert {r.event["id"] for r in receiver.of(order_id)} == {event_id}
