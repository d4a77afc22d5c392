"""Staff analytics over a time window [since, until): revenue, payment outcomes, declines, disputes.

Everything is aggregated in SQL (grouped queries, one per report) and always grouped per currency
where amounts are involved: amounts in different currencies are never added together. Counts
(outcomes, declines) carry no currency and may be totalled.

Day grouping is the only dialect-specific part: the UTC calendar day of a ledger row is
`date(created_at)` on SQLite (stored as ISO text with its offset, and `date()` normalizes to UTC)
and `to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD')` on PostgreSQL (a timestamptz, so the
session time zone does not matter). Both yield the same 'YYYY-MM-DD' text.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from tortoise import connections
from tortoise.expressions import RawSQL, Subquery
from tortoise.functions import Count, Sum

from db.models import Dispute, Order, Payment, PaymentEvent, PaymentEventType
from domain.statuses import PAYMENT_SUCCEEDED, OrderStatus, PaymentStatus
from resolvers.context import Caller
from resolvers.errors import ErrorCode, UseCaseError

MAX_WINDOW = timedelta(days=366)

REVENUE_EVENTS = (PaymentEventType.CAPTURED, PaymentEventType.REFUNDED, PaymentEventType.REFUND_REVERSED)
PAYMENT_FAILED = frozenset({PaymentStatus.FAILED})
# An order that was paid at some point: the denominator of the dispute rate.
ORDER_WAS_PAID = frozenset(
    {OrderStatus.PAID, OrderStatus.PARTIALLY_REFUNDED, OrderStatus.REFUNDED, OrderStatus.DISPUTED}
)

_EVENT_DAY_SQL = {
    "sqlite": 'date("payment_events"."created_at")',
    "postgres": "to_char(\"payment_events\".\"created_at\" AT TIME ZONE 'UTC', 'YYYY-MM-DD')",
}


@dataclass(frozen=True, slots=True)
class Window:
    since: datetime
    until: datetime


@dataclass(frozen=True, slots=True)
class RevenueDay:
    day: date
    currency: str
    gateway: str
    gross: int  # Σ CAPTURED, minor units
    refunded: int  # Σ REFUNDED - Σ REFUND_REVERSED, minor units

    @property
    def net(self) -> int:
        return self.gross - self.refunded


@dataclass(frozen=True, slots=True)
class Outcome:
    gateway: str | None  # None: all gateways in the report together
    succeeded: int
    failed: int

    @property
    def total(self) -> int:
        return self.succeeded + self.failed

    @property
    def success_rate(self) -> float | None:
        return self.succeeded / self.total if self.total else None

    @property
    def failure_rate(self) -> float | None:
        return self.failed / self.total if self.total else None


@dataclass(frozen=True, slots=True)
class PaymentOutcomes:
    overall: Outcome
    by_gateway: list[Outcome]


@dataclass(frozen=True, slots=True)
class DeclineReason:
    gateway: str
    decline_code: str | None
    count: int


@dataclass(frozen=True, slots=True)
class DisputeRate:
    currency: str
    disputed: int
    paid: int  # orders that were paid, disputed ones included

    @property
    def rate(self) -> float | None:
        return self.disputed / self.paid if self.paid else None


def check_window(since: datetime, until: datetime) -> Window:
    """Refuse naive times, empty or reversed windows and windows longer than 366 days."""
    for name, value in (("since", since), ("until", until)):
        if value.tzinfo is None or value.utcoffset() is None:
            raise UseCaseError(ErrorCode.INVALID_INPUT, f"{name} must include a time zone offset.", name)
    since, until = since.astimezone(UTC), until.astimezone(UTC)
    if until <= since:
        raise UseCaseError(ErrorCode.INVALID_INPUT, "until must be after since.", "until")
    if until - since > MAX_WINDOW:
        raise UseCaseError(ErrorCode.INVALID_INPUT, f"The window is limited to {MAX_WINDOW.days} days.", "until")
    return Window(since, until)


def _event_day_sql() -> str:
    dialect = connections.get("default").capabilities.dialect
    try:
        return _EVENT_DAY_SQL[dialect]
    except KeyError:
        raise UseCaseError(ErrorCode.NOT_SUPPORTED, f"Analytics do not support the {dialect} database.") from None


async def revenue_by_day(
    caller: Caller, since: datetime, until: datetime, gateway: str | None = None
) -> list[RevenueDay]:
    """Per (UTC day, currency, gateway): gross captured, refunded net of reversals, and net revenue.

    Read from the append-only ledger (the day is the ledger row's, not the payment's), so a refund
    lands on the day it happened. The currency is the ledger row's own, which is its payment's.
    """
    caller.require_admin()
    window = check_window(since, until)
    query = PaymentEvent.filter(
        created_at__gte=window.since, created_at__lt=window.until, type__in=list(REVENUE_EVENTS)
    )
    if gateway is not None:
        query = query.filter(payment__gateway=gateway)
    rows: Iterable[dict[str, Any]] = (
        await query.annotate(day=RawSQL(_event_day_sql()), total=Sum("amount"))
        .group_by("day", "currency", "payment__gateway", "type")
        .values("day", "currency", "payment__gateway", "type", "total")
    )
    sums: dict[tuple[str, str, str], dict[str, int]] = {}
    for row in rows:
        key = (str(row["day"]), str(row["currency"]), str(row["payment__gateway"]))
        sums.setdefault(key, {})[str(row["type"])] = int(row["total"] or 0)
    return [
        RevenueDay(
            day=date.fromisoformat(day),
            currency=currency,
            gateway=gateway_name,
            gross=totals.get(PaymentEventType.CAPTURED, 0),
            refunded=totals.get(PaymentEventType.REFUNDED, 0) - totals.get(PaymentEventType.REFUND_REVERSED, 0),
        )
        for (day, currency, gateway_name), totals in sorted(sums.items())
    ]


async def payment_outcomes(
    caller: Caller, since: datetime, until: datetime, gateway: str | None = None
) -> PaymentOutcomes:
    """Payments created in the window by final status: PAID/AUTHORIZED succeeded, FAILED failed.

    In-flight payments (pending, requires action, processing) and voided ones are left out.
    """
    caller.require_admin()
    window = check_window(since, until)
    final = PAYMENT_SUCCEEDED | PAYMENT_FAILED
    query = Payment.filter(created_at__gte=window.since, created_at__lt=window.until, status__in=list(final))
    if gateway is not None:
        query = query.filter(gateway=gateway)
    rows = await query.annotate(n=Count("id")).group_by("gateway", "status").values_list("gateway", "status", "n")
    counts: dict[str, list[int]] = {}
    for gateway_name, status, n in rows:
        slot = counts.setdefault(str(gateway_name), [0, 0])
        slot[0 if PaymentStatus(status) in PAYMENT_SUCCEEDED else 1] += int(n)
    by_gateway = [Outcome(name, ok, failed) for name, (ok, failed) in sorted(counts.items())]
    overall = Outcome(None, sum(o.succeeded for o in by_gateway), sum(o.failed for o in by_gateway))
    return PaymentOutcomes(overall, by_gateway)


async def decline_reasons(
    caller: Caller, since: datetime, until: datetime, gateway: str | None = None
) -> list[DeclineReason]:
    """FAILED payments created in the window, counted per (gateway, decline code), most frequent first.

    A failure without a decline code is counted under a null code.
    """
    caller.require_admin()
    window = check_window(since, until)
    query = Payment.filter(created_at__gte=window.since, created_at__lt=window.until, status=PaymentStatus.FAILED)
    if gateway is not None:
        query = query.filter(gateway=gateway)
    rows = (
        await query.annotate(n=Count("id"))
        .group_by("gateway", "decline_code")
        .values_list("gateway", "decline_code", "n")
    )
    reasons = [DeclineReason(str(g), None if code is None else str(code), int(n)) for g, code, n in rows]
    return sorted(reasons, key=lambda r: (r.gateway, -r.count, r.decline_code or ""))


async def dispute_rate(
    caller: Caller, since: datetime, until: datetime, gateway: str | None = None
) -> list[DisputeRate]:
    """Per currency: orders with a dispute (whatever its outcome) over orders that were paid, for
    orders created in the window.

    An order counts as paid when its status is PAID, PARTIALLY_REFUNDED, REFUNDED or DISPUTED (a
    won dispute moves it back to PAID, and it still counts as disputed). With a gateway, only orders
    with at least one payment through that gateway count.
    """
    caller.require_admin()
    window = check_window(since, until)
    paid = Order.filter(created_at__gte=window.since, created_at__lt=window.until, status__in=list(ORDER_WAS_PAID))
    if gateway is not None:
        paid = paid.filter(id__in=Subquery(Payment.filter(gateway=gateway).values("order_id")))
    disputed_orders = Subquery(Payment.filter(id__in=Subquery(Dispute.all().values("payment_id"))).values("order_id"))
    totals = await paid.annotate(n=Count("id")).group_by("currency").values_list("currency", "n")
    disputed = await (
        paid.filter(id__in=disputed_orders).annotate(n=Count("id")).group_by("currency").values_list("currency", "n")
    )
    with_dispute = {str(currency): int(n) for currency, n in disputed}
    return [
        DisputeRate(str(currency), with_dispute.get(str(currency), 0), int(n))
        for currency, n in sorted(totals, key=lambda row: str(row[0]))
    ]
