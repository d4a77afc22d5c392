"""One normalized status enum per entity, shared by the database, the gateways and the schema.

Gateways map their own statuses onto these in exactly one function each; an unknown gateway
status maps to PENDING, never to a success.
"""

from __future__ import annotations

from enum import StrEnum


class PaymentStatus(StrEnum):
    PENDING = "PENDING"  # created on our side, gateway answer not known yet
    REQUIRES_ACTION = "REQUIRES_ACTION"  # the customer must act (3-D Secure, approval)
    PROCESSING = "PROCESSING"  # the gateway accepted it and has not decided yet
    AUTHORIZED = "AUTHORIZED"  # funds held, waiting for capture
    PAID = "PAID"  # captured (fully or partially); refunds are tracked by amounts
    FAILED = "FAILED"
    CANCELED = "CANCELED"  # voided before capture


class OrderStatus(StrEnum):
    PENDING = "PENDING"  # awaiting a (new) payment
    REQUIRES_ACTION = "REQUIRES_ACTION"
    PROCESSING = "PROCESSING"
    AUTHORIZED = "AUTHORIZED"
    PAID = "PAID"
    PARTIALLY_REFUNDED = "PARTIALLY_REFUNDED"
    REFUNDED = "REFUNDED"
    DISPUTED = "DISPUTED"
    CANCELED = "CANCELED"


class RefundStatus(StrEnum):
    PENDING = "PENDING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    CANCELED = "CANCELED"


class CaptureMethod(StrEnum):
    AUTOMATIC = "AUTOMATIC"
    MANUAL = "MANUAL"


class NextActionType(StrEnum):
    REDIRECT = "REDIRECT"  # send the shopper to `redirect_url`
    CONFIRM_WITH_SDK = "CONFIRM_WITH_SDK"  # hand `client_secret` to the gateway's JS SDK


PAYMENT_IN_FLIGHT: frozenset[PaymentStatus] = frozenset(
    {PaymentStatus.PENDING, PaymentStatus.REQUIRES_ACTION, PaymentStatus.PROCESSING}
)
PAYMENT_SUCCEEDED: frozenset[PaymentStatus] = frozenset({PaymentStatus.AUTHORIZED, PaymentStatus.PAID})
