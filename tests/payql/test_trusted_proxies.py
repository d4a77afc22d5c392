"""The client address is the shopper's only when a trusted proxy says so: X-Forwarded-For from a
PAYQL_TRUSTED_PROXIES peer is believed by the per-IP limits, the audit trail and the dispute
evidence; from any other peer it is ignored."""

from __future__ import annotations

import httpx
import pytest
from limits import parse

from db.models import AuditRecord, Order, Payment
from payql.wiring import Services
from tests.client_addresses import PROXY_ADDRESS, client_from, fresh_address
from tests.testkit import CHECKOUT, checkout_input, make_price, token_for

SHOPPER_ADDRESS = "203.0.113.7"
PRODUCTS = {"query": "{ products { id } }"}


async def checkout_from(client: httpx.AsyncClient, subject: str, forwarded_for: str) -> Payment:
    price = await make_price(1500)
    response = await client.post(
        "/graphql",
        json={"query": CHECKOUT, "variables": {"input": checkout_input(price)}},
        headers={"authorization": f"Bearer {token_for(subject)}", "x-forwarded-for": forwarded_for},
    )
    payload = response.json()["data"]["checkout"]
    assert payload["userErrors"] == [], payload
    return await Payment.get(id=payload["payment"]["id"])


async def test_a_trusted_proxy_gives_the_shoppers_address_to_the_audit_trail_and_the_evidence(server: str) -> None:
    async with client_from(server, PROXY_ADDRESS) as proxy:
        payment = await checkout_from(proxy, "proxied-shopper", f"{SHOPPER_ADDRESS}, {PROXY_ADDRESS}")
    order = await Order.get(id=payment.order_id)
    sources = [record.source_ip for record in await AuditRecord.filter(entity_id=str(payment.id))]
    assert order.checkout_ip == SHOPPER_ADDRESS
    assert sources and set(sources) == {SHOPPER_ADDRESS}


async def test_x_forwarded_for_from_an_untrusted_peer_is_ignored(server: str) -> None:
    peer = fresh_address()
    async with client_from(server, peer) as client:
        payment = await checkout_from(client, "spoofing-shopper", SHOPPER_ADDRESS)
    order = await Order.get(id=payment.order_id)
    sources = [record.source_ip for record in await AuditRecord.filter(entity_id=str(payment.id))]
    assert order.checkout_ip == peer
    assert sources and set(sources) == {peer}


async def test_per_ip_limits_count_the_forwarded_address_only_behind_a_trusted_proxy(
    services: Services, server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(services.ip_limits.anonymous, "_limit", parse("2/minute"))
    first, second = fresh_address(), fresh_address()
    async with client_from(server, PROXY_ADDRESS) as proxy, client_from(server, fresh_address()) as spoofer:
        behind_proxy = [
            (await proxy.post("/graphql", json=PRODUCTS, headers={"x-forwarded-for": shopper})).status_code
            for shopper in (first, first, second, second)
        ]
        spoofed = [
            (await spoofer.post("/graphql", json=PRODUCTS, headers={"x-forwarded-for": fresh_address()})).status_code
            for _ in range(3)
        ]
    assert behind_proxy == [200, 200, 200, 200]  # two shoppers, two counters
    assert spoofed == [200, 200, 429]  # a new X-Forwarded-For per request buys nothing
