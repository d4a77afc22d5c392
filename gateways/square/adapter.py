"""`SquareGateway`: PayQL's `PaymentGateway` over Square's Payments, Refunds and Disputes APIs, through the
official `squareup` SDK's async client (`square.AsyncSquare`, httpx), and its `BillingGateway` over Square's
Subscriptions, Catalog, Cards and Invoices APIs (mixed in from `billing.py`).

- `charge`: CreatePayment with the Web Payments SDK's card token as `source_id` and, for a verified buyer (SCA),
  verifyBuyer's `verification_token` (`transformers.parse_payment_method`), our idempotency key (shortened
  to Square's 45 characters by a digest when longer, see `client.square_key`), our payment id in `reference_id`
  (Square payments have no metadata), `autocomplete=false` for manual capture (the payment is APPROVED).
- `capture`: CompletePayment, which takes no amount: it captures the payment's current `amount_money`. A
  partial capture first lowers the amount with UpdatePayment, which Square allows only where the payment's
  `capabilities` list EDIT_AMOUNT_DOWN (not for sellers in Japan); elsewhere it is `NotSupported`, and so is a
  non-final capture (one Square payment is captured once). `void`: CancelPayment. Neither Complete nor Cancel
  takes an idempotency key: a payment already in the asked-for state is answered from a read, not acted on again.
- `refund`: RefundPayment; the refund starts PENDING and becomes COMPLETED or FAILED (refund.updated).
- `find_payment` / `list_payments`: ListPayments (newest first / a `begin_time` window, all pages).
- Disputes: GetDispute, CreateDisputeEvidenceText (one text per non-empty evidence field), SubmitEvidence.

Plumbing in `client.py` and `wire.py`, wire mapping in `transformers.py` and `billing_transformers.py`, errors
in `errors.py`, the event table in `events.py`, signature checks in `webhooks.py`. Never touches PayQL's database
or settings.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Final

from domain.statuses import CaptureMethod
from gateways.errors import InvalidGatewayRequest, NotSupported
from gateways.square.billing import SquareBilling
from gateways.square.client import NO_RETRIES, SANDBOX_BASE_URL, SquareApi, square_key
from gateways.square.errors import translated
from gateways.square.events import event_effects
from gateways.square.transformers import dispute_result, parse_payment_method, payment_result, refund_result
from gateways.square.webhooks import SquareDeliveryVerifier
from gateways.square.wire import mapped, part, wire
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

# How many of the newest payments `find_payment` scans for our reference_id (ListPayments has no such filter).
FIND_SCAN_LIMIT: Final = 100
# Square's evidence types for our text fields (DisputeEvidenceType); each non-empty field is one text.
_EVIDENCE_TYPES: Final[Mapping[str, str]] = {
    "product_description": "PRODUCT_OR_SERVICE_DESCRIPTION",
    "customer_name": "CARDHOLDER_INFORMATION",
    "customer_email_address": "CARDHOLDER_INFORMATION",
    "customer_purchase_ip": "ONLINE_OR_APP_ACCESS_LOG",
    "billing_address": "CARDHOLDER_INFORMATION",
    "receipt": "RECEIPT",
    "shipping_carrier": "PROOF_OF_DELIVERY_DOCUMENTATION",
    "shipping_tracking_number": "TRACKING_NUMBER",
    "shipping_date": "PROOF_OF_DELIVERY_DOCUMENTATION",
    "refund_policy": "CANCELLATION_OR_REFUND_DOCUMENTATION",
    "uncategorized_text": "GENERIC_EVIDENCE",
}
_EVIDENCE_TEXT_LIMIT: Final = 500


class SquareGateway(SquareBilling):
    name: str = "square"

    def __init__(
        self,
        access_token: str,
        *,
        location_id: str,
        webhook_signature_keys: Sequence[str],
        notification_url: str | None,
        base_url: str = SANDBOX_BASE_URL,
        timeout: float = 30,
    ) -> None:
        if not location_id:
            raise ValueError("a Square location id is required")
        self._api = SquareApi(access_token, base_url=base_url, timeout=timeout)
        self._square = self._api.client
        self._location_id = location_id
        self._verifier = SquareDeliveryVerifier(webhook_signature_keys, notification_url)
        self._variation_ids: dict[str, str] = {}
        self._variations: dict[str, tuple[str | None, str | None]] = {}

    # --- payments ------------------------------------------------------------------------------------------
    async def charge(self, request: ChargeRequest) -> PaymentResult:
        payql_payment_id = request.metadata.get(PAYQL_PAYMENT_ID)
        source = parse_payment_method(request.payment_method)
        answer = await translated(
            self._square.payments.create(
                source_id=source.source_id,
                verification_token=source.verification_token,
                idempotency_key=square_key(request.idempotency_key),
                amount_money={"amount": request.amount.amount, "currency": request.amount.currency},
                autocomplete=request.capture_method is CaptureMethod.AUTOMATIC,
                location_id=self._location_id,
                reference_id=payql_payment_id[:40] if payql_payment_id else None,
                note=request.description[:500] or None,
                customer_id=request.customer_reference,
                request_options=NO_RETRIES,
            )
        )
        return mapped(payment_result, part(answer, "payment", None), None)

    async def retrieve(self, reference: str) -> PaymentResult:
        return mapped(payment_result, await self._payment(reference), reference)

    async def complete(self, reference: str, *, capture: bool, idempotency_key: str) -> PaymentResult:
        raise NotSupported("This gateway has no separate approval step to complete.", reference=reference)

    async def capture(self, request: CaptureRequest) -> PaymentResult:
        reference = request.reference
        payment = await self._payment(reference)
        current = mapped(payment_result, payment, reference)
        if payment.get("status") == "COMPLETED":
            return current  # captured already (a retry of ours): CompletePayment has no idempotency key
        if not request.final:
            raise NotSupported(
                "Capturing a Square payment in several parts is not supported.",
                detail="CompletePayment captures a payment once, for its whole current amount",
                reference=reference,
            )
        if request.amount.currency != current.amount.currency:
            raise InvalidGatewayRequest("The capture is in another currency than the payment.", reference=reference)
        amount_now = mapped(lambda p: int(p["amount_money"]["amount"]), payment, reference)
        if request.amount.amount > amount_now:
            raise InvalidGatewayRequest("The capture is more than what is left authorized.", reference=reference)
        if request.amount.amount < amount_now:
            if "EDIT_AMOUNT_DOWN" not in (payment.get("capabilities") or []):
                raise NotSupported(
                    "Square cannot capture less than the authorized amount of this payment.",
                    detail="CompletePayment takes no amount and the payment lacks the EDIT_AMOUNT_DOWN capability "
                    "(UpdatePayment is not available, e.g. for sellers in Japan): capture it whole, then refund",
                    reference=reference,
                )
            updated = await translated(
                self._square.payments.update(
                    payment_id=reference,
                    idempotency_key=square_key(f"{request.idempotency_key}-amount"),
                    payment={"amount_money": {"amount": request.amount.amount, "currency": request.amount.currency}},
                    request_options=NO_RETRIES,
                ),
                reference=reference,
            )
            payment = part(updated, "payment", reference)
        completed = await translated(
            self._square.payments.complete(
                payment_id=reference, version_token=payment.get("version_token"), request_options=NO_RETRIES
            ),
            reference=reference,
        )
        return mapped(payment_result, part(completed, "payment", reference), reference)

    async def void(self, request: VoidRequest) -> PaymentResult:
        reference = request.reference
        payment = await self._payment(reference)
        if payment.get("status") == "CANCELED":
            return mapped(payment_result, payment, reference)  # canceled already (a retry of ours)
        canceled = await translated(
            self._square.payments.cancel(payment_id=reference, request_options=NO_RETRIES), reference=reference
        )
        return mapped(payment_result, part(canceled, "payment", reference), reference)

    async def refund(self, request: RefundRequest) -> RefundResult:
        answer = await translated(
            self._square.refunds.refund_payment(
                idempotency_key=square_key(request.idempotency_key),
                amount_money={"amount": request.amount.amount, "currency": request.amount.currency},
                payment_id=request.reference,
                reason=request.reason[:192] or None,
                request_options=NO_RETRIES,
            ),
            reference=request.reference,
        )
        return mapped(refund_result, part(answer, "refund", request.reference), request.reference)

    async def find_payment(self, payql_payment_id: str) -> PaymentResult | None:
        """The newest of the latest `FIND_SCAN_LIMIT` payments whose `reference_id` is our payment id."""
        pager = await translated(
            self._square.payments.list(
                location_id=self._location_id, sort_order="DESC", limit=FIND_SCAN_LIMIT, request_options=NO_RETRIES
            )
        )
        payments = [mapped(payment_result, wire(p), None) for p in pager.items or []]
        matches = [p for p in payments if p.payql_payment_id == payql_payment_id]
        return max(matches, key=lambda p: p.created or 0) if matches else None

    async def list_payments(self, created_gte: int) -> list[PaymentResult]:
        """Every payment of our location created at or after `created_gte`, all pages (ListPayments is
        eventually consistent: a payment seconds old may be missing, and is read on the next run)."""
        begin = datetime.fromtimestamp(created_gte, UTC).isoformat().replace("+00:00", "Z")
        return [mapped(payment_result, p, None) for p in await self._payments_between(begin)]

    # --- disputes ------------------------------------------------------------------------------------------
    async def retrieve_dispute(self, reference: str) -> DisputeResult:
        answer = await translated(
            self._square.disputes.get(dispute_id=reference, request_options=NO_RETRIES), reference=reference
        )
        dispute = part(answer, "dispute", reference)
        result = mapped(dispute_result, dispute, reference)
        # A dispute names Square's payment only; ours is in that payment's reference_id.
        payment = await self.retrieve(result.payment_reference)
        return dataclasses.replace(result, payql_payment_id=payment.payql_payment_id)

    async def submit_dispute_evidence(self, reference: str, evidence: DisputeEvidence) -> DisputeResult:
        """Upload each non-empty field as one evidence text (Square takes up to 500 characters each), then submit.

        Each upload's idempotency key names the dispute, the field and a digest of its text, so a retried
        submission uploads nothing twice and different evidence is never mistaken for a retry.
        """
        texts = [(name, getattr(evidence, name)) for name in _EVIDENCE_TYPES if getattr(evidence, name)]
        if not texts:
            raise InvalidGatewayRequest("No evidence to submit.", reference=reference)
        for name, text in texts:
            for index in range(0, len(text), _EVIDENCE_TEXT_LIMIT):
                part = text[index : index + _EVIDENCE_TEXT_LIMIT]
                digest = hashlib.sha256(json.dumps([reference, name, index, part]).encode()).hexdigest()
                await translated(
                    self._square.disputes.create_evidence_text(
                        dispute_id=reference,
                        idempotency_key=square_key(f"evidence-{digest}"),
                        evidence_text=part,
                        evidence_type=_EVIDENCE_TYPES[name],
                        request_options=NO_RETRIES,
                    ),
                    reference=reference,
                )
        await translated(
            self._square.disputes.submit_evidence(dispute_id=reference, request_options=NO_RETRIES),
            reference=reference,
        )
        return await self.retrieve_dispute(reference)

    # --- webhooks ------------------------------------------------------------------------------------------
    async def verify_webhook(self, delivery: WebhookDelivery) -> VerifiedEvent:
        return await self._verifier.verify_webhook(delivery)

    def interpret_event(self, event: VerifiedEvent) -> list[EventEffect]:
        return event_effects(event)

    async def aclose(self) -> None:
        await self._api.aclose()

    # --- plumbing ------------------------------------------------------------------------------------------
    async def _payments_between(self, begin: str, end: str | None = None) -> list[dict[str, Any]]:
        """Our location's payments created in [begin, end) (RFC 3339; no end: until now), oldest first, all pages,
        as wire JSON."""

        async def collect() -> list[dict[str, Any]]:
            pager = await self._square.payments.list(
                location_id=self._location_id,
                begin_time=begin,
                end_time=end,
                sort_order="ASC",
                request_options=NO_RETRIES,
            )
            return [wire(payment) async for payment in pager]

        return await translated(collect())

    async def _payment(self, reference: str) -> dict[str, Any]:
        answer = await translated(
            self._square.payments.get(payment_id=reference, request_options=NO_RETRIES), reference=reference
        )
        return part(answer, "payment", reference)
