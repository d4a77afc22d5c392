"""Square subscription plans, subscriptions and invoices to and from ours (see `billing.py`). Nothing here calls
Square: everything works on wire JSON (an SDK answer dumped, or a webhook's `data.object`).

- A PayQL price is one SUBSCRIPTION_PLAN_VARIATION (under a SUBSCRIPTION_PLAN named after the product) with one
  never-ending STATIC phase. Its name, `payql:<price id>:<cadence>:<amount><currency>`, is how it is found again
  and how a variation is known as ours; a changed price is a new variation (a variation in use cannot change).
- Square has no subscription metadata: the subscription's id is our gateway reference, and the mirror finds it by
  that. Dates are `YYYY-MM-DD` in the subscription's timezone, which PayQL sets to UTC: a date is its UTC midnight.
- Subscription statuses: PENDING before `start_date` (our trial) is TRIALING; ACTIVE is ACTIVE, or PAST_DUE while
  its newest invoice is due and unpaid (its card-on-file charge failed; INCOMPLETE when that is the first one);
  CANCELED and DEACTIVATED (Square stopped it, e.g. the card was removed) are CANCELED; PAUSED is PAUSED.
  Anything unknown is INCOMPLETE: no access.
- Invoice statuses: UNPAID, SCHEDULED, PARTIALLY_PAID, PAYMENT_PENDING are OPEN; PAID and (PARTIALLY_)REFUNDED
  PAID; CANCELED VOID; FAILED UNCOLLECTIBLE; DRAFT DRAFT; anything unknown OPEN: never paid.
"""

from __future__ import annotations

import calendar
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from types import MappingProxyType
from typing import Any, Final

from domain.money import Money
from domain.statuses import InvoiceStatus, SubscriptionStatus
from gateways.square.transformers import decline_code, timestamp
from gateways.types import InvoiceResult, PlanPrice, SubscriptionResult

VARIATION_PREFIX: Final = "payql:"
# Our interval and count → Square's SubscriptionCadence; anything else cannot be billed by Square.
CADENCES: Final[Mapping[tuple[str, int], str]] = MappingProxyType(
    {
        ("DAY", 1): "DAILY",
        ("DAY", 30): "THIRTY_DAYS",
        ("DAY", 60): "SIXTY_DAYS",
        ("DAY", 90): "NINETY_DAYS",
        ("WEEK", 1): "WEEKLY",
        ("WEEK", 2): "EVERY_TWO_WEEKS",
        ("MONTH", 1): "MONTHLY",
        ("MONTH", 2): "EVERY_TWO_MONTHS",
        ("MONTH", 3): "QUARTERLY",
        ("MONTH", 4): "EVERY_FOUR_MONTHS",
        ("MONTH", 6): "EVERY_SIX_MONTHS",
        ("YEAR", 1): "ANNUAL",
        ("YEAR", 2): "EVERY_TWO_YEARS",
    }
)
# SubscriptionCadence → (days, months) of one period.
_PERIODS: Final[Mapping[str, tuple[int, int]]] = MappingProxyType(
    {
        "DAILY": (1, 0),
        "WEEKLY": (7, 0),
        "EVERY_TWO_WEEKS": (14, 0),
        "THIRTY_DAYS": (30, 0),
        "SIXTY_DAYS": (60, 0),
        "NINETY_DAYS": (90, 0),
        "MONTHLY": (0, 1),
        "EVERY_TWO_MONTHS": (0, 2),
        "QUARTERLY": (0, 3),
        "EVERY_FOUR_MONTHS": (0, 4),
        "EVERY_SIX_MONTHS": (0, 6),
        "ANNUAL": (0, 12),
        "EVERY_TWO_YEARS": (0, 24),
    }
)
_INVOICE_STATUSES: Final[Mapping[str, InvoiceStatus]] = MappingProxyType(
    {
        "DRAFT": InvoiceStatus.DRAFT,
        "UNPAID": InvoiceStatus.OPEN,
        "SCHEDULED": InvoiceStatus.OPEN,
        "PARTIALLY_PAID": InvoiceStatus.OPEN,
        "PAYMENT_PENDING": InvoiceStatus.OPEN,
        "PAID": InvoiceStatus.PAID,
        "PARTIALLY_REFUNDED": InvoiceStatus.PAID,
        "REFUNDED": InvoiceStatus.PAID,
        "CANCELED": InvoiceStatus.VOID,
        "FAILED": InvoiceStatus.UNCOLLECTIBLE,
    }
)


def cadence_of(price: PlanPrice) -> str | None:
    return CADENCES.get((price.interval, price.interval_count))


def variation_name(price: PlanPrice, cadence: str) -> str:
    amount = price.unit_amount
    return f"{VARIATION_PREFIX}{price.price_id}:{cadence}:{amount.amount}{amount.currency}"


def price_id_of(variation_name_: object) -> str | None:
    """Our price id from one of our variations' names; None for a variation made elsewhere."""
    if not isinstance(variation_name_, str) or not variation_name_.startswith(VARIATION_PREFIX):
        return None
    price_id = variation_name_.removeprefix(VARIATION_PREFIX).split(":")[0]
    return price_id or None


def plan_object(price: PlanPrice) -> dict[str, Any]:
    return {"type": "SUBSCRIPTION_PLAN", "id": "#plan", "subscription_plan_data": {"name": price.product_name[:255]}}


def variation_object(price: PlanPrice, cadence: str, plan_id: str) -> dict[str, Any]:
    amount = price.unit_amount
    phase = {
        "cadence": cadence,
        "ordinal": 0,
        "pricing": {"type": "STATIC", "price_money": {"amount": amount.amount, "currency": amount.currency}},
    }
    return {
        "type": "SUBSCRIPTION_PLAN_VARIATION",
        "id": "#variation",
        "subscription_plan_variation_data": {
            "name": variation_name(price, cadence),
            "subscription_plan_id": plan_id,
            "phases": [phase],
        },
    }


def variation_cadence(variation: Mapping[str, Any]) -> str | None:
    data = variation.get("subscription_plan_variation_data")
    phases = data.get("phases") if isinstance(data, Mapping) else None
    if not isinstance(phases, list) or not phases or not isinstance(phases[-1], Mapping):
        return None
    cadence = phases[-1].get("cadence")
    return cadence if isinstance(cadence, str) and cadence in _PERIODS else None


def variation_matches(variation: Mapping[str, Any], price: PlanPrice, cadence: str) -> bool:
    data = variation.get("subscription_plan_variation_data")
    return (
        isinstance(data, Mapping)
        and data.get("name") == variation_name(price, cadence)
        and not variation.get("is_deleted")
        and variation_cadence(variation) == cadence
    )


def day(value: object) -> date | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        return None


def epoch(value: date | None) -> int | None:
    return int(datetime(value.year, value.month, value.day, tzinfo=UTC).timestamp()) if value else None


def today() -> date:
    return datetime.now(UTC).date()


def step(moment: date, cadence: str, periods: int) -> date:
    """`moment` moved by `periods` billing periods (negative: back), month ends clamped as Square bills them."""
    days, months = _PERIODS[cadence]
    if not months:
        return moment + timedelta(days=days * periods)
    index = moment.month - 1 + months * periods
    year, month = moment.year + index // 12, index % 12 + 1
    return date(year, month, min(moment.day, calendar.monthrange(year, month)[1]))


def invoice_status(status: str) -> InvoiceStatus:
    return _INVOICE_STATUSES.get(status, InvoiceStatus.OPEN)


def invoice_result(
    invoice: Mapping[str, Any],
    *,
    first: bool,
    cadence: str | None,
    payments: Sequence[Mapping[str, Any]] = (),
) -> InvoiceResult:
    """One invoice; `payments` are the Square payments on its order (its charges, failed ones included), which
    give the paying payment, the number of attempts and the last decline."""
    status = invoice_status(_text(invoice, "status"))
    requests = [r for r in invoice.get("payment_requests") or [] if isinstance(r, Mapping)]
    if not requests:
        raise ValueError("invoice has no payment request")
    due = _sum(requests, "computed_amount_money")
    paid = _sum(requests, "total_completed_amount_money", due.currency)
    starts = day(requests[0].get("due_date"))
    completed = [p for p in payments if p.get("status") == "COMPLETED"]
    failed = [p for p in payments if p.get("status") == "FAILED"]
    newest_failure = max(failed, key=lambda p: str(p.get("created_at", "")), default=None)
    errors = (newest_failure or {}).get("card_details", {}).get("errors") or []
    code = errors[0].get("code") if errors and isinstance(errors[0], Mapping) else None
    return InvoiceResult(
        reference=_text(invoice, "id"),
        subscription_reference=_text(invoice, "subscription_id"),
        status=status,
        amount_due=due,
        amount_paid=paid.amount,
        billing_reason="subscription_create" if first else "subscription_cycle",
        period_start=epoch(starts),
        period_end=epoch(step(starts, cadence, 1)) if starts and cadence else None,
        attempt_count=len(completed) + len(failed),
        payment_reference=str(completed[0]["id"]) if completed else None,
        decline_code=decline_code(code) if status is InvoiceStatus.OPEN and isinstance(code, str) else None,
        created=timestamp(invoice.get("created_at")),
    )


def subscription_result(
    subscription: Mapping[str, Any],
    *,
    price_id: str | None,
    cadence: str | None,
    latest_invoice: InvoiceResult | None = None,
    pending_price_id: str | None = None,
) -> SubscriptionResult:
    gateway_status = _text(subscription, "status")
    start, through = day(subscription.get("start_date")), day(subscription.get("charged_through_date"))
    canceled = day(subscription.get("canceled_date"))
    status = _status(gateway_status, start, latest_invoice)
    period_start = step(through, cadence, -1) if through and cadence else start
    period_end = through or start
    if gateway_status == "PENDING":  # not started: the trial runs until start_date
        period_start, period_end = today(), start
    ended = status is SubscriptionStatus.CANCELED
    card = subscription.get("card_id")
    return SubscriptionResult(
        reference=_text(subscription, "id"),
        status=status,
        price_id=price_id,
        customer_reference=subscription.get("customer_id")
        if isinstance(subscription.get("customer_id"), str)
        else None,
        current_period_start=epoch(period_start),
        current_period_end=epoch(period_end),
        trial_end=epoch(start) if status is SubscriptionStatus.TRIALING else None,
        cancel_at_period_end=canceled is not None and not ended,
        canceled_at=epoch(canceled) if ended else None,
        ended_at=epoch(canceled or today()) if ended else None,
        default_payment_method=card if isinstance(card, str) else None,
        pending_price_id=pending_price_id,
        latest_invoice=latest_invoice,
        gateway_status=gateway_status,
    )


def _status(gateway_status: str, start: date | None, latest: InvoiceResult | None) -> SubscriptionStatus:
    if gateway_status == "PENDING":
        return SubscriptionStatus.TRIALING if start is not None and start > today() else SubscriptionStatus.INCOMPLETE
    if gateway_status == "ACTIVE":
        owing = latest is not None and latest.status is InvoiceStatus.OPEN and latest.attempt_count > 0
        if not owing:
            return SubscriptionStatus.ACTIVE
        assert latest is not None
        first = latest.billing_reason == "subscription_create"
        return SubscriptionStatus.INCOMPLETE if first else SubscriptionStatus.PAST_DUE
    if gateway_status in ("CANCELED", "DEACTIVATED"):
        return SubscriptionStatus.CANCELED
    if gateway_status == "PAUSED":
        return SubscriptionStatus.PAUSED
    return SubscriptionStatus.INCOMPLETE


def _sum(requests: Sequence[Mapping[str, Any]], key: str, currency: str | None = None) -> Money:
    amounts = [r[key] for r in requests if isinstance(r.get(key), Mapping)]
    if not amounts and currency is not None:
        return Money(0, currency)
    if not amounts:
        raise ValueError(f"invoice has no {key}")
    currencies = {str(a.get("currency")) for a in amounts}
    if len(currencies) != 1:
        raise ValueError(f"{key} in several currencies")
    return Money(sum(int(a.get("amount") or 0) for a in amounts), currencies.pop())


def _text(obj: Mapping[str, Any], key: str) -> str:
    value = obj.get(key)
    if not isinstance(value, str) or not value:
        raise ValueError(f"{key} is missing")
    return value
