"""`PayPalEmulator`: the Starlette app, its switches, and `running_emulator` to serve it with uvicorn in tests."""

from __future__ import annotations

import asyncio
import base64
import json
import secrets
import time
import urllib.parse
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from tests.asgi_server import serving
from tests.paypal_emulator import disputes, render, render_billing
from tests.paypal_emulator.billing_routes import billing_routes
from tests.paypal_emulator.disputes import Dispute, Disputes
from tests.paypal_emulator.errors import PayPalError, api_error, invalid_client, invalid_token
from tests.paypal_emulator.http import read_json as _json
from tests.paypal_emulator.ledger import Authorization, Capture, Ledger, Order, Refund
from tests.paypal_emulator.subscriptions import Billing, Sale, SaleRefund, Subscription
from tests.paypal_emulator.webhooks import AUTH_ALGO, Delivery, WebhookSigner, event_body

Handler = Callable[[Request], Awaitable[tuple[int, Any]]]


@dataclass
class Fault:
    """One injected failure for the next API call whose path contains `path` (any path when empty).

    `status` 429/5xx answers an error; with `after_effect` the call is carried out first and only its answer is
    lost (the idempotent retry then gets the stored answer). `delay` holds the answer back for that long first.
    """

    status: int | None = None
    after_effect: bool = False
    delay: float = 0.0
    path: str = ""


@dataclass
class Calls:
    """What the emulator saw, for tests to assert on."""

    tokens_issued: int = 0
    cert_fetches: int = 0
    requests: list[tuple[str, str, str | None]] = field(default_factory=list)  # method, path, PayPal-Request-Id


class PayPalEmulator:
    def __init__(
        self, client_id: str = "emulator-client", client_secret: str = "emulator-secret", *, token_ttl: int = 32400
    ) -> None:
        self.client_id, self.client_secret, self.token_ttl = client_id, client_secret, token_ttl
        self.base_url = ""
        self.ledger = Ledger(self._event)
        self.billing = Billing(self._event)
        self.disputes = Disputes(self.ledger, self._event, self.billing)
        self.signer = WebhookSigner()
        self.webhook_id = f"WH-{secrets.token_hex(8).upper()}"
        self.webhook_url: str | None = None
        self.events: list[dict[str, Any]] = []
        self.deliveries: list[Delivery] = []
        self.calls = Calls()
        self._tokens: dict[str, float] = {}
        self._faults: list[Fault] = []
        self._declines: list[str] = []
        self._idempotent: dict[tuple[str, str, str], tuple[int, Any]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self.app = Starlette(routes=self._routes())

    # --- switches --------------------------------------------------------------------------------------------
    def fail_next(
        self,
        status: int | None = 500,
        *,
        after_effect: bool = False,
        delay: float = 0.0,
        path: str = "",
        times: int = 1,
    ) -> None:
        self._faults.extend(Fault(status, after_effect, delay, path) for _ in range(times))

    def decline_next(self, issue: str = "INSTRUMENT_DECLINED") -> None:
        """The next order capture/authorize or authorization capture fails with this 422 issue."""
        self._declines.append(issue)

    def expire_tokens(self) -> None:
        """Every issued access token stops working now (as after its `expires_in`, or a revocation)."""
        self._tokens.clear()

    @property
    def cert_url(self) -> str:
        return f"{self.base_url}/v1/notifications/certs/{self.signer.cert_id}"

    def sign(
        self, event: dict[str, Any], *, transmission_time: datetime | None = None, webhook_id: str | None = None
    ) -> Delivery:
        return self.signer.sign(
            event, webhook_id=webhook_id or self.webhook_id, cert_url=self.cert_url, transmission_time=transmission_time
        )

    async def drain(self) -> None:
        """Wait for webhook deliveries in flight."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    # --- plumbing --------------------------------------------------------------------------------------------
    def _event(self, event_type: str, obj: Any) -> None:
        base = self.base_url
        if isinstance(obj, Order):
            resource_type, resource = "checkout-order", render.order(obj, self.ledger, base)
        elif isinstance(obj, Capture):
            resource_type, resource = "capture", render.capture(obj, base)
        elif isinstance(obj, Authorization):
            resource_type, resource = "authorization", render.authorization(obj, base)
        elif isinstance(obj, Subscription):
            resource_type, resource = "subscription", render_billing.subscription(obj, self.billing, base)
        elif isinstance(obj, Sale):
            resource_type, resource = "sale", render_billing.sale(obj, base)
        elif isinstance(obj, SaleRefund):
            resource_type, resource = "refund", render_billing.sale_refund(obj, base)
        elif isinstance(obj, Dispute):
            resource_type, resource = "dispute", disputes.render(obj, base)
        else:
            assert isinstance(obj, Refund)
            resource_type, resource = "refund", render.refund(obj, base)
        event = event_body(event_type, resource_type, resource)
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
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        expires = self._tokens.get(token) if scheme.lower() == "bearer" else None
        if expires is None or expires <= time.monotonic():
            raise invalid_token()

    def _api(self, handler: Handler, *, mutating: bool = True) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            request_id = request.headers.get("paypal-request-id")
            self.calls.requests.append((request.method, request.url.path, request_id))
            try:
                self._authenticate(request)
            except PayPalError as exc:
                return JSONResponse(exc.body, exc.status)
            fault = next((f for f in self._faults if f.path in request.url.path), None)
            if fault is not None:
                self._faults.remove(fault)
                if fault.delay:
                    await asyncio.sleep(fault.delay)
                if fault.status is not None and not fault.after_effect:
                    return _error(invalid_token() if fault.status == 401 else api_error(fault.status))
            key = (request.method, request.url.path, request_id) if mutating and request_id else None
            if key is not None and key in self._idempotent:
                status, body = self._idempotent[key]
            else:
                try:
                    status, body = await handler(request)
                except PayPalError as exc:
                    status, body = exc.status, exc.body
                if key is not None and status < 500:
                    self._idempotent[key] = (status, body)
            if fault is not None and fault.status is not None:
                return _error(api_error(fault.status))
            return JSONResponse(body, status) if body is not None else Response(status_code=status)

        return endpoint

    def api(self, handler: Handler, *, mutating: bool = True) -> Callable[[Request], Awaitable[Response]]:
        """An API route's endpoint: bearer auth, injected faults, PayPal-Request-Id replay (for `billing_routes`)."""
        return self._api(handler, mutating=mutating)

    def decline(self, request: Request) -> str | None:
        return self._decline(request)

    def _decline(self, request: Request) -> str | None:
        mock = request.headers.get("paypal-mock-response")
        if mock:
            try:
                code = json.loads(mock).get("mock_application_codes")
            except (ValueError, AttributeError):
                code = None
            if isinstance(code, str):
                return code
        return self._declines.pop(0) if self._declines else None

    # --- routes ----------------------------------------------------------------------------------------------
    def _routes(self) -> list[Route]:
        api = self._api
        return [
            Route("/v1/oauth2/token", self._token, methods=["POST"]),
            Route("/v2/checkout/orders", api(self._create_order), methods=["POST"]),
            Route("/v2/checkout/orders/{id}", api(self._get_order, mutating=False), methods=["GET"]),
            Route("/v2/checkout/orders/{id}/capture", api(self._capture_order), methods=["POST"]),
            Route("/v2/checkout/orders/{id}/authorize", api(self._authorize_order), methods=["POST"]),
            Route("/v2/payments/authorizations/{id}", api(self._get_authorization, mutating=False), methods=["GET"]),
            Route("/v2/payments/authorizations/{id}/capture", api(self._capture_authorization), methods=["POST"]),
            Route("/v2/payments/authorizations/{id}/void", api(self._void), methods=["POST"]),
            Route("/v2/payments/authorizations/{id}/reauthorize", api(self._reauthorize), methods=["POST"]),
            Route("/v2/payments/captures/{id}", api(self._get_capture, mutating=False), methods=["GET"]),
            Route("/v2/payments/captures/{id}/refund", api(self._refund), methods=["POST"]),
            Route("/v1/notifications/verify-webhook-signature", api(self._verify, mutating=False), methods=["POST"]),
            Route("/v1/notifications/certs/{cert_id}", self._cert, methods=["GET"]),
            Route("/checkoutnow", self._approval_page, methods=["GET"]),
            Route("/emulator/orders/{id}/approve", self._approve, methods=["POST"]),
            *billing_routes(self),
        ]

    async def _token(self, request: Request) -> Response:
        scheme, _, encoded = request.headers.get("authorization", "").partition(" ")
        try:
            client_id, _, secret = base64.b64decode(encoded).decode().partition(":")
        except ValueError:
            client_id = secret = ""
        if scheme.lower() != "basic" or (client_id, secret) != (self.client_id, self.client_secret):
            return _error(invalid_client())
        form = urllib.parse.parse_qs((await request.body()).decode())
        if form.get("grant_type") != ["client_credentials"]:
            return JSONResponse({"error": "unsupported_grant_type", "error_description": "Grant Type is NULL"}, 400)
        token = f"A21AA{secrets.token_urlsafe(48)}"
        self._tokens[token] = time.monotonic() + self.token_ttl
        self.calls.tokens_issued += 1
        return JSONResponse(
            {
                "scope": "https://uri.paypal.com/services/payments/payment https://uri.paypal.com/services/payments/refund",
                "access_token": token,
                "token_type": "Bearer",
                "app_id": "APP-80W284485P519543T",
                "expires_in": self.token_ttl,
                "nonce": f"{datetime.now().isoformat()}Z{secrets.token_hex(8)}",
            }
        )

    async def _create_order(self, request: Request) -> tuple[int, Any]:
        order = self.ledger.create_order(await _json(request))
        return 201, render.order(order, self.ledger, self.base_url)

    async def _get_order(self, request: Request) -> tuple[int, Any]:
        return 200, render.order(self.ledger.order(request.path_params["id"]), self.ledger, self.base_url)

    async def _capture_order(self, request: Request) -> tuple[int, Any]:
        order = self.ledger.capture_order(request.path_params["id"], decline=self._decline(request))
        return 201, render.order(order, self.ledger, self.base_url)

    async def _authorize_order(self, request: Request) -> tuple[int, Any]:
        order = self.ledger.authorize_order(request.path_params["id"], decline=self._decline(request))
        return 201, render.order(order, self.ledger, self.base_url)

    async def _get_authorization(self, request: Request) -> tuple[int, Any]:
        return 200, render.authorization(self.ledger.authorization(request.path_params["id"]), self.base_url)

    async def _capture_authorization(self, request: Request) -> tuple[int, Any]:
        body = await _json(request, optional=True)
        cap = self.ledger.capture_authorization(request.path_params["id"], body, decline=self._decline(request))
        return 201, render.capture(cap, self.base_url)

    async def _void(self, request: Request) -> tuple[int, Any]:
        auth = self.ledger.void_authorization(request.path_params["id"])
        if "return=representation" in request.headers.get("prefer", ""):
            return 200, render.authorization(auth, self.base_url)
        return 204, None

    async def _reauthorize(self, request: Request) -> tuple[int, Any]:
        auth = self.ledger.reauthorize(request.path_params["id"], await _json(request, optional=True))
        return 201, render.authorization(auth, self.base_url)

    async def _get_capture(self, request: Request) -> tuple[int, Any]:
        return 200, render.capture(self.ledger.capture(request.path_params["id"]), self.base_url)

    async def _refund(self, request: Request) -> tuple[int, Any]:
        ref = self.ledger.refund(request.path_params["id"], await _json(request, optional=True))
        return 201, render.refund(ref, self.base_url)

    async def _verify(self, request: Request) -> tuple[int, Any]:
        body = await _json(request)
        if not isinstance(body, dict) or not isinstance(body.get("webhook_event"), dict):
            raise api_error(400, "MISSING_REQUIRED_PARAMETER", field="webhook_event")
        ok = (
            body.get("auth_algo") == AUTH_ALGO
            and body.get("cert_url") == self.cert_url
            and body.get("webhook_id") == self.webhook_id
            and self.signer.verify(
                str(body.get("transmission_id")),
                str(body.get("transmission_time")),
                self.webhook_id,
                json.dumps(body["webhook_event"], separators=(",", ":")).encode(),
                str(body.get("transmission_sig")),
            )
        )
        return 200, {"verification_status": "SUCCESS" if ok else "FAILURE"}

    async def _cert(self, request: Request) -> Response:
        self.calls.cert_fetches += 1
        if request.path_params["cert_id"] != self.signer.cert_id:
            return _error(api_error(404, "INVALID_RESOURCE_ID"))
        return Response(self.signer.cert_pem(), media_type="application/x-pem-file")

    async def _approval_page(self, request: Request) -> Response:
        order_id = request.query_params.get("token", "")
        if order_id not in self.ledger.orders:
            return HTMLResponse("<h1>PayPal emulator: unknown order</h1>", 404)
        return HTMLResponse(
            "<h1>PayPal emulator: pay with PayPal</h1>"
            f"<form method='post' action='/emulator/orders/{order_id}/approve'><button>Approve</button></form>"
        )

    async def _approve(self, request: Request) -> Response:
        try:
            order = self.ledger.approve(request.path_params["id"])
        except PayPalError as exc:
            return _error(exc)
        return JSONResponse(render.order(order, self.ledger, self.base_url))


def _error(exc: PayPalError) -> Response:
    return JSONResponse(exc.body, exc.status)


@asynccontextmanager
async def running_emulator(emulator: PayPalEmulator | None = None) -> AsyncIterator[PayPalEmulator]:
    """Serve an emulator with uvicorn on a random local port in the running loop; `base_url` is set inside."""
    emulator = emulator or PayPalEmulator()
    async with serving(emulator.app) as base_url:
        emulator.base_url = base_url
        emulator.ledger.base_url = base_url
        try:
            yield emulator
        finally:
            await emulator.drain()
