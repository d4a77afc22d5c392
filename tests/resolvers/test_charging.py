"""Charging an order: with the application's own "already paid or in progress" check bypassed, the
database alone refuses a second live payment, and the caller gets the usual clean userError."""

from __future__ import annotations

import asyncio

import pytest

from db.models import Order, Payment
from gateways.sandbox.processor import SandboxProcessor
from resolvers import charging
from tests.testkit import CHECKOUT, PAY_ORDER, Shopper, checkout_input, make_price, new_key


@pytest.fixture
def unchecked_payments(monkeypatch: pytest.MonkeyPatch) -> None:
    """The server shares this process: turn off create_payment's check so only the index is left."""
    monkeypatch.setattr(charging, "refuse_if_not_payable", lambda order, payments: None)


def pay_again(order_id: str) -> dict[str, object]:
    return {"input": {"orderId": order_id, "paymentMethod": "pm_card_visa", "idempotencyKey": new_key()}}


async def charges_for(sandbox: SandboxProcessor, order_id: str) -> int:
    return len([i for i in await sandbox.list_payment_intents() if i.metadata.get("payql_order_id") == order_id])


@pytest.mark.parametrize(
    "payment_method", ["pm_card_visa", "pm_card_authenticationRequired"], ids=["paid", "in-flight"]
)
async def test_the_database_refuses_a_second_payment_for_a_paid_or_in_flight_order(
    shopper: Shopper, sandbox: SandboxProcessor, unchecked_payments: None, payment_method: str
) -> None:
    price = await make_price(1900)
    first = (await shopper.data(CHECKOUT, {"input": checkout_input(price, payment_method)}))["checkout"]
    order_id = first["order"]["id"]

    again = (await shopper.data(PAY_ORDER, pay_again(order_id)))["payOrder"]

    assert [e["code"] for e in again["userErrors"]] == ["PAYMENT_IN_PROGRESS"]
    assert [str(p.id) for p in await Payment.filter(order_id=order_id)] == [first["payment"]["id"]]
    assert await charges_for(sandbox, order_id) == 1


async def test_concurrent_payments_of_one_order_make_one_payment(
    shopper: Shopper, sandbox: SandboxProcessor, unchecked_payments: None
) -> None:
    price = await make_price(2300)
    declined = (await shopper.data(CHECKOUT, {"input": checkout_input(price, "pm_card_chargeDeclined")}))["checkout"]
    order_id = declined["order"]["id"]

    results = await asyncio.gather(*(shopper.data(PAY_ORDER, pay_again(order_id)) for _ in range(4)))

    errors = sorted(e["code"] for r in results for e in r["payOrder"]["userErrors"])
    assert errors == ["PAYMENT_IN_PROGRESS"] * 3
    statuses = sorted(p.status for p in await Payment.filter(order_id=order_id))
    assert statuses == ["FAILED", "PAID"]
    assert (await Order.get(id=order_id)).status == "PAID"
    assert await charges_for(sandbox, order_id) == 2  # the declined attempt and one success


async def test_a_payment_method_of_kilobytes_is_stored_and_a_larger_one_refused(shopper: Shopper) -> None:
    """Client-side encrypted card data (several encrypted fields as JSON) runs to kilobytes: it is taken and
    stored whole (a TEXT column, migration 0010); beyond `MAX_PAYMENT_METHOD_LENGTH` it is refused."""
    price = await make_price(1900)
    long_method = "pm_card_visa_" + "e" * 4_000  # not a sandbox card: the gateway declines, the row stays
    taken = (await shopper.data(CHECKOUT, {"input": checkout_input(price, long_method)}))["checkout"]
    stored = await Payment.get(order_id=taken["order"]["id"])  # reached the gateway, which refused it
    assert stored.payment_method == long_method

    too_long = "pm_" + "e" * charging.MAX_PAYMENT_METHOD_LENGTH
    refused = (await shopper.data(CHECKOUT, {"input": checkout_input(price, too_long)}))["checkout"]
    assert [(e["code"], e["field"]) for e in refused["userErrors"]] == [("INVALID_INPUT", "paymentMethod")]
    assert refused["order"] is None or refused["order"]["payments"] == []
