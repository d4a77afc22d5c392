"""`RazorpayEmulator`: the Starlette app, its switches, and `running_emulator` to serve it with uvicorn in tests."""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import hmac
import json
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.asgi_server import serving
from tests.razorpay_emulator.errors import RazorpayError, bad_request, server_error, unauthorized
from tests.razorpay_emulator.ledger import Ledger, page, payment_signature
from tests.razorpay_emulator.subscriptions import Billing, rendered

Handler = Callable[[Request], Awaitable[Any]]


@dataclass
class Fault:
    """One injected 5xx for the next API call whose path contains `path` (and whose method is `method`, when
    given); with `after_effect` the call is carried out first and only its answer is lost."""

    status: int
    after_effect: bool = False
    path: str = ""
    method: str = ""


@dataclass(frozen=True)
class Delivery:
    headers: dict[str, str]
    body: bytes


@dataclass
class Calls:
    requests: list[tuple[str, str]] = field(default_factory=list)  # method, path


def sign_body(secret: str, body: bytes) -> str:
    """`X-Razorpay-Signature`: hex HMAC-SHA256 of the raw body with the webhook secret."""
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


class RazorpayEmulator:
    def __init__(self, key_id: str = "rzp_test_emulator", key_secret: str | None = None) -> None:
        self.key_id = key_id
        self.key_secret = key_secret or secrets.token_urlsafe(18)
        self.webhook_secret = secrets.token_urlsafe(18)
        self.account_id = "acc_" + secrets.token_hex(7)
        self.base_url = ""
        self.webhook_url: str | None = None
        self.events: list[dict[str, Any]] = []
        self.deliveries: list[Delivery] = []
        self.calls = Calls()
        self.ledger = Ledger(self._event)
        self.billing = Billing(self.ledger, self._event)
        self._faults: list[Fault] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self.app = Starlette(routes=self._routes())

    # --- switches --------------------------------------------------------------------------------------------
    def fail_next(
        self, status: int = 500, *, after_effect: bool = False, path: str = "", method: str = "", times: int = 1
    ) -> None:
        self._faults.extend(Fault(status, after_effect, path, method.upper()) for _ in range(times))

    def sign(self, event: dict[str, Any], *, secret: str | None = None, event_id: str | None = None) -> Delivery:
        """A delivery of `event` as Razorpay sends one (a fresh event id unless given)."""
        body = json.dumps(event).encode()
        headers = {
            "Content-Type": "application/json",
            "X-Razorpay-Signature": sign_body(secret or self.webhook_secret, body),
            "X-Razorpay-Event-Id": event_id or "evt_" + secrets.token_hex(7),
        }
        return Delivery(headers, body)

    async def drain(self) -> None:
        """Wait for webhook deliveries in flight."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    # --- the shopper in Checkout (test-only) ------------------------------------------------------------------
    def checkout(self, order_id: str, *, decline_reason: str | None = None) -> dict[str, Any]:
        """What Checkout hands the SPA: the `handler` response on success, the `payment.failed` error otherwise."""
        payment = self.ledger.pay(order_id, decline_reason=decline_reason)
        if payment["status"] == "failed":
            return {
                "error": {
                    "code": payment["error_code"],
                    "description": payment["error_description"],
                    "source": payment["error_source"],
                    "step": payment["error_step"],
                    "reason": payment["error_reason"],
                    "metadata": {"payment_id": payment["id"], "order_id": order_id},
                }
            }
        return {
            "razorpay_payment_id": payment["id"],
            "razorpay_order_id": order_id,
            "razorpay_signature": payment_signature(self.key_secret, order_id, payment["id"]),
        }

    # --- plumbing --------------------------------------------------------------------------------------------
    def _event(self, event_type: str, entities: dict[str, dict[str, Any]]) -> None:
        event = {
            "entity": "event",
            "account_id": self.account_id,
            "event": event_type,
            "contains": list(entities),
            "payload": {name: {"entity": rendered(entity)} for name, entity in entities.items()},
            "created_at": int(time.time()),
        }
        self.events.append(event)
        if self.webhook_url is not None:
            task = asyncio.get_running_loop().create_task(self._deliver(self.webhook_url, self.sign(event)))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _deliver(self, url: str, delivery: Delivery) -> None:
        self.deliveries.append(delivery)
        async with httpx.AsyncClient(timeout=5) as client:
            await client.post(url, content=delivery.body, headers=delivery.headers)

    def _authenticate(self, request: Request) -> None:
        scheme, _, encoded = request.headers.get("authorization", "").partition(" ")
        try:
            key_id, _, key_secret = base64.b64decode(encoded, validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            raise unauthorized() from None
        if scheme.lower() != "basic" or key_id != self.key_id or not hmac.compare_digest(key_secret, self.key_secret):
            raise unauthorized()

    @staticmethod
    def _matches(fault: Fault, request: Request) -> bool:
        return fault.path in request.url.path and fault.method in ("", request.method)

    def _api(self, handler: Handler) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            self.calls.requests.append((request.method, request.url.path))
            try:
                self._authenticate(request)
                fault = next((f for f in self._faults if self._matches(f, request)), None)
                if fault is not None:
                    self._faults.remove(fault)
                    if not fault.after_effect:
                        raise server_error(fault.status)
                body = await handler(request)
                if fault is not None:
                    raise server_error(fault.status)
            except RazorpayError as exc:
                return JSONResponse(exc.body, exc.status)
            return JSONResponse(body)

        return endpoint

    def _routes(self) -> list[Route]:
        ledger = self.ledger

        async def create_order(request: Request) -> Any:
            return ledger.create_order(await _json(request))

        async def all_orders(request: Request) -> Any:
            query = dict(request.query_params)
            orders = list(ledger.orders.values())
            if "receipt" in query:
                orders = [o for o in orders if o["receipt"] == query["receipt"]]
            collection = page(orders, query)
            if "payments" in request.query_params.getlist("expand[]"):
                collection["items"] = [_expanded(o, ledger) for o in collection["items"]]
            return collection

        async def fetch_order(request: Request) -> Any:
            return ledger.order(request.path_params["id"])

        async def order_payments(request: Request) -> Any:
            ledger.order(request.path_params["id"])
            return page(ledger.payments_of(request.path_params["id"]), {"count": "100"})

        async def all_payments(request: Request) -> Any:
            return page(list(ledger.payments.values()), dict(request.query_params))

        async def fetch_payment(request: Request) -> Any:
            return ledger.payment(request.path_params["id"])

        async def capture(request: Request) -> Any:
            return ledger.capture(request.path_params["id"], await _json(request))

        async def refund(request: Request) -> Any:
            return ledger.refund(request.path_params["id"], await _json(request))

        async def payment_refunds(request: Request) -> Any:
            ledger.payment(request.path_params["id"])
            return page(ledger.refunds_of(request.path_params["id"]), {"count": "100"})

        async def fetch_refund(request: Request) -> Any:
            found = ledger.refunds.get(request.path_params["id"])
            if found is None:
                raise bad_request("The id provided does not exist", field="id")
            return found

        async def fetch_dispute(request: Request) -> Any:
            return ledger.dispute(request.path_params["id"])

        async def contest(request: Request) -> Any:
            return ledger.contest(request.path_params["id"], await _json(request))

        async def accept(request: Request) -> Any:
            return ledger.accept(request.path_params["id"])

        async def pay(request: Request) -> Response:
            body = await _json(request, optional=True)
            try:
                answer = self.checkout(request.path_params["id"], decline_reason=body.get("decline_reason"))
            except RazorpayError as exc:
                return JSONResponse(exc.body, exc.status)
            return JSONResponse(answer)

        async def dispute(request: Request) -> Response:
            body = await _json(request, optional=True)
            return JSONResponse(ledger.open_dispute(request.path_params["id"], body.get("reason_code", "chargeback")))

        async def resolve(request: Request) -> Response:
            body = await _json(request)
            return JSONResponse(ledger.resolve(request.path_params["id"], won=body.get("status") == "won"))

        billing = self.billing

        async def create_plan(request: Request) -> Any:
            return billing.create_plan(await _json(request))

        async def all_plans(request: Request) -> Any:
            return page(list(billing.plans.values()), dict(request.query_params))

        async def fetch_plan(request: Request) -> Any:
            return billing.plan(request.path_params["id"])

        async def create_subscription(request: Request) -> Any:
            return rendered(billing.create(await _json(request)))

        async def all_subscriptions(request: Request) -> Any:
            subs = [rendered(sub) for sub in billing.subscriptions.values()]
            return page(subs, dict(request.query_params))

        async def fetch_subscription(request: Request) -> Any:
            return rendered(billing.subscription(request.path_params["id"]))

        async def update_subscription(request: Request) -> Any:
            return rendered(billing.update(request.path_params["id"], await _json(request)))

        async def cancel_subscription(request: Request) -> Any:
            return rendered(billing.cancel(request.path_params["id"], await _json(request, optional=True)))

        async def pause_subscription(request: Request) -> Any:
            return rendered(billing.pause(request.path_params["id"]))

        async def resume_subscription(request: Request) -> Any:
            return rendered(billing.resume(request.path_params["id"]))

        async def scheduled_changes(request: Request) -> Any:
            sub = billing.subscription(request.path_params["id"])
            if not sub["has_scheduled_changes"]:
                raise bad_request("Subscription has no scheduled changes", field="id")
            return rendered({**sub, "plan_id": sub["_scheduled_plan_id"]})

        async def all_invoices(request: Request) -> Any:
            query = dict(request.query_params)
            invoices = [
                i
                for i in billing.invoices.values()
                if i["subscription_id"] == query.get("subscription_id", i["subscription_id"])
            ]
            return page(invoices, query)

        async def fetch_invoice(request: Request) -> Any:
            return billing.invoice(request.path_params["id"])

        async def authenticate(request: Request) -> Response:
            try:
                return JSONResponse(rendered(billing.authenticate(request.path_params["id"])))
            except RazorpayError as exc:
                return JSONResponse(exc.body, exc.status)

        async def charge_cycle(request: Request) -> Response:
            body = await _json(request, optional=True)
            return JSONResponse(billing.charge(request.path_params["id"], decline_reason=body.get("decline_reason")))

        api = self._api
        return [
            Route("/v1/plans", api(create_plan), methods=["POST"]),
            Route("/v1/plans", api(all_plans), methods=["GET"]),
            Route("/v1/plans/{id}", api(fetch_plan), methods=["GET"]),
            Route("/v1/subscriptions", api(create_subscription), methods=["POST"]),
            Route("/v1/subscriptions", api(all_subscriptions), methods=["GET"]),
            Route("/v1/subscriptions/{id}", api(fetch_subscription), methods=["GET"]),
            Route("/v1/subscriptions/{id}", api(update_subscription), methods=["PATCH"]),
            Route("/v1/subscriptions/{id}/cancel", api(cancel_subscription), methods=["POST"]),
            Route("/v1/subscriptions/{id}/retrieve_scheduled_changes", api(scheduled_changes), methods=["GET"]),
            Route("/v1/subscriptions/{id}/pause", api(pause_subscription), methods=["POST"]),
            Route("/v1/subscriptions/{id}/resume", api(resume_subscription), methods=["POST"]),
            Route("/v1/invoices", api(all_invoices), methods=["GET"]),
            Route("/v1/invoices/{id}", api(fetch_invoice), methods=["GET"]),
            Route("/emulator/subscriptions/{id}/authenticate", authenticate, methods=["POST"]),
            Route("/emulator/subscriptions/{id}/charge", charge_cycle, methods=["POST"]),
            Route("/v1/orders", api(create_order), methods=["POST"]),
            Route("/v1/orders", api(all_orders), methods=["GET"]),
            Route("/v1/orders/{id}", api(fetch_order), methods=["GET"]),
            Route("/v1/orders/{id}/payments", api(order_payments), methods=["GET"]),
            Route("/v1/payments", api(all_payments), methods=["GET"]),
            Route("/v1/payments/{id}", api(fetch_payment), methods=["GET"]),
            Route("/v1/payments/{id}/capture", api(capture), methods=["POST"]),
            Route("/v1/payments/{id}/refund", api(refund), methods=["POST"]),
            Route("/v1/payments/{id}/refunds", api(payment_refunds), methods=["GET"]),
            Route("/v1/refunds/{id}", api(fetch_refund), methods=["GET"]),
            Route("/v1/disputes/{id}", api(fetch_dispute), methods=["GET"]),
            Route("/v1/disputes/{id}/contest", api(contest), methods=["PATCH"]),
            Route("/v1/disputes/{id}/accept", api(accept), methods=["POST"]),
            Route("/emulator/orders/{id}/pay", pay, methods=["POST"]),
            Route("/emulator/payments/{id}/dispute", dispute, methods=["POST"]),
            Route("/emulator/disputes/{id}/resolve", resolve, methods=["POST"]),
        ]


def _expanded(order: dict[str, Any], ledger: Ledger) -> dict[str, Any]:
    return {**order, "payments": page(ledger.payments_of(order["id"]), {"count": "100"})}


async def _json(request: Request, *, optional: bool = False) -> dict[str, Any]:
    raw = await request.body()
    if not raw and optional:
        return {}
    try:
        value = json.loads(raw)
    except ValueError:
        raise bad_request("The request body is not valid JSON.") from None
    if not isinstance(value, dict):
        raise bad_request("The request body must be a JSON object.")
    return value


@asynccontextmanager
async def running_emulator(emulator: RazorpayEmulator | None = None) -> AsyncIterator[RazorpayEmulator]:
    """Serve an emulator with uvicorn on a random local port in the running loop; `base_url` is set inside."""
    emulator = emulator or RazorpayEmulator()
    async with serving(emulator.app) as base_url:
        emulator.base_url = base_url
        try:
            yield emulator
        finally:
            await emulator.drain()
