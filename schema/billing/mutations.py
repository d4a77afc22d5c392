"""Billing mutation fields: thin adapters from inputs to `resolvers.subscriptions`; refusals come back as userErrors."""

from __future__ import annotations

from datetime import UTC, datetime

import strawberry

from db.models import Invoice, Subscription
from gateways.types import ProrationMode
from resolvers import subscriptions
from resolvers.outcome import Outcome
from resolvers.subscriptions import RefundOnCancel
from schema.billing.inputs import (
    CancelSubscriptionInput,
    ChangeSubscriptionPlanInput,
    CreateSubscriptionInput,
    ReportUsageInput,
    SubscriptionActionInput,
    UpdateDefaultPaymentMethodInput,
)
from schema.billing.types import (
    ClockAdvance,
    InvoiceType,
    SubscriptionPayload,
    SubscriptionType,
)
from schema.errors import PublicErrors, UserErrorsPayload, user_errors
from schema.types import GraphQLInfo, NextAction


@strawberry.type
class BillingMutation:
    @strawberry.mutation(
        description="Subscribe the caller to a recurring price from the catalog.",
        extensions=[UserErrorsPayload(SubscriptionPayload.refused)],
    )
    async def create_subscription(self, info: GraphQLInfo, input: CreateSubscriptionInput) -> SubscriptionPayload:
        request = subscriptions.CreateSubscriptionRequest(
            price_id=str(input.price_id),
            gateway=input.gateway,
            payment_method=input.payment_method,
            idempotency_key=input.idempotency_key,
            trial_days=input.trial_days,
            return_url=input.return_url,
        )
        return await _payload(await subscriptions.create_subscription(info.context.deps, info.context.caller, request))

    @strawberry.mutation(
        description="Upgrade or downgrade; IMMEDIATE charges the prorated difference now.",
        extensions=[UserErrorsPayload(SubscriptionPayload.refused)],
    )
    async def change_subscription_plan(
        self, info: GraphQLInfo, input: ChangeSubscriptionPlanInput
    ) -> SubscriptionPayload:
        return await _payload(
            await subscriptions.change_plan(
                info.context.deps,
                info.context.caller,
                str(input.subscription_id),
                str(input.price_id),
                ProrationMode(input.proration),
                input.idempotency_key,
            )
        )

    @strawberry.mutation(
        description="Cancel at the period end (access until then) or now.",
        extensions=[UserErrorsPayload(SubscriptionPayload.refused)],
    )
    async def cancel_subscription(self, info: GraphQLInfo, input: CancelSubscriptionInput) -> SubscriptionPayload:
        return await _payload(
            await subscriptions.cancel_subscription(
                info.context.deps,
                info.context.caller,
                str(input.subscription_id),
                input.at_period_end,
                input.idempotency_key,
                RefundOnCancel(input.refund),
            )
        )

    @strawberry.mutation(
        description="Pause collection: no invoices and no access until resumed.",
        extensions=[UserErrorsPayload(SubscriptionPayload.refused)],
    )
    async def pause_subscription(self, info: GraphQLInfo, input: SubscriptionActionInput) -> SubscriptionPayload:
        return await _payload(
            await subscriptions.pause_subscription(
                info.context.deps, info.context.caller, str(input.subscription_id), input.idempotency_key
            )
        )

    @strawberry.mutation(extensions=[UserErrorsPayload(SubscriptionPayload.refused)])
    async def resume_subscription(self, info: GraphQLInfo, input: SubscriptionActionInput) -> SubscriptionPayload:
        return await _payload(
            await subscriptions.resume_subscription(
                info.context.deps, info.context.caller, str(input.subscription_id), input.idempotency_key
            )
        )

    @strawberry.mutation(
        description="Metered prices: usage counted once per idempotency key.",
        extensions=[UserErrorsPayload(SubscriptionPayload.refused)],
    )
    async def report_usage(self, info: GraphQLInfo, input: ReportUsageInput) -> SubscriptionPayload:
        return await _payload(
            await subscriptions.report_usage(
                info.context.deps,
                info.context.caller,
                str(input.subscription_id),
                str(input.price_id),
                input.quantity,
                input.timestamp,
                input.idempotency_key,
            )
        )

    @strawberry.mutation(
        description="The way out of a failed renewal: the next retry uses this method.",
        extensions=[UserErrorsPayload(SubscriptionPayload.refused)],
    )
    async def update_default_payment_method(
        self, info: GraphQLInfo, input: UpdateDefaultPaymentMethodInput
    ) -> SubscriptionPayload:
        return await _payload(
            await subscriptions.update_default_payment_method(
                info.context.deps,
                info.context.caller,
                str(input.subscription_id),
                input.payment_method,
                input.idempotency_key,
            )
        )

    @strawberry.mutation(
        description="Test clocks (development gateways) and staff only: move the customer's clock, fire what came due.",
        extensions=[PublicErrors()],
    )
    async def advance_clock(self, info: GraphQLInfo, subscription_id: strawberry.ID, seconds: int) -> ClockAdvance:
        moved, now = await subscriptions.advance_clock(
            info.context.deps, info.context.caller, str(subscription_id), seconds
        )
        return ClockAdvance(
            subscription=SubscriptionType.from_model(await Subscription.get(id=moved.id)),
            now=datetime.fromtimestamp(now, UTC),
        )


async def _payload(outcome: Outcome) -> SubscriptionPayload:
    subscription = await Subscription.get_or_none(id=outcome.subscription_id) if outcome.subscription_id else None
    invoice = (
        await Invoice.filter(subscription_id=subscription.id).order_by("-created_at").first() if subscription else None
    )
    return SubscriptionPayload(
        subscription=SubscriptionType.from_model(subscription) if subscription else None,
        latest_invoice=InvoiceType.from_model(invoice) if invoice else None,
        next_action=NextAction.from_json(outcome.next_action),
        user_errors=user_errors(outcome.errors),
    )
