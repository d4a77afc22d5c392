"""Checkout on the sandbox gateway, end to end over HTTP: pay, decline, 3-D Secure, pay again."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
import pytest
from tortoise import connections
from tortoise.backends.base.client import BaseDBAsyncClient

from db.models import AuditRecord, Order, Payment, PaymentEvent, Price, PriceType, Product, RecurringInterval
from gateways.call_guard import CallGuard
from payql.request_context import current_request_id
from tests.database_held import is_sqlite
from tests.gateways.sandbox_access import STAFF_HEADERS, form_token
from tests.testkit import (
    CHECKOUT,
    COMPLETE,
    PAY_ORDER,
    Shopper,
    checkout_input,
    make_price,
    new_key,
)


async def test_checkout_with_visa_pays_the_order_from_catalog_prices(shopper: Shopper) -> None:
    price = await make_price(1999, "USD")
    data = await shopper.data(CHECKOUT, {"input": checkout_input(price, quantity=3)})
    result = data["checkout"]
    assert result["userErrors"] == []
    assert result["order"]["status"] == "PAID"
    assert result["order"]["total"] == {"amount": 5997, "currency": "USD", "decimal": "59.97", "exponent": 2}
    assert result["payment"]["status"] == "PAID"
    assert result["payment"]["amountCaptured"]["amount"] == 5997
    order = await Order.get(id=result["order"]["id"])
    assert order.total_amount == 5997
    events = await PaymentEvent.filter(payment_id=result["payment"]["id"]).order_by("id")
    assert [e.type for e in events] == ["CREATED", "CAPTURED"]
    assert events[-1].amount == 5997
    audits = await AuditRecord.filter(entity_id=result["order"]["id"]).values_list("status_after", flat=True)
    assert "PAID" in audits


async def test_checkout_schema_has_no_amount_input(shopper: Shopper) -> None:
    price = await make_price(500)
    variables = {"input": {**checkout_input(price), "amount": 1}}
    body = await shopper.gql(CHECKOUT, variables)
    assert body["data"] is None
    assert "amount" in body["errors"][0]["message"]
    assert await Order.filter(total_amount=1).count() == 0


@pytest.mark.parametrize(
    ("payment_method", "code", "decline_code"),
    [
        ("pm_card_chargeDeclined", "CARD_DECLINED", "generic_decline"),
        ("pm_card_chargeDeclinedInsufficientFunds", "INSUFFICIENT_FUNDS", "insufficient_funds"),
        ("pm_card_chargeDeclinedExpiredCard", "EXPIRED_CARD", "expired_card"),
        ("pm_card_chargeDeclinedProcessingError", "PROCESSING_ERROR", "processing_error"),
    ],
)
async def test_declines_map_to_user_errors_and_capture_nothing(
    shopper: Shopper, payment_method: str, code: str, decline_code: str
) -> None:
    price = await make_price(1200)
    result = (await shopper.data(CHECKOUT, {"input": checkout_input(price, payment_method)}))["checkout"]
    assert [e["code"] for e in result["userErrors"]] == [code]
    assert result["userErrors"][0]["message"]
    assert result["order"]["status"] == "PENDING"
    assert result["payment"]["status"] == "FAILED"
    assert result["payment"]["declineCode"] == decline_code
    assert result["payment"]["amountCaptured"]["amount"] == 0
    payment = await Payment.get(id=result["payment"]["id"])
    assert payment.amount_captured == 0 and payment.amount_authorized == 0


async def test_three_d_secure_needs_action_then_pays_after_it(shopper: Shopper) -> None:
    price = await make_price(4200)
    result = (await shopper.data(CHECKOUT, {"input": checkout_input(price, "pm_card_authenticationRequired")}))[
        "checkout"
    ]
    assert result["userErrors"] == []
    assert result["order"]["status"] == "REQUIRES_ACTION"
    assert result["nextAction"]["type"] == "REDIRECT"
    redirect = result["nextAction"]["redirectUrl"]
    assert redirect.startswith(str(shopper.http.base_url)) and "/sandbox/authenticate/" in redirect

    # The redirect back from the bank proves nothing; the order is still waiting.
    assert (await Order.get(id=result["order"]["id"])).status == "REQUIRES_ACTION"
    answer = await shopper.http.post(redirect, json={"outcome": "succeed"}, headers=STAFF_HEADERS)
    assert answer.status_code == 200, answer.text

    completed = (await shopper.data(COMPLETE, {"input": {"paymentId": result["payment"]["id"]}}))["completePayment"]
    assert completed["userErrors"] == []
    assert completed["payment"]["status"] == "PAID"
    assert completed["order"]["status"] == "PAID"


async def test_failed_authentication_leaves_the_order_payable(shopper: Shopper) -> None:
    price = await make_price(4200)
    result = (await shopper.data(CHECKOUT, {"input": checkout_input(price, "pm_card_authenticationRequired")}))[
        "checkout"
    ]
    await shopper.http.post(result["nextAction"]["redirectUrl"], json={"outcome": "fail"}, headers=STAFF_HEADERS)
    completed = (await shopper.data(COMPLETE, {"input": {"paymentId": result["payment"]["id"]}}))["completePayment"]
    assert completed["payment"]["status"] == "FAILED"
    assert completed["order"]["status"] == "PENDING"


async def test_pay_order_after_a_decline_pays_the_same_order(shopper: Shopper) -> None:
    price = await make_price(800)
    declined = (await shopper.data(CHECKOUT, {"input": checkout_input(price, "pm_card_chargeDeclined")}))["checkout"]
    order_id = declined["order"]["id"]
    paid = (
        await shopper.data(
            PAY_ORDER,
            {"input": {"orderId": order_id, "paymentMethod": "pm_card_visa", "idempotencyKey": new_key()}},
        )
    )["payOrder"]
    assert paid["userErrors"] == []
    assert paid["order"]["id"] == order_id
    assert paid["order"]["status"] == "PAID"
    assert [p["status"] for p in paid["order"]["payments"]] == ["FAILED", "PAID"]

    again = (
        await shopper.data(
            PAY_ORDER,
            {"input": {"orderId": order_id, "paymentMethod": "pm_card_visa", "idempotencyKey": new_key()}},
        )
    )["payOrder"]
    assert [e["code"] for e in again["userErrors"]] == ["ALREADY_PAID"]
    assert await Payment.filter(order_id=order_id).count() == 2


async def test_unknown_price_and_bad_quantity_change_nothing(shopper: Shopper) -> None:
    price = await make_price(800)
    before = await Order.all().count()
    bad_price = checkout_input(price)
    bad_price["items"][0]["priceId"] = "00000000-0000-0000-0000-000000000000"
    result = (await shopper.data(CHECKOUT, {"input": bad_price}))["checkout"]
    assert [(e["code"], e["field"]) for e in result["userErrors"]] == [("NOT_FOUND", "items.0.priceId")]
    result = (await shopper.data(CHECKOUT, {"input": checkout_input(price, quantity=0)}))["checkout"]
    assert [(e["code"], e["field"]) for e in result["userErrors"]] == [("INVALID_INPUT", "items.0.quantity")]
    assert await Order.all().count() == before


async def test_a_cart_of_several_prices_is_priced_line_by_line_from_the_catalog(shopper: Shopper) -> None:
    first, second = await make_price(250, "EUR", name="Tea"), await make_price(1200, "EUR", name="Pot")
    cart = checkout_input(first, quantity=4)
    cart["items"].append({"priceId": str(second.id), "quantity": 1})
    result = (await shopper.data(CHECKOUT, {"input": cart}))["checkout"]
    assert result["userErrors"] == []
    lines = {line["productName"]: line for line in result["order"]["lineItems"]}
    assert {name: (line["quantity"], line["total"]["amount"]) for name, line in lines.items()} == {
        "Tea": (4, 1000),
        "Pot": (1, 1200),
    }
    assert result["order"]["total"]["amount"] == 2200


async def test_a_price_not_for_sale_is_refused_and_changes_nothing(shopper: Shopper) -> None:
    retired = await make_price(800)
    await Price.filter(id=retired.id).update(active=False)
    of_retired_product = await make_price(800)
    await Product.filter(id=of_retired_product.product_id).update(active=False)
    recurring = await make_price(800)
    await Price.filter(id=recurring.id).update(type=PriceType.RECURRING, recurring_interval=RecurringInterval.MONTH)
    in_dollars, in_euros = await make_price(800, "USD"), await make_price(800, "EUR")
    mixed = checkout_input(in_dollars)
    mixed["items"].append({"priceId": str(in_euros.id), "quantity": 1})
    before = await Order.all().count()
    refusals = []
    for cart in (checkout_input(retired), checkout_input(of_retired_product), checkout_input(recurring), mixed):
        result = (await shopper.data(CHECKOUT, {"input": cart}))["checkout"]
        refusals.append([(e["code"], e["field"]) for e in result["userErrors"]])
    assert refusals == [
        [("NOT_FOUND", "items.0.priceId")],
        [("NOT_FOUND", "items.0.priceId")],
        [("INVALID_INPUT", "items.0.priceId")],
        [("INVALID_INPUT", "items")],
    ]
    assert await Order.all().count() == before


async def test_anonymous_checkout_is_refused(shopper: Shopper) -> None:
    price = await make_price(800)
    response = await shopper.http.post(
        "/graphql", json={"query": CHECKOUT, "variables": {"input": checkout_input(price)}}
    )
    result = response.json()["data"]["checkout"]
    assert [e["code"] for e in result["userErrors"]] == ["UNAUTHENTICATED"]


async def test_the_return_url_must_be_on_the_shops_own_site(shopper: Shopper) -> None:
    price = await make_price(500)
    for url in ("https://evil.example/phish", "javascript:alert(1)", "//shop.example/return"):
        result = (await shopper.data(CHECKOUT, {"input": checkout_input(price) | {"returnUrl": url}}))["checkout"]
        assert [(e["code"], e["field"]) for e in result["userErrors"]] == [("INVALID_INPUT", "returnUrl")]
    ok = (
        await shopper.data(
            CHECKOUT,
            {
                "input": checkout_input(price, "pm_card_authenticationRequired")
                | {"returnUrl": "https://shop.example/done"}
            },
        )
    )["checkout"]
    assert ok["userErrors"] == []
    # The sandbox's 3-D Secure page sends the shopper back there (the redirect itself moves nothing).
    page_url = ok["nextAction"]["redirectUrl"]
    form = {"outcome": "succeed", "csrf_token": await form_token(shopper.http, page_url.rsplit("/", 1)[1])}
    page = await shopper.http.post(page_url, data=form)
    assert page.status_code == 303 and page.headers["location"].startswith("https://shop.example/done?")


def watch_charges(monkeypatch: pytest.MonkeyPatch, request_id: str, seen: Callable[[], None]) -> None:
    """Call `seen` as the request `request_id`'s charge is about to be sent (every gateway call goes
    through the guard; other tests' late webhooks may call it meanwhile)."""
    call = CallGuard.call

    async def watched(self: CallGuard, gateway: str, operation: str, send: Callable[[], Awaitable[Any]]) -> Any:
        if operation == "charge" and current_request_id() == request_id:
            seen()
        return await call(self, gateway, operation, send)

    monkeypatch.setattr(CallGuard, "call", watched)


async def checkout_as(shopper: Shopper, request_id: str) -> dict[str, Any]:
    price = await make_price(1999)
    response = await shopper.http.post(
        "/graphql",
        json={"query": CHECKOUT, "variables": {"input": checkout_input(price)}},
        headers={"authorization": f"Bearer {shopper.token}", "x-request-id": request_id},
    )
    result: dict[str, Any] = response.json()["data"]["checkout"]
    return result


async def test_the_gateway_is_called_with_no_database_connection_held(
    shopper: Shopper, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A slow gateway must not keep a connection from the pool's other users: the checkout's reads and
    its order's transaction end before the charge is sent."""
    outside: BaseDBAsyncClient = connections.get("default")  # no transaction, no `one_connection` block
    request_id = f"held-{uuid.uuid4().hex}"
    clients: list[BaseDBAsyncClient] = []
    watch_charges(monkeypatch, request_id, lambda: clients.append(connections.get("default")))
    assert (await checkout_as(shopper, request_id))["order"]["status"] == "PAID"
    assert clients == [outside]


async def test_before_the_gateway_call_a_checkout_takes_two_connections_from_the_pool(
    shopper: Shopper, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One for its idempotency claim; one for its price and customer reads and its order's transaction
    (`db.one_connection`), instead of one per statement."""
    if is_sqlite(connections.get("default")):
        pytest.skip("the connection pool is PostgreSQL's; proven with PAYQL_TEST_BACKEND=servers")
    request_id = f"pool-{uuid.uuid4().hex}"
    taken: list[str] = []
    acquire = asyncpg.Pool._acquire

    async def counted(self: asyncpg.Pool, timeout: float | None) -> Any:
        if current_request_id() == request_id:
            taken.append("connection")
        return await acquire(self, timeout)

    monkeypatch.setattr(asyncpg.Pool, "_acquire", counted)
    taken_before_the_charge: list[int] = []
    watch_charges(monkeypatch, request_id, lambda: taken_before_the_charge.append(len(taken)))
    assert (await checkout_as(shopper, request_id))["order"]["status"] == "PAID"
    assert taken_before_the_charge == [2]
