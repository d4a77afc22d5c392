"""The emulator's wire, read raw (no SDK): Square's error body shape, the FAILED payment a decline carries, and
idempotency replays, as api.json describes them (`Error`, `CreatePaymentResponse`, IDEMPOTENCY_KEY_REUSED), for
payments and for the billing endpoints (Customers, Cards, Catalog, Subscriptions, Invoices)."""

from __future__ import annotations

from typing import Any

import httpx

from tests.gateways.square.conftest import NONCE_DECLINED
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


async def test_billing_endpoints_answer_with_square_errors_and_replay_keys(emulator: SquareEmulator) -> None:
    customer = await post(emulator, "/v2/customers", {"idempotency_key": "c1", "email_address": "a@example.com"})
    customer_id = customer.json()["customer"]["id"]
    nameless = await post(emulator, "/v2/customers", {"idempotency_key": "c2", "reference_id": "ours"})
    assert nameless.status_code == 400 and assert_square_error(nameless.json(), "MISSING_REQUIRED_PARAMETER")

    card = {"idempotency_key": "card-1", "source_id": "cnon:card-nonce-ok", "card": {"customer_id": customer_id}}
    stored, again = await post(emulator, "/v2/cards", card), await post(emulator, "/v2/cards", card)
    assert stored.status_code == 200 and stored.json() == again.json() and len(emulator.billing.cards) == 1
    declined = await post(emulator, "/v2/cards", card | {"idempotency_key": "card-2", "source_id": NONCE_DECLINED})
    assert assert_square_error(declined.json(), "GENERIC_DECLINE")["category"] == "PAYMENT_METHOD_ERROR"
    unverified = await post(
        emulator, "/v2/cards", card | {"idempotency_key": "card-3", "source_id": emulator.sca_nonce()}
    )
    assert assert_square_error(unverified.json(), "CARD_DECLINED_VERIFICATION_REQUIRED")

    phase = {"cadence": "MONTHLY", "pricing": {"type": "STATIC", "price_money": {"amount": 900, "currency": "JPY"}}}
    plan = await post(
        emulator,
        "/v2/catalog/object",
        {
            "idempotency_key": "plan-1",
            "object": {"type": "SUBSCRIPTION_PLAN", "id": "#p", "subscription_plan_data": {"name": "P"}},
        },
    )
    plan_id = plan.json()["catalog_object"]["id"]
    assert plan.json()["id_mappings"] == [{"client_object_id": "#p", "object_id": plan_id}]
    variation = {
        "type": "SUBSCRIPTION_PLAN_VARIATION",
        "id": "#v",
        "subscription_plan_variation_data": {"name": "V", "subscription_plan_id": plan_id, "phases": [phase]},
    }
    other_currency = await post(emulator, "/v2/catalog/object", {"idempotency_key": "var-1", "object": variation})
    assert other_currency.status_code == 400 and assert_square_error(other_currency.json(), "INVALID_VALUE")

    subscription = {
        "idempotency_key": "s1",
        "location_id": emulator.merchant("USD").location_id,
        "customer_id": customer_id,
    }
    unknown_plan = await post(emulator, "/v2/subscriptions", subscription | {"plan_variation_id": "NOPE"})
    assert assert_square_error(unknown_plan.json(), "INVALID_VALUE")["field"] == "plan_variation_id"
    reused = await post(emulator, "/v2/subscriptions", subscription | {"plan_variation_id": "OTHER"})
    assert assert_square_error(reused.json(), "IDEMPOTENCY_KEY_REUSED")
    async with httpx.AsyncClient(base_url=emulator.base_url) as client:
        missing = await client.get(
            "/v2/invoices/inv:0-nope", headers={"Authorization": f"Bearer {emulator.merchant('USD').access_token}"}
        )
    assert missing.status_code == 404 and assert_square_error(missing.json(), "NOT_FOUND")
