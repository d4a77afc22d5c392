"""GraphQL inputs. There is no amount on checkout: prices come from our catalog only."""

from __future__ import annotations

import strawberry

from domain.statuses import CaptureMethod
from schema.scalars import MinorUnits
from schema.types import CaptureMethodEnum


@strawberry.input
class CartItemInput:
    price_id: strawberry.ID
    quantity: int = 1


@strawberry.input
class CheckoutInput:
    items: list[CartItemInput]
    gateway: str = "sandbox"
    payment_method: str = strawberry.field(description="A token from the gateway's payment form, never a card.")
    capture_method: CaptureMethodEnum = CaptureMethod.AUTOMATIC  # type: ignore[valid-type]
    idempotency_key: str
    return_url: str | None = None


@strawberry.input
class PayOrderInput:
    order_id: strawberry.ID
    gateway: str = "sandbox"
    payment_method: str
    capture_method: CaptureMethodEnum = CaptureMethod.AUTOMATIC  # type: ignore[valid-type]
    idempotency_key: str


@strawberry.input
class CapturePaymentInput:
    payment_id: strawberry.ID
    amount: MinorUnits | None = strawberry.field(
        default=None, description="Minor units to capture; the whole authorization when omitted."
    )
    idempotency_key: str


@strawberry.input
class CancelPaymentInput:
    payment_id: strawberry.ID
    idempotency_key: str


@strawberry.input
class CompletePaymentInput:
    payment_id: strawberry.ID


@strawberry.input
class RefundPaymentInput:
    payment_id: strawberry.ID
    amount: MinorUnits | None = strawberry.field(
        default=None, description="Minor units to refund; all that is left of the capture when omitted."
    )
    reason: str = ""
    idempotency_key: str


@strawberry.input
class CancelOrderInput:
    order_id: strawberry.ID
    reason: str = ""
    idempotency_key: str
