"""`SandboxGateway`: PayQL's `PaymentGateway` over the in-process sandbox processor.

The reference adapter other gateways copy: it calls the processor, maps results through
`transformers.py` and raises only `gateways.errors`. It never touches PayQL's database or settings.
Webhooks are verified in Stripe's scheme (`gateways.stripe_signature`) against every configured secret
(so secrets can rotate). `package.py` says how it is configured and built.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict

from gateways.errors import (
    NotSupported,
)
from gateways.sandbox.billing_adapter import SandboxBillingAdapter
from gateways.sandbox.error_translation import translated
from gateways.sandbox.processor import SandboxProcessor
from gateways.sandbox.transformers import (
    capture_mode,
    dispute_result,
    event_effects,
    payment_result,
    refund_result,
)
from gateways.stripe_signature import StripeSchemeVerifier
from gateways.types import (
    PAYQL_PAYMENT_ID,
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


class SandboxGateway(SandboxBillingAdapter):
    """Payments here; subscriptions (`BillingGateway`) in `SandboxBillingAdapter`."""

    def __init__(
        self,
        processor: SandboxProcessor,
        public_base_url: str,
        webhook_secrets: Sequence[str] = (),
        *,
        name: str = "sandbox",
    ) -> None:
        if isinstance(webhook_secrets, str):
            raise TypeError("webhook_secrets is a sequence of secrets, not one string")
        # The package's name, or an instance's ("sandbox_backup"): its routes are mounted under it.
        self.name = name
        self._processor = processor
        self._routes_url = f"{public_base_url.rstrip('/')}/{name}"
        self._webhook_verifier = StripeSchemeVerifier(webhook_secrets)

    async def charge(self, request: ChargeRequest) -> PaymentResult:
        intent = await translated(
            self._processor.create_payment_intent(
                amount=request.amount.amount,
                currency=request.amount.currency,
                payment_method=request.payment_method,
                idempotency_key=request.idempotency_key,
                capture_method=capture_mode(request.capture_method),
                return_url=request.return_url,
                description=request.description,
                customer=request.customer_reference,
                metadata=request.metadata,
            )
        )
        return payment_result(intent, routes_url=self._routes_url)

    async def retrieve(self, reference: str) -> PaymentResult:
        intent = await translated(self._processor.retrieve(reference), reference=reference)
        return payment_result(intent, routes_url=self._routes_url)

    async def complete(self, reference: str, *, capture: bool, idempotency_key: str) -> PaymentResult:
        raise NotSupported("This gateway has no separate approval step to complete.", reference=reference)

    async def capture(self, request: CaptureRequest) -> PaymentResult:
        if not request.final:
            raise NotSupported(
                "Capturing a payment in several parts is not supported.",
                detail="the sandbox, like a default Stripe account, has no multicapture",
                reference=request.reference,
            )
        intent = await translated(
            self._processor.capture(
                request.reference,
                idempotency_key=request.idempotency_key,
                amount_to_capture=request.amount.amount,
                currency=request.amount.currency,
            ),
            reference=request.reference,
        )
        return payment_result(intent, routes_url=self._routes_url)

    async def void(self, request: VoidRequest) -> PaymentResult:
        intent = await translated(
            self._processor.cancel(request.reference, idempotency_key=request.idempotency_key),
            reference=request.reference,
        )
        return payment_result(intent, routes_url=self._routes_url)

    async def refund(self, request: RefundRequest) -> RefundResult:
        refund = await translated(
            self._processor.refund(
                request.reference,
                idempotency_key=request.idempotency_key,
                amount=request.amount.amount,
                currency=request.amount.currency,
                reason=request.reason,
            ),
            reference=request.reference,
        )
        return refund_result(refund)

    async def find_payment(self, payql_payment_id: str) -> PaymentResult | None:
        """The newest payment intent whose metadata carries `payql_payment_id`, if any."""
        intents = await translated(self._processor.list_payment_intents())
        matching = [intent for intent in intents if intent.metadata.get(PAYQL_PAYMENT_ID) == payql_payment_id]
        if not matching:
            return None
        return payment_result(matching[-1], routes_url=self._routes_url)

    async def list_payments(self, created_gte: int) -> list[PaymentResult]:
        intents = await translated(self._processor.list_payment_intents(created_gte))
        return [payment_result(intent, routes_url=self._routes_url) for intent in intents]

    async def retrieve_dispute(self, reference: str) -> DisputeResult:
        dispute = await translated(self._processor.retrieve_dispute(reference), reference=reference)
        return dispute_result(dispute)

    async def submit_dispute_evidence(self, reference: str, evidence: DisputeEvidence) -> DisputeResult:
        fields = {name: text for name, text in asdict(evidence).items() if text}
        dispute = await translated(self._processor.submit_dispute_evidence(reference, fields), reference=reference)
        return dispute_result(dispute)

    async def verify_webhook(self, delivery: WebhookDelivery) -> VerifiedEvent:
        return await self._webhook_verifier.verify_webhook(delivery)

    def interpret_event(self, event: VerifiedEvent) -> list[EventEffect]:
        return event_effects(event, routes_url=self._routes_url)

    async def aclose(self) -> None:
        await self._processor.aclose()
