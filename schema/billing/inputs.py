"""Inputs of the billing mutations; every money-moving one carries an idempotency key."""

from __future__ import annotations

from datetime import datetime

import strawberry

from gateways.types import ProrationMode
from resolvers.subscriptions import RefundOnCancel
from schema.billing.types import (
    ProrationModeEnum,
    RefundOnCancelEnum,
)


@strawberry.input
class CreateSubscriptionInput:
    price_id: strawberry.ID
    gateway: str | None = strawberry.field(
        default=None, description="The gateway the shopper chose; when omitted the routing policy picks one."
    )
    payment_method: str = strawberry.field(description="A token from the gateway's payment form, never a card.")
    trial_days: int = 0
    return_url: str | None = None
    idempotency_key: str


@strawberry.input
class ChangeSubscriptionPlanInput:
    subscription_id: strawberry.ID
    price_id: strawberry.ID
    proration: ProrationModeEnum = ProrationMode.IMMEDIATE  # type: ignore[valid-type]
    idempotency_key: str


@strawberry.input
class CancelSubscriptionInput:
    subscription_id: strawberry.ID
    at_period_end: bool = True
    refund: RefundOnCancelEnum = strawberry.field(  # type: ignore[valid-type]
        default=RefundOnCancel.NONE,
        description="Staff canceling now: refund the unused share (PRORATED) or all (FULL) of the period.",
    )
    idempotency_key: str


@strawberry.input
class SubscriptionActionInput:
    subscription_id: strawberry.ID
    idempotency_key: str


@strawberry.input
class ReportUsageInput:
    subscription_id: strawberry.ID
    price_id: strawberry.ID
    quantity: int
    timestamp: datetime | None = None
    idempotency_key: str


@strawberry.input
class UpdateDefaultPaymentMethodInput:
    subscription_id: strawberry.ID
    payment_method: str
    idempotency_key: str
