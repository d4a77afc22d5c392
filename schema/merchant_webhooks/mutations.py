"""Outgoing webhook mutation fields: staff only, thin adapters over `resolvers.merchant_webhooks`;
refusals come back as userErrors."""

from __future__ import annotations

from datetime import timedelta

import strawberry

from db.merchant_models import MerchantDelivery
from resolvers import merchant_webhooks
from schema.errors import UserErrorsPayload
from schema.merchant_webhooks.inputs import (
    CreateMerchantEndpointInput,
    ResendFailedMerchantDeliveriesInput,
    RollMerchantEndpointSecretInput,
    UpdateMerchantEndpointInput,
)
from schema.merchant_webhooks.types import (
    DeleteMerchantEndpointPayload,
    MerchantDeliveryPayload,
    MerchantDeliveryType,
    MerchantEndpointPayload,
    MerchantEndpointSecretPayload,
    MerchantEndpointType,
    ResendMerchantDeliveriesPayload,
)
from schema.types import GraphQLInfo


async def _delivery_payload(delivery: MerchantDelivery) -> MerchantDeliveryPayload:
    await delivery.fetch_related("event")
    return MerchantDeliveryPayload(delivery=MerchantDeliveryType.from_model(delivery), user_errors=[])


@strawberry.type
class MerchantWebhookMutation:
    @strawberry.mutation(
        description="Staff only: register a webhook endpoint; its secret is in this answer only.",
        extensions=[UserErrorsPayload(MerchantEndpointSecretPayload.refused)],
    )
    async def create_merchant_endpoint(
        self, info: GraphQLInfo, input: CreateMerchantEndpointInput
    ) -> MerchantEndpointSecretPayload:
        context = info.context
        endpoint, secret = await merchant_webhooks.create_endpoint(
            context.caller, context.deps.outbound, input.url, input.description, list(input.event_types)
        )
        return MerchantEndpointSecretPayload(
            endpoint=MerchantEndpointType.from_model(endpoint), secret=secret, user_errors=[]
        )

    @strawberry.mutation(
        description="Staff only: change an endpoint's URL, description, event types or state.",
        extensions=[UserErrorsPayload(MerchantEndpointPayload.refused)],
    )
    async def update_merchant_endpoint(
        self, info: GraphQLInfo, input: UpdateMerchantEndpointInput
    ) -> MerchantEndpointPayload:
        change = merchant_webhooks.EndpointChange(
            url=input.url,
            description=input.description,
            event_types=list(input.event_types) if input.event_types is not None else None,
            enabled=input.enabled,
        )
        context = info.context
        endpoint = await merchant_webhooks.update_endpoint(context.caller, context.deps.outbound, str(input.id), change)
        return MerchantEndpointPayload(endpoint=MerchantEndpointType.from_model(endpoint), user_errors=[])

    @strawberry.mutation(
        description="Staff only: stop sending to an endpoint (its pending deliveries die).",
        extensions=[UserErrorsPayload(MerchantEndpointPayload.refused)],
    )
    async def disable_merchant_endpoint(self, info: GraphQLInfo, id: strawberry.ID) -> MerchantEndpointPayload:
        change = merchant_webhooks.EndpointChange(enabled=False)
        context = info.context
        endpoint = await merchant_webhooks.update_endpoint(context.caller, context.deps.outbound, str(id), change)
        return MerchantEndpointPayload(endpoint=MerchantEndpointType.from_model(endpoint), user_errors=[])

    @strawberry.mutation(
        description="Staff only: remove an endpoint with its delivery history.",
        extensions=[UserErrorsPayload(DeleteMerchantEndpointPayload.refused)],
    )
    async def delete_merchant_endpoint(self, info: GraphQLInfo, id: strawberry.ID) -> DeleteMerchantEndpointPayload:
        await merchant_webhooks.delete_endpoint(info.context.caller, str(id))
        return DeleteMerchantEndpointPayload(deleted=True, user_errors=[])

    @strawberry.mutation(
        description="Staff only: a new signing secret (shown once); the old one signs for a while.",
        extensions=[UserErrorsPayload(MerchantEndpointSecretPayload.refused)],
    )
    async def roll_merchant_endpoint_secret(
        self, info: GraphQLInfo, input: RollMerchantEndpointSecretInput
    ) -> MerchantEndpointSecretPayload:
        overlap = timedelta(seconds=input.overlap_seconds)
        endpoint, secret = await merchant_webhooks.roll_secret(info.context.caller, str(input.id), overlap)
        return MerchantEndpointSecretPayload(
            endpoint=MerchantEndpointType.from_model(endpoint), secret=secret, user_errors=[]
        )

    @strawberry.mutation(
        description="Staff only: send one delivery again, from a fresh attempt count.",
        extensions=[UserErrorsPayload(MerchantDeliveryPayload.refused)],
    )
    async def resend_merchant_delivery(self, info: GraphQLInfo, id: strawberry.ID) -> MerchantDeliveryPayload:
        return await _delivery_payload(await merchant_webhooks.resend_delivery(info.context.caller, str(id)))

    @strawberry.mutation(
        description="Staff only: send again every failed or dead delivery created since a time.",
        extensions=[UserErrorsPayload(ResendMerchantDeliveriesPayload.refused)],
    )
    async def resend_failed_merchant_deliveries(
        self, info: GraphQLInfo, input: ResendFailedMerchantDeliveriesInput
    ) -> ResendMerchantDeliveriesPayload:
        endpoint = str(input.endpoint_id) if input.endpoint_id is not None else None
        count = await merchant_webhooks.resend_failed_since(info.context.caller, input.since, endpoint)
        return ResendMerchantDeliveriesPayload(count=count, user_errors=[])

    @strawberry.mutation(
        description="Staff only: send a test event (type endpoint.test) to one endpoint.",
        extensions=[UserErrorsPayload(MerchantDeliveryPayload.refused)],
    )
    async def send_merchant_test_event(self, info: GraphQLInfo, endpoint_id: strawberry.ID) -> MerchantDeliveryPayload:
        return await _delivery_payload(await merchant_webhooks.send_test_event(info.context.caller, str(endpoint_id)))
