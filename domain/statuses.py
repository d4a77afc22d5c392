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


class SubscriptionStatus(StrEnum):
    INCOMPLETE = "INCOMPLETE"  # created; the first invoice is not paid yet
    INCOMPLETE_EXPIRED = "INCOMPLETE_EXPIRED"  # the first invoice was never paid: ended, nothing owed
    TRIALING = "TRIALING"
    ACTIVE = "ACTIVE"
    PAST_DUE = "PAST_DUE"  # a renewal failed; dunning retries it, access kept during the grace period
    PAUSED = "PAUSED"  # collection paused by the merchant or the customer: no invoices, no access
    UNPAID = "UNPAID"  # retries exhausted and the policy keeps the subscription (no access)
    CANCELED = "CANCELED"


class InvoiceStatus(StrEnum):
    DRAFT = "DRAFT"
    OPEN = "OPEN"  # finalized and waiting for payment (or for the customer's action)
    PAID = "PAID"
    UNCOLLECTIBLE = "UNCOLLECTIBLE"
    VOID = "VOID"


class DisputeStatus(StrEnum):
    NEEDS_RESPONSE = "NEEDS_RESPONSE"  # funds withdrawn; evidence due by `evidence_due_by`
    UNDER_REVIEW = "UNDER_REVIEW"  # evidence submitted, the issuer decides
    WON = "WON"  # funds reinstated
    LOST = "LOST"  # funds stay with the cardholder


class CaptureMethod(StrEnum):
    AUTOMATIC = "AUTOMATIC"
    MANUAL = "MANUAL"


class NextActionType(StrEnum):
    REDIRECT = "REDIRECT"  # send the shopper to `redirect_url`
    CONFIRM_WITH_SDK = "CONFIRM_WITH_SDK"  # hand `client_secret` to the gateway's JS SDK
    COLLECT_PAYMENT_METHOD = "COLLECT_PAYMENT_METHOD"  # tokenize on `gateway` and pay the order with it there


PAYMENT_IN_FLIGHT: frozenset[PaymentStatus] = frozenset(
    {PaymentStatus.PENDING, PaymentStatus.REQUIRES_ACTION, PaymentStatus.PROCESSING}
)
PAYMENT_SUCCEEDED: frozenset[PaymentStatus] = frozenset({PaymentStatus.AUTHORIZED, PaymentStatus.PAID})

SUBSCRIPTION_ENDED: frozenset[SubscriptionStatus] = frozenset(
    {SubscriptionStatus.CANCELED, SubscriptionStatus.INCOMPLETE_EXPIRED}
)
DISPUTE_CLOSED: frozenset[DisputeStatus] = frozenset({DisputeStatus.WON, DisputeStatus.LOST})
