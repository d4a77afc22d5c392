"""`bench.checkout`'s bound on what PayQL's checkout can reach served as it is (`--ceiling`), and the
floor's request answered without its work, which the bound takes away from PayQL's serving."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import pytest
from starlette.requests import Request

from bench import checkout_floor
from bench.checkout import SideCost, serving_bound


def test_the_bound_adds_only_what_payqls_serving_costs_above_the_floors() -> None:
    floor = SideCost(server_ms=2.0, tiers_ms=2.0, client_ms=3.0)
    # PayQL served without work: 1.5 ms in its server (the floor's: 0.5 ms), 3.5 ms in the load generator.
    bound = serving_bound(floor, floor_serving_ms=0.5, payql_serving=SideCost(1.5, 0.0, 3.5))
    # At best PayQL's server spends the floor's 2 ms plus 1 ms more serving: 3 ms; its load generator 3.5.
    assert (bound.cpu_ratio, bound.throughput_ratio) == pytest.approx((1.5, 7.0 / 8.5))


def test_serving_as_cheap_as_the_floors_reaches_the_floor() -> None:
    floor = SideCost(server_ms=2.0, tiers_ms=1.0, client_ms=1.0)
    bound = serving_bound(floor, floor_serving_ms=0.4, payql_serving=SideCost(0.4, 0.0, 1.0))
    assert (bound.cpu_ratio, bound.throughput_ratio) == pytest.approx((1.0, 1.0))


def request(body: dict[str, Any]) -> Request:
    encoded = json.dumps(body).encode()

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": encoded, "more_body": False}

    return Request({"type": "http", "method": "POST", "path": "/checkout/answered", "headers": []}, receive)


def test_the_floor_answers_without_its_work_as_it_answers_a_checkout() -> None:
    # No pool in the floor's state: a statement would fail with KeyError.
    assert "pool" not in checkout_floor.state
    answer = asyncio.run(
        checkout_floor.checkout_answered(request({"priceId": str(uuid.uuid4()), "idempotencyKey": "k"}))
    )
    body = json.loads(bytes(answer.body))
    assert answer.status_code == 200
    assert body["order"]["status"] == "PAID" and body["payment"] == {"status": "PAID"}
    assert uuid.UUID(body["order"]["id"])
    assert not checkout_floor.receipts
