"""localstripe as a separate process for the Stripe adapter tests, plus a real-SDK client to set up cards.

localstripe (GPL-3) is a dev dependency only: started through `localstripe_launcher.py` on a random port,
its state file in this session's temp folder, stopped at the end. PayQL code never imports it.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from domain.money import Money
from domain.statuses import CaptureMethod
from gateways.stripe.adapter import StripeGateway
from gateways.stripe.client import StripeApi
from gateways.types import ChargeRequest
from tests.gateways.stripe.servers import ScriptedStripe, serve
from tests.ports import free_port

LAUNCHER = Path(__file__).with_name("localstripe_launcher.py")
FIXTURES = Path(__file__).parents[2] / "fixtures" / "stripe"
SCRIPTED_SECRET_KEY = "sk_test_payql_scripted"
SECRET_KEY = "sk_test_payql_localstripe"
WEBHOOK_SECRET = "whsec_payql_localstripe_current"
OLD_WEBHOOK_SECRET = "whsec_payql_localstripe_previous"

# localstripe's test cards (see its resources.py): 3155 needs 3-D Secure; 0341 is declined when charged.
CARD_OK = "4242424242424242"
CARD_3DS = "4000002500003155"
CARD_DECLINED_AT_CHARGE = "4000000000000341"
CARD_DECLINED_AT_ATTACH = "4000000000000002"


@pytest.fixture(scope="session")
async def localstripe(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[str]:
    async with running_localstripe(tmp_path_factory.mktemp("localstripe")) as base_url:
        yield base_url


@asynccontextmanager
async def running_localstripe(folder: Path) -> AsyncIterator[str]:
    """A localstripe process of its own (state in `folder`), answering at the URL yielded; stopped on exit."""
    port = free_port()
    log_path = folder / "localstripe.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, str(LAUNCHER), str(port)],
            env={**os.environ, "PAYQL_LOCALSTRIPE_STATE": str(folder / "state.pickle")},
            cwd=folder,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    base_url = f"http://127.0.0.1:{port}"
    try:
        await _wait_until_answering(base_url, process, log_path)
        yield base_url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


async def _wait_until_answering(base_url: str, process: subprocess.Popen[bytes], log_path: Path) -> None:
    async with httpx.AsyncClient(base_url=base_url, auth=(SECRET_KEY, ""), timeout=2) as client:
        for _ in range(300):
            if process.poll() is not None:
                raise RuntimeError(f"localstripe exited with {process.returncode}:\n{log_path.read_text()}")
            try:
                if (await client.get("/v1/balance")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.1)
    raise RuntimeError(f"localstripe did not answer in 30 s:\n{log_path.read_text()}")


@pytest.fixture(scope="session")
async def stripe_api(localstripe: str) -> AsyncIterator[StripeApi]:
    """The real SDK against localstripe, for what a browser would do (creating payment methods)."""
    api = StripeApi(SECRET_KEY, base_url=localstripe, timeout=10)
    yield api
    await api.aclose()


@pytest.fixture
async def gateway(localstripe: str) -> AsyncIterator[StripeGateway]:
    gateway = StripeGateway(
        SECRET_KEY, webhook_secrets=[WEBHOOK_SECRET, OLD_WEBHOOK_SECRET], base_url=localstripe, timeout=10
    )
    yield gateway
    await gateway.aclose()


async def card_payment_method(api: StripeApi, number: str) -> str:
    method = await api.client.v1.payment_methods.create_async(
        {"type": "card", "card": {"number": number, "exp_month": 12, "exp_year": 2034, "cvc": "123"}}
    )
    return method.id


def charge_request(
    payment_method: str,
    amount: int = 2500,
    *,
    currency: str = "EUR",
    capture: CaptureMethod = CaptureMethod.AUTOMATIC,
    payment_id: str | None = None,
) -> ChargeRequest:
    payment_id = payment_id or f"pay_{uuid.uuid4().hex}"
    return ChargeRequest(
        amount=Money(amount, currency),
        payment_method=payment_method,
        capture_method=capture,
        idempotency_key=f"charge-{payment_id}",
        metadata={"payql_payment_id": payment_id, "payql_order_id": f"ord_{payment_id}"},
    )


def recorded_object(event_type: str) -> dict[str, Any]:
    """The Stripe object inside the recorded `tests/fixtures/stripe/<event_type>.json` event."""
    obj: dict[str, Any] = json.loads((FIXTURES / f"{event_type}.json").read_text())["data"]["object"]
    return obj


@pytest.fixture
async def scripted() -> AsyncIterator[tuple[ScriptedStripe, StripeGateway]]:
    """A gateway pointed at a local server that answers what the test scripts, in Stripe's shapes."""
    stripe = ScriptedStripe()
    async with serve(stripe) as base_url:
        gateway = StripeGateway(SCRIPTED_SECRET_KEY, webhook_secrets=["whsec_x"], base_url=base_url, timeout=0.5)
        yield stripe, gateway
        await gateway.aclose()
