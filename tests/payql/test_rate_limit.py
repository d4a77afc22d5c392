"""Payment mutations are rate limited per principal (memory or Redis storage, like production)."""

from __future__ import annotations

import uuid

from limits import parse

from payql.rate_limit import PaymentRateLimiter
from payql.wiring import Services


async def test_a_principal_over_its_limit_is_refused_others_are_not(services: Services) -> None:
    limiter = PaymentRateLimiter("3/minute", services.redis, f"{services.settings.redis_key_prefix}{uuid.uuid4().hex}:")
    alice, bob = f"customer:{uuid.uuid4()}", f"customer:{uuid.uuid4()}"
    assert [await limiter.hit(alice) for _ in range(4)] == [True, True, True, False]
    assert await limiter.hit(bob)


async def test_rate_limited_mutation_returns_the_code(services: Services, shopper, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from tests.testkit import CHECKOUT, checkout_input, make_price

    # The running server's limiter, tightened for this test; the shopper is new, so its count starts at 0.
    monkeypatch.setattr(services.deps.rate_limiter, "_limit", parse("1/minute"))
    price = await make_price(100)
    first = (await shopper.data(CHECKOUT, {"input": checkout_input(price)}))["checkout"]
    second = (await shopper.data(CHECKOUT, {"input": checkout_input(price)}))["checkout"]
    assert first["userErrors"] == []
    assert [e["code"] for e in second["userErrors"]] == ["RATE_LIMITED"]
