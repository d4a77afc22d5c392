"""`PayPalGateway`: PayQL's `PaymentGateway` over PayPal's Orders v2 and Payments v2 APIs (server SDK 2.x).

PayPal needs the buyer's approval on PayPal's own pages, so `charge` creates an order and answers
REQUIRES_ACTION with a REDIRECT to its `approve` link. Once approved (the buyer came back, or a
CHECKOUT.ORDER.APPROVED event arrived) the order is still REQUIRES_ACTION until `complete` captures it (automatic
capture) or authorizes it (manual capture; then `capture`/`void` act on the authorization). The payment
reference is the order id throughout; refund and dispute events can only name a capture (`paypal_capture:<id>`),
which `retrieve` and `retrieve_dispute` resolve to its order. A subscription cycle's payment is a v1 sale
(`paypal_sale:<id>`), which `retrieve` and `refund` read and refund through `sales.py`. Every mutating call
carries a PayPal-Request-Id derived from the caller's idempotency key, so a retry after a timeout or a 5xx cannot
move money twice.

Also a `BillingGateway` (subscriptions, in `billing.py`) and the dispute verbs (Disputes v1).

Copies the sandbox adapter's shape: HTTP plumbing in `client.py` (and `rest.py` for endpoints the SDK lacks), wire
mapping in `transformers.py`, `billing_transformers.py` and `dispute_transformers.py`, errors in `errors.py`,
webhook verification in `webhooks.py`. Never touches PayQL's database or settings.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Mapping, Sequence
from typing import Any

from gateways.errors import InvalidGatewayRequest, NotSupported
from gateways.paypal.billing import PayPalBilling
from gateways.paypal.billing_transformers import SALE_PREFIX, billing_effects, is_billing_event
from gateways.paypal.calls import mapped
from gateways.paypal.client import SANDBOX_BASE_URL, PayPalClient
from gateways.paypal.dispute_transformers import DISPUTE_EVENTS, dispute_effects, dispute_result, evidence_request
from gateways.paypal.sales import PayPalSales, is_sale
from gateways.paypal.transformers import (
    CAPTURE_PREFIX,
    amount_wire,
    capture_id_of_refund,
    event_effects,
    link,
    money,
    order_request,
    payment_result,
    payments_of,
    refund_result,
    related_order,
    request_id,
)
from gateways.paypal.webhooks import DEFAULT_CERT_HOSTS, PayPalDeliveryVerifier, WebhookVerifier
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

# `ChargeRequest.payment_method` may name an order the buyer already approved (e.g. through PayPal's JS buttons).
APPROVED_ORDER_PREFIX = "paypal_order:"
_PREFER = "return=representation"


class PayPalGateway(PayPalBilling, PayPalSales):
    name: str = "paypal"

    def __init__(
        self,
        client_id: str,
        client_secret: str,
        *,
        webhook_id: str | Sequence[str],
        base_url: str | None = None,
        cert_host_allowlist: Sequence[str] = DEFAULT_CERT_HOSTS,
        allow_http_cert_url: bool = False,
        webhook_tolerance: int = 300,
        webhook_trusted_roots: bytes | None = None,
        timeout: float = 30,
        max_concurrency: int = 8,
        token_clock_skew: int = 60,
    ) -> None:
        webhook_ids = (webhook_id,) if isinstance(webhook_id, str) else tuple(webhook_id)
        self._plan_ids: dict[tuple[str, int], str] = {}
        self._plans: dict[str, dict[str, Any]] = {}
        self._client = PayPalClient(
            client_id,
            client_secret,
            base_url=base_url or SANDBOX_BASE_URL,
            timeout=timeout,
            max_concurrency=max_concurrency,
            token_clock_skew=token_clock_skew,
        )
        self._verifier = PayPalDeliveryVerifier(
            WebhookVerifier(
                [wid for wid in webhook_ids if wid],
                cert_host_allowlist=cert_host_allowlist,
                allow_http_cert_url=allow_http_cert_url,
                tolerance=webhook_tolerance,
                trusted_roots=webhook_trusted_roots,
            )
        )

    # --- payments --------------------------------------------------------------------------------------------
    async def charge(self, request: ChargeRequest) -> PaymentResult:
        """Create an order (REQUIRES_ACTION + REDIRECT to approve), or read back an order named by payment_method."""
        if request.payment_method.startswith(APPROVED_ORDER_PREFIX):
            existing = await self.retrieve(request.payment_method.removeprefix(APPROVED_ORDER_PREFIX))
            if existing.amount != request.amount:
                raise InvalidGatewayRequest(
                    "The PayPal order is for another amount.",
                    detail=f"order {existing.reference} is for {existing.amount}, the charge for {request.amount}",
                    reference=existing.reference,
                )
            return existing
        rid = request_id("create", request.idempotency_key)
        body = order_request(request)
        order = await self._json(
            lambda sdk: sdk.orders.create_order({"body": body, "paypal_request_id": rid, "prefer": _PREFER}),
            request_id=rid,
        )
        return mapped(payment_result, order, None)

    async def retrieve(self, reference: str) -> PaymentResult:
        """Read the order; a `paypal_capture:` reference (from a refund or dispute event) is resolved to its order."""
        if is_sale(reference):
            return await self._retrieve_sale(reference)
        if reference.startswith(CAPTURE_PREFIX):
            reference = await self._order_of_capture(reference.removeprefix(CAPTURE_PREFIX))
        return mapped(payment_result, await self._order(reference), reference)

    async def complete(self, reference: str, *, capture: bool, idempotency_key: str | None = None) -> PaymentResult:
        """Capture (`capture=True`) or authorize an APPROVED order; the same key (default: the order) is idempotent."""
        operation = "capture-order" if capture else "authorize-order"
        rid = request_id(operation, idempotency_key or reference)
        options = {"id": reference, "paypal_request_id": rid, "prefer": _PREFER}
        if capture:
            order = await self._json(lambda sdk: sdk.orders.capture_order(options), reference, rid)
        else:
            order = await self._json(lambda sdk: sdk.orders.authorize_order(options), reference, rid)
        return mapped(payment_result, order, reference)

    async def capture(self, request: CaptureRequest) -> PaymentResult:
        """Capture (part of) the order's authorization; `final=False` leaves the rest capturable."""
        order = await self._order(request.reference)
        authorization_id = mapped(lambda o: _live_authorization(o, request.reference), order, request.reference)
        rid = request_id("capture", request.idempotency_key)
        options = {
            "authorization_id": authorization_id,
            "paypal_request_id": rid,
            "prefer": _PREFER,
            "body": {"amount": amount_wire(request.amount), "final_capture": request.final},
        }
        await self._json(lambda sdk: sdk.payments.capture_authorized_payment(options), request.reference, rid)
        return await self.retrieve(request.reference)

    async def void(self, request: VoidRequest) -> PaymentResult:
        order = await self._order(request.reference)
        if payments_of(order)["captures"]:
            raise InvalidGatewayRequest(
                "This PayPal payment is captured: refund it instead.",
                detail=f"order {request.reference} has captures; PayPal voids only uncaptured authorizations",
                reference=request.reference,
            )
        if not payments_of(order)["authorizations"]:
            raise NotSupported(
                "This PayPal payment cannot be canceled.",
                detail=f"order {request.reference} is {order.get('status')}: PayPal has no call to void an order; "
                "an unapproved order expires by itself",
                reference=request.reference,
            )
        authorization_id = mapped(lambda o: _live_authorization(o, request.reference), order, request.reference)
        rid = request_id("void", request.idempotency_key)
        options = {"authorization_id": authorization_id, "paypal_request_id": rid, "prefer": _PREFER}
        await self._call(lambda sdk: sdk.payments.void_payment(options), request.reference, rid)
        return await self.retrieve(request.reference)

    async def refund(self, request: RefundRequest) -> RefundResult:
        """Refund `amount` from one capture of the order (the first whose refundable rest covers it), or from a sale."""
        if is_sale(request.reference):
            return await self._refund_sale(request)
        order = await self._order(request.reference)
        capture_id = mapped(lambda o: _refundable_capture(o, request), order, request.reference)
        rid = request_id("refund", request.idempotency_key)
        body: dict[str, Any] = {"amount": amount_wire(request.amount)}
        payql_payment_id = mapped(payment_result, order, request.reference).payql_payment_id
        if payql_payment_id:
            # PayPal's refund objects (and so PAYMENT.CAPTURE.REFUNDED) name no order: they carry this back.
            body["custom_id"] = payql_payment_id
        if request.reason:
            body["note_to_payer"] = request.reason[:255]
        options = {"capture_id": capture_id, "paypal_request_id": rid, "prefer": _PREFER, "body": body}
        refund = await self._json(lambda sdk: sdk.payments.refund_captured_payment(options), request.reference, rid)
        return mapped(functools.partial(refund_result, order_id=request.reference), refund, request.reference)

    async def find_payment(self, payql_payment_id: str) -> PaymentResult | None:
        """Always None: PayPal cannot look an order up by its `custom_id`.

        A lost `charge` answer is recovered by repeating it with the same idempotency key: PayPal-Request-Id makes
        PayPal answer the same order. Transaction Search (`/v1/reporting/transactions`) cannot stand in: it only
        lists completed money movements, up to three hours late, and never an order still awaiting approval, which
        is exactly what a lost answer leaves behind.
        """
        return None

    async def list_payments(self, created_gte: int) -> list[PaymentResult]:
        raise NotSupported(
            "Listing PayPal payments is not supported.",
            detail="Orders v2 has no list call, and Transaction Search lists only completed transactions up to 3 "
            "hours late (every recent or unapproved order would look missing); reconciliation reads each known "
            "order with retrieve()",
        )

    # --- disputes --------------------------------------------------------------------------------------------
    async def retrieve_dispute(self, reference: str) -> DisputeResult:
        """The dispute, with the disputed transaction resolved to our payment reference: a capture to its order,
        a subscription's sale to `SALE_PREFIX` + the sale (whose `custom` names our subscription, not a payment)."""
        dispute = await self._rest("GET", f"/v1/customer/disputes/{reference}", reference=reference)
        transaction = mapped(dispute_result, dispute, reference).payment_reference.removeprefix(CAPTURE_PREFIX)
        try:
            order_id = await self._order_of_capture(transaction) if transaction else None
        except InvalidGatewayRequest:
            if not await self._is_sale(transaction):
                raise
            sale = f"{SALE_PREFIX}{transaction}"
            result = mapped(lambda d: dispute_result(d, payment_reference=sale), dispute, reference)
            return dataclasses.replace(result, payql_payment_id=None)
        return mapped(lambda d: dispute_result(d, payment_reference=order_id), dispute, reference)

    async def submit_dispute_evidence(self, reference: str, evidence: DisputeEvidence) -> DisputeResult:
        """Provide the evidence (multipart, as PayPal takes it); the dispute goes UNDER_REVIEW."""
        body = evidence_request(evidence)
        if not body["evidences"]:
            raise InvalidGatewayRequest("No evidence to submit.", reference=reference)
        await self._rest(
            "POST", f"/v1/customer/disputes/{reference}/provide-evidence", reference=reference, multipart_json=body
        )
        return await self.retrieve_dispute(reference)

    # --- webhooks --------------------------------------------------------------------------------------------
    async def verify_webhook(self, delivery: WebhookDelivery) -> VerifiedEvent:
        return await self._verifier.verify_webhook(delivery)

    def interpret_event(self, event: VerifiedEvent) -> list[EventEffect]:
        if is_billing_event(event.event_type):
            return billing_effects(event)
        if event.event_type in DISPUTE_EVENTS:
            return dispute_effects(event)
        return event_effects(event)

    async def aclose(self) -> None:
        await self._verifier.aclose()
        self._client.close()

    # --- plumbing --------------------------------------------------------------------------------------------
    async def _order(self, reference: str) -> dict[str, Any]:
        return await self._json(lambda sdk: sdk.orders.get_order({"id": reference}), reference)

    async def _order_of_capture(self, capture_id: str) -> str:
        """The order a capture belongs to: its `related_ids.order_id`, else up its links (capture → authorization
        → order)."""
        capture = await self._json(
            lambda sdk: sdk.payments.get_captured_payment({"capture_id": capture_id}), capture_id
        )
        order_id = related_order(capture)
        if order_id is None:
            up = link(capture, "up") or ""
            if "/authorizations/" in up:
                authorization_id = up.rstrip("/").rsplit("/", 1)[-1]
                authorization = await self._json(
                    lambda sdk: sdk.payments.get_authorized_payment({"authorization_id": authorization_id}),
                    capture_id,
                )
                order_id = related_order(authorization) or _last_segment(link(authorization, "up"), "/orders/")
            else:
                order_id = _last_segment(up, "/orders/")
        if order_id is None:
            raise InvalidGatewayRequest(
                "The payment provider names no order for this capture.", detail=capture_id, reference=capture_id
            )
        return order_id


def _last_segment(href: str | None, marker: str) -> str | None:
    if not href or marker not in href:
        return None
    return href.rstrip("/").rsplit("/", 1)[-1]


def _live_authorization(order: Mapping[str, Any], reference: str) -> str:
    authorizations = payments_of(order)["authorizations"]
    if not authorizations:
        raise InvalidGatewayRequest(
            "This payment has no authorization to act on.",
            detail=f"order {reference} is {order.get('status')} with intent {order.get('intent')}",
            reference=reference,
        )
    return str(authorizations[-1]["id"])


def _refundable_capture(order: Mapping[str, Any], request: RefundRequest) -> str:
    payments = payments_of(order)
    captures = [c for c in payments["captures"] if c.get("status") in ("COMPLETED", "PARTIALLY_REFUNDED")]
    if not captures:
        raise InvalidGatewayRequest(
            "This payment has nothing captured to refund.",
            detail=f"order {request.reference} has no refundable capture",
            reference=request.reference,
        )
    refunded: dict[str, int] = {}
    for refund in payments["refunds"]:
        if refund.get("status") in ("COMPLETED", "PENDING"):
            capture_id = capture_id_of_refund(refund) or ""
            refunded[capture_id] = refunded.get(capture_id, 0) + money(refund["amount"]).amount
    rests = [(money(c["amount"]).amount - refunded.get(str(c["id"]), 0), str(c["id"])) for c in captures]
    for rest, capture_id in rests:
        if rest >= request.amount.amount:
            return capture_id
    if sum(rest for rest, _ in rests) >= request.amount.amount:
        raise NotSupported(
            "A refund spread over several PayPal captures is not supported.",
            detail=f"order {request.reference}: no single capture covers {request.amount}",
            reference=request.reference,
        )
    # More than is left anywhere: let PayPal refuse it (422 REFUND_AMOUNT_EXCEEDED), as the source of truth.
    return max(rests)[1]
