"""GraphQL for outgoing webhooks, staff only: endpoints, their secrets, deliveries, resends and test
events. Thin: `resolvers.merchant_webhooks` does the work and the checks.

A signing secret appears in exactly two answers, `createMerchantEndpoint` and
`rollMerchantEndpointSecret`, and never on the endpoint type itself.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta

import strawberry

from db.merchant_models import DeliveryStatus, MerchantDelivery, MerchantDeliveryAttempt, MerchantEndpoint
from resolvers import merchant_webhooks as use_cases
from resolvers.errors import UseCaseError
from schema.queries import public_error
from schema.types import GraphQLInfo, UserError

DeliveryStatusEnum = strawberry.enum(DeliveryStatus, name="MerchantDeliveryStatus")
DEFAULT_OVERLAP_SECONDS = 24 * 3600


@strawberry.type(name="MerchantEndpoint")
class MerchantEndpointType:
    id: strawberry.ID
    url: str
    description: str
    event_types: list[str] = strawberry.field(description='The event types sent here; ["*"] is every type.')
    enabled: bool
    disabled_reason: str | None
    previous_secret_expires_at: datetime | None = strawberry.field(
        description="Until then the secret before the last roll signs too."
    )
    failing_since: datetime | None = strawberry.field(description="The first failed attempt since the last success.")
    created_at: datetime

    @classmethod
    def from_model(cls, endpoint: MerchantEndpoint) -> MerchantEndpointType:
        return cls(
            id=strawberry.ID(str(endpoint.id)),
            url=endpoint.url,
            description=endpoint.description,
            event_types=list(endpoint.event_types or []),
            enabled=endpoint.enabled,
            disabled_reason=endpoint.disabled_reason,
            previous_secret_expires_at=endpoint.previous_secret_expires_at,
            failing_since=endpoint.failing_since,
            created_at=endpoint.created_at,
        )


@strawberry.type(name="MerchantDeliveryAttempt")
class MerchantDeliveryAttemptType:
    number: int
    status_code: int | None
    latency_ms: int | None
    response_excerpt: str = strawberry.field(description="The first KiB of the answer's body.")
    error: str | None
    created_at: datetime

    @classmethod
    def from_model(cls, attempt: MerchantDeliveryAttempt) -> MerchantDeliveryAttemptType:
        return cls(
            number=attempt.number,
            status_code=attempt.status_code,
            latency_ms=attempt.latency_ms,
            response_excerpt=attempt.response_excerpt,
            error=attempt.error,
            created_at=attempt.created_at,
        )


@strawberry.type(name="MerchantDelivery")
class MerchantDeliveryType:
    id: strawberry.ID
    endpoint_id: strawberry.ID
    event_id: str = strawberry.field(description="The envelope's id (evt_…), the same on every attempt.")
    event_type: str
    status: DeliveryStatusEnum  # type: ignore[valid-type]
    attempts: int
    next_attempt_at: datetime | None
    last_status_code: int | None
    last_error: str | None
    delivered_at: datetime | None
    created_at: datetime
    row_id: strawberry.Private[int]

    @strawberry.field(description="Every attempt, oldest first.")
    async def attempt_log(self) -> list[MerchantDeliveryAttemptType]:
        rows = await MerchantDeliveryAttempt.filter(delivery_id=self.row_id).order_by("id").limit(100)
        return [MerchantDeliveryAttemptType.from_model(a) for a in rows]

    @classmethod
    def from_model(cls, delivery: MerchantDelivery) -> MerchantDeliveryType:
        return cls(
            id=strawberry.ID(str(delivery.id)),
            endpoint_id=strawberry.ID(str(delivery.endpoint_id)),
            event_id=delivery.event.public_id,
            event_type=delivery.event.type,
            status=delivery.status,
            attempts=delivery.attempts,
            next_attempt_at=delivery.next_attempt_at,
            last_status_code=delivery.last_status_code,
            last_error=delivery.last_error,
            delivered_at=delivery.delivered_at,
            created_at=delivery.created_at,
            row_id=delivery.id,
        )


@strawberry.input
class CreateMerchantEndpointInput:
    url: str
    description: str = ""
    event_types: list[str] = strawberry.field(default_factory=list, description="Empty or ['*']: every type.")


@strawberry.input
class UpdateMerchantEndpointInput:
    id: strawberry.ID
    url: str | None = None
    description: str | None = None
    event_types: list[str] | None = None
    enabled: bool | None = None


@strawberry.input
class RollMerchantEndpointSecretInput:
    id: strawberry.ID
    overlap_seconds: int = strawberry.field(
        default=DEFAULT_OVERLAP_SECONDS, description="How long the old secret keeps signing too (0 to 7 days)."
    )


@strawberry.input
class ResendFailedMerchantDeliveriesInput:
    since: datetime
    endpoint_id: strawberry.ID | None = None


@strawberry.type
class MerchantEndpointPayload:
    endpoint: MerchantEndpointType | None
    user_errors: list[UserError]


@strawberry.type
class MerchantEndpointSecretPayload:
    endpoint: MerchantEndpointType | None
    secret: str | None = strawberry.field(description="The signing secret: shown this once, store it now.")
    user_errors: list[UserError]


@strawberry.type
class MerchantDeliveryPayload:
    delivery: MerchantDeliveryType | None
    user_errors: list[UserError]


@strawberry.type
class ResendMerchantDeliveriesPayload:
    count: int
    user_errors: list[UserError]


@strawberry.type
class DeleteMerchantEndpointPayload:
    deleted: bool
    user_errors: list[UserError]


def _errors(error: UseCaseError) -> list[UserError]:
    return [UserError(code=error.code, message=error.message, field=error.field)]


async def _endpoint_payload(work: Callable[[], Awaitable[MerchantEndpoint]]) -> MerchantEndpointPayload:
    try:
        return MerchantEndpointPayload(endpoint=MerchantEndpointType.from_model(await work()), user_errors=[])
    except UseCaseError as error:
        return MerchantEndpointPayload(endpoint=None, user_errors=_errors(error))


async def _secret_payload(
    work: Callable[[], Awaitable[tuple[MerchantEndpoint, str]]],
) -> MerchantEndpointSecretPayload:
    try:
        endpoint, secret = await work()
    except UseCaseError as error:
        return MerchantEndpointSecretPayload(endpoint=None, secret=None, user_errors=_errors(error))
    return MerchantEndpointSecretPayload(
        endpoint=MerchantEndpointType.from_model(endpoint), secret=secret, user_errors=[]
    )


async def _delivery_payload(work: Callable[[], Awaitable[MerchantDelivery]]) -> MerchantDeliveryPayload:
    try:
        delivery = await work()
    except UseCaseError as error:
        return MerchantDeliveryPayload(delivery=None, user_errors=_errors(error))
    await delivery.fetch_related("event")
    return MerchantDeliveryPayload(delivery=MerchantDeliveryType.from_model(delivery), user_errors=[])


@strawberry.type
class MerchantWebhookQuery:
    @strawberry.field(description="Staff only: the merchant's webhook endpoints (never their secrets).")
    async def merchant_endpoints(self, info: GraphQLInfo) -> list[MerchantEndpointType]:
        try:
            rows = await use_cases.list_endpoints(info.context.caller)
        except UseCaseError as error:
            raise public_error(error) from None
        return [MerchantEndpointType.from_model(e) for e in rows]

    @strawberry.field(description="Staff only: webhook deliveries, newest first, by endpoint, event or status.")
    async def merchant_deliveries(
        self,
        info: GraphQLInfo,
        endpoint_id: strawberry.ID | None = None,
        event_id: str | None = None,
        status: DeliveryStatusEnum | None = None,  # type: ignore[valid-type]
        first: int = 50,
    ) -> list[MerchantDeliveryType]:
        try:
            rows = await use_cases.list_deliveries(
                info.context.caller,
                endpoint_id=str(endpoint_id) if endpoint_id is not None else None,
                event_id=event_id,
                status=DeliveryStatus(status) if status else None,
                first=first,
            )
        except UseCaseError as error:
            raise public_error(error) from None
        return [MerchantDeliveryType.from_model(d) for d in rows]


@strawberry.type
class MerchantWebhookMutation:
    @strawberry.mutation(description="Staff only: register a webhook endpoint; its secret is in this answer only.")
    async def create_merchant_endpoint(
        self, info: GraphQLInfo, input: CreateMerchantEndpointInput
    ) -> MerchantEndpointSecretPayload:
        context = info.context
        return await _secret_payload(
            lambda: use_cases.create_endpoint(
                context.caller, context.deps.outbound, input.url, input.description, list(input.event_types)
            )
        )

    @strawberry.mutation(description="Staff only: change an endpoint's URL, description, event types or state.")
    async def update_merchant_endpoint(
        self, info: GraphQLInfo, input: UpdateMerchantEndpointInput
    ) -> MerchantEndpointPayload:
        context = info.context
        change = use_cases.EndpointChange(
            url=input.url,
            description=input.description,
            event_types=list(input.event_types) if input.event_types is not None else None,
            enabled=input.enabled,
        )
        return await _endpoint_payload(
            lambda: use_cases.update_endpoint(context.caller, context.deps.outbound, str(input.id), change)
        )

    @strawberry.mutation(description="Staff only: stop sending to an endpoint (its pending deliveries die).")
    async def disable_merchant_endpoint(self, info: GraphQLInfo, id: strawberry.ID) -> MerchantEndpointPayload:
        context = info.context
        change = use_cases.EndpointChange(enabled=False)
        return await _endpoint_payload(
            lambda: use_cases.update_endpoint(context.caller, context.deps.outbound, str(id), change)
        )

    @strawberry.mutation(description="Staff only: remove an endpoint with its delivery history.")
    async def delete_merchant_endpoint(self, info: GraphQLInfo, id: strawberry.ID) -> DeleteMerchantEndpointPayload:
        try:
            await use_cases.delete_endpoint(info.context.caller, str(id))
        except UseCaseError as error:
            return DeleteMerchantEndpointPayload(deleted=False, user_errors=_errors(error))
        return DeleteMerchantEndpointPayload(deleted=True, user_errors=[])

    @strawberry.mutation(
        description="Staff only: a new signing secret (shown once); the old one signs too for a while."
    )
    async def roll_merchant_endpoint_secret(
        self, info: GraphQLInfo, input: RollMerchantEndpointSecretInput
    ) -> MerchantEndpointSecretPayload:
        caller = info.context.caller
        overlap = timedelta(seconds=input.overlap_seconds)
        return await _secret_payload(lambda: use_cases.roll_secret(caller, str(input.id), overlap))

    @strawberry.mutation(description="Staff only: send one delivery again, from a fresh attempt count.")
    async def resend_merchant_delivery(self, info: GraphQLInfo, id: strawberry.ID) -> MerchantDeliveryPayload:
        caller = info.context.caller
        return await _delivery_payload(lambda: use_cases.resend_delivery(caller, str(id)))

    @strawberry.mutation(description="Staff only: send again every failed or dead delivery created since a time.")
    async def resend_failed_merchant_deliveries(
        self, info: GraphQLInfo, input: ResendFailedMerchantDeliveriesInput
    ) -> ResendMerchantDeliveriesPayload:
        endpoint = str(input.endpoint_id) if input.endpoint_id is not None else None
        try:
            count = await use_cases.resend_failed_since(info.context.caller, input.since, endpoint)
        except UseCaseError as error:
            return ResendMerchantDeliveriesPayload(count=0, user_errors=_errors(error))
        return ResendMerchantDeliveriesPayload(count=count, user_errors=[])

    @strawberry.mutation(description="Staff only: send a test event (type endpoint.test) to one endpoint.")
    async def send_merchant_test_event(self, info: GraphQLInfo, endpoint_id: strawberry.ID) -> MerchantDeliveryPayload:
        caller = info.context.caller
        return await _delivery_payload(lambda: use_cases.send_test_event(caller, str(endpoint_id)))
