"""A browser tokenizes a test card at /sandbox/tokens; only the token reaches GraphQL."""

from __future__ import annotations

import pytest

from tests.testkit import CHECKOUT, Shopper, checkout_input, make_price


@pytest.mark.parametrize(
    ("number", "status", "codes"),
    [
        ("4242424242424242", "PAID", []),
        ("4000000000000002", "PENDING", ["CARD_DECLINED"]),
        ("4000000000009995", "PENDING", ["INSUFFICIENT_FUNDS"]),
        ("4000000000000069", "PENDING", ["EXPIRED_CARD"]),
        ("4000002500003155", "REQUIRES_ACTION", []),
    ],
)
async def test_checkout_with_a_sandbox_token(shopper: Shopper, number: str, status: str, codes: list[str]) -> None:
    tokenized = await shopper.http.post(
        "/sandbox/tokens", json={"number": number, "exp_month": 12, "exp_year": 2040, "cvc": "123"}
    )
    assert tokenized.status_code == 200, tokenized.text
    token = tokenized.json()["id"]
    assert number not in tokenized.text
    price = await make_price(2000)
    result = (await shopper.data(CHECKOUT, {"input": checkout_input(price, token)}))["checkout"]
    assert result["order"]["status"] == status
    assert [e["code"] for e in result["userErrors"]] == codes
