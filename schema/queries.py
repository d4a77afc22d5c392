"""Query fields: the catalog, one order, a page of orders, the configured gateways and their public config."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import strawberry

from domain.statuses import OrderStatus
from resolvers import audit, gateway_keys, orders
from schema.errors import PublicErrors
from schema.payment_options import PaymentOptionType
from schema.types import (
    AuditRecordType,
    GraphQLInfo,
    OrderConnection,
    OrderEdge,
    OrderStatusEnum,
    OrderType,
    PageInfo,
    ProductType,
)


@strawberry.type
class Query:
    @strawberry.field(description="Active products with their active prices.")
    async def products(self) -> list[ProductType]:
        return [ProductType.from_model(p) for p in await orders.list_products()]

    @strawberry.field(description="Payment gateways this server can charge through.")
    def gateways(self, info: GraphQLInfo) -> list[str]:
        return info.context.deps.gateways.names()

    @strawberry.field(
        description=(
            "Each configured gateway: its capabilities, health and the public configuration its browser SDK needs. "
            "With a currency: only the gateways a payment in it would be routed to now, in the routing order."
        )
    )
    def payment_options(self, info: GraphQLInfo, currency: str | None = None) -> list[PaymentOptionType]:
        options = gateway_keys.payment_options(info.context.deps, currency[:3] if currency else None)
        return [PaymentOptionType.from_option(option) for option in options]

    # The one place outside gateways/ that names a gateway (tests/features/test_gateway_names.py allows it): removed
    # in the release after paymentOptions ships.
    @strawberry.field(
        description="Stripe's publishable key (public); null when Stripe is not enabled.",
        deprecation_reason="Use paymentOptions { gateway publicConfig { name value } } (publishableKey).",
    )
    def stripe_publishable_key(self, info: GraphQLInfo) -> str | None:
        return gateway_keys.public_value(info.context.deps, "stripe", "publishableKey")

    @strawberry.field(extensions=[PublicErrors()])
    async def order(self, info: GraphQLInfo, id: strawberry.ID) -> OrderType:
        return OrderType.from_model(await orders.get_order(info.context.caller, str(id)))

    @strawberry.field(
        description="Newest first. Customers see their own orders; staff see all.", extensions=[PublicErrors()]
    )
    async def orders(
        self,
        info: GraphQLInfo,
        first: int = 20,
        after: str | None = None,
        status: OrderStatusEnum | None = None,  # type: ignore[valid-type]
        customer: Annotated[str | None, strawberry.argument(description="Staff: the customer's subject.")] = None,
        email: Annotated[str | None, strawberry.argument(description="Staff: the customer's email.")] = None,
        gateway: Annotated[str | None, strawberry.argument(description="Staff: orders with a payment there.")] = None,
        created_after: datetime | None = None,
        created_before: datetime | None = None,
    ) -> OrderConnection:
        search = orders.OrderFilter(
            status=OrderStatus(status) if status else None,
            customer=customer,
            email=email,
            gateway=gateway,
            created_after=created_after,
            created_before=created_before,
        )
        page = await orders.list_orders(info.context.caller, first, after, search)
        return OrderConnection(
            edges=[OrderEdge(cursor=orders.encode_cursor(o), node=OrderType.from_model(o)) for o in page.orders],
            page_info=PageInfo(has_next_page=page.has_next_page, end_cursor=page.end_cursor),
        )

    @strawberry.field(
        description="Staff only: the audit trail of one order, payment or refund, newest first.",
        extensions=[PublicErrors()],
    )
    async def audit_log(self, info: GraphQLInfo, entity_id: strawberry.ID, limit: int = 100) -> list[AuditRecordType]:
        records = await audit.audit_log(info.context.caller, str(entity_id), limit)
        return [AuditRecordType.from_model(record) for record in records]
