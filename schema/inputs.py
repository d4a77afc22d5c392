"""GraphQL inputs. There is no amount on checkout: prices come from our catalog only."""

from __future__ import annotations

import strawberry

from domain.statuses import CaptureMethod
from schema.scalars import MinorUnits
from schema.types import CaptureMethodEnum

_HOSTED_CHECKOUT = (
    "Pay on the gateway's own hosted page (capabilities.hostedCheckout): nextAction is a REDIRECT to it; the order's "
    "returnUrl is where the shopper comes back. Gateways without such a page refuse it."
)


_GATEWAY = (
    "The gateway the shopper chose (never re-routed); when omitted the routing policy picks one for the "
    "order's currency and fails over to the next when a gateway refuses before accepting the payment."
)


@strawberry.input
class CartItemInput:
    price_id: strawberry.ID
    quantity: int = 1


@strawberry.input
class CheckoutInput:
    items: list[CartItemInput]
    gateway: str | None = strawberry.field(default=None, description=_GATEWAY)
    payment_method: str = strawberry.field(
        default="", description="A token from the gateway's payment form, never a card; none with hostedCheckout."
    )
    capture_method: CaptureMethodEnum = CaptureMethod.AUTOMATIC  # type: ignore[valid-type]
    idempotency_key: str
    return_url: str | None = None
    hosted_checkout: bool = strawberry.field(default=False, description=_HOSTED_CHECKOUT)


@strawberry.input
class PayOrderInput:
    order_id: strawberry.ID
    gateway: str | None = strawberry.field(default=None, description=_GATEWAY)
    payment_method: str = ""
    capture_method: CaptureMethodEnum = CaptureMethod.AUTOMATIC  # type: ignore[valid-type]
    idempotency_key: str
    hosted_checkout: bool = strawberry.field(default=False, description=_HOSTED_CHECKOUT)


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


@strawberry.input(description="One value the provider's checkout handed the SPA, as the provider named it.")
class ReturnedValueInput:
    name: str
    value: str


@strawberry.input
class CompletePaymentInput:
    payment_id: strawberry.ID
    returned: list[ReturnedValueInput] = strawberry.field(
        default_factory=list,
        description="What the gateway's checkout handed the SPA after the shopper acted there (a signed "
        "confirmation, a redirect or 3-D Secure result), for gateways whose flow needs it "
        "(`capabilities.shopperReturn`). Verified, never trusted: the payment is read from the gateway.",
    )


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
