"""Hosted checkout: the gateway's own payment page (Stripe Checkout) as an alternative to our payment form.

A gateway that has such a page implements `HostedCheckoutGateway` beside `PaymentGateway`; one that does
not is refused by the use case with a clear invalid-input error. The answer is a payment in
REQUIRES_ACTION whose `next_action` is a REDIRECT to the page; only the gateway's webhook or a read
says what happened after, never the shopper's return to the success URL.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from domain.money import Money
from domain.statuses import CaptureMethod
from gateways.types import PaymentResult


@dataclass(frozen=True, slots=True)
class HostedLineItem:
    name: str
    unit_amount: Money
    quantity: int


@dataclass(frozen=True, slots=True)
class HostedCheckoutRequest:
    amount: Money
    line_items: tuple[HostedLineItem, ...]
    capture_method: CaptureMethod
    idempotency_key: str
    success_url: str
    cancel_url: str
    # When our payment was created (epoch seconds): the page's expiry counts from it, so a retry with the
    # same idempotency key sends the same parameters.
    started_at: int
    description: str = ""
    metadata: dict[str, str] = field(default_factory=dict)


@runtime_checkable
class HostedCheckoutGateway(Protocol):
    name: str

    async def create_hosted_checkout(self, request: HostedCheckoutRequest) -> PaymentResult:
        """Open the hosted page for this payment; REQUIRES_ACTION with a REDIRECT next action."""
        ...
