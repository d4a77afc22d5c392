"""Staff analytics: a hand-computed fixture in USD and JPY over three UTC days must match exactly.

The test database is shared with other tests, so every row here goes through two gateways whose
names are unique to this run, and every report is scoped to them.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

import pytest
import strawberry
from strawberry.schema.config import StrawberryConfig
from strawberry.tools import merge_types

from db.models import Customer, Dispute, EventSource, Order, Payment, PaymentEvent, PaymentEventType
from domain.statuses import DisputeStatus, OrderStatus, PaymentStatus
from resolvers import analytics
from resolvers.analytics import DeclineReason, DisputeRate, Outcome, RevenueDay
from resolvers.context import Caller, Principal
from resolvers.errors import ErrorCode, UseCaseError
from schema.analytics import AnalyticsQuery
from schema.queries import Query
from schema.scalars import SCALAR_MAP

SINCE = datetime(2021, 6, 1, tzinfo=UTC)
UNTIL = datetime(2021, 6, 4, tzinfo=UTC)
STAFF = Caller(Principal("staff-analytics", is_admin=True))
CUSTOMER = Caller(Principal("customer-analytics"))

SCHEMA = strawberry.Schema(
    query=merge_types("Query", (Query, AnalyticsQuery)), config=StrawberryConfig(scalar_map=SCALAR_MAP)
)


@dataclass
class Context:
    """Just what the analytics fields read from the request context."""

    caller: Caller


@dataclass
class Fixture:
    a: str  # the main gateway
    b: str  # a second gateway, to show per-gateway grouping


def at(day: int, hour: int = 0, minute: int = 0, second: int = 0, tz: timezone = UTC) -> datetime:
    return datetime(2021, 6, day, hour, minute, second, tzinfo=tz)


class Builder:
    def __init__(self, customer: Customer) -> None:
        self.customer = customer

    async def payment(
        self,
        gateway: str,
        currency: str,
        amount: int,
        created_at: datetime,
        status: PaymentStatus,
        order_status: OrderStatus,
        decline_code: str | None = None,
    ) -> Payment:
        order = await Order.create(
            customer=self.customer, currency=currency, total_amount=amount, status=order_status, created_at=created_at
        )
        return await Payment.create(
            order=order,
            gateway=gateway,
            idempotency_key=f"analytics-{uuid.uuid4().hex}",
            payment_method="pm_analytics",
            currency=currency,
            amount=amount,
            status=status,
            decline_code=decline_code,
            created_at=created_at,
        )

    async def dispute(self, payment: Payment, status: DisputeStatus) -> None:
        await Dispute.create(
            payment=payment,
            gateway=payment.gateway,
            gateway_reference=f"dp_{uuid.uuid4().hex}",
            status=status,
            currency=payment.currency,
            amount=payment.amount,
        )

    async def event(self, payment: Payment, kind: PaymentEventType, amount: int, created_at: datetime) -> None:
        await PaymentEvent.create(
            payment=payment,
            type=kind,
            dedupe_key=f"{kind}-{uuid.uuid4().hex}",
            source=EventSource.API,
            status_after=payment.status,
            amount=amount,
            currency=payment.currency,
            created_at=created_at,
        )


@pytest.fixture(scope="module")
async def fx(server: str) -> Fixture:
    run = uuid.uuid4().hex[:12]
    fixture = Fixture(a=f"analytics-a-{run}", b=f"analytics-b-{run}")
    build = Builder(await Customer.create(external_id=f"analytics-{run}"))
    a, b = fixture.a, fixture.b
    paid, failed = PaymentStatus.PAID, PaymentStatus.FAILED
    cap, ref, rev = PaymentEventType.CAPTURED, PaymentEventType.REFUNDED, PaymentEventType.REFUND_REVERSED

    # USD 100.00 captured on day 1, refunded 25.00 + 10.00 on day 2, the 10.00 reversed at midnight of day 3.
    p1 = await build.payment(a, "USD", 10_000, at(1, 10), paid, OrderStatus.PARTIALLY_REFUNDED)
    await build.event(p1, cap, 10_000, at(1, 10))
    await build.event(p1, ref, 2_500, at(2, 9))
    await build.event(p1, ref, 1_000, at(2, 23, 59, 59))
    await build.event(p1, rev, 1_000, at(3))
    # JPY 5000 captured late on day 1; 700 refunded at 04:45 +05:00 on day 2, which is still day 1 in UTC.
    p2 = await build.payment(a, "JPY", 5_000, at(1, 23, 30), paid, OrderStatus.DISPUTED)
    await build.dispute(p2, DisputeStatus.NEEDS_RESPONSE)
    await build.event(p2, cap, 5_000, at(1, 23, 30))
    await build.event(p2, ref, 700, at(2, 4, 45, tz=timezone(timedelta(hours=5))))
    p3 = await build.payment(a, "USD", 4_000, at(2, 12), paid, OrderStatus.PAID)
    await build.dispute(p3, DisputeStatus.WON)  # won: the order is PAID again, and it was disputed
    await build.event(p3, cap, 4_000, at(2, 12))
    # Failures with decline codes; a FAILED ledger row never counts as revenue.
    p4 = await build.payment(a, "USD", 4_000, at(2, 13), failed, OrderStatus.PENDING, "insufficient_funds")
    await build.event(p4, PaymentEventType.FAILED, 4_000, at(2, 13))
    await build.payment(a, "USD", 1_500, at(3, 1), failed, OrderStatus.PENDING, "card_declined")
    await build.payment(a, "JPY", 9_000, at(3, 2), failed, OrderStatus.PENDING, "card_declined")
    # In flight: not an outcome yet.
    await build.payment(a, "USD", 2_000, at(2, 14), PaymentStatus.PROCESSING, OrderStatus.PROCESSING)
    # JPY 3000 captured and fully refunded on day 3.
    p12 = await build.payment(a, "JPY", 3_000, at(3, 5), paid, OrderStatus.REFUNDED)
    await build.event(p12, cap, 3_000, at(3, 5))
    await build.event(p12, ref, 3_000, at(3, 6))
    # A second disputed order, in USD.
    p13 = await build.payment(a, "USD", 2_000, at(3, 10), paid, OrderStatus.DISPUTED)
    await build.dispute(p13, DisputeStatus.UNDER_REVIEW)
    await build.event(p13, cap, 2_000, at(3, 10))
    # A canceled order is neither paid nor disputed.
    await build.payment(a, "USD", 800, at(3, 11), PaymentStatus.CANCELED, OrderStatus.CANCELED)
    # Outside the window: until is exclusive, since inclusive.
    p10 = await build.payment(a, "USD", 999, at(4), paid, OrderStatus.DISPUTED)
    await build.dispute(p10, DisputeStatus.LOST)
    await build.event(p10, cap, 999, at(4))
    before = at(1) - timedelta(seconds=1)
    p11 = await build.payment(a, "USD", 555, before, paid, OrderStatus.DISPUTED)
    await build.dispute(p11, DisputeStatus.NEEDS_RESPONSE)
    await build.event(p11, cap, 555, before)
    await build.payment(a, "USD", 555, before, failed, OrderStatus.PENDING, "card_declined")

    # Gateway b: one capture, one authorization, one failure without a code.
    p14 = await build.payment(b, "USD", 1_500, at(1, 8), paid, OrderStatus.PAID)
    await build.event(p14, cap, 1_500, at(1, 8))
    await build.payment(b, "USD", 700, at(2, 8), PaymentStatus.AUTHORIZED, OrderStatus.AUTHORIZED)
    await build.payment(b, "USD", 700, at(2, 9), failed, OrderStatus.PENDING)
    return fixture


def revenue_a(a: str) -> list[RevenueDay]:
    return [
        RevenueDay(date(2021, 6, 1), "JPY", a, gross=5_000, refunded=700),
        RevenueDay(date(2021, 6, 1), "USD", a, gross=10_000, refunded=0),
        RevenueDay(date(2021, 6, 2), "USD", a, gross=4_000, refunded=3_500),
        RevenueDay(date(2021, 6, 3), "JPY", a, gross=3_000, refunded=3_000),
        RevenueDay(date(2021, 6, 3), "USD", a, gross=2_000, refunded=-1_000),
    ]


async def test_revenue_per_day_currency_and_gateway_is_net_of_refunds(fx: Fixture) -> None:
    rows = await analytics.revenue_by_day(STAFF, SINCE, UNTIL, fx.a)
    assert rows == revenue_a(fx.a)
    assert [row.net for row in rows] == [4_300, 10_000, 500, 0, 3_000]

    assert await analytics.revenue_by_day(STAFF, SINCE, UNTIL, fx.b) == [
        RevenueDay(date(2021, 6, 1), "USD", fx.b, gross=1_500, refunded=0)
    ]
    # Without a gateway filter every gateway still gets its own rows.
    everything = await analytics.revenue_by_day(STAFF, SINCE, UNTIL)
    mine = [row for row in everything if row.gateway in (fx.a, fx.b)]
    expected = [*revenue_a(fx.a), RevenueDay(date(2021, 6, 1), "USD", fx.b, 1_500, 0)]
    assert mine == sorted(expected, key=lambda row: (row.day, row.currency, row.gateway))


async def test_revenue_window_is_half_open(fx: Fixture) -> None:
    day_two = await analytics.revenue_by_day(STAFF, at(2), at(3), fx.a)
    assert day_two == [RevenueDay(date(2021, 6, 2), "USD", fx.a, gross=4_000, refunded=3_500)]
    last_second = await analytics.revenue_by_day(STAFF, at(2, 23, 59, 59), at(3), fx.a)
    assert last_second == [RevenueDay(date(2021, 6, 2), "USD", fx.a, gross=0, refunded=1_000)]


async def test_payment_outcomes_leave_in_flight_payments_out(fx: Fixture) -> None:
    outcomes = await analytics.payment_outcomes(STAFF, SINCE, UNTIL, fx.a)
    assert outcomes.by_gateway == [Outcome(fx.a, succeeded=5, failed=3)]
    assert outcomes.overall == Outcome(None, succeeded=5, failed=3)
    assert (outcomes.overall.success_rate, outcomes.overall.failure_rate) == (0.625, 0.375)

    everything = await analytics.payment_outcomes(STAFF, SINCE, UNTIL)
    mine = [o for o in everything.by_gateway if o.gateway in (fx.a, fx.b)]
    assert mine == [Outcome(fx.a, 5, 3), Outcome(fx.b, 2, 1)]
    assert everything.overall.succeeded >= 7 and everything.overall.failed >= 4

    empty = await analytics.payment_outcomes(STAFF, SINCE, UNTIL, f"{fx.a}-none")
    assert empty.by_gateway == [] and empty.overall.success_rate is None


async def test_decline_reasons_per_gateway(fx: Fixture) -> None:
    assert await analytics.decline_reasons(STAFF, SINCE, UNTIL, fx.a) == [
        DeclineReason(fx.a, "card_declined", 2),
        DeclineReason(fx.a, "insufficient_funds", 1),
    ]
    assert await analytics.decline_reasons(STAFF, SINCE, UNTIL, fx.b) == [DeclineReason(fx.b, None, 1)]


async def test_dispute_rate_per_currency(fx: Fixture) -> None:
    rates = await analytics.dispute_rate(STAFF, SINCE, UNTIL, fx.a)
    assert rates == [DisputeRate("JPY", disputed=1, paid=2), DisputeRate("USD", disputed=2, paid=3)]
    assert [r.rate for r in rates] == [0.5, 2 / 3]
    assert await analytics.dispute_rate(STAFF, SINCE, UNTIL, fx.b) == [DisputeRate("USD", disputed=0, paid=1)]


REPORT = """query($since: DateTime!, $until: DateTime!, $gateway: String) {
  revenueByDay(since: $since, until: $until, gateway: $gateway) {
    day currency gateway
    gross { amount currency decimal exponent } refunded { amount decimal } net { amount decimal }
  }
  paymentOutcomes(since: $since, until: $until, gateway: $gateway) {
    overall { gateway succeeded failed total successRate failureRate }
    byGateway { gateway succeeded failed total successRate failureRate }
  }
  declineReasons(since: $since, until: $until, gateway: $gateway) { gateway declineCode count }
  disputeRate(since: $since, until: $until, gateway: $gateway) { currency disputed paid rate }
}"""


async def run(caller: Caller | None, query: str, variables: dict[str, Any]) -> Any:
    return await SCHEMA.execute(query, variable_values=variables, context_value=Context(caller or Caller(None)))


def window(since: datetime, until: datetime, gateway: str | None = None) -> dict[str, Any]:
    return {"since": since.isoformat(), "until": until.isoformat(), "gateway": gateway}


async def test_the_graphql_fields_report_money_per_currency(fx: Fixture) -> None:
    result = await run(STAFF, REPORT, window(SINCE, UNTIL, fx.a))
    assert result.errors is None, result.errors
    data = result.data
    assert data["revenueByDay"][0] == {
        "day": "2021-06-01",
        "currency": "JPY",
        "gateway": fx.a,
        "gross": {"amount": 5_000, "currency": "JPY", "decimal": "5000", "exponent": 0},
        "refunded": {"amount": 700, "decimal": "700"},
        "net": {"amount": 4_300, "decimal": "4300"},
    }
    assert data["revenueByDay"][2]["net"] == {"amount": 500, "decimal": "5.00"}
    assert data["revenueByDay"][4]["refunded"] == {"amount": -1_000, "decimal": "-10.00"}
    assert [(r["day"], r["currency"]) for r in data["revenueByDay"]] == [
        ("2021-06-01", "JPY"),
        ("2021-06-01", "USD"),
        ("2021-06-02", "USD"),
        ("2021-06-03", "JPY"),
        ("2021-06-03", "USD"),
    ]
    outcome = {"succeeded": 5, "failed": 3, "total": 8, "successRate": 0.625, "failureRate": 0.375}
    assert data["paymentOutcomes"] == {
        "overall": {"gateway": None, **outcome},
        "byGateway": [{"gateway": fx.a, **outcome}],
    }
    assert data["declineReasons"] == [
        {"gateway": fx.a, "declineCode": "card_declined", "count": 2},
        {"gateway": fx.a, "declineCode": "insufficient_funds", "count": 1},
    ]
    assert data["disputeRate"] == [
        {"currency": "JPY", "disputed": 1, "paid": 2, "rate": 0.5},
        {"currency": "USD", "disputed": 2, "paid": 3, "rate": 2 / 3},
    ]


FIELDS = {
    "revenueByDay": "revenueByDay(since: $since, until: $until) { day }",
    "paymentOutcomes": "paymentOutcomes(since: $since, until: $until) { overall { total } }",
    "declineReasons": "declineReasons(since: $since, until: $until) { count }",
    "disputeRate": "disputeRate(since: $since, until: $until) { rate }",
}


def one_field(name: str) -> str:
    return f"query($since: DateTime!, $until: DateTime!) {{ {FIELDS[name]} }}"


@pytest.mark.parametrize("name", sorted(FIELDS))
@pytest.mark.parametrize(("caller", "code"), [(CUSTOMER, "FORBIDDEN"), (None, "UNAUTHENTICATED")])
async def test_only_staff_read_analytics(server: str, name: str, caller: Caller | None, code: str) -> None:
    result = await run(caller, one_field(name), window(SINCE, UNTIL))
    assert result.errors is not None and len(result.errors) == 1
    assert result.errors[0].extensions == {"code": code, "field": None}
    assert result.data is None


@pytest.mark.parametrize("name", sorted(FIELDS))
@pytest.mark.parametrize(
    ("since", "until", "field"),
    [
        (SINCE, SINCE, "until"),  # empty
        (UNTIL, SINCE, "until"),  # reversed
        (SINCE, SINCE + timedelta(days=366, seconds=1), "until"),  # too long
        (SINCE.replace(tzinfo=None), UNTIL, "since"),  # no offset: ambiguous
    ],
)
async def test_bad_windows_are_invalid_input(
    server: str, name: str, since: datetime, until: datetime, field: str
) -> None:
    result = await run(STAFF, one_field(name), window(since, until))
    assert result.errors is not None and len(result.errors) == 1
    assert result.errors[0].extensions == {"code": "INVALID_INPUT", "field": field}


async def test_a_window_of_exactly_366_days_is_allowed(server: str) -> None:
    result = await run(STAFF, one_field("revenueByDay"), window(SINCE, SINCE + timedelta(days=366)))
    assert result.errors is None, result.errors


async def test_windows_are_checked_before_any_query() -> None:
    with pytest.raises(UseCaseError) as raised:
        analytics.check_window(UNTIL, SINCE)
    assert raised.value.code is ErrorCode.INVALID_INPUT
    offset = timezone(timedelta(hours=-7))
    checked = analytics.check_window(SINCE.astimezone(offset), UNTIL.astimezone(offset))
    assert (checked.since, checked.until) == (SINCE, UNTIL) and checked.since.tzinfo is UTC


async def test_the_served_schema_answers_analytics_over_http(admin, shopper) -> None:  # type: ignore[no-untyped-def]
    query = """query($since: DateTime!, $until: DateTime!) {
      paymentOutcomes(since: $since, until: $until) { overall { succeeded failed } } }"""
    window = {"since": "2021-06-01T00:00:00+00:00", "until": "2021-06-02T00:00:00+00:00"}
    assert "paymentOutcomes" in (await admin.data(query, window))
    refused = await shopper.gql(query, window)
    assert refused["errors"][0]["extensions"]["code"] == "FORBIDDEN"
