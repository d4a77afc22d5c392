"""`POST /webhooks/{gateway}`: verification, storage once, size limit and rejections, over HTTP."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import AsyncIterator

import httpx
import pytest

from db.models import WebhookEvent
from gateways.stripe_signature import sign
from tests.testkit import TEST_OLD_WEBHOOK_SECRET, TEST_WEBHOOK_SECRET, settle


def event_body(event_type: str = "customer.created", **fields: object) -> bytes:
    payload = {"id": f"evt_test_{uuid.uuid4().hex}", "object": "event", "type": event_type, "created": int(time.time())}
    payload.update(fields)
    return json.dumps(payload).encode()


async def post(http: httpx.AsyncClient, body: bytes, header: str | None) -> httpx.Response:
    headers = {"content-type": "application/json"}
    if header is not None:
        headers["stripe-signature"] = header
    return await http.post("/webhooks/sandbox", content=body, headers=headers)


def event_id(body: bytes) -> str:
    value: str = json.loads(body)["id"]
    return value


async def stored(body: bytes) -> WebhookEvent | None:
    return await WebhookEvent.get_or_none(gateway="sandbox", event_id=event_id(body))


async def test_a_signed_unknown_event_is_stored_acknowledged_and_ignored(http: httpx.AsyncClient, services) -> None:  # type: ignore[no-untyped-def]
    body = event_body("customer.created", data={"object": {"id": "cus_1"}})
    response = await post(http, body, sign(TEST_WEBHOOK_SECRET, int(time.time()), body))
    assert response.status_code == 200 and response.json() == {"received": True, "duplicate": False}
    await settle(services)
    row = await stored(body)
    assert row is not None and row.body == body.decode() and row.event_type == "customer.created"
    assert row.headers["stripe-signature"].startswith("t=")
    assert row.source_ip == "127.0.0.1"
    assert row.status == "IGNORED"


async def test_the_same_event_is_stored_once(http: httpx.AsyncClient) -> None:
    body = event_body()
    header = sign(TEST_WEBHOOK_SECRET, int(time.time()), body)
    first = await post(http, body, header)
    second = await post(http, body, header)
    assert first.json()["duplicate"] is False and second.json()["duplicate"] is True
    assert await WebhookEvent.filter(event_id=event_id(body)).count() == 1


async def test_a_rotated_secret_is_still_accepted(http: httpx.AsyncClient) -> None:
    body = event_body()
    response = await post(http, body, sign(TEST_OLD_WEBHOOK_SECRET, int(time.time()), body))
    assert response.status_code == 200
    assert await stored(body) is not None


@pytest.mark.parametrize(
    "make_header",
    [
        pytest.param(lambda body: None, id="missing-signature"),
        pytest.param(lambda body: sign("whsec_not_ours", int(time.time()), body), id="wrong-secret"),
        pytest.param(lambda body: f"t={int(time.time())},v1={'0' * 64}", id="forged"),
        pytest.param(lambda body: sign(TEST_WEBHOOK_SECRET, int(time.time()) - 400, body), id="stale"),
        pytest.param(lambda body: sign(TEST_WEBHOOK_SECRET, int(time.time()) + 400, body), id="future"),
        pytest.param(lambda body: "v1=deadbeef", id="garbled"),
    ],
)
async def test_untrusted_deliveries_are_refused_and_not_stored(http: httpx.AsyncClient, make_header) -> None:  # type: ignore[no-untyped-def]
    body = event_body("payment_intent.succeeded")
    response = await post(http, body, make_header(body))
    assert response.status_code == 400
    assert response.json() == {"error": "rejected"}
    assert await stored(body) is None


async def test_a_tampered_body_is_refused(http: httpx.AsyncClient) -> None:
    body = event_body()
    header = sign(TEST_WEBHOOK_SECRET, int(time.time()), body)
    tampered = body.replace(b'"object": "event"', b'"object": "evil"')
    assert tampered != body
    assert (await post(http, tampered, header)).status_code == 400


async def test_malformed_json_is_refused(http: httpx.AsyncClient) -> None:
    body = b'{"id": "evt_1", "type": '
    response = await post(http, body, sign(TEST_WEBHOOK_SECRET, int(time.time()), body))
    assert response.status_code == 400
    assert await WebhookEvent.filter(event_id="evt_1").count() == 0


async def test_an_oversized_body_is_refused_with_413(http: httpx.AsyncClient) -> None:
    body = event_body(padding="x" * (600 * 1024))
    response = await post(http, body, sign(TEST_WEBHOOK_SECRET, int(time.time()), body))
    assert response.status_code == 413
    assert await stored(body) is None


async def test_an_oversized_chunked_body_without_content_length_is_refused_with_413(
    http: httpx.AsyncClient,
) -> None:
    body = event_body(padding="x" * (600 * 1024))

    async def chunks() -> AsyncIterator[bytes]:
        for start in range(0, len(body), 16 * 1024):
            yield body[start : start + 16 * 1024]

    headers = {
        "content-type": "application/json",
        "stripe-signature": sign(TEST_WEBHOOK_SECRET, int(time.time()), body),
    }
    request = http.build_request("POST", "/webhooks/sandbox", content=chunks(), headers=headers)
    assert "content-length" not in request.headers and request.headers["transfer-encoding"] == "chunked"

    response = await http.send(request)

    assert response.status_code == 413
    assert await stored(body) is None


async def test_an_unknown_gateway_is_404(http: httpx.AsyncClient) -> None:
    body = event_body()
    response = await http.post("/webhooks/nope", content=body, headers={"stripe-signature": "t=1,v1=00"})
    assert response.status_code == 404
