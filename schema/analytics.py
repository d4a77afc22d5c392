"""Staff-only analytics query fields; merge `AnalyticsQuery` into the root `Query`.

Every field takes a window [since, until) of at most 366 days and an optional gateway. Amounts are
Money and are always reported per currency, never summed across currencies.
"""

from __future__ import annotations

from datetime import date, datetime

import strawberry

from resolvers import analytics
from schema.errors import PublicErrors
from schema.types import GraphQLInfo, Money


@strawberry.type(description="Ledger totals of one UTC day for one currency and gateway.")
class RevenueDay:
    day: date = strawberry.field(description="The UTC calendar day of the ledger events.")
    currency: str
    gateway: str
    gross: Money = strawberry.field(description="Captured: the sum of CAPTURED ledger events.")
    refunded: Money = strawberry.field(description="Refunded less reversed refunds.")
    net: Money = strawberry.field(description="gross - refunded.")

    @classmethod
    def of(cls, row: analytics.RevenueDay) -> RevenueDay:
        return cls(
            day=row.day,
            currency=row.currency,
            gateway=row.gateway,
            gross=Money.of(row.gross, row.currency),
            refunded=Money.of(row.refunded, row.currency),
            net=Money.of(row.net, row.currency),
        )


@strawberry.type(description="Payments in a final state: PAID/AUTHORIZED succeeded, FAILED failed.")
class PaymentOutcome:
    gateway: str | None = strawberry.field(description="Null for the total over all gateways.")
    succeeded: int
    failed: int
    total: int
    success_rate: float | None = strawberry.field(description="succeeded / total; null when total is 0.")
    failure_rate: float | None = strawberry.field(description="failed / total; null when total is 0.")

    @classmethod
    def of(cls, outcome: analytics.Outcome) -> PaymentOutcome:
        return cls(
            gateway=outcome.gateway,
            succeeded=outcome.succeeded,
            failed=outcome.failed,
            total=outcome.total,
            success_rate=outcome.success_rate,
            failure_rate=outcome.failure_rate,
        )


@strawberry.type
class PaymentOutcomes:
    overall: PaymentOutcome
    by_gateway: list[PaymentOutcome]


@strawberry.type(description="How many payments failed with one decline code at one gateway.")
class DeclineReason:
    gateway: str
    decline_code: str | None
    count: int


@strawberry.type(description="Orders with a dispute (any outcome) over paid orders in one currency.")
class DisputeRate:
    currency: str
    disputed: int
    paid: int = strawberry.field(description="Orders that were paid, the disputed ones included.")
    rate: float | None = strawberry.field(description="disputed / paid; null when paid is 0.")


@strawberry.type
class AnalyticsQuery:
    @strawberry.field(
        description="Staff only: captured, refunded and net amounts per UTC day, currency and gateway.",
        extensions=[PublicErrors()],
    )
    async def revenue_by_day(
        self, info: GraphQLInfo, since: datetime, until: datetime, gateway: str | None = None
    ) -> list[RevenueDay]:
        rows = await analytics.revenue_by_day(info.context.caller, since, until, gateway)
        return [RevenueDay.of(row) for row in rows]

    @strawberry.field(
        description="Staff only: succeeded and failed payments and their rates, overall and per gateway.",
        extensions=[PublicErrors()],
    )
    async def payment_outcomes(
        self, info: GraphQLInfo, since: datetime, until: datetime, gateway: str | None = None
    ) -> PaymentOutcomes:
        outcomes = await analytics.payment_outcomes(info.context.caller, since, until, gateway)
        return PaymentOutcomes(
            overall=PaymentOutcome.of(outcomes.overall),
            by_gateway=[PaymentOutcome.of(o) for o in outcomes.by_gateway],
        )

    @strawberry.field(
        description="Staff only: failed payments counted per gateway and decline code.", extensions=[PublicErrors()]
    )
    async def decline_reasons(
        self, info: GraphQLInfo, since: datetime, until: datetime, gateway: str | None = None
    ) -> list[DeclineReason]:
        reasons = await analytics.decline_reasons(info.context.caller, since, until, gateway)
        return [DeclineReason(gateway=r.gateway, decline_code=r.decline_code, count=r.count) for r in reasons]

    @strawberry.field(
        description="Staff only: disputed over paid orders per currency, orders created in the window.",
        extensions=[PublicErrors()],
    )
    async def dispute_rate(
        self, info: GraphQLInfo, since: datetime, until: datetime, gateway: str | None = None
    ) -> list[DisputeRate]:
        rates = await analytics.dispute_rate(info.context.caller, since, until, gateway)
        return [DisputeRate(currency=r.currency, disputed=r.disputed, paid=r.paid, rate=r.rate) for r in rates]
