"""Billing query fields: subscriptions, invoices, entitlements, plan-change previews (`resolvers.subscriptions`)."""

from __future__ import annotations

from datetime import UTC, datetime

import strawberry

from db.models import Invoice
from resolvers import subscriptions
from schema.billing.types import (
    InvoiceType,
    SubscriptionChangePreview,
    SubscriptionType,
)
from schema.errors import PublicErrors
from schema.types import GraphQLInfo, Money


@strawberry.type
class BillingQuery:
    @strawberry.field(
        description="Newest first: the caller's own, or everyone's for staff with all: true.",
        extensions=[PublicErrors()],
    )
    async def subscriptions(self, info: GraphQLInfo, all: bool = False, first: int = 50) -> list[SubscriptionType]:
        rows = await subscriptions.list_subscriptions(info.context.caller, everyone=all, limit=first)
        return [SubscriptionType.from_model(row) for row in rows]

    @strawberry.field(extensions=[PublicErrors()])
    async def subscription(self, info: GraphQLInfo, id: strawberry.ID) -> SubscriptionType:
        return SubscriptionType.from_model(await subscriptions.load_owned_subscription(info.context.caller, str(id)))

    @strawberry.field(description="A subscription's invoices, newest first.", extensions=[PublicErrors()])
    async def invoices(self, info: GraphQLInfo, subscription_id: strawberry.ID) -> list[InvoiceType]:
        owned = await subscriptions.load_owned_subscription(info.context.caller, str(subscription_id))
        return [
            InvoiceType.from_model(row)
            for row in await Invoice.filter(subscription_id=owned.id).order_by("-created_at")
        ]

    @strawberry.field(
        description="Products the caller may use now (trialing, active, or past due in grace).",
        extensions=[PublicErrors()],
    )
    async def entitlements(self, info: GraphQLInfo) -> list[strawberry.ID]:
        products = await subscriptions.entitled_product_ids(info.context.deps, info.context.caller)
        return [strawberry.ID(str(product)) for product in products]

    @strawberry.field(extensions=[PublicErrors()])
    async def has_access(self, info: GraphQLInfo, product_id: strawberry.ID) -> bool:
        return await subscriptions.has_access(info.context.deps, info.context.caller, str(product_id))

    @strawberry.field(
        description="What switching to priceId now would charge now and at the next renewal.",
        extensions=[PublicErrors()],
    )
    async def preview_subscription_change(
        self, info: GraphQLInfo, subscription_id: strawberry.ID, price_id: strawberry.ID
    ) -> SubscriptionChangePreview:
        preview = await subscriptions.preview_plan_change(
            info.context.deps, info.context.caller, str(subscription_id), str(price_id)
        )
        return SubscriptionChangePreview(
            amount_due_now=Money.of(preview.amount_due_now.amount, preview.amount_due_now.currency),
            next_invoice_amount=Money.of(preview.next_invoice_amount.amount, preview.next_invoice_amount.currency),
            next_invoice_at=datetime.fromtimestamp(preview.next_invoice_at, UTC),
        )
