"""`StripeGateway`: PayQL's `PaymentGateway` over Stripe PaymentIntents, through the official SDK (async).

Shaped like the sandbox adapter: `client.py` is the plumbing, `transformers.py` maps Stripe's objects,
`errors.py` maps Stripe's errors, `billing.py` adds the subscription verbs and `events.py` is the webhook
table. Every mutating call carries the request's idempotency key. The adapter never touches PayQL's
database or settings: its configuration is passed in.

A payment made on a hosted Checkout page is known to PayQL by the *session's* id (`cs_...`): the session
exists before its PaymentIntent does. Every verb taking a payment reference accepts one and works on the
session's PaymentIntent (voiding a session nobody paid expires it).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
from collections.abc import Sequence
from typing import Final

import stripe
from stripe.params import (
    DisputeUpdateParams,
    PaymentIntentCaptureParams,
    PaymentIntentCreateParams,
    PaymentIntentListParams,
    PaymentIntentSearchParams,
    RefundCreateParams,
)
from stripe.params.checkout import SessionCreateParams, SessionListParams

from gateways.errors import GatewayUnavailable, InvalidGatewayRequest, NotSupported
from gateways.hosted import HostedCheckoutRequest
from gateways.stripe.billing import StripeBilling
from gateways.stripe.billing_transformers import checkout_session_result, dispute_result
from gateways.stripe.client import StripeApi
from gateways.stripe.errors import translated
from gateways.stripe.events import event_effects
from gateways.stripe.settings import CHECKOUT_MAX_EXPIRY_SECONDS, CHECKOUT_MIN_EXPIRY_SECONDS
from gateways.stripe.transformers import (
    capture_method,
    payment_result,
    refund_reason,
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

# Ask for the latest charge with every intent, so refunds (`amount_refunded`) come in the same answer.
_EXPAND: Final = ["latest_charge"]
# How many of the newest intents `find_payment` scans when search cannot answer.
FIND_SCAN_LIMIT: Final = 100
_SEARCHABLE_ID: Final = re.compile(r"[A-Za-z0-9_.:-]{1,200}")
CHECKOUT_SESSION_PREFIX: Final = "cs_"
# The expiry counts from our payment's creation, plus this margin, so that retries with the same key (same
# parameters) still clear Stripe's 30-minute minimum for a while after the first attempt.
CHECKOUT_EXPIRY_MARGIN_SECONDS: Final = 5 * 60
_SESSION_EXPAND: Final = ["payment_intent", "payment_intent.latest_charge"]
# Our evidence fields are named after Stripe's: all of them are sent, the empty ones left out.
_EVIDENCE_FIELDS: Final = tuple(field.name for field in dataclasses.fields(DisputeEvidence))


class StripeGateway(StripeBilling):
    name: str = "stripe"

    def __init__(
        self,
        secret_key: str,
        *,
        webhook_secrets: Sequence[str],
        base_url: str | None = None,
        timeout: float = 30,
        checkout_expiry_seconds: int = CHECKOUT_MIN_EXPIRY_SECONDS,
    ) -> None:
        if isinstance(webhook_secrets, str):
            raise TypeError("webhook_secrets is a sequence of secrets, not one string")
        if not CHECKOUT_MIN_EXPIRY_SECONDS <= checkout_expiry_seconds <= CHECKOUT_MAX_EXPIRY_SECONDS:
            raise ValueError("checkout_expiry_seconds must be 1800 to 86400 (Stripe's limits)")
        self._api = StripeApi(secret_key, base_url=base_url, timeout=timeout)
        self._stripe = self._api.client
        self._webhook_verifier = StripeSchemeVerifier(webhook_secrets)
        self._checkout_expiry_seconds = checkout_expiry_seconds

    async def charge(self, request: ChargeRequest) -> PaymentResult:
        """Create and confirm a PaymentIntent for a card PaymentMethod in one call."""
        params: PaymentIntentCreateParams = {
            "amount": request.amount.amount,
            "currency": request.amount.currency.lower(),
            "payment_method": request.payment_method,
            "confirm": True,
            "capture_method": capture_method(request.capture_method),
            "metadata": dict(request.metadata),
            "expand": _EXPAND,
        }
        if request.return_url:
            params["return_url"] = request.return_url
        else:
            # Without a return URL, only methods that never redirect: otherwise Stripe refuses to confirm.
            params["automatic_payment_methods"] = {"enabled": True, "allow_redirects": "never"}
        if request.description:
            params["description"] = request.description
        if request.customer_reference:
            params["customer"] = request.customer_reference
        intent = await translated(
            self._stripe.v1.payment_intents.create_async(params, {"idempotency_key": request.idempotency_key})
        )
        return _payment(intent)

    async def create_hosted_checkout(self, request: HostedCheckoutRequest) -> PaymentResult:
        """A Checkout Session (mode payment) priced line by line from our order, with an explicit expiry."""
        metadata = dict(request.metadata)
        params: SessionCreateParams = {
            "mode": "payment",
            "line_items": [
                {
                    "price_data": {
                        "currency": line.unit_amount.currency.lower(),
                        "unit_amount": line.unit_amount.amount,
                        "product_data": {"name": line.name[:250] or "Item"},
                    },
                    "quantity": line.quantity,
                }
                for line in request.line_items
            ],
            "expires_at": request.started_at + self._checkout_expiry_seconds + CHECKOUT_EXPIRY_MARGIN_SECONDS,
            "success_url": request.success_url,
            "cancel_url": request.cancel_url,
            "metadata": metadata,
            "payment_intent_data": {"metadata": metadata, "capture_method": capture_method(request.capture_method)},
        }
        if PAYQL_PAYMENT_ID in metadata:
            params["client_reference_id"] = metadata[PAYQL_PAYMENT_ID]
        if request.description:
            params["payment_intent_data"]["description"] = request.description
        total = sum(line.unit_amount.amount * line.quantity for line in request.line_items)
        if total != request.amount.amount:
            raise InvalidGatewayRequest(
                "The order's lines do not add up to its total.",
                detail=f"line items total {total}, payment amount {request.amount.amount}",
            )
        session = await translated(
            self._stripe.v1.checkout.sessions.create_async(params, {"idempotency_key": request.idempotency_key})
        )
        return _session(session)

    async def retrieve(self, reference: str) -> PaymentResult:
        if reference.startswith(CHECKOUT_SESSION_PREFIX):
            session = await translated(
                self._stripe.v1.checkout.sessions.retrieve_async(reference, {"expand": _SESSION_EXPAND}),
                reference=reference,
            )
            return _session(session, reference=reference)
        intent = await translated(
            self._stripe.v1.payment_intents.retrieve_async(reference, {"expand": _EXPAND}), reference=reference
        )
        return _payment(intent, reference=reference)

    async def complete(self, reference: str, *, capture: bool, idempotency_key: str) -> PaymentResult:
        raise NotSupported("This gateway has no separate approval step to complete.", reference=reference)

    async def capture(self, request: CaptureRequest) -> PaymentResult:
        if not request.final:
            raise NotSupported(
                "Capturing a payment in several parts is not supported.",
                detail="multicapture is not enabled for this adapter",
                reference=request.reference,
            )
        params: PaymentIntentCaptureParams = {"amount_to_capture": request.amount.amount, "expand": _EXPAND}
        intent = await translated(
            self._stripe.v1.payment_intents.capture_async(
                await self._intent_id(request.reference), params, {"idempotency_key": request.idempotency_key}
            ),
            reference=request.reference,
        )
        return _payment(intent, reference=request.reference)

    async def void(self, request: VoidRequest) -> PaymentResult:
        if request.reference.startswith(CHECKOUT_SESSION_PREFIX):
            session = await translated(
                self._stripe.v1.checkout.sessions.retrieve_async(request.reference), reference=request.reference
            )
            if session.status == "open":
                # Nobody paid yet: closing the page is the void.
                expired = await translated(
                    self._stripe.v1.checkout.sessions.expire_async(
                        request.reference, {"expand": _SESSION_EXPAND}, {"idempotency_key": request.idempotency_key}
                    ),
                    reference=request.reference,
                )
                return _session(expired, reference=request.reference)
        intent = await translated(
            self._stripe.v1.payment_intents.cancel_async(
                await self._intent_id(request.reference),
                {"expand": _EXPAND},
                {"idempotency_key": request.idempotency_key},
            ),
            reference=request.reference,
        )
        return _payment(intent, reference=request.reference)

    async def refund(self, request: RefundRequest) -> RefundResult:
        intent_id = await self._intent_id(request.reference)
        params: RefundCreateParams = {"payment_intent": intent_id, "amount": request.amount.amount}
        reason = refund_reason(request.reason)
        if reason is not None:
            params["reason"] = reason
        elif request.reason:
            params["metadata"] = {"payql_reason": request.reason[:500]}
        refund = await translated(
            self._stripe.v1.refunds.create_async(params, {"idempotency_key": request.idempotency_key}),
            reference=request.reference,
        )
        try:
            return refund_result(refund.to_dict(), payment_reference=intent_id)
        except (KeyError, TypeError, ValueError) as exc:
            raise _unreadable(exc, request.reference) from exc

    async def find_payment(self, payql_payment_id: str) -> PaymentResult | None:
        """The newest PaymentIntent whose metadata carries `payql_payment_id`, if any.

        Search first; Stripe's search index lags writes by up to a minute and is unavailable in some
        regions (and in localstripe), so a miss or a refusal falls back to scanning the newest intents.
        """
        if _SEARCHABLE_ID.fullmatch(payql_payment_id):
            query = f"metadata['{PAYQL_PAYMENT_ID}']:'{payql_payment_id}'"
            try:
                search: PaymentIntentSearchParams = {"query": query, "limit": 10, "expand": ["data.latest_charge"]}
                found = await translated(self._stripe.v1.payment_intents.search_async(search))
            except InvalidGatewayRequest:
                found = None
            if found is not None:
                matches = [_payment(intent) for intent in found.data]
                matches = [result for result in matches if result.payql_payment_id == payql_payment_id]
                if matches:
                    return max(matches, key=lambda result: result.created or 0)
        page = await translated(
            self._stripe.v1.payment_intents.list_async({"limit": FIND_SCAN_LIMIT, "expand": ["data.latest_charge"]})
        )
        matches = [_payment(intent) for intent in page.data]
        matches = [result for result in matches if result.payql_payment_id == payql_payment_id]
        if not matches:
            # A hosted checkout nobody paid yet has a session and no PaymentIntent.
            matches = [s for s in await self._sessions(None) if s.payql_payment_id == payql_payment_id]
        return max(matches, key=lambda result: result.created or 0) if matches else None

    async def list_payments(self, created_gte: int) -> list[PaymentResult]:
        """Every PaymentIntent and hosted Checkout Session created at or after `created_gte`, all pages.

        A payment made on a hosted page is listed once, as its session (PayQL knows it by the session's
        id), not again as the session's PaymentIntent. If the server refuses the `created` filter
        (localstripe does), the list is read unfiltered and filtered here: slower, still correct.
        """
        params: PaymentIntentListParams = {"limit": 100, "expand": ["data.latest_charge"]}
        try:
            intents = await self._all_intents({**params, "created": {"gte": created_gte}})
        except InvalidGatewayRequest:
            intents = await self._all_intents(params)
        sessions = await self._sessions(created_gte)
        hosted = {session.payql_payment_id for session in sessions if session.payql_payment_id}
        results = [_payment(intent) for intent in intents]
        results = [result for result in results if result.payql_payment_id not in hosted] + sessions
        return [result for result in results if result.created is None or result.created >= created_gte]

    async def retrieve_dispute(self, reference: str) -> DisputeResult:
        dispute = await translated(
            self._stripe.v1.disputes.retrieve_async(reference, {"expand": ["payment_intent"]}), reference=reference
        )
        return _dispute(dispute, reference)

    async def submit_dispute_evidence(self, reference: str, evidence: DisputeEvidence) -> DisputeResult:
        """Send the non-empty evidence fields and submit them (`submit=true`): no more edits after this.

        The idempotency key is derived from the dispute and the evidence itself, so a retry of the same
        submission is answered once, and different evidence is never mistaken for a retry.
        """
        fields = {name: getattr(evidence, name) for name in _EVIDENCE_FIELDS if getattr(evidence, name)}
        digest = hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()[:32]
        params: DisputeUpdateParams = {
            "evidence": fields,  # type: ignore[typeddict-item]  # keys are Stripe's own evidence field names
            "submit": True,
            "expand": ["payment_intent"],
        }
        dispute = await translated(
            self._stripe.v1.disputes.update_async(
                reference, params, {"idempotency_key": f"payql-dispute-{reference}-evidence-{digest}"}
            ),
            reference=reference,
        )
        return _dispute(dispute, reference)

    async def verify_webhook(self, delivery: WebhookDelivery) -> VerifiedEvent:
        return await self._webhook_verifier.verify_webhook(delivery)

    def interpret_event(self, event: VerifiedEvent) -> list[EventEffect]:
        return event_effects(event)

    async def aclose(self) -> None:
        await self._api.aclose()

    async def _intent_id(self, reference: str) -> str:
        """The PaymentIntent behind a reference: itself, or a hosted Checkout Session's."""
        if not reference.startswith(CHECKOUT_SESSION_PREFIX):
            return reference
        session = await translated(self._stripe.v1.checkout.sessions.retrieve_async(reference), reference=reference)
        intent = session.payment_intent
        intent_id = intent if isinstance(intent, str) else intent.id if intent is not None else None
        if intent_id is None:
            raise InvalidGatewayRequest("Nothing was paid on this checkout page yet.", reference=reference)
        return intent_id

    async def _sessions(self, created_gte: int | None) -> list[PaymentResult]:
        """Checkout Sessions in payment mode: those created since `created_gte` (all pages), or the newest.

        Servers without Checkout (localstripe) answer with an error: then there are none to list.
        """
        params: SessionListParams = {"limit": FIND_SCAN_LIMIT, "expand": ["data.payment_intent"]}
        if created_gte is not None:
            params["created"] = {"gte": created_gte}

        async def collect() -> list[stripe.checkout.Session]:
            first = await self._stripe.v1.checkout.sessions.list_async(params)
            if created_gte is None:
                return list(first.data)
            return [session async for session in first.auto_paging_iter()]

        try:
            sessions = await translated(collect())
        except (InvalidGatewayRequest, GatewayUnavailable):
            return []
        return [_session(session) for session in sessions if session.mode == "payment"]

    async def _all_intents(self, params: PaymentIntentListParams) -> list[stripe.PaymentIntent]:
        async def collect() -> list[stripe.PaymentIntent]:
            first = await self._stripe.v1.payment_intents.list_async(params)
            return [intent async for intent in first.auto_paging_iter()]

        return await translated(collect())


def _payment(intent: stripe.PaymentIntent, *, reference: str | None = None) -> PaymentResult:
    """Map an SDK PaymentIntent; an answer we cannot read is an unknown outcome, never a vendor exception."""
    try:
        return payment_result(intent.to_dict())
    except (KeyError, TypeError, ValueError) as exc:
        raise _unreadable(exc, reference) from exc


def _session(session: stripe.checkout.Session, *, reference: str | None = None) -> PaymentResult:
    try:
        return checkout_session_result(session.to_dict())
    except (KeyError, TypeError, ValueError) as exc:
        raise _unreadable(exc, reference) from exc


def _dispute(dispute: stripe.Dispute, reference: str) -> DisputeResult:
    try:
        return dispute_result(dispute.to_dict())
    except (KeyError, TypeError, ValueError) as exc:
        raise _unreadable(exc, reference) from exc


def _unreadable(exc: Exception, reference: str | None) -> GatewayUnavailable:
    return GatewayUnavailable(
        "The payment provider gave an answer we could not read.",
        detail=f"outcome unknown: unreadable Stripe object ({exc!r}); read it back",
        reference=reference,
    )
