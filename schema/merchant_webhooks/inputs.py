"""The GraphQL inputs of the outgoing webhook mutations."""

from __future__ import annotations

from datetime import datetime

import strawberry

DEFAULT_OVERLAP_SECONDS = 24 * 3600


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
