"""Subscription and invoice object types and the billing payloads, built from models."""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import UUID

import strawberry

from db.models import Invoice, Subscription
from domain.statuses import InvoiceStatus, SubscriptionStatus
from gateways.types import ProrationMode
from resolvers.subscriptions import RefundOnCancel
from schema.types import GraphQLInfo, Money, NextAction, PriceType_, UserError

SubscriptionStatusEnum = strawberry.enum(SubscriptionStatus, name="SubscriptionStatus")
InvoiceStatusEnum = strawberry.enum(InvoiceStatus, name="InvoiceStatus")
ProrationModeEnum = strawberry.enum(ProrationMode, name="ProrationMode")
RefundOnCancelEnum = strawberry.enum(RefundOnCancel, name="RefundOnCancel")


@strawberry.type(name="Invoice")
class InvoiceType:
    id: strawberry.ID
    status: InvoiceStatusEnum  # type: ignore[valid-type]
    billing_reason: str
    amount_due: Money
    amount_paid: Money
    period_start: datetime | None
    period_end: datetime | None
    attempt_count: int
    decline_code: str | None
    next_action: NextAction | None
    order_id: strawberry.ID | None = strawberry.field(description="The order that carries the invoice's payment.")
    created_at: datetime

    @classmethod
    def from_model(cls, invoice: Invoice) -> InvoiceType:
        return cls(
            id=strawberry.ID(str(invoice.id)),
            status=invoice.status,
            billing_reason=invoice.billing_reason,
            amount_due=Money.of(invoice.amount_due, invoice.currency),
            amount_paid=Money.of(invoice.amount_paid, invoice.currency),
            period_start=invoice.period_start,
            period_end=invoice.period_end,
            attempt_count=invoice.attempt_count,
            decline_code=invoice.decline_code,
            next_action=NextAction.from_json(invoice.next_action),
            order_id=strawberry.ID(str(invoice.order_id)) if invoice.order_id else None,
            created_at=invoice.created_at,
        )


@strawberry.type(name="Subscription")
class SubscriptionType:
    id: strawberry.ID
    status: SubscriptionStatusEnum  # type: ignore[valid-type]
    gateway: str
    gateway_reference: str | None
    price_id: strawberry.ID
    pending_price_id: strawberry.ID | None = strawberry.field(description="A plan switched at the period end.")
    unit_amount: Money
    current_period_start: datetime | None
    current_period_end: datetime | None
    trial_end: datetime | None
    cancel_at_period_end: bool
    canceled_at: datetime | None
    ended_at: datetime | None
    failed_attempts: int = strawberry.field(description="Failed attempts to collect the open renewal.")
    next_retry_at: datetime | None = strawberry.field(description="When dunning retries next (billing clock).")
    grace_until: datetime | None = strawberry.field(description="Access while past due lasts until then.")
    created_at: datetime
    updated_at: datetime

    @strawberry.field
    async def price(self, info: GraphQLInfo) -> PriceType_:
        return PriceType_.from_model(await info.context.loaders.prices.load(UUID(str(self.price_id))))

    @strawberry.field(description="Newest first.")
    async def invoices(self, info: GraphQLInfo) -> list[InvoiceType]:
        rows = await info.context.loaders.invoices.load(UUID(str(self.id)))
        return [InvoiceType.from_model(row) for row in rows]

    @classmethod
    def from_model(cls, subscription: Subscription) -> SubscriptionType:
        return cls(
            id=strawberry.ID(str(subscription.id)),
            status=subscription.status,
            gateway=subscription.gateway,
            gateway_reference=subscription.gateway_reference,
            price_id=strawberry.ID(str(subscription.price_id)),
            pending_price_id=strawberry.ID(str(subscription.pending_price_id))
            if subscription.pending_price_id
            else None,
            unit_amount=Money.of(subscription.unit_amount, subscription.currency),
            current_period_start=subscription.current_period_start,
            current_period_end=subscription.current_period_end,
            trial_end=subscription.trial_end,
            cancel_at_period_end=subscription.cancel_at_period_end,
            canceled_at=subscription.canceled_at,
            ended_at=subscription.ended_at,
            failed_attempts=subscription.failed_attempts,
            next_retry_at=_when(subscription.next_retry_at),
            grace_until=_when(subscription.grace_until),
            created_at=subscription.created_at,
            updated_at=subscription.updated_at,
        )


@strawberry.type
class SubscriptionPayload:
    subscription: SubscriptionType | None
    latest_invoice: InvoiceType | None
    next_action: NextAction | None
    user_errors: list[UserError]

    @classmethod
    def refused(cls, errors: list[UserError]) -> SubscriptionPayload:
        return cls(subscription=None, latest_invoice=None, next_action=None, user_errors=errors)


@strawberry.type
class SubscriptionChangePreview:
    amount_due_now: Money
    next_invoice_amount: Money
    next_invoice_at: datetime


@strawberry.type(description="Where a development gateway's test clock stands after advanceClock.")
class ClockAdvance:
    subscription: SubscriptionType = strawberry.field(
        description="As mirrored when the clock moved; the webhooks it fired arrive after."
    )
    now: datetime


def _when(epoch: int | None) -> datetime | None:
    return datetime.fromtimestamp(epoch, UTC) if epoch is not None else None
