"""`PayPalGateway`: PayQL's `PaymentGateway` over PayPal's Orders v2 and Payments v2 APIs (server SDK 2.x).

PayPal needs the buyer's approval on PayPal's own pages, so `charge` creates an order and answers
REQUIRES_ACTION with a REDIRECT to its `approve` link. Once approved (the buyer came back, or a
CHECKOUT.ORDER.APPROVED event arrived) the order is still REQUIRES_ACTION until `complete` captures it (automatic
capture) or authorizes it (manual capture; then `capture`/`void` act on the authorization). The payment
reference is the order id throughout. Every mutating call carries a PayPal-Request-Id derived from the caller's
idempotency key, so a retry after a timeout or a 5xx cannot move money twice.

Copies the sandbox adapter's shape: HTTP plumbing in `client.py`, wire mapping in `transformers.py`, errors in
`errors.py`, webhook verification in `webhooks.py`. Never touches PayQL's database or settings.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

from gateways.errors import GatewayError, GatewayUnavailable, InvalidGatewayRequest, NotSupported
from gateways.paypal.client import SANDBOX_BASE_URL, PayPalClient
from gateways.paypal.errors import translate
from gateways.paypal.transformers import (
    amount_wire,
    capture_id_of_refund,
    event_effects,
    money,
    order_request,
    payment_result,
    payments_of,
    refund_result,
    request_id,
    verified_event,
)
from gateways.paypal.webhooks import DEFAULT_CERT_HOSTS, WebhookVerifier
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

_T = TypeVar("_T")

# `ChargeRequest.payment_method` may name an order the buyer already approved (e.g. through PayPal's JS buttons).
APPROVED_ORDER_PREFIX = "paypal_order:"
_PREFER = "return=representation"


class PayPalGateway:
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
        timeout: float = 30,
        max_concurrency: int = 8,
        token_clock_skew: int = 60,
    ) -> None:
        webhook_ids = (webhook_id,) if isinstance(webhook_id, str) else tuple(webhook_id)
        self._client = PayPalClient(
            client_id,
            client_secret,
            base_url=base_url or SANDBOX_BASE_URL,
            timeout=timeout,
            max_concurrency=max_concurrency,
            token_clock_skew=token_clock_skew,
        )
        self._verifier = WebhookVerifier(
            [wid for wid in webhook_ids if wid],
            cert_host_allowlist=cert_host_allowlist,
            allow_http_cert_url=allow_http_cert_url,
            tolerance=webhook_tolerance,
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
        return _mapped(payment_result, order, None)

    async def retrieve(self, reference: str) -> PaymentResult:
        return _mapped(payment_result, await self._order(reference), reference)

    async def complete(self, reference: str, *, capture: bool, idempotency_key: str | None = None) -> PaymentResult:
        """Capture (`capture=True`) or authorize an APPROVED order; the same key (default: the order) is idempotent."""
        operation = "capture-order" if capture else "authorize-order"
        rid = request_id(operation, idempotency_key or reference)
        options = {"id": reference, "paypal_request_id": rid, "prefer": _PREFER}
        if capture:
            order = await self._json(lambda sdk: sdk.orders.capture_order(options), reference, rid)
        else:
            order = await self._json(lambda sdk: sdk.orders.authorize_order(options), reference, rid)
        return _mapped(payment_result, order, reference)

    async def capture(self, request: CaptureRequest) -> PaymentResult:
        """Capture (part of) the order's authorization; `final=False` leaves the rest capturable."""
        order = await self._order(request.reference)
        authorization_id = _mapped(lambda o: _live_authorization(o, request.reference), order, request.reference)
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
        if not payments_of(order)["authorizations"]:
            raise NotSupported(
                "This PayPal payment cannot be canceled.",
                detail=f"order {request.reference} is {order.get('status')}: PayPal has no call to void an order; "
                "an unapproved order expires by itself",
                reference=request.reference,
            )
        authorization_id = _mapped(lambda o: _live_authorization(o, request.reference), order, request.reference)
        rid = request_id("void", request.idempotency_key)
        options = {"authorization_id": authorization_id, "paypal_request_id": rid, "prefer": _PREFER}
        await self._call(lambda sdk: sdk.payments.void_payment(options), request.reference, rid)
        return await self.retrieve(request.reference)

    async def refund(self, request: RefundRequest) -> RefundResult:
        """Refund `amount` from one capture of the order: the first whose refundable rest covers it."""
        order = await self._order(request.reference)
        capture_id = _mapped(lambda o: _refundable_capture(o, request), order, request.reference)
        rid = request_id("refund", request.idempotency_key)
        body: dict[str, Any] = {"amount": amount_wire(request.amount)}
        if request.reason:
            body["note_to_payer"] = request.reason[:255]
        options = {"capture_id": capture_id, "paypal_request_id": rid, "prefer": _PREFER, "body": body}
        refund = await self._json(lambda sdk: sdk.payments.refund_captured_payment(options), request.reference, rid)
        return _mapped(functools.partial(refund_result, order_id=request.reference), refund, request.reference)

    async def find_payment(self, payql_payment_id: str) -> PaymentResult | None:
        """Always None: PayPal cannot list or search orders by `custom_id`.

        Transaction Search lags by hours and only sees completed transactions. A lost `charge` answer is recovered
        by repeating it with the same idempotency key: PayPal-Request-Id makes PayPal answer the same order.
        """
        return None

    async def list_payments(self, created_gte: int) -> list[PaymentResult]:
        raise NotSupported(
            "Listing PayPal payments is not supported.",
            detail="Orders v2 has no list call; reconciliation reads each known order with retrieve()",
        )

    # --- webhooks --------------------------------------------------------------------------------------------
    async def retrieve_dispute(self, reference: str) -> DisputeResult:
        raise NotSupported("Disputes are not supported by this gateway yet.", reference=reference)

    async def submit_dispute_evidence(self, reference: str, evidence: DisputeEvidence) -> DisputeResult:
        raise NotSupported("Disputes are not supported by this gateway yet.", reference=reference)

    async def verify_webhook(self, delivery: WebhookDelivery) -> VerifiedEvent:
        headers = {name.lower(): value for name, value in delivery.headers.items()}
        await self._verifier.verify(headers, delivery.body, received_at=delivery.received_at)
        return verified_event(delivery.body)

    def interpret_event(self, event: VerifiedEvent) -> list[EventEffect]:
        return event_effects(event)

    async def aclose(self) -> None:
        await self._verifier.aclose()
        self._client.close()

    # --- plumbing --------------------------------------------------------------------------------------------
    async def _order(self, reference: str) -> dict[str, Any]:
        return await self._json(lambda sdk: sdk.orders.get_order({"id": reference}), reference)

    async def _call(self, fn: Callable[[Any], _T], reference: str | None = None, request_id: str | None = None) -> _T:
        try:
            return await self._client.call(fn)
        except GatewayError:
            raise
        except Exception as exc:  # the SDK and requests raise many types; all are translated
            raise translate(exc, reference=reference, request_id=request_id) from exc

    async def _json(
        self, fn: Callable[[Any], Any], reference: str | None = None, request_id: str | None = None
    ) -> dict[str, Any]:
        response = await self._call(fn, reference, request_id)
        try:
            value = json.loads(response.text)
        except (TypeError, ValueError):
            value = None
        if not isinstance(value, dict):
            raise GatewayUnavailable(
                "The payment provider sent an unreadable answer.",
                detail=f"paypal {response.status_code}: not a JSON object; read it back",
                reference=reference,
            )
        return value


def _mapped(transform: Callable[[dict[str, Any]], _T], wire: dict[str, Any], reference: str | None) -> _T:
    """Map a PayPal object, turning a shape we cannot read into `GatewayUnavailable` (read it back later)."""
    try:
        return transform(wire)
    except (KeyError, ValueError, TypeError, IndexError) as exc:
        raise GatewayUnavailable(
            "The payment provider sent an unreadable answer.",
            detail=f"paypal answer not understood: {exc!r}; read it back",
            reference=reference,
        ) from exc


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
