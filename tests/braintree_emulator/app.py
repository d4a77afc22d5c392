"""The emulator's HTTP side: Braintree's XML gateway API under `/merchants/<merchant id>/`, as the SDK calls it.

Authentication is HTTP basic with the public/private key pair (401 otherwise; another merchant id: 403). Bodies
are the SDK's XML (read with its own parser); answers are `<transaction>`, `<dispute>`, `<evidence>`,
`<client-token>`, `<search-results>` or a 422 `<api-error-response>` with nested validation errors, and a
declined or rejected sale answers 422 with the failed transaction inside, as the gateway does. Test-only routes
under `/emulator/` open disputes and decide them; `fail_next` answers one call with a 5xx (optionally after it
took effect: a lost answer).
"""

from __future__ import annotations

import base64
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gateways.braintree.sdk import braintree
from tests.asgi_server import serving
from tests.braintree_emulator import xml
from tests.braintree_emulator.billing import Billing
from tests.braintree_emulator.ledger import Ledger, ValidationFailed

XML = "application/xml; charset=utf-8"


@dataclass
class Fault:
    status: int
    path: str
    after_effect: bool
    times: int = 1


@dataclass
class BraintreeEmulator:
    merchant_id: str = "payqlmerchant"
    public_key: str = field(default_factory=lambda: f"pub_{secrets.token_hex(4)}")
    private_key: str = field(default_factory=lambda: secrets.token_hex(16))
    merchant_accounts: dict[str, str] = field(default_factory=lambda: {"payql_usd": "USD", "payql_jpy": "JPY"})
    base_url: str = ""
    # Plans are made in the Control Panel: id → billing frequency (months) and price.
    plans: dict[str, dict[str, Any]] = field(
        default_factory=lambda: {
            "basic_monthly": {"id": "basic_monthly", "billing_frequency": 1, "price": "10.00"},
            "pro_monthly": {"id": "pro_monthly", "billing_frequency": 1, "price": "30.00"},
            "basic_yearly": {"id": "basic_yearly", "billing_frequency": 12, "price": "100.00"},
        }
    )
    ledger: Ledger = field(init=False)
    billing: Billing = field(init=False)
    faults: list[Fault] = field(default_factory=list)
    calls: list[tuple[str, str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.ledger = Ledger(self.merchant_accounts, default_merchant_account=next(iter(self.merchant_accounts)))
        self.billing = Billing(self.ledger, plans=self.plans)
        self.app = Starlette(routes=self._routes())

    def fail_next(self, status: int, *, path: str = "", after_effect: bool = False, times: int = 1) -> None:
        """Answer the next `times` calls whose path ends with `path` with `status` (after applying them when
        `after_effect`: the gateway acted and the answer was lost)."""
        self.faults.append(Fault(status, path, after_effect, times))

    def sdk(self, public_key: str | None = None, private_key: str | None = None) -> braintree.BraintreeGateway:
        """An SDK gateway with this emulator's keys (for `webhook_testing.sample_notification` and `testing`)."""
        port = self.base_url.rsplit(":", 1)[-1] if self.base_url else "1"
        environment = braintree.Environment("emulator", "127.0.0.1", port, "", False, None)
        return braintree.BraintreeGateway(
            braintree.Configuration(
                environment, self.merchant_id, public_key or self.public_key, private_key or self.private_key
            )
        )

    # --- plumbing ---------------------------------------------------------------------------------------------
    def _routes(self) -> list[Route]:
        base = "/merchants/{merchant}"
        return [
            Route(f"{base}/client_token", self._client_token, methods=["POST"]),
            Route(f"{base}/transactions", self._sale, methods=["POST"]),
            Route(f"{base}/transactions/advanced_search_ids", self._search_ids, methods=["POST"]),
            Route(f"{base}/transactions/advanced_search", self._search, methods=["POST"]),
            Route(f"{base}/transactions/{{id}}", self._find, methods=["GET"]),
            Route(f"{base}/transactions/{{id}}/submit_for_settlement", self._submit, methods=["PUT"]),
            Route(f"{base}/transactions/{{id}}/void", self._void, methods=["PUT"]),
            Route(f"{base}/transactions/{{id}}/settle", self._settle, methods=["PUT"]),
            Route(f"{base}/transactions/{{id}}/refund", self._refund, methods=["POST"]),
            Route(f"{base}/disputes/{{id}}", self._dispute, methods=["GET"]),
            Route(f"{base}/disputes/{{id}}/evidence", self._evidence, methods=["POST"]),
            Route(f"{base}/disputes/{{id}}/finalize", self._finalize, methods=["PUT"]),
            Route(f"{base}/customers", self._customer, methods=["POST"]),
            Route(f"{base}/payment_methods", self._payment_method, methods=["POST"]),
            Route(f"{base}/payment_methods/any/{{token}}", self._find_payment_method, methods=["GET"]),
            Route(f"{base}/plans/{{id}}", self._plan, methods=["GET"]),
            Route(f"{base}/subscriptions", self._subscribe, methods=["POST"]),
            Route(f"{base}/subscriptions/{{id}}", self._subscription, methods=["GET", "PUT"]),
            Route(f"{base}/subscriptions/{{id}}/cancel", self._cancel_subscription, methods=["PUT"]),
            Route("/emulator/subscriptions/{id}/cycle", self._cycle, methods=["POST"]),
            Route("/emulator/transactions/{id}/dispute", self._open_dispute, methods=["POST"]),
            Route("/emulator/disputes/{id}/{status}", self._decide, methods=["POST"]),
        ]

    async def _guarded(self, request: Request, act: Any) -> Response:
        """Authenticate, apply `act(body)`, and render its answer or its validation failure."""
        expected = base64.b64encode(f"{self.public_key}:{self.private_key}".encode()).decode()
        if request.headers.get("authorization") != f"Basic {expected}":
            return Response("", 401)
        if request.path_params.get("merchant") != self.merchant_id:
            return Response("", 403)
        self.calls.append((request.method, request.url.path))
        fault = next((f for f in self.faults if request.url.path.endswith(f.path)), None)
        if fault is not None:
            fault.times -= 1
            if fault.times <= 0:
                self.faults.remove(fault)
            if not fault.after_effect:
                return Response("", fault.status)
        try:
            body = xml.parse(await request.body())
            tag, value, status = act(body)
        except ValidationFailed as failed:
            tag, value, status = "api_error_response", _validation_error(failed), 422
        except LookupError:
            return Response("", 404)
        if fault is not None:
            return Response("", fault.status)
        text = value if isinstance(value, str) else xml.document(tag, value)
        return Response(text, status, media_type=XML)

    # --- routes -----------------------------------------------------------------------------------------------
    async def _client_token(self, request: Request) -> Response:
        def act(body: dict[str, Any]) -> tuple[str, Any, int]:
            token = base64.b64encode(
                f'{{"version":2,"authorizationFingerprint":"{secrets.token_hex(16)}",'
                f'"merchantId":"{self.merchant_id}"}}'.encode()
            ).decode()
            return "client_token", {"value": token}, 201

        return await self._guarded(request, act)

    async def _sale(self, request: Request) -> Response:
        def act(body: dict[str, Any]) -> tuple[str, Any, int]:
            params = body.get("transaction") or {}
            if params.get("subscription_id"):  # the SDK's subscription.retry_charge
                subscription = self._subscribed(str(params["subscription_id"]))
                transaction = self.billing.retry_charge(subscription, params.get("amount"))
            else:
                transaction = self.ledger.sale(params)
            if transaction["status"] in ("authorized", "submitted_for_settlement"):
                return "transaction", transaction, 201
            message = (
                transaction["processor_response_text"] or f"Gateway Rejected: {transaction['gateway_rejection_reason']}"
            )
            return "api_error_response", {"errors": {"errors": []}, "message": message, "transaction": transaction}, 422

        return await self._guarded(request, act)

    async def _customer(self, request: Request) -> Response:
        return await self._guarded(
            request, lambda body: ("customer", self.billing.create_customer(body.get("customer") or {}), 201)
        )

    async def _payment_method(self, request: Request) -> Response:
        return await self._guarded(
            request, lambda body: ("credit_card", self.billing.vault(body.get("payment_method") or {}), 201)
        )

    async def _find_payment_method(self, request: Request) -> Response:
        def act(body: dict[str, Any]) -> tuple[str, Any, int]:
            method = self.billing.payment_methods.get(request.path_params["token"])
            if method is None:
                raise LookupError(request.path_params["token"])
            return "credit_card", {k: v for k, v in method.items() if k != "nonce"}, 200

        return await self._guarded(request, act)

    async def _plan(self, request: Request) -> Response:
        def act(body: dict[str, Any]) -> tuple[str, Any, int]:
            plan = self.plans.get(request.path_params["id"])
            if plan is None:
                raise LookupError(request.path_params["id"])
            currency = self.merchant_accounts[self.ledger.default_merchant_account]
            return "plan", {"currency_iso_code": currency, "add_ons": [], "discounts": [], **plan}, 200

        return await self._guarded(request, act)

    async def _subscribe(self, request: Request) -> Response:
        def act(body: dict[str, Any]) -> tuple[str, Any, int]:
            subscription, charge = self.billing.create_subscription(body.get("subscription") or {})
            if charge is not None and charge["status"] not in ("authorized", "submitted_for_settlement"):
                failed = {"errors": {"errors": []}, "message": charge["processor_response_text"], "transaction": charge}
                return "api_error_response", failed, 422
            return "subscription", subscription, 201

        return await self._guarded(request, act)

    async def _subscription(self, request: Request) -> Response:
        def act(body: dict[str, Any]) -> tuple[str, Any, int]:
            subscription = self._subscribed(request.path_params["id"])
            if request.method == "PUT":
                self.billing.update(subscription, body.get("subscription") or {})
            return "subscription", subscription, 200

        return await self._guarded(request, act)

    async def _cancel_subscription(self, request: Request) -> Response:
        return await self._guarded(
            request,
            lambda body: ("subscription", self.billing.cancel(self._subscribed(request.path_params["id"])), 200),
        )

    async def _cycle(self, request: Request) -> Response:
        """Test-only: the subscription's next billing date came (`?decline=1`: its card declines from now on)."""
        subscription = self.billing.subscriptions.get(request.path_params["id"])
        if subscription is None:
            return Response("", 404)
        if request.query_params.get("decline"):
            self.billing.payment_methods[subscription["payment_method_token"]]["nonce"] = (
                "fake-processor-declined-visa-nonce"
            )
        charged = self.billing.bill_cycle(subscription)
        return Response(
            xml.document("transaction" if "type" in charged else "subscription", charged), 200, media_type=XML
        )

    def _subscribed(self, subscription_id: str) -> dict[str, Any]:
        subscription = self.billing.subscriptions.get(subscription_id)
        if subscription is None:
            raise LookupError(subscription_id)
        return subscription

    async def _find(self, request: Request) -> Response:
        return await self._guarded(request, lambda body: ("transaction", self._transaction(request), 200))

    async def _submit(self, request: Request) -> Response:
        def act(body: dict[str, Any]) -> tuple[str, Any, int]:
            amount = (body.get("transaction") or {}).get("amount")
            return "transaction", self.ledger.submit_for_settlement(self._transaction(request), amount), 200

        return await self._guarded(request, act)

    async def _void(self, request: Request) -> Response:
        return await self._guarded(
            request, lambda body: ("transaction", self.ledger.void(self._transaction(request)), 200)
        )

    async def _settle(self, request: Request) -> Response:
        return await self._guarded(
            request, lambda body: ("transaction", self.ledger.settle(self._transaction(request)), 200)
        )

    async def _refund(self, request: Request) -> Response:
        def act(body: dict[str, Any]) -> tuple[str, Any, int]:
            return "transaction", self.ledger.refund(self._transaction(request), body.get("transaction") or {}), 201

        return await self._guarded(request, act)

    async def _search_ids(self, request: Request) -> Response:
        def act(body: dict[str, Any]) -> tuple[str, Any, int]:
            found = self.ledger.search(body.get("search") or {})
            return "search_results", {"page_size": 50, "ids": [t["id"] for t in found]}, 200

        return await self._guarded(request, act)

    async def _search(self, request: Request) -> Response:
        def act(body: dict[str, Any]) -> tuple[str, Any, int]:
            found = self.ledger.search(body.get("search") or {})
            return "", xml.collection("credit_card_transactions", "transaction", found), 200

        return await self._guarded(request, act)

    async def _dispute(self, request: Request) -> Response:
        return await self._guarded(request, lambda body: ("dispute", self._disputed(request), 200))

    async def _evidence(self, request: Request) -> Response:
        def act(body: dict[str, Any]) -> tuple[str, Any, int]:
            given = body.get("evidence") or {}
            evidence = self.ledger.add_text_evidence(
                self._disputed(request), given.get("comments") or "", given.get("category")
            )
            return "evidence", evidence, 201

        return await self._guarded(request, act)

    async def _finalize(self, request: Request) -> Response:
        def act(body: dict[str, Any]) -> tuple[str, Any, int]:
            self.ledger.finalize(self._disputed(request))
            return "", "", 200

        return await self._guarded(request, act)

    async def _open_dispute(self, request: Request) -> Response:
        transaction = self.ledger.find(request.path_params["id"])
        if transaction is None:
            return Response("", 404)
        dispute = self.ledger.open_dispute(transaction)
        return Response(xml.document("dispute", dispute), 201, media_type=XML)

    async def _decide(self, request: Request) -> Response:
        dispute = self.ledger.disputes.get(request.path_params["id"])
        if dispute is None:
            return Response("", 404)
        self.ledger.decide(dispute, request.path_params["status"])
        return Response(xml.document("dispute", dispute), 200, media_type=XML)

    def _transaction(self, request: Request) -> dict[str, Any]:
        transaction = self.ledger.find(request.path_params["id"])
        if transaction is None:
            raise LookupError(request.path_params["id"])
        return transaction

    def _disputed(self, request: Request) -> dict[str, Any]:
        dispute = self.ledger.disputes.get(request.path_params["id"])
        if dispute is None:
            raise LookupError(request.path_params["id"])
        return dispute


def _validation_error(failed: ValidationFailed) -> dict[str, Any]:
    error = {"code": failed.code, "attribute": failed.attribute, "message": failed.message}
    nested: dict[str, Any] = {"errors": [error]}
    if failed.on == "credit_card":
        nested = {"errors": [], "credit_card": {"errors": [error]}}
        return {"errors": {"errors": [], "transaction": nested}, "message": failed.message}
    return {"errors": {"errors": [], failed.on: nested}, "message": failed.message}


@asynccontextmanager
async def running_emulator(emulator: BraintreeEmulator | None = None) -> AsyncIterator[BraintreeEmulator]:
    """Serve an emulator with uvicorn on a random local port in the running loop; `base_url` is set inside."""
    emulator = emulator or BraintreeEmulator()
    async with serving(emulator.app) as base_url:
        emulator.base_url = base_url
        yield emulator
