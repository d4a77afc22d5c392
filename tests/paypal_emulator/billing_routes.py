"""The emulator's routes for Catalog Products, Billing Plans/Subscriptions, v1 sales and Disputes, with the
test-only switches (buyer approves a subscription, bill a cycle now, expire, open and resolve a dispute)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.paypal_emulator import disputes, render_billing
from tests.paypal_emulator.errors import PayPalError
from tests.paypal_emulator.http import read_json as _json

if TYPE_CHECKING:
    from tests.paypal_emulator.app import PayPalEmulator


def billing_routes(emulator: PayPalEmulator) -> list[Route]:
    billing, base = emulator.billing, lambda: emulator.base_url
    api = emulator.api

    async def create_product(request: Request) -> tuple[int, Any]:
        return 201, render_billing.product(billing.create_product(await _json(request)), base())

    async def get_product(request: Request) -> tuple[int, Any]:
        return 200, render_billing.product(billing.product(request.path_params["id"]), base())

    async def create_plan(request: Request) -> tuple[int, Any]:
        return 201, render_billing.plan(billing.create_plan(await _json(request)), base())

    async def list_plans(request: Request) -> tuple[int, Any]:
        query = request.query_params
        page_size, page = int(query.get("page_size", "10")), int(query.get("page", "1"))
        plans, total, pages = billing.list_plans(query.get("product_id"), page_size, page)
        body: dict[str, Any] = {"plans": [render_billing.plan_summary(p, base()) for p in plans]}
        if query.get("total_required") == "true":
            body.update(total_items=total, total_pages=pages)
        body["links"] = [{"href": str(request.url), "rel": "self", "method": "GET"}]
        return 200, body

    async def get_plan(request: Request) -> tuple[int, Any]:
        return 200, render_billing.plan(billing.plan(request.path_params["id"]), base())

    def subscription(sub_id: str) -> dict[str, Any]:
        return render_billing.subscription(billing.subscription(sub_id), billing, base())

    async def create_subscription(request: Request) -> tuple[int, Any]:
        sub = billing.create_subscription(await _json(request))
        return 201, subscription(sub.id)

    async def get_subscription(request: Request) -> tuple[int, Any]:
        return 200, subscription(request.path_params["id"])

    async def suspend(request: Request) -> tuple[int, Any]:
        billing.suspend(request.path_params["id"], await _json(request, optional=True))
        return 204, None

    async def activate(request: Request) -> tuple[int, Any]:
        billing.activate(request.path_params["id"], await _json(request, optional=True))
        return 204, None

    async def cancel(request: Request) -> tuple[int, Any]:
        billing.cancel(request.path_params["id"], await _json(request, optional=True))
        return 204, None

    async def revise(request: Request) -> tuple[int, Any]:
        sub = billing.revise(request.path_params["id"], await _json(request))
        return 200, render_billing.revise_answer(sub, base())

    async def capture(request: Request) -> tuple[int, Any]:
        body = await _json(request)
        sale = billing.capture(request.path_params["id"], body, decline=emulator.decline(request))
        return 200, render_billing.capture_transaction(sale)

    async def get_sale(request: Request) -> tuple[int, Any]:
        return 200, render_billing.sale(billing.sale(request.path_params["id"]), base())

    async def refund_sale(request: Request) -> tuple[int, Any]:
        refund = billing.refund_sale(request.path_params["id"], await _json(request, optional=True))
        return 201, render_billing.sale_refund(refund, base())

    async def get_dispute(request: Request) -> tuple[int, Any]:
        return 200, disputes.render(emulator.disputes.dispute(request.path_params["id"]), base())

    async def provide_evidence(request: Request) -> tuple[int, Any]:
        dispute = emulator.disputes.provide_evidence(
            request.path_params["id"], request.headers.get("content-type", ""), await request.body()
        )
        return 200, disputes.evidence_answer(dispute, base())

    return [
        Route("/v1/catalogs/products", api(create_product), methods=["POST"]),
        Route("/v1/catalogs/products/{id}", api(get_product, mutating=False), methods=["GET"]),
        Route("/v1/billing/plans", api(create_plan), methods=["POST"]),
        Route("/v1/billing/plans", api(list_plans, mutating=False), methods=["GET"]),
        Route("/v1/billing/plans/{id}", api(get_plan, mutating=False), methods=["GET"]),
        Route("/v1/billing/subscriptions", api(create_subscription), methods=["POST"]),
        Route("/v1/billing/subscriptions/{id}", api(get_subscription, mutating=False), methods=["GET"]),
        Route("/v1/billing/subscriptions/{id}/suspend", api(suspend), methods=["POST"]),
        Route("/v1/billing/subscriptions/{id}/activate", api(activate), methods=["POST"]),
        Route("/v1/billing/subscriptions/{id}/cancel", api(cancel), methods=["POST"]),
        Route("/v1/billing/subscriptions/{id}/revise", api(revise), methods=["POST"]),
        Route("/v1/billing/subscriptions/{id}/capture", api(capture), methods=["POST"]),
        Route("/v1/payments/sale/{id}", api(get_sale, mutating=False), methods=["GET"]),
        Route("/v1/payments/sale/{id}/refund", api(refund_sale), methods=["POST"]),
        Route("/v1/customer/disputes/{id}", api(get_dispute, mutating=False), methods=["GET"]),
        Route("/v1/customer/disputes/{id}/provide-evidence", api(provide_evidence), methods=["POST"]),
        *_test_only_routes(emulator),
    ]


def _test_only_routes(emulator: PayPalEmulator) -> list[Route]:
    billing = emulator.billing

    def answer(action: Any) -> Any:
        async def endpoint(request: Request) -> Response:
            try:
                return JSONResponse(await action(request))
            except PayPalError as exc:
                return JSONResponse(exc.body, exc.status)

        return endpoint

    def subscription(sub_id: str) -> dict[str, Any]:
        return render_billing.subscription(billing.subscription(sub_id), billing, emulator.base_url)

    async def approve(request: Request) -> Any:
        return subscription(billing.approve(request.path_params["id"]).id)

    async def bill(request: Request) -> Any:
        outcome = request.query_params.get("outcome", "completed")
        return subscription(billing.bill(request.path_params["id"], outcome).id)

    async def expire(request: Request) -> Any:
        return subscription(billing.expire(request.path_params["id"]).id)

    async def open_dispute(request: Request) -> Any:
        body = await _json(request)
        dispute = emulator.disputes.open(str(body.get("capture_id")), reason=body.get("reason") or "OTHER")
        return disputes.render(dispute, emulator.base_url)

    async def resolve_dispute(request: Request) -> Any:
        body = await _json(request)
        dispute = emulator.disputes.resolve(request.path_params["id"], str(body.get("outcome")))
        return disputes.render(dispute, emulator.base_url)

    return [
        Route("/emulator/subscriptions/{id}/approve", answer(approve), methods=["POST"]),
        Route("/emulator/subscriptions/{id}/bill", answer(bill), methods=["POST"]),
        Route("/emulator/subscriptions/{id}/expire", answer(expire), methods=["POST"]),
        Route("/emulator/disputes", answer(open_dispute), methods=["POST"]),
        Route("/emulator/disputes/{id}/resolve", answer(resolve_dispute), methods=["POST"]),
    ]
