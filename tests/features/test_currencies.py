"""Zero- and three-decimal currencies stay exact from catalog to gateway to ledger."""

from __future__ import annotations

import pytest

from db.models import Payment, PaymentEvent
from gateways.sandbox.processor import SandboxProcessor
from tests.testkit import CHECKOUT, Shopper, checkout_input, make_price


@pytest.mark.parametrize(
    ("currency", "unit_amount", "quantity", "total", "decimal", "exponent"),
    [
        ("JPY", 3500, 3, 10500, "10500", 0),
        ("KWD", 1234, 3, 3702, "3.702", 3),
        ("USD", 1999, 3, 5997, "59.97", 2),
        ("JPY", 9_999_999, 10, 99_999_990, "99999990", 0),
    ],
)
async def test_amounts_are_exact_end_to_end(
    shopper: Shopper,
    sandbox: SandboxProcessor,
    currency: str,
    unit_amount: int,
    quantity: int,
    total: int,
    decimal: str,
    exponent: int,
) -> None:
    price = await make_price(unit_amount, currency)
    result = (await shopper.data(CHECKOUT, {"input": checkout_input(price, quantity=quantity)}))["checkout"]
    assert result["userErrors"] == []
    assert result["order"]["total"] == {"amount": total, "currency": currency, "decimal": decimal, "exponent": exponent}
    assert result["order"]["lineItems"][0]["unitAmount"] == {"amount": unit_amount, "currency": currency}
    payment = await Payment.get(id=result["payment"]["id"])
    assert (payment.amount, payment.amount_captured, payment.currency) == (total, total, currency)
    intent = await sandbox.retrieve(payment.gateway_reference or "")
    assert (intent.amount, intent.amount_received, intent.currency.upper()) == (total, total, currency)
    captured = await PaymentEvent.get(payment_id=payment.id, type="CAPTURED")
    assert (captured.amount, captured.currency) == (total, currency)


async def test_a_cart_mixing_currencies_is_refused(shopper: Shopper) -> None:
    usd = await make_price(100, "USD")
    jpy = await make_price(100, "JPY")
    variables = {"input": checkout_input(usd) | {"items": [{"priceId": str(usd.id)}, {"priceId": str(jpy.id)}]}}
    result = (await shopper.data(CHECKOUT, variables))["checkout"]
    assert [(e["code"], e["field"]) for e in result["userErrors"]] == [("INVALID_INPUT", "items")]
