"""GraphQL for subscriptions: their types, queries and mutations (the resolvers do the work).

The live `subscriptionStatus` stream lives with the other websocket fields in `schema.live_updates`.
"""

from __future__ import annotations

from collections.abc import Awaitable
from datetime import UTC, datetime
from uuid import UUID

import strawberry

from db.models import Invoice, Subscription
from domain.statuses import InvoiceStatus, SubscriptionStatus
from gateways.catalog import DEVELOPMENT_DEFAULT
from gateways.types import ProrationMode
from resolvers import subscriptions
from resolvers.errors import UseCaseError
from resolvers.outcome import Outcome
from resolvers.subscriptions import RefundOnCancel
from schema.queries import public_error
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


@strawberry.input
class CreateSubscriptionInput:
    price_id: strawberry.ID
    gateway: str = DEVELOPMENT_DEFAULT
    payment_method: str = strawberry.field(description="A token from the gateway's payment form, never a card.")
    trial_days: int = 0
    return_url: str | None = None
    idempotency_key: str


@strawberry.input
class ChangeSubscriptionPlanInput:
    subscription_id: strawberry.ID
    price_id: strawberry.ID
    proration: ProrationModeEnum = ProrationMode.IMMEDIATE  # type: ignore[valid-type]
    idempotency_key: str


@strawberry.input
class CancelSubscriptionInput:
    subscription_id: strawberry.ID
    at_period_end: bool = True
    refund: RefundOnCancelEnum = strawberry.field(  # type: ignore[valid-type]
        default=RefundOnCancel.NONE,
        description="Staff canceling now: refund the unused share (PRORATED) or all (FULL) of the period.",
    )
    idempotency_key: str


@strawberry.input
class SubscriptionActionInput:
    subscription_id: strawberry.ID
    idempotency_key: str


@strawberry.input
class ReportUsageInput:
    subscription_id: strawberry.ID
    price_id: strawberry.ID
    quantity: int
    timestamp: datetime | None = None
    idempotency_key: str


@strawberry.input
class UpdateDefaultPaymentMethodInput:
    subscription_id: strawberry.ID
    payment_method: str
    idempotency_key: str


@strawberry.type
class BillingQuery:
    @strawberry.field(description="Newest first: the caller's own, or everyone's for staff with all: true.")
    async def subscriptions(self, info: GraphQLInfo, all: bool = False, first: int = 50) -> list[SubscriptionType]:
        try:
            rows = await subscriptions.list_subscriptions(info.context.caller, everyone=all, limit=first)
        except UseCaseError as error:
            raise public_error(error) from None
        return [SubscriptionType.from_model(row) for row in rows]

    @strawberry.field
    async def subscription(self, info: GraphQLInfo, id: strawberry.ID) -> SubscriptionType:
        try:
            return SubscriptionType.from_model(
                await subscriptions.load_owned_subscription(info.context.caller, str(id))
            )
        except UseCaseError as error:
            raise public_error(error) from None

    @strawberry.field(description="A subscription's invoices, newest first.")
    async def invoices(self, info: GraphQLInfo, subscription_id: strawberry.ID) -> list[InvoiceType]:
        try:
            owned = await subscriptions.load_owned_subscription(info.context.caller, str(subscription_id))
        except UseCaseError as error:
            raise public_error(error) from None
        return [
            InvoiceType.from_model(row)
            for row in await Invoice.filter(subscription_id=owned.id).order_by("-created_at")
        ]

    @strawberry.field(description="Products the caller may use now (trialing, active, or past due in grace).")
    async def entitlements(self, info: GraphQLInfo) -> list[strawberry.ID]:
        try:
            products = await subscriptions.entitled_product_ids(info.context.deps, info.context.caller)
        except UseCaseError as error:
            raise public_error(error) from None
        return [strawberry.ID(str(product)) for product in products]

    @strawberry.field
    async def has_access(self, info: GraphQLInfo, product_id: strawberry.ID) -> bool:
        try:
            return await subscriptions.has_access(info.context.deps, info.context.caller, str(product_id))
        except UseCaseError as error:
            raise public_error(error) from None

    @strawberry.field(description="What switching to priceId now would charge now and at the next renewal.")
    async def preview_subscription_change(
        self, info: GraphQLInfo, subscription_id: strawberry.ID, price_id: strawberry.ID
    ) -> SubscriptionChangePreview:
        try:
            preview = await subscriptions.preview_plan_change(
                info.context.deps, info.context.caller, str(subscription_id), str(price_id)
            )
        except UseCaseError as error:
            raise public_error(error) from None
        return SubscriptionChangePreview(
            amount_due_now=Money.of(preview.amount_due_now.amount, preview.amount_due_now.currency),
            next_invoice_amount=Money.of(preview.next_invoice_amount.amount, preview.next_invoice_amount.currency),
            next_invoice_at=datetime.fromtimestamp(preview.next_invoice_at, UTC),
        )


@strawberry.type
class BillingMutation:
    @strawberry.mutation(description="Subscribe the caller to a recurring price from the catalog.")
    async def create_subscription(self, info: GraphQLInfo, input: CreateSubscriptionInput) -> SubscriptionPayload:
        request = subscriptions.CreateSubscriptionRequest(
            price_id=str(input.price_id),
            gateway=input.gateway,
            payment_method=input.payment_method,
            idempotency_key=input.idempotency_key,
            trial_days=input.trial_days,
            return_url=input.return_url,
        )
        return await _payload(subscriptions.create_subscription(info.context.deps, info.context.caller, request))

    @strawberry.mutation(description="Upgrade or downgrade; IMMEDIATE charges the prorated difference now.")
    async def change_subscription_plan(
        self, info: GraphQLInfo, input: ChangeSubscriptionPlanInput
    ) -> SubscriptionPayload:
        return await _payload(
            subscriptions.change_plan(
                info.context.deps,
                info.context.caller,
                str(input.subscription_id),
                str(input.price_id),
                ProrationMode(input.proration),
                input.idempotency_key,
            )
        )

    @strawberry.mutation(description="Cancel at the period end (access until then) or now.")
    async def cancel_subscription(self, info: GraphQLInfo, input: CancelSubscriptionInput) -> SubscriptionPayload:
        return await _payload(
            subscriptions.cancel_subscription(
                info.context.deps,
                info.context.caller,
                str(input.subscription_id),
                input.at_period_end,
                input.idempotency_key,
                RefundOnCancel(input.refund),
            )
        )

    @strawberry.mutation(description="Pause collection: no invoices and no access until resumed.")
    async def pause_subscription(self, info: GraphQLInfo, input: SubscriptionActionInput) -> SubscriptionPayload:
        return await _payload(
            subscriptions.pause_subscription(
                info.context.deps, info.context.caller, str(input.subscription_id), input.idempotency_key
            )
        )

    @strawberry.mutation
    async def resume_subscription(self, info: GraphQLInfo, input: SubscriptionActionInput) -> SubscriptionPayload:
        return await _payload(
            subscriptions.resume_subscription(
                info.context.deps, info.context.caller, str(input.subscription_id), input.idempotency_key
            )
        )

    @strawberry.mutation(description="Metered prices: usage counted once per idempotency key.")
    async def report_usage(self, info: GraphQLInfo, input: ReportUsageInput) -> SubscriptionPayload:
        return await _payload(
            subscriptions.report_usage(
                info.context.deps,
                info.context.caller,
                str(input.subscription_id),
                str(input.price_id),
                input.quantity,
                input.timestamp,
                input.idempotency_key,
            )
        )

    @strawberry.mutation(description="The way out of a failed renewal: the next retry uses this method.")
    async def update_default_payment_method(
        self, info: GraphQLInfo, input: UpdateDefaultPaymentMethodInput
    ) -> SubscriptionPayload:
        return await _payload(
            subscriptions.update_default_payment_method(
                info.context.deps,
                info.context.caller,
                str(input.subscription_id),
                input.payment_method,
                input.idempotency_key,
            )
        )

    @strawberry.mutation(
        description="Test clocks (development gateways) and staff only: move the customer's clock, fire what came due."
    )
    async def advance_clock(self, info: GraphQLInfo, subscription_id: strawberry.ID, seconds: int) -> ClockAdvance:
        try:
            moved, now = await subscriptions.advance_clock(
                info.context.deps, info.context.caller, str(subscription_id), seconds
            )
        except UseCaseError as error:
            raise public_error(error) from None
        return ClockAdvance(
            subscription=SubscriptionType.from_model(await Subscription.get(id=moved.id)),
            now=datetime.fromtimestamp(now, UTC),
        )


async def _payload(pending: Awaitable[Outcome]) -> SubscriptionPayload:
    try:
        outcome = await pending
    except UseCaseError as error:
        return _error_payload(error)
    subscription = await Subscription.get_or_none(id=outcome.subscription_id) if outcome.subscription_id else None
    invoice = (
        await Invoice.filter(subscription_id=subscription.id).order_by("-created_at").first() if subscription else None
    )
    return SubscriptionPayload(
        subscription=SubscriptionType.from_model(subscription) if subscription else None,
        latest_invoice=InvoiceType.from_model(invoice) if invoice else None,
        next_action=NextAction.from_json(outcome.next_action),
        user_errors=[UserError(code=e.code, message=e.message, field=e.field) for e in outcome.errors],
    )


def _error_payload(error: UseCaseError) -> SubscriptionPayload:
    return SubscriptionPayload(
        subscription=None,
        latest_invoice=None,
        next_action=None,
        user_errors=[UserError(code=error.code, message=error.message, field=error.field)],
    )


def _when(epoch: int | None) -> datetime | None:
    return datetime.fromtimestamp(epoch, UTC) if epoch is not None else None
