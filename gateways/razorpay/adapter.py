"""`RazorpayGateway`: PayQL's `PaymentGateway` (and `ShopperReturnGateway`) over Razorpay's Orders, Payments,
Refunds and Disputes APIs, through the official SDK (`razorpay` 2.0.x).

The flow (Razorpay's "Orders API" integration):
1. `charge` creates a Razorpay Order (amount in the currency's subunits; `receipt` = our payment id; notes carry
   `payql_payment_id` and our idempotency key; `payment_capture` from our capture method) and answers
   REQUIRES_ACTION with a CONFIRM_WITH_SDK next action whose `client_secret` is the order id: the SPA opens
   Razorpay Checkout with it and the public key id (`publicConfig.keyId`). The order id is our reference.
2. The shopper pays in Checkout. Its `handler` hands the SPA `razorpay_payment_id`, `razorpay_order_id` and
   `razorpay_signature`, which the SPA sends back with completePayment; `accept_shopper_return` checks the
   signature (HMAC-SHA256 of `order_id|payment_id` with the key secret, constant time), and even a good one only
   makes us read the payment from Razorpay: the callback alone never marks anything paid. Checkout's
   `payment.failed` hands the SPA the ids without a signature; they are believed only as far as the payment
   read server-side is a failed payment of this order (`PaymentDeclined`; the order stays payable).
3. Payments: authorized → captured, automatically (the order's `payment_capture`) or by `capture`, which Razorpay
   takes only for the whole authorized amount (its API reference: the amount "should be equal to the order
   amount"), so a partial capture is `NotSupported`. Razorpay has no call to void an authorization: an authorized
   payment left uncaptured is refunded to the shopper automatically after the capture window, so `void` is
   `NotSupported` with that explanation (InvalidGatewayRequest for a captured payment: refund it instead).
   Refunds (speed normal) have their own status: pending → processed | failed.

At most once without an idempotency key (Razorpay has no Idempotency-Key header): an order moves no money, and
`charge` first looks for an order with our receipt whose notes carry the same idempotency key (a retry after a
lost answer finds it); only the order whose id the SPA was given can be paid. `capture` reads the payment first
and a retry finds it captured. `refund` first lists the payment's refunds for one whose notes carry our key.
These are read-then-write: the core runs one call per idempotency key at a time, so two retries do not race.
Reconciliation lists the window's orders with their payments expanded (`list_payments`); `find_payment` finds an
order by its receipt.

Disputes: read (with the disputed payment resolved to its order), evidence submitted as a contest summary, the
outcome from payment.dispute.* webhooks. Also a `BillingGateway` (Razorpay plans and subscriptions, `billing.py`).

HTTP plumbing in `client.py`, calls in `calls.py`, wire mapping in `transformers.py`, errors in `errors.py`,
signatures in `signatures.py`, webhooks in `webhooks.py`. Never touches PayQL's database or settings.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

from gateways.errors import (
    GatewayIdempotencyConflict,
    InvalidGatewayRequest,
    NotSupported,
    PaymentDeclined,
    ShopperReturnRejected,
)
from gateways.razorpay.billing import RazorpayBilling
from gateways.razorpay.calls import mapped, newest
from gateways.razorpay.client import BASE_URL, RazorpayClient
from gateways.razorpay.errors import decline_code
from gateways.razorpay.signatures import payment_signature_valid
from gateways.razorpay.transformers import (
    IDEMPOTENCY_NOTE,
    contest_request,
    deciding_payment,
    dispute_result,
    notes_of,
    order_request,
    payment_result,
    receipt_for,
    refund_result,
)
from gateways.razorpay.webhooks import RazorpayDeliveryVerifier, event_effects
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

# What Razorpay Checkout hands the SPA (its `handler` response; `payment.failed` hands the first two only).
RETURNED_PAYMENT = "razorpay_payment_id"
RETURNED_ORDER = "razorpay_order_id"
RETURNED_SIGNATURE = "razorpay_signature"
# A payment event or a dispute may name a payment (`pay_...`) rather than our reference, the order.
PAYMENT_PREFIX = "pay_"


class RazorpayGateway(RazorpayBilling):
    name: str = "razorpay"

    def __init__(
        self,
        key_id: str,
        key_secret: str,
        *,
        webhook_secrets: Sequence[str],
        base_url: str = BASE_URL,
        timeout: float = 30,
        max_concurrency: int = 8,
    ) -> None:
        self._key_secret = key_secret
        self._plans = {}
        self._plan_ids = {}
        self._client = RazorpayClient(
            key_id, key_secret, base_url=base_url, timeout=timeout, max_concurrency=max_concurrency
        )
        self._verifier = RazorpayDeliveryVerifier(webhook_secrets)

    # --- payments --------------------------------------------------------------------------------------------
    async def charge(self, request: ChargeRequest) -> PaymentResult:
        """Create the Razorpay Order the shopper pays in Checkout (REQUIRES_ACTION), or answer the one an earlier
        call with the same idempotency key created. `payment_method` is not used: the shopper picks it in Checkout."""
        receipt = receipt_for(request)
        key = request.idempotency_key[:256]
        earlier = [
            order
            for order in await self._items(lambda sdk, q: sdk.order.all(q), {"receipt": receipt})
            if notes_of(order).get(IDEMPOTENCY_NOTE) == key
        ]
        order = newest(earlier)
        if order is not None:
            if (order.get("amount"), str(order.get("currency", "")).upper()) != (
                request.amount.amount,
                request.amount.currency,
            ):
                raise GatewayIdempotencyConflict(
                    "This payment was already started with other details.",
                    detail=f"order {order.get('id')} (receipt {receipt}) is for {order.get('amount')} "
                    f"{order.get('currency')}, the charge for {request.amount}",
                    reference=str(order.get("id")),
                )
            return await self.retrieve(str(order["id"]))
        body = order_request(request)
        created = await self._json(lambda sdk: sdk.order.create(data=body))
        return mapped(lambda o: payment_result(o, []), created, None)

    async def retrieve(self, reference: str) -> PaymentResult:
        """Read the order and its payments; a payment id (`pay_...`, from an event) is resolved to its order."""
        if reference.startswith(PAYMENT_PREFIX):
            payment = await self._payment(reference)
            reference = mapped(lambda p: str(p["order_id"]), payment, reference)
        order, payments = await self._order_and_payments(reference)
        return mapped(lambda o: payment_result(o, payments), order, reference)

    async def complete(self, reference: str, *, capture: bool, idempotency_key: str) -> PaymentResult:
        raise NotSupported(
            "Razorpay payments are completed with what Checkout hands back.",
            detail="razorpay has no server-side approval step: completePayment takes the signed Checkout values "
            "(accept_shopper_return)",
            reference=reference,
        )

    async def accept_shopper_return(
        self, reference: str, returned: Mapping[str, str], *, capture: bool, idempotency_key: str
    ) -> PaymentResult:
        """Verify what Checkout handed the SPA, then answer the order as read from Razorpay (capturing an
        authorized payment when `capture`, in case Razorpay has not captured it yet)."""
        order_id, payment_id = returned.get(RETURNED_ORDER, ""), returned.get(RETURNED_PAYMENT, "")
        signature = returned.get(RETURNED_SIGNATURE)
        if order_id != reference or not payment_id.startswith(PAYMENT_PREFIX):
            raise ShopperReturnRejected(
                "The returned values name another payment.",
                detail=f"returned order {order_id!r}, payment {payment_id!r}; expected order {reference}",
                reference=reference,
            )
        if signature is None:
            await self._declined_attempt(reference, payment_id)
        if signature is None or not payment_signature_valid(self._key_secret, order_id, payment_id, signature):
            raise ShopperReturnRejected(
                "The payment confirmation could not be verified.",
                detail=f"razorpay_signature does not verify for order {order_id}, payment {payment_id}",
                reference=reference,
            )
        payment = await self._payment(payment_id, reference)
        if payment.get("order_id") != reference:
            raise ShopperReturnRejected(
                "The returned values name another payment.",
                detail=f"payment {payment_id} belongs to order {payment.get('order_id')}, not {reference}",
                reference=reference,
            )
        if capture and payment.get("status") == "authorized":
            await self._capture_payment(payment, reference)
        return await self.retrieve(reference)

    async def _declined_attempt(self, reference: str, payment_id: str) -> None:
        """Unsigned ids (Checkout's `payment.failed`): raise `PaymentDeclined` when Razorpay says this order's
        payment failed; return (and so the caller rejects the values) otherwise."""
        try:
            payment = await self._payment(payment_id, reference)
        except InvalidGatewayRequest:
            return
        if payment.get("order_id") == reference and payment.get("status") == "failed":
            raise PaymentDeclined(
                "The payment was declined.",
                decline_code=decline_code(payment.get("error_reason")),
                detail=f"razorpay payment {payment_id} failed: {payment.get('error_reason')} "
                f"({payment.get('error_source')}/{payment.get('error_step')}): {payment.get('error_description')}",
                reference=reference,
            )

    async def capture(self, request: CaptureRequest) -> PaymentResult:
        """Capture the order's authorized payment, whole: Razorpay captures nothing less."""
        _, payments = await self._order_and_payments(request.reference)
        deciding = deciding_payment(payments)
        if deciding is None or deciding.get("status") not in ("authorized", "captured", "refunded"):
            raise InvalidGatewayRequest(
                "There is no authorized payment to capture.",
                detail=f"order {request.reference}: no authorized payment",
                reference=request.reference,
            )
        if (
            request.amount.amount != deciding.get("amount")
            or request.amount.currency != str(deciding.get("currency", "")).upper()
        ):
            raise NotSupported(
                "Razorpay captures only the whole authorized amount.",
                detail=f"capture of {request.amount} asked; payment {deciding.get('id')} authorized "
                f"{deciding.get('amount')} {deciding.get('currency')}: Razorpay's capture amount must equal it",
                reference=request.reference,
            )
        if deciding.get("status") == "authorized":
            await self._capture_payment(dict(deciding), request.reference)
        # Already captured: a retry after a lost answer, or Razorpay captured it by itself.
        return await self.retrieve(request.reference)

    async def void(self, request: VoidRequest) -> PaymentResult:
        current = await self.retrieve(request.reference)
        if current.amount_captured:
            raise InvalidGatewayRequest(
                "This Razorpay payment is captured: refund it instead.",
                detail=f"order {request.reference} has a captured payment",
                reference=request.reference,
            )
        raise NotSupported(
            "Razorpay payments cannot be canceled before capture.",
            detail=f"order {request.reference} is {current.gateway_status}: Razorpay has no call to void an "
            "authorization; a payment left authorized is refunded to the shopper automatically after the capture "
            "window, and an order nobody pays simply stays unpaid",
            reference=request.reference,
        )

    async def refund(self, request: RefundRequest) -> RefundResult:
        """Refund (part of) the order's captured payment at normal speed; a retry finds the refund by its key."""
        order, payments = await self._order_and_payments(request.reference)
        payment = deciding_payment(payments)
        if payment is None or payment.get("status") not in ("captured", "refunded"):
            raise InvalidGatewayRequest(
                "This Razorpay payment is not captured: there is nothing to refund.",
                detail=f"order {request.reference}: no captured payment",
                reference=request.reference,
            )
        payment_id = str(payment["id"])
        key = request.idempotency_key[:256]
        refunds = await self._items(lambda sdk, q: sdk.payment.fetch_multiple_refund(payment_id, q), {})
        earlier = newest([r for r in refunds if notes_of(r).get(IDEMPOTENCY_NOTE) == key])
        if earlier is None:
            notes = {IDEMPOTENCY_NOTE: key}
            payql_payment_id = notes_of(order).get(PAYQL_PAYMENT_ID)
            if payql_payment_id:
                notes[PAYQL_PAYMENT_ID] = payql_payment_id
            if request.reason:
                notes["reason"] = request.reason[:256]
            body = {"amount": request.amount.amount, "speed": "normal", "notes": notes}
            earlier = await self._json(lambda sdk: sdk.payment.refund(payment_id, body), request.reference)
        found = earlier
        return mapped(lambda r: refund_result(r, order_id=request.reference), found, request.reference)

    async def find_payment(self, payql_payment_id: str) -> PaymentResult | None:
        """The newest order whose receipt is our payment id and whose notes say so."""
        orders = await self._items(lambda sdk, q: sdk.order.all(q), {"receipt": payql_payment_id})
        ours = newest([o for o in orders if notes_of(o).get(PAYQL_PAYMENT_ID) == payql_payment_id])
        return None if ours is None else await self.retrieve(str(ours["id"]))

    async def list_payments(self, created_gte: int) -> list[PaymentResult]:
        """Razorpay's orders created since `created_gte` (`order.all` with from/to), each with its payments
        expanded: every PayQL payment has an order from its checkout on, paid or not, so an order nobody paid yet
        is listed too (listing payments instead would show it missing), and no order is read twice."""
        query = {"from": created_gte, "to": int(time.time()), "expand[]": "payments"}
        orders = await self._items(lambda sdk, q: sdk.order.all(q), query)
        return [mapped(_with_expanded_payments, order, str(order.get("id"))) for order in orders]

    # --- disputes --------------------------------------------------------------------------------------------
    async def retrieve_dispute(self, reference: str) -> DisputeResult:
        """The dispute, with the disputed payment resolved to its order (our reference) and our payment id."""
        dispute = await self._json(lambda sdk: sdk.dispute.fetch(reference), reference)
        payment = await self._payment(mapped(lambda d: str(d["payment_id"]), dispute, reference), reference)
        order_id = str(payment["order_id"]) if payment.get("order_id") else None
        payql_payment_id = None
        if order_id is not None:
            order = await self._json(lambda sdk: sdk.order.fetch(order_id), reference)
            payql_payment_id = notes_of(order).get(PAYQL_PAYMENT_ID)
        return mapped(
            lambda d: dispute_result(d, order_id=order_id, payql_payment_id=payql_payment_id), dispute, reference
        )

    async def submit_dispute_evidence(self, reference: str, evidence: DisputeEvidence) -> DisputeResult:
        """Contest with the evidence as its summary and submit it (Razorpay: under_review). Razorpay's proofs are
        uploaded documents (`/v1/documents`); PayQL's evidence is text, so none is attached."""
        dispute = await self._json(lambda sdk: sdk.dispute.fetch(reference), reference)
        body = contest_request(evidence, mapped(lambda d: int(d["amount"]), dispute, reference))
        if not body["summary"]:
            raise InvalidGatewayRequest("No evidence to submit.", reference=reference)
        await self._json(lambda sdk: sdk.dispute.contest(reference, body), reference)
        return await self.retrieve_dispute(reference)

    # --- webhooks --------------------------------------------------------------------------------------------
    async def verify_webhook(self, delivery: WebhookDelivery) -> VerifiedEvent:
        return await self._verifier.verify_webhook(delivery)

    def interpret_event(self, event: VerifiedEvent) -> list[EventEffect]:
        return event_effects(event)

    async def aclose(self) -> None:
        self._client.close()

    # --- plumbing --------------------------------------------------------------------------------------------
    async def _payment(self, payment_id: str, reference: str | None = None) -> dict[str, Any]:
        return await self._json(lambda sdk: sdk.payment.fetch(payment_id), reference or payment_id)

    async def _order_and_payments(self, order_id: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        order = await self._json(lambda sdk: sdk.order.fetch(order_id), order_id)
        payments = await self._json(lambda sdk: sdk.order.payments(order_id), order_id)
        return order, mapped(lambda c: list(c["items"]), payments, order_id)

    async def _capture_payment(self, payment: Mapping[str, Any], reference: str) -> None:
        payment_id, amount, currency = str(payment["id"]), int(payment["amount"]), str(payment["currency"])
        try:
            # A fresh `data` dict each call: the SDK's default one is shared and it writes the amount into it.
            await self._json(lambda sdk: sdk.payment.capture(payment_id, amount, {"currency": currency}), reference)
        except InvalidGatewayRequest:
            # Captured meanwhile (Razorpay's automatic capture, or a concurrent call): the read-back decides.
            if (await self._payment(payment_id, reference)).get("status") not in ("captured", "refunded"):
                raise


def _with_expanded_payments(order: Mapping[str, Any]) -> PaymentResult:
    return payment_result(order, list(order["payments"]["items"]))
