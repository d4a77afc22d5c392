"""The X-Request-Id a client sends is kept for tracing only when it fits the audit trail's column."""

from __future__ import annotations

import uuid

import httpx

from db.models import AuditRecord, Payment
from tests.testkit import CHECKOUT, Shopper, checkout_input, make_price


async def checkout_with_request_id(http: httpx.AsyncClient, shopper: Shopper, request_id: str) -> str:
    price = await make_price(1200)
    response = await http.post(
        "/graphql",
        json={"query": CHECKOUT, "variables": {"input": checkout_input(price)}},
        headers={"authorization": f"Bearer {shopper.token}", "x-request-id": request_id},
    )
    body = response.json()
    assert "errors" not in body, body
    payload = body["data"]["checkout"]
    assert payload["userErrors"] == []
    return str(payload["payment"]["id"])


async def test_a_short_request_id_is_kept(http: httpx.AsyncClient, shopper: Shopper) -> None:
    request_id = f"req-{uuid.uuid4()}"
    payment_id = await checkout_with_request_id(http, shopper, request_id)
    payment = await Payment.get(id=payment_id)
    ids = await AuditRecord.filter(entity_id=str(payment.id)).values_list("request_id", flat=True)
    assert ids and set(ids) == {request_id}


async def test_a_request_id_too_long_for_the_audit_trail_is_replaced(http: httpx.AsyncClient, shopper: Shopper) -> None:
    payment_id = await checkout_with_request_id(http, shopper, "r" * 200)
    payment = await Payment.get(id=payment_id)
    ids = await AuditRecord.filter(entity_id=str(payment.id)).values_list("request_id", flat=True)
    assert ids and all(rid and len(rid) <= 64 and rid != "r" * 200 for rid in ids)
