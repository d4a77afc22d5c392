"""Shared pieces of the sandbox billing tests: a gateway on a frozen wall clock, plan prices, event reading."""

from __future__ import annotations

from datetime import UTC, datetime

from domain.money import Money
from gateways.sandbox import SandboxGateway
from gateways.sandbox.processor import SandboxClock, SandboxProcessor
from gateways.sandbox.processor.objects import JsonDict
from gateways.types import PlanPrice, SubscriptionRequest

BASE_URL = "http://payql.test"
DAY = 86_400
# 2027-01-01 00:00 UTC: months of known lengths (January 31 days, February 28).
JAN_1 = int(datetime(2027, 1, 1, tzinfo=UTC).timestamp())


def at(year: int, month: int, day: int) -> int:
    return int(datetime(year, month, day, tzinfo=UTC).timestamp())


def frozen_processor(**kwargs: object) -> SandboxProcessor:
    """A processor whose wall clock stands still, so only test clocks move time (and amounts are exact)."""
    return SandboxProcessor(clock=SandboxClock(time_source=lambda: float(JAN_1)), **kwargs)  # type: ignore[arg-type]


def gateway_on(processor: SandboxProcessor) -> SandboxGateway:
    return SandboxGateway(processor, BASE_URL, ["whsec_test"])


def plan(
    price_id: str = "price_basic", amount: int = 2000, *, metered: bool = False, interval: str = "MONTH"
) -> PlanPrice:
    return PlanPrice(
        price_id=price_id,
        product_id="prod_app",
        product_name=f"App {price_id}",
        unit_amount=Money(amount, "USD"),
        interval=interval,
        metered=metered,
    )


def subscription_request(
    key: str = "sub-1",
    *,
    price: PlanPrice | None = None,
    payment_method: str = "pm_card_visa",
    trial_days: int = 0,
    customer_id: str = "cust_1",
    payql_subscription_id: str = "psub_1",
) -> SubscriptionRequest:
    return SubscriptionRequest(
        payql_subscription_id=payql_subscription_id,
        customer_id=customer_id,
        customer_email="shopper@example.com",
        price=price or plan(),
        payment_method=payment_method,
        idempotency_key=key,
        trial_days=trial_days,
    )


async def events_of(processor: SandboxProcessor, *types: str) -> list[JsonDict]:
    """Committed events of these types (all when none are named), in commit order."""
    return [event for event in await processor.list_events() if not types or event["type"] in types]


def data_object(event: JsonDict) -> JsonDict:
    data = event["data"]
    assert isinstance(data, dict)
    obj = data["object"]
    assert isinstance(obj, dict)
    return obj
