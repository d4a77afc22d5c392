"""Manual capture, partial capture and void: staff only, amounts bounded by the authorization."""

from __future__ import annotations

from db.models import Order, PaymentEvent
from tests.testkit import CANCEL, CAPTURE, CHECKOUT, Shopper, checkout_input, make_price, new_key


async def authorize(shopper: Shopper, amount: int = 10_000) -> dict:
    price = await make_price(amount)
    result = (await shopper.data(CHECKOUT, {"input": checkout_input(price, capture_method="MANUAL")}))["checkout"]
    assert result["userErrors"] == []
    assert result["order"]["status"] == "AUTHORIZED"
    assert result["payment"]["status"] == "AUTHORIZED"
    assert result["payment"]["amountCaptured"]["amount"] == 0
    return result


async def test_manual_capture_of_the_whole_authorization(shopper: Shopper, admin: Shopper) -> None:
    authorized = await authorize(shopper)
    captured = (
        await admin.data(CAPTURE, {"input": {"paymentId": authorized["payment"]["id"], "idempotencyKey": new_key()}})
    )["capturePayment"]
    assert captured["userErrors"] == []
    assert captured["payment"]["status"] == "PAID"
    assert captured["payment"]["amountCaptured"]["amount"] == 10_000
    assert captured["order"]["status"] == "PAID"


async def test_partial_capture_releases_the_rest(shopper: Shopper, admin: Shopper) -> None:
    authorized = await authorize(shopper)
    payment_id = authorized["payment"]["id"]
    captured = (
        await admin.data(CAPTURE, {"input": {"paymentId": payment_id, "amount": 6_000, "idempotencyKey": new_key()}})
    )["capturePayment"]
    assert captured["userErrors"] == []
    assert captured["payment"]["amountCaptured"]["amount"] == 6_000
    assert captured["order"]["status"] == "PAID"
    events = await PaymentEvent.filter(payment_id=payment_id, type="CAPTURED")
    assert [e.amount for e in events] == [6_000]
    again = (
        await admin.data(CAPTURE, {"input": {"paymentId": payment_id, "amount": 1_000, "idempotencyKey": new_key()}})
    )["capturePayment"]
    assert [e["code"] for e in again["userErrors"]] == ["INVALID_STATE"]


async def test_capture_more_than_authorized_is_refused(shopper: Shopper, admin: Shopper) -> None:
    authorized = await authorize(shopper, 5_000)
    over = (
        await admin.data(
            CAPTURE,
            {"input": {"paymentId": authorized["payment"]["id"], "amount": 5_001, "idempotencyKey": new_key()}},
        )
    )["capturePayment"]
    assert [(e["code"], e["field"]) for e in over["userErrors"]] == [("INVALID_INPUT", "amount")]
    assert (await Order.get(id=authorized["order"]["id"])).status == "AUTHORIZED"


async def test_void_cancels_the_authorization_and_the_order_can_be_paid_again(shopper: Shopper, admin: Shopper) -> None:
    authorized = await authorize(shopper)
    voided = (
        await admin.data(CANCEL, {"input": {"paymentId": authorized["payment"]["id"], "idempotencyKey": new_key()}})
    )["cancelPayment"]
    assert voided["userErrors"] == []
    assert voided["payment"]["status"] == "CANCELED"
    assert voided["order"]["status"] == "PENDING"
    capture_after_void = (
        await admin.data(CAPTURE, {"input": {"paymentId": authorized["payment"]["id"], "idempotencyKey": new_key()}})
    )["capturePayment"]
    assert [e["code"] for e in capture_after_void["userErrors"]] == ["INVALID_STATE"]


async def test_void_after_capture_is_refused(shopper: Shopper, admin: Shopper) -> None:
    price = await make_price(300)
    paid = (await shopper.data(CHECKOUT, {"input": checkout_input(price)}))["checkout"]
    refused = (await admin.data(CANCEL, {"input": {"paymentId": paid["payment"]["id"], "idempotencyKey": new_key()}}))[
        "cancelPayment"
    ]
    assert [e["code"] for e in refused["userErrors"]] == ["INVALID_STATE"]
    assert (await Order.get(id=paid["order"]["id"])).status == "PAID"


async def test_a_customer_cannot_capture_or_void_even_their_own_payment(shopper: Shopper) -> None:
    authorized = await authorize(shopper)
    payment_id = authorized["payment"]["id"]
    for mutation, name in ((CAPTURE, "capturePayment"), (CANCEL, "cancelPayment")):
        result = (await shopper.data(mutation, {"input": {"paymentId": payment_id, "idempotencyKey": new_key()}}))[name]
        assert [e["code"] for e in result["userErrors"]] == ["FORBIDDEN"]
    assert (await Order.get(id=authorized["order"]["id"])).status == "AUTHORIZED"
