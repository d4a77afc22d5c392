"""The emulator's own wire behaviour over raw HTTP: the shapes the adapter tests rely on, checked directly."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from tests.paypal_emulator import PayPalEmulator


def _body(intent: str = "CAPTURE", *, invoice_id: str | None = None) -> dict[str, Any]:
    unit: dict[str, Any] = {"amount": {"currency_code": "USD", "value": "10.00"}}
    if invoice_id:
        unit["invoice_id"] = invoice_id
    return {"intent": intent, "purchase_units": [unit]}


@pytest.fixture
async def api(emulator: PayPalEmulator) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=emulator.base_url) as client:
        token = await client.post(
            "/v1/oauth2/token",
            data={"grant_type": "client_credentials"},
            auth=(emulator.client_id, emulator.client_secret),
        )
        assert token.status_code == 200
        assert token.json()["token_type"] == "Bearer" and token.json()["expires_in"] == 32400
        client.headers["Authorization"] = f"Bearer {token.json()['access_token']}"
        yield client


async def _approved_order(api: httpx.AsyncClient, body: dict[str, Any]) -> str:
    created = await api.post("/v2/checkout/orders", json=body)
    assert created.status_code == 201 and created.json()["status"] == "CREATED"
    order_id: str = created.json()["id"]
    assert (await api.post(f"/emulator/orders/{order_id}/approve")).json()["status"] == "APPROVED"
    return order_id


async def test_oauth_errors(emulator: PayPalEmulator) -> None:
    async with httpx.AsyncClient(base_url=emulator.base_url) as client:
        bad = await client.post("/v1/oauth2/token", data={"grant_type": "client_credentials"}, auth=("x", "y"))
        assert (bad.status_code, bad.json()["error"]) == (401, "invalid_client")
        anonymous = await client.get("/v2/checkout/orders/NOPE")
        assert (anonymous.status_code, anonymous.json()["error"]) == (401, "invalid_token")


async def test_not_found_body(api: httpx.AsyncClient) -> None:
    response = await api.get("/v2/checkout/orders/NOPE")
    body = response.json()
    assert response.status_code == 404 and body["name"] == "RESOURCE_NOT_FOUND"
    assert body["details"][0]["issue"] == "INVALID_RESOURCE_ID" and body["debug_id"]


async def test_bad_create_requests(api: httpx.AsyncClient) -> None:
    missing = await api.post("/v2/checkout/orders", json={"purchase_units": []})
    assert (missing.status_code, missing.json()["name"]) == (400, "INVALID_REQUEST")
    precise = await api.post(
        "/v2/checkout/orders",
        json={"intent": "CAPTURE", "purchase_units": [{"amount": {"currency_code": "JPY", "value": "1.5"}}]},
    )
    assert precise.status_code == 422 and precise.json()["details"][0]["issue"] == "DECIMAL_PRECISION"


async def test_duplicate_invoice_id(api: httpx.AsyncClient) -> None:
    first = await _approved_order(api, _body(invoice_id="INV-1"))
    assert (await api.post(f"/v2/checkout/orders/{first}/capture")).status_code == 201
    second = await _approved_order(api, _body(invoice_id="INV-1"))
    refused = await api.post(f"/v2/checkout/orders/{second}/capture")
    assert refused.status_code == 422
    assert refused.json()["name"] == "UNPROCESSABLE_ENTITY"
    assert refused.json()["details"][0]["issue"] == "DUPLICATE_INVOICE_ID"


async def test_mock_response_header_declines(api: httpx.AsyncClient) -> None:
    order_id = await _approved_order(api, _body())
    declined = await api.post(
        f"/v2/checkout/orders/{order_id}/capture",
        headers={"PayPal-Mock-Response": '{"mock_application_codes": "INSTRUMENT_DECLINED"}'},
    )
    body = declined.json()
    assert declined.status_code == 422 and body["details"][0]["issue"] == "INSTRUMENT_DECLINED"
    assert any(link["rel"] == "redirect" for link in body["links"])
    assert (await api.get(f"/v2/checkout/orders/{order_id}")).json()["status"] == "CREATED"


async def test_intent_mismatch_and_already_captured(api: httpx.AsyncClient) -> None:
    order_id = await _approved_order(api, _body())
    wrong = await api.post(f"/v2/checkout/orders/{order_id}/authorize")
    assert wrong.json()["details"][0]["issue"] == "ACTION_DOES_NOT_MATCH_INTENT"
    assert (await api.post(f"/v2/checkout/orders/{order_id}/capture")).status_code == 201
    again = await api.post(f"/v2/checkout/orders/{order_id}/capture")
    assert again.json()["details"][0]["issue"] == "ORDER_ALREADY_CAPTURED"


async def test_void_reauthorize_and_request_id_replay(api: httpx.AsyncClient) -> None:
    order_id = await _approved_order(api, _body("AUTHORIZE"))
    order = (await api.post(f"/v2/checkout/orders/{order_id}/authorize")).json()
    auth_id = order["purchase_units"][0]["payments"]["authorizations"][0]["id"]
    reauth = await api.post(f"/v2/payments/authorizations/{auth_id}/reauthorize", json={})
    assert reauth.status_code == 201 and reauth.json()["id"] != auth_id
    headers = {"PayPal-Request-Id": "void-1"}
    first = await api.post(f"/v2/payments/authorizations/{auth_id}/void", headers=headers)
    replay = await api.post(f"/v2/payments/authorizations/{auth_id}/void", headers=headers)
    assert first.status_code == replay.status_code == 204
    again = await api.post(f"/v2/payments/authorizations/{auth_id}/void")
    assert again.json()["details"][0]["issue"] == "PREVIOUSLY_VOIDED"
