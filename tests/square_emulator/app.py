"""`SquareEmulator`: the Starlette app, its switches, and `running_emulator` to serve it with uvicorn in tests."""

from __future__ import annotations

import asyncio
import hashlib
import json
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.asgi_server import serving
from tests.square_emulator.billing import Billing, Invoice, Subscription
from tests.square_emulator.errors import SquareError, invalid, server_error, unauthorized
from tests.square_emulator.ledger import Declined, Dispute, Ledger, Merchant, Payment, Refund, rfc3339, square_id
from tests.square_emulator.render import (
    render_card,
    render_catalog_object,
    render_customer,
    render_dispute,
    render_evidence,
    render_invoice,
    render_payment,
    render_refund,
    render_subscription,
)
from tests.square_emulator.webhooks import Delivery, event_body, signed

Handler = Callable[[Request, Merchant], Awaitable[tuple[int, Any]]]
PAGE_SIZE = 100


@dataclass
class Fault:
    """One injected failure for the next API call whose path contains `path` (any path when empty): `status`
    (429/5xx) is answered instead; with `after_effect` the call is carried out first and only its answer is lost."""

    status: int
    after_effect: bool = False
    path: str = ""


@dataclass
class Calls:
    """What the emulator saw: (method, path, idempotency key or None, Square-Version header)."""

    requests: list[tuple[str, str, str | None, str | None]] = field(default_factory=list)


class SquareEmulator:
    def __init__(self) -> None:
        self.merchants = {
            "US": Merchant(f"ML{square_id(11)}", f"EAAAl{secrets.token_urlsafe(40)}", "US", "USD", f"L{square_id(12)}"),
            "JP": Merchant(f"ML{square_id(11)}", f"EAAAl{secrets.token_urlsafe(40)}", "JP", "JPY", f"L{square_id(12)}"),
        }
        self.base_url = ""
        self.ledger = Ledger(self._event)
        self.billing = Billing(self.ledger, self._event)
        self.signature_key = secrets.token_urlsafe(16)
        # Where deliveries are POSTed, and the notification URL the subscription was registered with (signed).
        self.webhook_url: str | None = None
        self.notification_url: str | None = None
        self.events: list[dict[str, Any]] = []
        self.deliveries: list[Delivery] = []
        self.calls = Calls()
        self.page_size = PAGE_SIZE  # ListPayments' largest page
        self._faults: list[Fault] = []
        self._idempotent: dict[tuple[str, str, str], tuple[str, int, Any]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self.app = Starlette(routes=self._routes())

    # --- switches ------------------------------------------------------------------------------------------
    def merchant(self, currency: str = "USD") -> Merchant:
        return next(m for m in self.merchants.values() if m.currency == currency)

    def fail_next(self, status: int = 500, *, after_effect: bool = False, path: str = "", times: int = 1) -> None:
        self._faults.extend(Fault(status, after_effect, path) for _ in range(times))

    def clear_faults(self) -> None:
        self._faults.clear()

    def decline_next(self, code: str = "GENERIC_DECLINE") -> None:
        """The next CreatePayment with an approving token is declined with this PAYMENT_METHOD_ERROR code."""
        self.ledger.declines.append(code)

    def sca_nonce(self) -> str:
        """A fresh card token whose issuer requires buyer verification (SCA): CreatePayment and CreateCard decline
        it with CARD_DECLINED_VERIFICATION_REQUIRED unless they carry the token `verify_buyer` gives for it."""
        nonce = f"cnon:card-nonce-sca-{square_id(12)}"
        self.ledger.sca_nonces.add(nonce)
        return nonce

    def verify_buyer(self, source_id: str) -> str:
        """What the Web Payments SDK's `payments.verifyBuyer(source_id, details)` yields once the buyer passed."""
        token = f"verf:{square_id(24)}"
        self.ledger.verifications[token] = source_id
        return token

    def rotate_signature_key(self) -> str:
        """UpdateWebhookSubscriptionSignatureKey: deliveries are signed with a new key from now on."""
        self.signature_key = secrets.token_urlsafe(16)
        return self.signature_key

    def sign(self, event: dict[str, Any], *, key: str | None = None, notification_url: str | None = None) -> Delivery:
        url = notification_url or self.notification_url or self.webhook_url or ""
        return signed(event, key=key or self.signature_key, notification_url=url)

    async def drain(self) -> None:
        """Wait for webhook deliveries in flight."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    # --- events --------------------------------------------------------------------------------------------
    def _event(self, event_type: str, obj: Any) -> None:
        if isinstance(obj, Payment):
            merchant_id, data_type, wrapped = obj.merchant.merchant_id, "payment", {"payment": self._payment(obj)}
            updated = obj.updated_at
        elif isinstance(obj, Refund):
            merchant_id, data_type, wrapped = obj.merchant_id, "refund", {"refund": render_refund(obj)}
            updated = obj.updated_at
        elif isinstance(obj, Subscription):
            merchant_id, data_type = obj.merchant.merchant_id, "subscription"
            wrapped, updated = {"subscription": render_subscription(obj)}, datetime.now(UTC)
        elif isinstance(obj, Invoice):
            merchant_id, data_type, wrapped = obj.merchant.merchant_id, "invoice", {"invoice": render_invoice(obj)}
            updated = obj.updated_at
        else:
            assert isinstance(obj, Dispute)
            merchant_id, data_type, wrapped = (
                obj.payment.merchant.merchant_id,
                "dispute",
                {"object": render_dispute(obj)},
            )
            updated = obj.updated_at
        event = event_body(event_type, merchant_id, rfc3339(updated), data_type, obj.id, wrapped)
        if isinstance(obj, Dispute):
            event["location_id"] = obj.payment.merchant.location_id
        elif isinstance(obj, Invoice):
            event["location_id"] = obj.merchant.location_id
        self.events.append(event)
        if self.webhook_url is not None:
            delivery = self.sign(event)
            task = asyncio.get_running_loop().create_task(self._deliver(self.webhook_url, delivery))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _deliver(self, url: str, delivery: Delivery) -> None:
        self.deliveries.append(delivery)
        async with httpx.AsyncClient(timeout=5) as client:
            await client.post(url, content=delivery.body, headers=delivery.headers)

    def _payment(self, payment: Payment) -> dict[str, Any]:
        return render_payment(payment, self.ledger)

    # --- plumbing ------------------------------------------------------------------------------------------
    def _authenticate(self, request: Request) -> Merchant:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        for merchant in self.merchants.values():
            if scheme.lower() == "bearer" and secrets.compare_digest(token, merchant.access_token):
                return merchant
        raise unauthorized()

    def _api(self, handler: Handler, *, idempotent: bool = False) -> Callable[[Request], Awaitable[Response]]:
        """An endpoint: bearer auth, injected faults, and for `idempotent` ones Square's idempotency: the same
        key with the same body replays the first answer; with another body it is IDEMPOTENCY_KEY_REUSED."""

        async def endpoint(request: Request) -> Response:
            raw = await request.body()
            body: Any = {}
            if raw:
                try:
                    body = json.loads(raw)
                except ValueError:
                    return _error(invalid("EXPECTED_JSON_BODY", "The request body is not valid JSON."))
            key = body.get("idempotency_key") if idempotent and isinstance(body, dict) else None
            version = request.headers.get("square-version")
            self.calls.requests.append(
                (request.method, request.url.path, key if isinstance(key, str) else None, version)
            )
            try:
                merchant = self._authenticate(request)
            except SquareError as exc:
                return _error(exc)
            fault = next((f for f in self._faults if f.path in request.url.path), None)
            if fault is not None:
                self._faults.remove(fault)
                if not fault.after_effect:
                    return _error(server_error(fault.status))
            status, answer = await self._answer(request, merchant, handler, body, key)
            if fault is not None:
                return _error(server_error(fault.status))
            return JSONResponse(answer, status)

        return endpoint

    async def _answer(
        self, request: Request, merchant: Merchant, handler: Handler, body: Any, key: object
    ) -> tuple[int, Any]:
        slot = (merchant.merchant_id, request.url.path, key) if isinstance(key, str) and key else None
        fingerprint = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()
        if slot is not None and slot in self._idempotent:
            seen, status, answer = self._idempotent[slot]
            if seen != fingerprint:
                exc = invalid(
                    "IDEMPOTENCY_KEY_REUSED",
                    "The idempotency key can only be retried with the same request data.",
                    field="idempotency_key",
                )
                return exc.status, exc.body
            return status, answer
        request.state.body = body
        try:
            status, answer = await handler(request, merchant)
        except SquareError as exc:
            status, answer = exc.status, exc.body
        if slot is not None and status < 500:
            self._idempotent[slot] = (fingerprint, status, answer)
        return status, answer

    # --- routes --------------------------------------------------------------------------------------------
    def _routes(self) -> list[Route]:
        api = self._api
        return [
            Route("/v2/payments", api(self._create_payment, idempotent=True), methods=["POST"]),
            Route("/v2/payments", api(self._list_payments), methods=["GET"]),
            Route("/v2/payments/{id}", api(self._get_payment), methods=["GET"]),
            Route("/v2/payments/{id}", api(self._update_payment, idempotent=True), methods=["PUT"]),
            Route("/v2/payments/{id}/complete", api(self._complete_payment), methods=["POST"]),
            Route("/v2/payments/{id}/cancel", api(self._cancel_payment), methods=["POST"]),
            Route("/v2/refunds", api(self._refund_payment, idempotent=True), methods=["POST"]),
            Route("/v2/refunds/{id}", api(self._get_refund), methods=["GET"]),
            Route("/v2/disputes/{id}", api(self._get_dispute), methods=["GET"]),
            Route("/v2/disputes/{id}/evidence-text", api(self._evidence_text, idempotent=True), methods=["POST"]),
            Route("/v2/disputes/{id}/submit-evidence", api(self._submit_evidence), methods=["POST"]),
            Route("/v2/customers", api(self._create_customer, idempotent=True), methods=["POST"]),
            Route("/v2/cards", api(self._create_card, idempotent=True), methods=["POST"]),
            Route("/v2/catalog/object", api(self._upsert_catalog_object, idempotent=True), methods=["POST"]),
            Route("/v2/catalog/object/{id}", api(self._get_catalog_object), methods=["GET"]),
            Route("/v2/catalog/search", api(self._search_catalog), methods=["POST"]),
            Route("/v2/subscriptions", api(self._create_subscription, idempotent=True), methods=["POST"]),
            Route("/v2/subscriptions/{id}", api(self._get_subscription), methods=["GET"]),
            Route("/v2/subscriptions/{id}", api(self._update_subscription), methods=["PUT"]),
            Route("/v2/subscriptions/{id}/cancel", api(self._cancel_subscription), methods=["POST"]),
            Route("/v2/subscriptions/{id}/swap-plan", api(self._swap_plan), methods=["POST"]),
            Route("/v2/invoices/{id}", api(self._get_invoice), methods=["GET"]),
        ]

    async def _create_payment(self, request: Request, merchant: Merchant) -> tuple[int, Any]:
        body = _object(request)
        self.billing.check_order(merchant, body)
        try:
            payment = self.ledger.create_payment(merchant, body)
        except Declined as declined:
            error = declined.error
            raise SquareError(
                402, error["category"], error["code"], error["detail"], payment=self._payment(declined.payment)
            ) from None
        self.billing.payment_made(payment)
        return 200, {"payment": self._payment(payment)}

    async def _get_payment(self, request: Request, merchant: Merchant) -> tuple[int, Any]:
        return 200, {"payment": self._payment(self.ledger.payment(merchant, request.path_params["id"]))}

    async def _update_payment(self, request: Request, merchant: Merchant) -> tuple[int, Any]:
        payment = self.ledger.update_payment(merchant, request.path_params["id"], _object(request))
        return 200, {"payment": self._payment(payment)}

    async def _complete_payment(self, request: Request, merchant: Merchant) -> tuple[int, Any]:
        payment = self.ledger.complete_payment(merchant, request.path_params["id"], _object(request))
        return 200, {"payment": self._payment(payment)}

    async def _cancel_payment(self, request: Request, merchant: Merchant) -> tuple[int, Any]:
        return 200, {"payment": self._payment(self.ledger.cancel_payment(merchant, request.path_params["id"]))}

    async def _list_payments(self, request: Request, merchant: Merchant) -> tuple[int, Any]:
        query = request.query_params
        location = query.get("location_id")
        if location is not None and location != merchant.location_id:
            return 200, {}
        begin, end = _time(query.get("begin_time"), "begin_time"), _time(query.get("end_time"), "end_time")
        found = self.ledger.list_payments(merchant, begin, end)
        if query.get("sort_order") == "ASC":
            found.reverse()
        limit = min(int(query.get("limit") or self.page_size), self.page_size)
        start = int(query.get("cursor") or 0)
        page = found[start : start + limit]
        answer: dict[str, Any] = {"payments": [self._payment(p) for p in page]} if page else {}
        if start + limit < len(found):
            answer["cursor"] = str(start + limit)
        return 200, answer

    async def _refund_payment(self, request: Request, merchant: Merchant) -> tuple[int, Any]:
        refund = self.ledger.refund_payment(merchant, _object(request))
        answer = {"refund": render_refund(refund)}  # PENDING, as Square answers a card refund
        if not self.ledger.hold_refunds:
            self.ledger.settle_refund(refund.id)  # the network confirms it right after
        return 200, answer

    async def _get_refund(self, request: Request, merchant: Merchant) -> tuple[int, Any]:
        return 200, {"refund": render_refund(self.ledger.refund(merchant, request.path_params["id"]))}

    async def _get_dispute(self, request: Request, merchant: Merchant) -> tuple[int, Any]:
        return 200, {"dispute": render_dispute(self.ledger.dispute(merchant, request.path_params["id"]))}

    async def _evidence_text(self, request: Request, merchant: Merchant) -> tuple[int, Any]:
        dispute_id = request.path_params["id"]
        evidence = self.ledger.add_evidence_text(merchant, dispute_id, _object(request))
        return 200, {"evidence": render_evidence(self.ledger.dispute(merchant, dispute_id), evidence)}

    async def _submit_evidence(self, request: Request, merchant: Merchant) -> tuple[int, Any]:
        return 200, {"dispute": render_dispute(self.ledger.submit_evidence(merchant, request.path_params["id"]))}

    # --- customers, cards, catalog, subscriptions, invoices --------------------------------------------------
    async def _create_customer(self, request: Request, merchant: Merchant) -> tuple[int, Any]:
        return 200, {"customer": render_customer(self.billing.create_customer(merchant, _object(request)))}

    async def _create_card(self, request: Request, merchant: Merchant) -> tuple[int, Any]:
        body = _object(request)
        _key(body, 45)
        return 200, {"card": render_card(self.billing.create_card(merchant, body))}

    async def _upsert_catalog_object(self, request: Request, merchant: Merchant) -> tuple[int, Any]:
        body = _object(request)
        _key(body, 128)
        obj, mappings = self.billing.upsert(merchant, body)
        return 200, {"catalog_object": render_catalog_object(obj), "id_mappings": mappings}

    async def _get_catalog_object(self, request: Request, merchant: Merchant) -> tuple[int, Any]:
        obj = self.billing.catalog_object(merchant, request.path_params["id"])
        return 200, {"object": render_catalog_object(obj)}

    async def _search_catalog(self, request: Request, merchant: Merchant) -> tuple[int, Any]:
        found = self.billing.search_catalog(merchant, _object(request))
        return 200, {"objects": [render_catalog_object(o) for o in found]} if found else {}

    async def _create_subscription(self, request: Request, merchant: Merchant) -> tuple[int, Any]:
        body = _object(request)
        if body.get("idempotency_key") is not None:
            _key(body, 45)
        subscription = self.billing.create_subscription(merchant, body)
        return 200, {"subscription": render_subscription(subscription)}

    async def _get_subscription(self, request: Request, merchant: Merchant) -> tuple[int, Any]:
        subscription = self.billing.subscription(merchant, request.path_params["id"])
        include = request.query_params.get("include", "")
        return 200, {"subscription": render_subscription(subscription, actions="actions" in include.split(","))}

    async def _update_subscription(self, request: Request, merchant: Merchant) -> tuple[int, Any]:
        subscription = self.billing.update_card(merchant, request.path_params["id"], _object(request))
        return 200, {"subscription": render_subscription(subscription)}

    async def _cancel_subscription(self, request: Request, merchant: Merchant) -> tuple[int, Any]:
        subscription, actions = self.billing.cancel(merchant, request.path_params["id"])
        return 200, {"subscription": render_subscription(subscription), "actions": actions}

    async def _swap_plan(self, request: Request, merchant: Merchant) -> tuple[int, Any]:
        subscription, actions = self.billing.swap_plan(merchant, request.path_params["id"], _object(request))
        return 200, {"subscription": render_subscription(subscription), "actions": actions}

    async def _get_invoice(self, request: Request, merchant: Merchant) -> tuple[int, Any]:
        return 200, {"invoice": render_invoice(self.billing.invoice(merchant, request.path_params["id"]))}


def _key(body: dict[str, Any], limit: int) -> None:
    key = body.get("idempotency_key")
    if not isinstance(key, str) or not key:
        raise invalid("MISSING_REQUIRED_PARAMETER", "Field must be set", field="idempotency_key")
    if len(key) > limit:
        raise invalid("VALUE_TOO_LONG", f"Field must not be greater than {limit} length", field="idempotency_key")


def _object(request: Request) -> dict[str, Any]:
    body = request.state.body
    if not isinstance(body, dict):
        raise invalid("EXPECTED_OBJECT", "Expected a JSON object.")
    return body


def _time(value: str | None, name: str) -> datetime | None:
    if value is None:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise invalid("INVALID_TIME", "The time is not in RFC 3339 format.", field=name) from None


def _error(exc: SquareError) -> Response:
    return JSONResponse(exc.body, exc.status)


@asynccontextmanager
async def running_emulator(emulator: SquareEmulator | None = None) -> AsyncIterator[SquareEmulator]:
    """Serve an emulator with uvicorn on a random local port in the running loop; `base_url` is set inside."""
    emulator = emulator or SquareEmulator()
    async with serving(emulator.app) as base_url:
        emulator.base_url = base_url
        try:
            yield emulator
        finally:
            await emulator.drain()
