"""Helpers shared by the tests: a GraphQL client over real HTTP, tokens and a catalog factory."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx

from db.models import Price, PriceType, Product
from gateways.sandbox.package import PreparedSandbox
from gateways.sandbox.processor.webhook_delivery import WebhookDeliverer
from gateways.sandbox.settings import SandboxSettings
from jobs.in_process import InProcessQueue
from jobs.saq_queue import SaqJobQueue
from payql.auth import mint_token
from payql.settings import Settings
from payql.wiring import Services

TEST_JWT_SECRET = "payql-test-secret-0123456789abcdef0123456789"
TEST_WEBHOOK_SECRET = "whsec_payql_test_current"
TEST_OLD_WEBHOOK_SECRET = "whsec_payql_test_previous"
# base64 32-byte keys that seal the test server's personal data columns, and its blind index key.
TEST_DATA_KEY = "cGF5cWwtdGVzdC1kYXRhLWtleS0wMDAwMDAwMDAwMDA="
TEST_DATA_INDEX_KEY = "cGF5cWwtdGVzdC1pbmRleC1rZXktMDAwMDAwMDAwMDA="
TEST_DATA_KEY_ENV = {"PAYQL_DATA_KEYS": TEST_DATA_KEY, "PAYQL_DATA_INDEX_KEY": TEST_DATA_INDEX_KEY}


def token_for(subject: str, *, admin: bool = False) -> str:
    return mint_token(TEST_JWT_SECRET, subject, admin=admin, email=email_of(subject))


def email_of(subject: str) -> str:
    return f"{subject}@shoppers.example"


@dataclass
class Shopper:
    """A GraphQL caller with its own identity."""

    http: httpx.AsyncClient
    subject: str
    admin: bool = False

    @property
    def token(self) -> str:
        return token_for(self.subject, admin=self.admin)

    async def gql(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        response = await self.http.post(
            "/graphql",
            json={"query": query, "variables": variables or {}},
            headers={"authorization": f"Bearer {self.token}"},
        )
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    async def data(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        body = await self.gql(query, variables)
        assert "errors" not in body, body
        result: dict[str, Any] = body["data"]
        return result


async def make_price(amount: int, currency: str = "USD", name: str | None = None) -> Price:
    product = await Product.create(name=name or f"Test product {uuid.uuid4().hex[:6]}")
    return await Price.create(product=product, currency=currency, unit_amount=amount, type=PriceType.ONE_TIME)


def new_key() -> str:
    # Hyphenated: 32 bare hex digits can hold a Luhn-valid run that the edge refuses as a card number.
    return str(uuid.uuid4())


ORDER_FIELDS = """
  id status total { amount currency decimal exponent }
  lineItems { productName quantity unitAmount { amount currency } total { amount currency } }
  payments { id status gateway gatewayReference declineCode
             amount { amount currency } amountCaptured { amount } amountAuthorized { amount } }
"""

PAYLOAD = f"""
  order {{ {ORDER_FIELDS} }}
  payment {{ id status declineCode amount {{ amount currency }} amountCaptured {{ amount }} }}
  nextAction {{ type redirectUrl clientSecret }}
  userErrors {{ code field message }}
"""

CHECKOUT = f"mutation($input: CheckoutInput!) {{ checkout(input: $input) {{ {PAYLOAD} }} }}"
PAY_ORDER = f"mutation($input: PayOrderInput!) {{ payOrder(input: $input) {{ {PAYLOAD} }} }}"
CAPTURE = f"mutation($input: CapturePaymentInput!) {{ capturePayment(input: $input) {{ {PAYLOAD} }} }}"
CANCEL = f"mutation($input: CancelPaymentInput!) {{ cancelPayment(input: $input) {{ {PAYLOAD} }} }}"
COMPLETE = f"mutation($input: CompletePaymentInput!) {{ completePayment(input: $input) {{ {PAYLOAD} }} }}"


def checkout_input(
    price: Price,
    payment_method: str = "pm_card_visa",
    *,
    quantity: int = 1,
    key: str | None = None,
    capture_method: str = "AUTOMATIC",
) -> dict[str, Any]:
    return {
        "items": [{"priceId": str(price.id), "quantity": quantity}],
        "gateway": "sandbox",
        "paymentMethod": payment_method,
        "captureMethod": capture_method,
        "idempotencyKey": key or new_key(),
    }


def sandbox_settings(settings: Settings) -> SandboxSettings:
    """The sandbox package's settings within the test server's settings."""
    found = settings.gateway("sandbox")
    assert isinstance(found, SandboxSettings)
    return found


def sandbox_deliverer(services: Services) -> WebhookDeliverer | None:
    """The test server's sandbox webhook deliverer (None in a process without background work)."""
    prepared = services.prepared.get("sandbox")
    return prepared.deliverer if isinstance(prepared, PreparedSandbox) else None


async def settle(services: Services, timeout: float = 60.0) -> None:
    """Wait until the sandbox has delivered its webhooks and every queued job has run. The timeout only bounds
    a test that would otherwise hang: CI runs both backends at once on two cores, where a settle after a busy
    fixture can take tens of seconds."""

    deliverer = sandbox_deliverer(services)

    async def quiet() -> None:
        while True:
            if deliverer is not None:
                await deliverer.idle()
            if isinstance(services.queue, InProcessQueue):
                await services.queue.drain()
                busy = 0
            else:
                assert isinstance(services.queue, SaqJobQueue)
                busy = await services.queue.saq_queue.count("incomplete")
            if not busy and (deliverer is None or not deliverer.status()["pending"]):
                return
            await asyncio.sleep(0.05)

    await asyncio.wait_for(quiet(), timeout)


@asynccontextmanager
async def sandbox_webhooks_held(services: Services) -> AsyncIterator[None]:
    """Earlier work settled, then every sandbox webhook delivery held inside the block; on leaving, what was
    held is sent and settled."""
    deliverer = sandbox_deliverer(services)
    assert deliverer is not None
    await settle(services)
    deliverer.switches.hold()
    try:
        yield
    finally:
        deliverer.switches.reset()
        await settle(services)


async def eventually(check: Callable[[], Awaitable[object]], timeout: float = 20.0) -> None:
    """Poll an async condition until it holds (for effects of background jobs)."""

    async def poll() -> None:
        while not await check():
            await asyncio.sleep(0.05)

    await asyncio.wait_for(poll(), timeout)
