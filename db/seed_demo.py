"""A small demo catalog (USD, EUR, JPY; one-time, monthly and metered) for `payql seed-demo`.

Idempotent: prices are keyed by lookup_key, so running it twice creates nothing new.
"""

from __future__ import annotations

from dataclasses import dataclass

from db.models import Price, PriceType, Product, RecurringInterval
from db.transaction import transaction


@dataclass(frozen=True, slots=True)
class DemoPrice:
    lookup_key: str
    currency: str
    unit_amount: int
    interval: RecurringInterval | None = None
    metered: bool = False


DEMO_CATALOG: dict[str, tuple[str, list[DemoPrice]]] = {
    "Espresso beans, 1 kg": (
        "Single-origin beans, roasted to order.",
        [
            DemoPrice("beans_usd", "USD", 2400),
            DemoPrice("beans_eur", "EUR", 2200),
            DemoPrice("beans_jpy", "JPY", 3500),
        ],
    ),
    "Ceramic mug": (
        "Handmade, 350 ml.",
        [
            DemoPrice("mug_usd", "USD", 1850),
            DemoPrice("mug_eur", "EUR", 1700),
            DemoPrice("mug_jpy", "JPY", 2800),
        ],
    ),
    "Coffee club": (
        "A bag of fresh beans every month.",
        [
            DemoPrice("club_monthly_usd", "USD", 1900, RecurringInterval.MONTH),
            DemoPrice("club_monthly_eur", "EUR", 1800, RecurringInterval.MONTH),
            DemoPrice("club_monthly_jpy", "JPY", 2900, RecurringInterval.MONTH),
            DemoPrice("club_premium_monthly_usd", "USD", 3900, RecurringInterval.MONTH),
        ],
    ),
    "Roastery API": (
        "Pay per request, billed monthly in arrears.",
        [DemoPrice("api_requests_usd", "USD", 2, RecurringInterval.MONTH, metered=True)],
    ),
}


async def seed_demo_catalog() -> int:
    """Create the demo products and prices that are missing; returns how many prices were created."""
    created = 0
    async with transaction():
        for name, (description, prices) in DEMO_CATALOG.items():
            product = await Product.filter(name=name).first()
            if product is None:
                product = await Product.create(name=name, description=description)
            for demo in prices:
                if await Price.filter(lookup_key=demo.lookup_key).exists():
                    continue
                await Price.create(
                    product=product,
                    lookup_key=demo.lookup_key,
                    currency=demo.currency,
                    unit_amount=demo.unit_amount,
                    type=PriceType.RECURRING if demo.interval else PriceType.ONE_TIME,
                    recurring_interval=demo.interval,
                    metered=demo.metered or None,
                )
                created += 1
    return created
