"""A validly signed webhook whose body is hostile JSON (nested thousands deep, not UTF-8, not an
object) is refused with a 400, logged with its reason, and never stored; the same holds for the
PayPal parser."""

from __future__ import annotations

import time

import httpx
import pytest

from db.models import WebhookEvent
from gateways.errors import WebhookRejected
from gateways.paypal.transformers import verified_event as paypal_event
from gateways.stripe_signature import sign
from gateways.stripe_signature import verified_event as stripe_scheme_event
from tests.testkit import TEST_WEBHOOK_SECRET


def nested(depth: int, event_id: str) -> bytes:
    head = f'{{"id": "{event_id}", "type": "payment_intent.succeeded", "created": {int(time.time())}, "data": '
    return head.encode() + b"[" * depth + b"]" * depth + b"}"


async def post_signed(http: httpx.AsyncClient, body: bytes) -> httpx.Response:
    headers = {
        "content-type": "application/json",
        "stripe-signature": sign(TEST_WEBHOOK_SECRET, int(time.time()), body),
    }
    return await http.post("/webhooks/sandbox", content=body, headers=headers)


async def test_a_signed_webhook_nested_five_thousand_deep_is_a_400_and_not_stored(
    http: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    response = await post_signed(http, nested(5_000, "evt_deep_5000"))
    assert response.status_code == 400, response.text
    assert await WebhookEvent.filter(event_id="evt_deep_5000").count() == 0
    assert any("nested more than" in record.getMessage() for record in caplog.records)


async def test_a_signed_webhook_nested_hundreds_deep_is_refused_too(http: httpx.AsyncClient) -> None:
    # Shallow enough for Python's decoder, far deeper than any real event: still refused before it is stored.
    response = await post_signed(http, nested(500, "evt_deep_500"))
    assert response.status_code == 400, response.text
    assert await WebhookEvent.filter(event_id="evt_deep_500").count() == 0


async def test_a_signed_webhook_that_is_not_utf8_is_a_400(http: httpx.AsyncClient) -> None:
    body = b'{"id": "evt_latin1_\xe9", "type": "payment_intent.succeeded", "created": 1}'
    response = await post_signed(http, body)
    assert response.status_code == 400, response.text
    assert await WebhookEvent.filter(event_id__startswith="evt_latin1_").count() == 0


@pytest.mark.parametrize("body", [b'"hello"', b"123", b"null"])
async def test_a_signed_webhook_that_is_not_an_object_is_a_400(http: httpx.AsyncClient, body: bytes) -> None:
    assert (await post_signed(http, body)).status_code == 400


@pytest.mark.parametrize("parse", [stripe_scheme_event, paypal_event])
@pytest.mark.parametrize("depth", [500, 5_000, 50_000])
def test_each_gateway_parser_refuses_deep_nesting_with_a_reason(parse, depth: int) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(WebhookRejected) as refused:
        parse(nested(depth, "evt_parser"))
    assert "nested more than" in refused.value.reason
