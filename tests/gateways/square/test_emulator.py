"""The emulator's wire, read raw (no SDK): Square's error body shape, the FAILED payment a decline carries, and
idempotency replays, as api.json describes them (`Error`, `CreatePaymentResponse`, IDEMPOTENCY_KEY_REUSED)."""

from __future__ import annotations

from typing import Any

import httpx

from tests.square_emulator import SquareEmulator

# ErrorCategory of api.json.
CATEGORIES = {
    "API_ERROR",
    "AUTHENTICATION_ERROR",
    "INVALID_REQUEST_ERROR",
    "RATE_LIMIT_ERROR",
    "PAYMENT_METHOD_ERROR",
    "REFUND_ERROR",
    "MERCHANT_SUBSCRIPTION_ERROR",
    "EXTERNAL_VENDOR_ERROR",
}


def assert_square_error(body: dict[str, Any], code: str) -> dict[str, Any]:
    [error] = body["errors"]
    assert set(error) <= {"category", "code", "detail", "field"} and error["category"] in CATEGORIES
    assert error["code"] == code and error["detail"]
    return error


async def post(emulator: SquareEmulator, path: str, body: dict[str, Any], token: str | None = None) -> httpx.Response:
    token = token or emulator.merchant("USD").access_token
    async with httpx.AsyncClient(base_url=emulator.base_url) as client:
        return await client.post(path, json=body, headers={"Authorization": f"Bearer {token}"})


def payment_body(key: str, source: str = "cnon:card-nonce-ok", amount: int = 100) -> dict[str, Any]:
    return {"source_id": source, "idempotency_key": key, "amount_money": {"amount": amount, "currency": "USD"}}


async def test_an_unknown_token_is_unauthorized(emulator: SquareEmulator) -> None:
    response = await post(emulator, "/v2/payments", payment_body("k1"), token="EAAA-nobody")
    assert response.status_code == 401
    assert assert_square_error(response.json(), "UNAUTHORIZED")["category"] == "AUTHENTICATION_ERROR"


async def test_a_decline_carries_the_failed_payment(emulator: SquareEmulator) -> None:
    response = await post(emulator, "/v2/payments", payment_body("k2", "cnon:card-nonce-declined"))
    assert response.status_code == 402
    body = response.json()
    assert assert_square_error(body, "GENERIC_DECLINE")["category"] == "PAYMENT_METHOD_ERROR"
    assert body["payment"]["status"] == "FAILED" and body["payment"]["card_details"]["status"] == "FAILED"


async def test_a_key_replays_its_answer_and_refuses_other_data(emulator: SquareEmulator) -> None:
    first = await post(emulator, "/v2/payments", payment_body("k3"))
    again = await post(emulator, "/v2/payments", payment_body("k3"))
    assert first.status_code == again.status_code == 200 and first.json() == again.json()
    other = await post(emulator, "/v2/payments", payment_body("k3", amount=200))
    assert other.status_code == 400
    assert assert_square_error(other.json(), "IDEMPOTENCY_KEY_REUSED")["field"] == "idempotency_key"
    too_long = await post(emulator, "/v2/payments", payment_body("k" * 46))
    assert assert_square_error(too_long.json(), "VALUE_TOO_LONG")["field"] == "idempotency_key"
    assert len(emulator.ledger.payments) == 1
