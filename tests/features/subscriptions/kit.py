"""Helpers for the subscription tests: recurring prices, the GraphQL documents, and moving a
customer's sandbox test clock with everything it fires applied (webhooks, jobs, dunning)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from db.models import Price, PriceType, Product, RecurringInterval
from payql.wiring import Services
from tests.testkit import Shopper, new_key, settle

DAY = 86_400

SUBSCRIPTION_FIELDS = """
  id status gateway gatewayReference priceId pendingPriceId cancelAtPeriodEnd
  currentPeriodStart currentPeriodEnd trialEnd canceledAt endedAt failedAttempts nextRetryAt graceUntil
  unitAmount { amount currency }
"""
INVOICE_FIELDS = """
  id status billingReason attemptCount declineCode orderId periodStart periodEnd
  amountDue { amount currency } amountPaid { amount }
  nextAction { type redirectUrl clientSecret }
"""
PAYLOAD = f"""
  subscription {{ {SUBSCRIPTION_FIELDS} }}
  latestInvoice {{ {INVOICE_FIELDS} }}
  nextAction {{ type redirectUrl clientSecret }}
  userErrors {{ code field message }}
"""

CREATE = f"mutation($input: CreateSubscriptionInput!) {{ createSubscription(input: $input) {{ {PAYLOAD} }} }}"
CHANGE = f"mutation($input: ChangeSubscriptionPlanInput!) {{ changeSubscriptionPlan(input: $input) {{ {PAYLOAD} }} }}"
CANCEL = f"mutation($input: CancelSubscriptionInput!) {{ cancelSubscription(input: $input) {{ {PAYLOAD} }} }}"
PAUSE = f"mutation($input: SubscriptionActionInput!) {{ pauseSubscription(input: $input) {{ {PAYLOAD} }} }}"
RESUME = f"mutation($input: SubscriptionActionInput!) {{ resumeSubscription(input: $input) {{ {PAYLOAD} }} }}"
USAGE = f"mutation($input: ReportUsageInput!) {{ reportUsage(input: $input) {{ {PAYLOAD} }} }}"
UPDATE_METHOD = (
    "mutation($input: UpdateDefaultPaymentMethodInput!) "
    f"{{ updateDefaultPaymentMethod(input: $input) {{ {PAYLOAD} }} }}"
)
ADVANCE = f"""mutation($id: ID!, $seconds: Int!) {{
  advanceClock(subscriptionId: $id, seconds: $seconds) {{ now subscription {{ {SUBSCRIPTION_FIELDS} }} }}
}}"""
SUBSCRIPTION = (
    f"query($id: ID!) {{ subscription(id: $id) {{ {SUBSCRIPTION_FIELDS} invoices {{ {INVOICE_FIELDS} }} }} }}"
)
HAS_ACCESS = "query($product: ID!) { hasAccess(productId: $product) }"
PREVIEW = """query($id: ID!, $price: ID!) {
  previewSubscriptionChange(subscriptionId: $id, priceId: $price) {
    amountDueNow { amount currency } nextInvoiceAmount { amount currency } nextInvoiceAt
  }
}"""


async def recurring_price(
    amount: int,
    *,
    currency: str = "USD",
    product: Product | None = None,
    metered: bool = False,
    interval: RecurringInterval = RecurringInterval.MONTH,
) -> Price:
    owner = product or await Product.create(name=f"Plan {uuid.uuid4().hex[:6]}")
    return await Price.create(
        product=owner,
        currency=currency,
        unit_amount=amount,
        type=PriceType.RECURRING,
        recurring_interval=interval,
        metered=metered,
    )


async def subscribe(
    shopper: Shopper, price: Price, payment_method: str = "pm_card_visa", *, trial_days: int = 0, key: str | None = None
) -> dict[str, Any]:
    variables = {
        "input": {
            "priceId": str(price.id),
            "gateway": "sandbox",
            "paymentMethod": payment_method,
            "trialDays": trial_days,
            "idempotencyKey": key or new_key(),
        }
    }
    payload: dict[str, Any] = (await shopper.data(CREATE, variables))["createSubscription"]
    return payload


async def current(shopper: Shopper, subscription_id: str) -> dict[str, Any]:
    found: dict[str, Any] = (await shopper.data(SUBSCRIPTION, {"id": subscription_id}))["subscription"]
    return found


async def advance(admin: Shopper, services: Services, subscription_id: str, seconds: int) -> int:
    """Move the subscription's customer clock, let every webhook and job it caused finish, run the
    dunning job once (as its timer would), settle again, and return the clock's new time."""
    await settle(services)
    moved = (await admin.data(ADVANCE, {"id": subscription_id, "seconds": seconds}))["advanceClock"]
    await settle(services)
    await services.jobs.dunning()
    await settle(services)
    return int(datetime.fromisoformat(moved["now"]).timestamp())


async def advance_past_period_end(admin: Shopper, services: Services, shopper: Shopper, subscription_id: str) -> int:
    """Move the clock just past the current period's end (one renewal), returning the clock's time."""
    now = await advance(admin, services, subscription_id, 1)
    period_end = int(datetime.fromisoformat((await current(shopper, subscription_id))["currentPeriodEnd"]).timestamp())
    return await advance(admin, services, subscription_id, period_end - now + 60)


async def has_access(shopper: Shopper, price: Price) -> bool:
    return bool((await shopper.data(HAS_ACCESS, {"product": str(price.product_id)}))["hasAccess"])


def key() -> str:
    return new_key()
