"""Wiring the gateways: the call limits from settings guard every adapter the registry hands out."""

from __future__ import annotations

import asyncio
from pathlib import Path
from uuid import UUID, uuid4

import pytest

from gateways.call_guard import CallLimits
from gateways.errors import GatewayTimeout
from gateways.sandbox.package import PreparedSandbox
from jobs.queue import JobOffer
from jobs.saq_queue import SaqJobQueue
from payql.settings import Settings
from payql.wiring import Services, build_gateways, prepare_gateways
from resolvers.order_status import order_channel
from tests.jobs.saqkit import RoundTrips
from tests.testkit import CHECKOUT, PAY_ORDER, TEST_WEBHOOK_SECRET, Shopper, checkout_input, make_price, new_key


async def test_the_call_limits_from_settings_guard_every_adapter(tmp_path: Path) -> None:
    settings = Settings(
        gateways=["sandbox"],
        gateway_settings={
            "sandbox": {"webhook_secrets": [TEST_WEBHOOK_SECRET], "state_path": tmp_path / "sandbox.sqlite3"}
        },
        gateway_call_timeout_seconds=0.05,
        gateway_max_concurrent_calls=3,
        gateway_request_deadline_seconds=7,
    )
    prepared = prepare_gateways(settings, background=False)
    registry = await build_gateways(settings, prepared)
    sandbox = prepared["sandbox"]
    assert isinstance(sandbox, PreparedSandbox)
    try:
        assert registry.guard.limits == CallLimits(
            call_timeout_seconds=0.05, max_concurrent_calls=3, request_deadline_seconds=7
        )
        # A held answer is cut by the timeout from settings.
        sandbox.processor.arm_fault("hold", 1)
        with pytest.raises(GatewayTimeout):
            await registry.get("sandbox").retrieve("pi_sbx_unknown")
    finally:
        sandbox.processor.clear_faults()
        await registry.aclose()


async def test_an_order_is_announced_only_once_someone_can_know_it(
    shopper: Shopper, services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The transaction that creates an order announces nothing: no one has its id before that
    request answers. Every change after it is announced on the order's channel."""
    published: list[str] = []
    send = services.announce_and_enqueue

    async def record(channels: list[str], jobs: list[JobOffer]) -> None:
        published.extend(channels)
        await send(channels, jobs)

    monkeypatch.setattr(services, "announce_and_enqueue", record)
    price = await make_price(1200)
    declined = (await shopper.data(CHECKOUT, {"input": checkout_input(price, "pm_card_chargeDeclined")}))["checkout"]
    channel = order_channel(UUID(declined["order"]["id"]))
    # Made PENDING and PROCESSING in one transaction, unheard; PENDING again as the payment failed.
    assert published == [channel]

    retry = {"orderId": declined["order"]["id"], "paymentMethod": "pm_card_visa", "idempotencyKey": new_key()}
    paid = (await shopper.data(PAY_ORDER, {"input": retry}))["payOrder"]
    assert paid["order"]["status"] == "PAID"
    # A payment made for a known order is heard: PROCESSING, then PAID.
    assert published == [channel, channel, channel]


async def test_a_commits_announcement_and_jobs_reach_redis_in_one_round_trip(
    services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On Redis (the servers backend) the PUBLISH goes with the jobs, on the job queue's connection; on
    the embedded default, the in-process broker and queue take them one by one."""
    channel = order_channel(uuid4())
    unknown_message = ("dispatch_outbox_message", f"outbox:-{uuid4().int % 10**9}", {"message_id": -1})
    # A connection idle past its health check interval (30 s) sends a PING first: use it once.
    await services.announce_and_enqueue([order_channel(uuid4())], [])
    queue_round_trips = RoundTrips(monkeypatch, client_name="payql-jobs")
    app_round_trips = RoundTrips(monkeypatch, client_name=f"{services.settings.redis_key_prefix}app")
    async with services.broker.subscribe(channel) as messages:
        with queue_round_trips.during() as on_queue, app_round_trips.during() as on_app:
            await services.announce_and_enqueue([channel], [unknown_message])
        async with asyncio.timeout(30):
            assert await anext(messages) == {"channel": channel}
    if isinstance(services.queue, SaqJobQueue):
        assert (on_queue, on_app) == ([1], [0])
