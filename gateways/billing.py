"""The billing protocol: subscriptions on the gateway's own billing engine (Stripe Billing, PayPal
Subscriptions, the sandbox's engine), whose state PayQL mirrors from webhooks and reconciliation reads.

A gateway that bills recurring prices implements this beside `PaymentGateway`; the registry hands it
out with `GatewayRegistry.billing`. Like every adapter verb, these raise only `gateways.errors`
exceptions, carry the idempotency key they are given, and never touch PayQL's database.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from gateways.types import (
    InvoiceResult,
    PlanChangeRequest,
    PlanPrice,
    ProrationPreview,
    SubscriptionRequest,
    SubscriptionResult,
    UsageReport,
)


@runtime_checkable
class BillingGateway(Protocol):
    name: str

    async def billing_now(self, reference: str) -> int:
        """The clock the subscription `reference` is billed on, in epoch seconds: real time, or the
        test clock of its customer (the sandbox's, like Stripe's test clocks).

        Dunning schedules compare against this, so a test that moves a customer's clock moves them too.
        """
        ...

    async def create_subscription(self, request: SubscriptionRequest) -> SubscriptionResult:
        """Create the subscription (and its first invoice, unless it starts with a trial).

        A declined first payment is not an exception: the result is INCOMPLETE with the invoice's
        `decline_code`; one that needs the customer carries the invoice's `next_action`.
        """
        ...

    async def retrieve_subscription(self, reference: str) -> SubscriptionResult: ...

    async def retrieve_invoice(self, reference: str) -> InvoiceResult: ...

    async def preview_plan_change(self, reference: str, price: PlanPrice) -> ProrationPreview:
        """What switching to `price` now would charge now and at the next renewal; changes nothing."""
        ...

    async def change_plan(self, request: PlanChangeRequest) -> SubscriptionResult: ...

    async def cancel_subscription(
        self, reference: str, *, at_period_end: bool, idempotency_key: str
    ) -> SubscriptionResult: ...

    async def pause_subscription(self, reference: str, *, idempotency_key: str) -> SubscriptionResult: ...

    async def resume_subscription(self, reference: str, *, idempotency_key: str) -> SubscriptionResult: ...

    async def report_usage(self, report: UsageReport) -> str:
        """Record metered usage for the current period; returns the gateway's usage record id."""
        ...

    async def pay_invoice(self, reference: str, *, idempotency_key: str) -> InvoiceResult:
        """Retry collecting an open invoice with the saved payment method (our dunning schedule calls this).

        A decline is not an exception: the result stays OPEN with the `decline_code`.
        """
        ...

    async def update_default_payment_method(
        self, reference: str, payment_method: str, *, idempotency_key: str
    ) -> SubscriptionResult: ...
