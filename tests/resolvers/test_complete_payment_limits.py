"""completePayment: limited per principal (each call reads the gateway), and concurrent calls for
one payment share one gateway read in this process."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from limits import parse

from gateways.types import PaymentResult
from payql.wiring import Services
from resolvers import payments
from resolvers.outcome import Outcome
from resolvers.single_flight import SingleFlight
from tests.testkit import CHECKOUT, COMPLETE, Shopper, checkout_input, eventually, make_price, settle


async def paid_payment_id(shopper: Shopper) -> str:
    price = await make_price(700)
    paid = (await shopper.data(CHECKOUT, {"input": checkout_input(price)}))["checkout"]
    assert paid["userErrors"] == []
    payment_id: str = paid["payment"]["id"]
    return payment_id


async def test_complete_payment_is_limited_per_principal_with_retry_after(
    services: Services, shopper: Shopper, other_shopper: Shopper, monkeypatch: pytest.MonkeyPatch
) -> None:
    payment_id = await paid_payment_id(shopper)
    other_payment_id = await paid_payment_id(other_shopper)
    monkeypatch.setattr(services.deps.complete_limiter, "_limit", parse("2/minute"))
    answers = [
        await shopper.http.post(
            "/graphql",
            json={"query": COMPLETE, "variables": {"input": {"paymentId": payment_id}}},
            headers={"authorization": f"Bearer {shopper.token}"},
        )
        for _ in range(3)
    ]
    codes = [[e["code"] for e in answer.json()["data"]["completePayment"]["userErrors"]] for answer in answers]
    assert codes == [[], [], ["RATE_LIMITED"]]
    assert int(answers[2].headers["retry-after"]) >= 1
    other = (await other_shopper.data(COMPLETE, {"input": {"paymentId": other_payment_id}}))["completePayment"]
    assert other["userErrors"] == []


class CountingFlight(SingleFlight[Any, Outcome]):
    """Counts the callers that reached the coalescing point, so the test knows all have joined."""

    def __init__(self) -> None:
        super().__init__()
        self.callers = 0

    async def run(self, key: Any, work: Callable[[], Any]) -> Outcome:
        self.callers += 1
        return await super().run(key, work)


async def test_concurrent_calls_for_one_payment_share_one_gateway_read(
    services: Services, shopper: Shopper, monkeypatch: pytest.MonkeyPatch
) -> None:
    payment_id = await paid_payment_id(shopper)
    await settle(services)  # the checkout's webhooks re-read the payment too; let them finish first
    gateway = services.deps.gateways.get("sandbox")
    reads: list[str] = []
    release = asyncio.Event()
    real_retrieve: Callable[[str], Awaitable[PaymentResult]] = gateway.retrieve

    async def gated_retrieve(reference: str) -> PaymentResult:
        reads.append(reference)
        await release.wait()
        return await real_retrieve(reference)

    monkeypatch.setattr(gateway, "retrieve", gated_retrieve)
    flight = CountingFlight()
    monkeypatch.setattr(payments, "_completing", flight)

    calls = [asyncio.create_task(shopper.data(COMPLETE, {"input": {"paymentId": payment_id}})) for _ in range(5)]
    await eventually(lambda: _true(flight.callers == 5 and len(reads) >= 1), timeout=10)
    release.set()
    answers = await asyncio.wait_for(asyncio.gather(*calls), 10)

    assert len(reads) == 1
    assert {answer["completePayment"]["payment"]["status"] for answer in answers} == {"PAID"}
    assert all(answer["completePayment"]["userErrors"] == [] for answer in answers)
    # Not a cache: the next call, after the shared one ended, reads the gateway again.
    await shopper.data(COMPLETE, {"input": {"paymentId": payment_id}})
    assert len(reads) == 2


async def _true(value: bool) -> bool:
    return value
