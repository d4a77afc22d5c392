"""Outgoing webhook query fields: staff only, through `resolvers.merchant_webhooks`."""

from __future__ import annotations

import strawberry

from db.merchant_models import DeliveryStatus
from resolvers import merchant_webhooks
from schema.errors import PublicErrors
from schema.merchant_webhooks.types import DeliveryStatusEnum, MerchantDeliveryType, MerchantEndpointType
from schema.types import GraphQLInfo


@strawberry.type
class MerchantWebhookQuery:
    @strawberry.field(
        description="Staff only: the merchant's webhook endpoints (never their secrets).", extensions=[PublicErrors()]
    )
    async def merchant_endpoints(self, info: GraphQLInfo) -> list[MerchantEndpointType]:
        return [MerchantEndpointType.from_model(e) for e in await merchant_webhooks.list_endpoints(info.context.caller)]

    @strawberry.field(
        description="Staff only: webhook deliveries, newest first, by endpoint, event or status.",
        extensions=[PublicErrors()],
    )
    async def merchant_deliveries(
        self,
        info: GraphQLInfo,
        endpoint_id: strawberry.ID | None = None,
        event_id: str | None = None,
        status: DeliveryStatusEnum | None = None,  # type: ignore[valid-type]
        first: int = 50,
    ) -> list[MerchantDeliveryType]:
        rows = await merchant_webhooks.list_deliveries(
            info.context.caller,
            endpoint_id=str(endpoint_id) if endpoint_id is not None else None,
            event_id=event_id,
            status=DeliveryStatus(status) if status else None,
            first=first,
        )
        return [MerchantDeliveryType.from_model(d) for d in rows]
