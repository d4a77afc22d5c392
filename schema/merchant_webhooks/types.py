"""The GraphQL types of outgoing webhooks: endpoints (never their secrets), deliveries with their
attempts, and the mutation payloads."""

from __future__ import annotations

from datetime import datetime

import strawberry

from db.merchant_models import DeliveryStatus, MerchantDelivery, MerchantDeliveryAttempt, MerchantEndpoint
from schema.types import UserError

DeliveryStatusEnum = strawberry.enum(DeliveryStatus, name="MerchantDeliveryStatus")


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
        """`delivery.event` must be fetched."""
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


@strawberry.type
class MerchantEndpointPayload:
    endpoint: MerchantEndpointType | None
    user_errors: list[UserError]

    @classmethod
    def refused(cls, errors: list[UserError]) -> MerchantEndpointPayload:
        return cls(endpoint=None, user_errors=errors)


@strawberry.type
class MerchantEndpointSecretPayload:
    endpoint: MerchantEndpointType | None
    secret: str | None = strawberry.field(description="The signing secret: shown this once, store it now.")
    user_errors: list[UserError]

    @classmethod
    def refused(cls, errors: list[UserError]) -> MerchantEndpointSecretPayload:
        return cls(endpoint=None, secret=None, user_errors=errors)


@strawberry.type
class MerchantDeliveryPayload:
    delivery: MerchantDeliveryType | None
    user_errors: list[UserError]

    @classmethod
    def refused(cls, errors: list[UserError]) -> MerchantDeliveryPayload:
        return cls(delivery=None, user_errors=errors)


@strawberry.type
class ResendMerchantDeliveriesPayload:
    count: int
    user_errors: list[UserError]

    @classmethod
    def refused(cls, errors: list[UserError]) -> ResendMerchantDeliveriesPayload:
        return cls(count=0, user_errors=errors)


@strawberry.type
class DeleteMerchantEndpointPayload:
    deleted: bool
    user_errors: list[UserError]

    @classmethod
    def refused(cls, errors: list[UserError]) -> DeleteMerchantEndpointPayload:
        return cls(deleted=False, user_errors=errors)
