"""`bench.obligations`: every part a checkout must do beyond the floor's statements does that work each
time it is counted (a part that did less would make the bound `bench.checkout --ceiling` prints too
high), and the bound adds the parts, and the floor's worker, to what PayQL's serving costs."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest
from limits import parse
from limits.aio.strategies import MovingWindowRateLimiter
from redis.asyncio import Redis

from bench.checkout import SideCost, serving_bound
from bench.obligations import RECEIPT_JOB, WARM_UP, Obligations, Part, measure
from bench.servers import UNLIMITED
from gateways.sandbox.processor import SandboxProcessor
from payql.rate_limit import limits_storage
from tests.backends import Backend

CHECKOUTS = 12
CALLS = WARM_UP + CHECKOUTS


def test_the_bound_adds_the_obligations_and_the_floors_worker() -> None:
    floor = SideCost(server_ms=2.0, tiers_ms=2.0, client_ms=3.0, worker_ms=1.0)
    serving = SideCost(1.5, 0.0, 3.5)
    # At best: the floor's 2 ms server plus 1 ms more serving, its 2 ms of tiers and 1 ms of worker, a
    # PayQL request's 3.5 ms in the load generator, and the obligations' 2.5 ms: 12 ms against the floor's 8.
    bound = serving_bound(floor, 0.5, serving, obligations_ms=2.5)
    assert bound.throughput_ratio == pytest.approx(8.0 / 12.0)
    assert serving_bound(floor, 0.5, serving).throughput_ratio == pytest.approx(8.0 / 9.5)


def test_a_development_only_part_is_left_out_of_productions_total() -> None:
    obligations = Obligations((Part("a", 1.0, 0.5), Part("mailbox", 2.0, 0.0, development_only=True)))
    assert (obligations.total_ms, obligations.production_ms) == (3.5, 1.5)


async def test_every_part_does_its_work_each_time_it_is_counted(backend: Backend, tmp_path: Path) -> None:
    if backend.redis_url is None:
        pytest.skip("the parts run on Redis (limits, saq); proven with PAYQL_TEST_BACKEND=servers")
    prefix = f"{backend.redis_prefix}obligations-{uuid.uuid4().hex[:8]}:"
    obligations = await measure(backend.redis_url, prefix, tmp_path, CHECKOUTS, "worker")

    assert [part.name for part in obligations.parts] == [
        "payment limit",
        "gateway call (sandbox)",
        "encryption at rest",
        "receipt job queued",
        "receipt job run by the worker",
        "receipt message built",
        "receipt sent to the mailbox",
    ]
    assert all(part.process_ms > 0 for part in obligations.parts)
    assert [part.name for part in obligations.parts if part.development_only] == ["receipt sent to the mailbox"]

    redis = Redis.from_url(backend.redis_url)
    try:
        # Every hit counted in the one shopper's window.
        limiter = MovingWindowRateLimiter(limits_storage(redis, prefix))
        stats = await limiter.get_window_stats(parse(UNLIMITED), "payments", "bench-customer")
        assert stats.remaining == parse(UNLIMITED).amount - CALLS
        # Every receipt job queued, run and ended.
        records = [json.loads(await redis.get(key)) async for key in redis.scan_iter(f"saq:job:{prefix}*")]
        assert len(records) == CALLS
        assert {(record["function"], record["status"]) for record in records} == {(RECEIPT_JOB, "complete")}
    finally:
        await redis.aclose()

    # Every charge made at the gateway, and kept in its state file.
    processor = SandboxProcessor(state_path=tmp_path / "obligations-sandbox.sqlite3")
    await processor.open()
    try:
        intents = await processor.list_payment_intents()
    finally:
        await processor.aclose()
    assert len(intents) == CALLS
    assert {intent.status for intent in intents} == {"succeeded"}
    # Every receipt written to a file of its own.
    assert len(list((tmp_path / "obligations-mailbox").glob("*.eml"))) == CALLS


async def test_with_receipts_in_the_server_no_job_is_counted(backend: Backend, tmp_path: Path) -> None:
    if backend.redis_url is None:
        pytest.skip("the payment limit runs on Redis; proven with PAYQL_TEST_BACKEND=servers")
    prefix = f"{backend.redis_prefix}obligations-{uuid.uuid4().hex[:8]}:"
    obligations = await measure(backend.redis_url, prefix, tmp_path, CHECKOUTS, "server")
    assert not [part for part in obligations.parts if "job" in part.name]
