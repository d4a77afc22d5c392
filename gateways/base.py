"""The gateway protocol: the verbs every provider implements, with normalized inputs and outputs.

Adapters raise only `gateways.errors` exceptions, never vendor ones, and never touch our database.
An unsupported verb raises `NotSupported`; it is never silently skipped.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from gateways.types import (
    CaptureRequest,
    ChargeRequest,
    DisputeEvidence,
    DisputeResult,
    EventEffect,
    PaymentResult,
    RefundRequest,
    RefundResult,
    VerifiedEvent,
    VoidRequest,
    WebhookDelivery,
)


@runtime_checkable
class PaymentGateway(Protocol):
    name: str

    async def charge(self, request: ChargeRequest) -> PaymentResult:
        """Create and confirm a payment. Declines raise `PaymentDeclined`."""
        ...

    async def retrieve(self, reference: str) -> PaymentResult:
        """Read the payment's current state from the gateway (the reconciliation read)."""
        ...

    async def complete(self, reference: str, *, capture: bool, idempotency_key: str) -> PaymentResult:
        """Capture (or authorize) a payment the customer approved (`awaiting_completion`).

        Gateways without a separate approval step raise `NotSupported`.
        """
        ...

    async def capture(self, request: CaptureRequest) -> PaymentResult: ...

    async def void(self, request: VoidRequest) -> PaymentResult: ...

    async def refund(self, request: RefundRequest) -> RefundResult: ...

    async def find_payment(self, payql_payment_id: str) -> PaymentResult | None:
        """Find a payment by the PayQL payment id we put in its metadata (after a lost answer)."""
        ...

    async def list_payments(self, created_gte: int) -> list[PaymentResult]:
        """The gateway's own list of payments created since `created_gte`, for reconciliation."""
        ...

    async def retrieve_dispute(self, reference: str) -> DisputeResult:
        """Read a dispute's current state (webhooks about disputes may be stale)."""
        ...

    async def submit_dispute_evidence(self, reference: str, evidence: DisputeEvidence) -> DisputeResult:
        """Send the evidence and submit it for the issuer's review (UNDER_REVIEW)."""
        ...

    async def verify_webhook(self, delivery: WebhookDelivery) -> VerifiedEvent:
        """Check the signature with every configured secret and the timestamp window.

        Raises `WebhookRejected`; never returns an unverified event.
        """
        ...

    def interpret_event(self, event: VerifiedEvent) -> list[EventEffect]:
        """Map a verified event onto normalized effects; unknown types → `EventIgnored`."""
        ...

    async def aclose(self) -> None:
        """Release network clients and worker threads."""
        ...
