"""No card number is stored, logged or sent on, whichever channel brings it in: kept headers
(X-Request-Id, User-Agent, a proxy's X-Forwarded-For; on GraphQL and on webhooks), token claims
(sub, email), inputs whose digits are grouped by dots, NBSP, newlines, tabs, underscores, slashes,
commas, double spaces or written in full-width digits, and errors that would echo a value
(coercion, syntax, operation name).

Everything is sent first; then every byte PayQL wrote is read back: every table of the database,
the sandbox gateway's state file, the Redis keys and values under the test's prefix, the log lines
(as the app's redacting handlers write them), the mailbox, and every answer it gave. Two scans run
over each value: the card detector (any Luhn-valid 13-19 digit run with a card prefix, separators
allowed), and an independent one that drops every non-digit and looks for the numbers we sent.
"""

from __future__ import annotations

import io
import json
import logging
import sqlite3
import time
import unicodedata
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import jwt
import pytest
import redis.asyncio as aioredis
from tortoise import connections

from db.models import AuditRecord, Customer, Dispute, Order, Payment, WebhookEvent
from domain.card_numbers import contains_card_number
from gateways.sandbox.processor import SandboxProcessor
from gateways.stripe_signature import sign
from payql.logging_setup import install_redaction
from payql.settings import Settings
from payql.wiring import Services
from tests.backends import Backend
from tests.client_addresses import PROXY_ADDRESS, client_from
from tests.smtp_server import Received, SmtpServer
from tests.testkit import (
    CHECKOUT,
    TEST_JWT_SECRET,
    TEST_WEBHOOK_SECRET,
    Shopper,
    checkout_input,
    make_price,
    new_key,
    sandbox_settings,
    settle,
)

GROUPS = ["4000", "0077", "7000", "0831"]
PAN = "".join(GROUPS)
OTHER_PANS = ["4242424242424242", "5555555555554444", "378282246310005"]
SENT_PANS = [PAN, *OTHER_PANS]
FULL_WIDTH = str.maketrans("0123456789", "".join(chr(0xFF10 + digit) for digit in range(10)))

REFUND = """mutation($input: RefundPaymentInput!) { refundPayment(input: $input) {
  refund { status } userErrors { code } } }"""
CANCEL_ORDER = """mutation($input: CancelOrderInput!) { cancelOrder(input: $input) { userErrors { code } } }"""
ADD_NOTE = """mutation($input: AddDisputeNoteInput!) { addDisputeNote(input: $input) { userErrors { code } } }"""
SUBMIT = """mutation($input: SubmitDisputeEvidenceInput!) { submitDisputeEvidence(input: $input) {
  dispute { status } userErrors { code } } }"""
RECORD_FULFILLMENT = """mutation($input: RecordFulfillmentInput!) { recordFulfillment(input: $input) {
  userErrors { code } } }"""


def spelled(separator: str) -> str:
    return separator.join(GROUPS)


def luhn_ok(digits: str) -> bool:
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = int(char) * (2 if position % 2 else 1)
        total += value - 9 if value > 9 else value
    return total % 10 == 0


def digits_only(text: str) -> str:
    """Every digit of `text`, in any script, as 0-9; everything else dropped."""
    return "".join(str(unicodedata.decimal(char)) for char in unicodedata.normalize("NFKC", text) if char.isdecimal())


def token(**claims: object) -> str:
    return jwt.encode({"exp": int(time.time()) + 600, **claims}, TEST_JWT_SECRET, algorithm="HS256")


@dataclass
class Client:
    """Raw GraphQL over HTTP, keeping every answer for the final scan."""

    http: httpx.AsyncClient
    answers: list[str] = field(default_factory=list)
    # Answers to requests that must be refused (INVALID_INPUT) or served anonymously (UNAUTHENTICATED).
    refusals: list[dict[str, Any]] = field(default_factory=list)
    anonymous: list[dict[str, Any]] = field(default_factory=list)

    async def post(
        self,
        query: str,
        variables: dict[str, Any] | None = None,
        *,
        bearer: str | None = None,
        headers: dict[str, str] | None = None,
        operation_name: str | None = None,
    ) -> dict[str, Any]:
        sent = dict(headers or {})
        if bearer is not None:
            sent["authorization"] = f"Bearer {bearer}"
        payload: dict[str, Any] = {"query": query, "variables": variables or {}}
        if operation_name is not None:
            payload["operationName"] = operation_name
        response = await self.http.post("/graphql", json=payload, headers=sent)
        self.answers.append(f"{response.status_code} {response.headers} {response.text}")
        if not response.headers.get("content-type", "").startswith("application/json"):
            return {"data": None, "errors": [{"message": response.text, "extensions": {}}]}
        body: dict[str, Any] = response.json()
        return body

    async def refused(self, query: str, variables: dict[str, Any] | None = None, **options: Any) -> None:
        self.refusals.append(await self.post(query, variables, **options))

    async def as_anonymous(self, query: str, variables: dict[str, Any], bearer: str) -> None:
        self.anonymous.append(await self.post(query, variables, bearer=bearer))


def refusal_codes(body: dict[str, Any]) -> list[str | None] | None:
    """INVALID_INPUT alone for a refused request; None when the request got through."""
    if body.get("data") is not None:
        return None
    return [(error.get("extensions") or {}).get("code") for error in body["errors"]]


@pytest.fixture
def log_output() -> Iterator[io.StringIO]:
    """Every log line of the run, through the same redaction the app installs on its handlers."""
    root = logging.getLogger()
    handler = logging.StreamHandler(io.StringIO())
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s %(message)s"))
    # The test's own SMTP server logs each raw line it receives, MIME boundaries included.
    handler.addFilter(lambda record: not record.name.startswith("mail.log"))
    level = root.level
    root.addHandler(handler)
    install_redaction(root)
    root.setLevel(logging.DEBUG)
    try:
        yield handler.stream
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


# --- the channels ---------------------------------------------------------------------------------

CARD_HEADERS = {
    "x-request-id": spelled(" "),
    "user-agent": f"Mozilla/5.0 (card {spelled('-')}) Shop/1.0",
    "x-forwarded-for": spelled("."),
}


async def send_headers(client: Client, shopper: Shopper, services: Services) -> Payment:
    """A clean checkout whose kept headers carry a card: it is served (and the headers cleaned)."""
    price = await make_price(6_000, name="Moka pot")
    body = await client.post(CHECKOUT, {"input": checkout_input(price)}, bearer=shopper.token, headers=CARD_HEADERS)
    assert body["data"]["checkout"]["payment"]["status"] == "PAID", body
    await settle(services)
    return await Payment.get(id=body["data"]["checkout"]["payment"]["id"])


async def assert_headers_were_cleaned(payment: Payment) -> None:
    order = await Order.get(id=payment.order_id)
    assert order.checkout_user_agent == "Mozilla/5.0 (card [REDACTED PAN]) Shop/1.0"
    assert order.checkout_ip is None
    records = await AuditRecord.filter(entity_id=str(payment.id))
    assert records and all(r.request_id and len(r.request_id) == 32 for r in records)


async def send_webhook(http: httpx.AsyncClient) -> str:
    """A signed gateway delivery whose (unsigned) headers carry a card: stored with them redacted."""
    event_id = f"evt_test_{uuid.uuid4().hex}"
    body = json.dumps({"id": event_id, "object": "event", "type": "customer.created", "created": int(time.time())})
    signature = sign(TEST_WEBHOOK_SECRET, int(time.time()), body.encode())
    headers = CARD_HEADERS | {"content-type": "application/json", "stripe-signature": signature}
    response = await http.post("/webhooks/sandbox", content=body, headers=headers)
    assert response.status_code == 200, response.text
    return event_id


async def assert_webhook_headers_were_redacted(event_id: str) -> None:
    row = await WebhookEvent.get(gateway="sandbox", event_id=event_id)
    assert row.headers["user-agent"] == "Mozilla/5.0 (card [REDACTED PAN]) Shop/1.0"
    assert row.headers["x-request-id"] == "[REDACTED PAN]"
    assert row.source_ip is None


async def send_claims(client: Client) -> None:
    """Tokens whose sub or email carry a card are refused: the caller is anonymous."""
    price = await make_price(1_000)
    for claims in (
        {"sub": spelled(" ")},
        {"sub": f"user-{spelled('_')}"},
        {"sub": "customer-card-email", "email": f"{PAN}@shoppers.example"},
        {"sub": "customer-card-email-2", "email": f"a.{spelled('.')}@shoppers.example"},
        {"sub": spelled("-"), "roles": ["admin"]},
    ):
        await client.as_anonymous(CHECKOUT, {"input": checkout_input(price)}, token(**claims))


async def assert_claims_were_refused(client: Client) -> None:
    for body in client.anonymous:
        assert body["data"] is None or body["data"]["checkout"]["order"] is None, body
        assert "UNAUTHENTICATED" in json.dumps(body), body
    assert not await Customer.filter(external_id__in=["customer-card-email", "customer-card-email-2"]).exists()


async def send_inputs(client: Client, shopper: Shopper, admin: Shopper, payment: Payment, dispute: Dispute) -> None:
    """Free text, URLs and keys whose card digits are grouped in every way the detector once missed."""
    price = await make_price(1_000)
    base = checkout_input(price)
    for variables in (
        base | {"paymentMethod": spelled(".")},
        base | {"returnUrl": f"https://shop.example/return?c={spelled('_')}"},
        base | {"idempotencyKey": spelled("/")},
        base | {"paymentMethod": spelled("").translate(FULL_WIDTH)},
        base | {"paymentMethod": spelled("\u200b")},
    ):
        await client.refused(CHECKOUT, {"input": variables}, bearer=shopper.token)
    order_id, payment_id, dispute_id = str(payment.order_id), str(payment.id), str(dispute.id)
    for query, variables in (
        (REFUND, {"paymentId": payment_id, "reason": f"card {spelled(chr(0xA0))}", "idempotencyKey": new_key()}),
        (REFUND, {"paymentId": payment_id, "reason": spelled(" ").translate(FULL_WIDTH), "idempotencyKey": new_key()}),
        (CANCEL_ORDER, {"orderId": order_id, "reason": spelled("  "), "idempotencyKey": new_key()}),
        (ADD_NOTE, {"disputeId": dispute_id, "body": f"the card was\n{spelled(chr(10))}\nthanks"}),
        (SUBMIT, {"disputeId": dispute_id, "idempotencyKey": new_key(), "extraText": spelled("\t")}),
        (
            RECORD_FULFILLMENT,
            {
                "orderId": order_id,
                "carrier": "DHL",
                "trackingNumber": spelled(","),
                "shippedAt": "2026-11-20T10:00:00Z",
                "idempotencyKey": new_key(),
            },
        ),
    ):
        await client.refused(query, {"input": variables}, bearer=admin.token)


async def send_echoing_errors(client: Client, shopper: Shopper) -> None:
    """Values GraphQL itself would repeat in an error: refused before they are parsed or coerced."""
    price = await make_price(1_000)
    bad_quantity = checkout_input(price)
    bad_quantity["items"][0]["quantity"] = OTHER_PANS[0]
    await client.refused(CHECKOUT, {"input": bad_quantity}, bearer=shopper.token)
    item = f'{{priceId: "{price.id}", quantity: %s}}'
    literal = (
        'mutation { checkout(input: {items: [%s], paymentMethod: "pm_card_visa", idempotencyKey: "%s"}) '
        "{ order { id } } }"
    )
    for quantity in (OTHER_PANS[1], f'"{OTHER_PANS[0]}"', '"\\u0034242424242424242"'):
        await client.refused(literal % (item % quantity, new_key()), bearer=shopper.token)
    await client.refused(f"{{ order(id: {OTHER_PANS[2]}x) {{ id }} }}", bearer=shopper.token)
    await client.refused("query Mine { __typename }", bearer=shopper.token, operation_name=f"Pay_{spelled('_')}")


async def open_dispute(
    client: Client, admin: Shopper, payment: Payment, sandbox: SandboxProcessor, services: Services
) -> Dispute:
    """The card-header order is disputed; its evidence (with the user agent) goes to the gateway later."""
    sandbox_dispute = await sandbox.create_dispute(payment.gateway_reference or "", "fraudulent")
    await settle(services)
    dispute = await Dispute.get(gateway="sandbox", gateway_reference=sandbox_dispute.id)
    note = await client.post(
        ADD_NOTE,
        {"input": {"disputeId": str(dispute.id), "body": "Delivered."}},
        bearer=admin.token,
        headers=CARD_HEADERS,
    )
    assert note["data"]["addDisputeNote"]["userErrors"] == [], note
    return dispute


async def submit_evidence(client: Client, admin: Shopper, dispute: Dispute, sandbox: SandboxProcessor) -> str:
    """The evidence as the gateway received it."""
    variables = {"input": {"disputeId": str(dispute.id), "idempotencyKey": new_key(), "extraText": "Signed for."}}
    body = await client.post(SUBMIT, variables, bearer=admin.token, headers=CARD_HEADERS)
    assert body["data"]["submitDisputeEvidence"]["userErrors"] == [], body
    return json.dumps((await sandbox.retrieve_dispute(dispute.gateway_reference)).evidence)


# --- what PayQL wrote -------------------------------------------------------------------------------


async def database_values(backend: Backend) -> list[tuple[str, object]]:
    connection = connections.get("default")
    if backend.is_postgres:
        query = "SELECT tablename AS name FROM pg_tables WHERE schemaname = 'public'"
    else:
        query = "SELECT name FROM sqlite_master WHERE type = 'table'"
    values: list[tuple[str, object]] = []
    for table in [row["name"] for row in await connection.execute_query_dict(query)]:
        values += [(f"db {table}", row) for row in await connection.execute_query_dict(f'SELECT * FROM "{table}"')]
    return values


def sandbox_values(settings: Settings) -> list[tuple[str, object]]:
    state_path = sandbox_settings(settings).state_path
    assert state_path is not None
    with sqlite3.connect(state_path) as state:
        tables = [row[0] for row in state.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        return [
            (f"sandbox {table}", list(row)) for table in tables for row in state.execute(f'SELECT * FROM "{table}"')
        ]


async def redis_values(backend: Backend) -> list[tuple[str, object]]:
    if backend.redis_url is None:
        return []
    client = aioredis.Redis.from_url(backend.redis_url)
    values: list[tuple[str, object]] = []
    try:
        async for key in client.scan_iter(match=backend.redis_prefix + "*"):
            kind = as_text(await client.type(key))
            content: object
            if kind == "string":
                content = await client.get(key)
            elif kind == "hash":
                content = await client.hgetall(key)
            elif kind == "list":
                content = await client.lrange(key, 0, -1)
            elif kind == "set":
                content = await client.smembers(key)
            elif kind == "zset":
                content = await client.zrange(key, 0, -1, withscores=True)
            elif kind == "stream":
                content = await client.xrange(key)
            else:
                content = kind
            values.append((f"redis {key!r}", [key, content]))
    finally:
        await client.aclose()
    return values


def mail_values(number: int, item: Received) -> list[tuple[str, object]]:
    """Envelope, headers and decoded parts; not the MIME boundaries (random 19-digit framing)."""
    values: list[tuple[str, object]] = [(f"mail {number} envelope", [item.mail_from, *item.rcpt_tos])]
    for part in item.message.walk():
        for name, value in part.items():
            shown = part.get_content_type() if name.lower() == "content-type" else str(value)
            values.append((f"mail {number} header {name}", shown))
        if not part.is_multipart():
            values.append((f"mail {number} body", part.get_content()))
    return values


def as_text(value: object) -> object:
    """Bytes decoded, JSON text parsed, containers walked: what the detector reads."""
    if isinstance(value, bytes):
        return as_text(value.decode("utf-8", "replace"))
    if isinstance(value, str):
        try:
            parsed = json.loads(value)
        except ValueError:
            return value
        return as_text(parsed) if isinstance(parsed, dict | list) else value
    if isinstance(value, dict):
        return {str(as_text(k)): as_text(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [as_text(v) for v in value]
    if value is None or isinstance(value, bool | int | float):
        return value
    return str(value)


def card_numbers_in(values: list[tuple[str, object]], ours: set[str]) -> list[str]:
    """Where a card number was found (the place, never the number).

    Every value is searched for the numbers we sent, in any spelling. The card detector reads every
    log line, answer and mail of this test, and every row or key that mentions one of `ours` (this
    test's subjects and ids): other tests' random identities, joined into keys such as
    "customer-1234567/100000/1/minute", can spell a Luhn-valid number by chance.
    """
    found = []
    for place, value in values:
        readable = as_text(value)
        text = str(readable)
        mine = place.startswith(("log", "answer", "mail")) or any(marker in text for marker in ours)
        if any(pan in digits_only(text) for pan in SENT_PANS) or (mine and contains_card_number(readable)):
            found.append(place)
    return found


@pytest.fixture
async def proxied(server: str) -> AsyncIterator[httpx.AsyncClient]:
    """A client behind the test server's trusted proxy, so its X-Forwarded-For is read, not ignored."""
    async with client_from(server, PROXY_ADDRESS) as client:
        yield client


async def test_no_card_number_from_any_channel_is_kept_anywhere(
    proxied: httpx.AsyncClient,
    http: httpx.AsyncClient,
    sandbox: SandboxProcessor,
    services: Services,
    mail_server: SmtpServer,
    backend: Backend,
    server_settings: Settings,
    log_output: io.StringIO,
) -> None:
    assert all(luhn_ok(pan) for pan in SENT_PANS)
    client = Client(proxied)
    # Subjects that end in letters, so no key built from them ends in digits that could join others.
    shopper = Shopper(http, f"shopper-{uuid.uuid4().hex[:8]}-cards")
    admin = Shopper(http, f"staff-{uuid.uuid4().hex[:8]}-cards", admin=True)
    mails_before = len(mail_server.received)

    payment = await send_headers(client, shopper, services)
    dispute = await open_dispute(client, admin, payment, sandbox, services)
    webhook_event_id = await send_webhook(proxied)
    await send_claims(client)
    await send_inputs(client, shopper, admin, payment, dispute)
    await send_echoing_errors(client, shopper)
    evidence = await submit_evidence(client, admin, dispute, sandbox)
    await settle(services)

    written = await database_values(backend)
    written += sandbox_values(server_settings)
    written += await redis_values(backend)
    written += [(f"log line {n}", line) for n, line in enumerate(log_output.getvalue().splitlines())]
    written += [value for n, item in enumerate(mail_server.received[mails_before:]) for value in mail_values(n, item)]
    written += [(f"answer {n}", answer) for n, answer in enumerate(client.answers)]

    assert len(written) > 100 and any(place.startswith("sandbox") for place, _ in written)
    assert any(place.startswith("mail") for place, _ in written)
    assert backend.redis_url is None or any(place.startswith("redis") for place, _ in written)
    ours = {shopper.subject, admin.subject, str(payment.id), str(payment.order_id), str(dispute.id), webhook_event_id}
    ours |= {payment.gateway_reference or str(payment.id), dispute.gateway_reference}
    assert card_numbers_in(written, ours) == []
    # Kept clean the documented way, not by luck: refused, anonymous, replaced or redacted.
    assert [refusal_codes(body) for body in client.refusals] == [["INVALID_INPUT"]] * len(client.refusals)
    await assert_claims_were_refused(client)
    await assert_headers_were_cleaned(payment)
    await assert_webhook_headers_were_redacted(webhook_event_id)
    assert "[REDACTED PAN]" in evidence


async def test_a_roles_claim_that_is_a_string_is_no_role(http: httpx.AsyncClient) -> None:
    body = await Client(http).post(
        REFUND,
        {"input": {"paymentId": str(uuid.uuid4()), "reason": "", "idempotencyKey": new_key()}},
        bearer=token(sub="customer-string-roles", roles="nonadmin"),
    )
    assert "FORBIDDEN" in json.dumps(body), body
