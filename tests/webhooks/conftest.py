"""Fixtures for webhook scenarios: control of the sandbox's deliveries and signed manual posts."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from gateways.sandbox.processor.webhook_switches import WebhookSwitches
from gateways.stripe_signature import sign
from payql.wiring import Services
from tests.testkit import TEST_WEBHOOK_SECRET, sandbox_deliverer, settle


@pytest.fixture
async def switches(services: Services) -> AsyncIterator[WebhookSwitches]:
    """The sandbox deliverer's test switches, reset (and everything delivered) after the test."""
    deliverer = sandbox_deliverer(services)
    assert deliverer is not None
    await settle(services)
    yield deliverer.switches
    deliverer.switches.reset()
    await settle(services)


async def post_event(http: httpx.AsyncClient, event: dict[str, Any]) -> httpx.Response:
    """Deliver one sandbox event ourselves, signed like the sandbox signs it."""
    body = json.dumps(event).encode()
    return await http.post(
        "/webhooks/sandbox",
        content=body,
        headers={
            "content-type": "application/json",
            "stripe-signature": sign(TEST_WEBHOOK_SECRET, int(time.time()), body),
        },
    )
