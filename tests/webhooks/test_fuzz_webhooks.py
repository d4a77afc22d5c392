"""Hypothesis fuzzes `POST /webhooks/<gateway>` on the running server, for the sandbox, Stripe and PayPal.

Random bodies under random, malformed or missing signature headers must all be refused with a 400
(never accepted, never a 5xx); random JSON under a valid signature must be stored (an event-shaped
object) or refused (anything else), never a 5xx. Every request must be answered within the hang
bound: a timeout is a failure.

Findings of this fuzzer, fixed (#11): a signed body that is JSON but not UTF-8, signed JSON nested
past the recursion limit, and (on PostgreSQL) NUL characters in a signed event's id or type. Each
class keeps a targeted regression test at the end of this module.

The budget is fixed and the generation derandomized, so a CI run is fast and repeatable. Hypothesis
runs in a worker thread with a blocking client, because the server under test (and the PayPal
emulator whose certificate it fetches) run in the test's own event loop and must keep serving.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
import uuid
import zlib
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from gateways.paypal import PayPalGateway
from gateways.stripe.adapter import StripeGateway
from gateways.stripe_signature import sign
from payql.wiring import Services
from tests.paypal_emulator import PayPalEmulator, running_emulator
from tests.testkit import TEST_OLD_WEBHOOK_SECRET, TEST_WEBHOOK_SECRET, settle

EXAMPLES = 120
HANG_BOUND_SECONDS = 10.0
STRIPE_WEBHOOK_SECRET = "whsec_payql_fuzz_stripe"
FUZZ_SETTINGS = settings(
    max_examples=EXAMPLES,
    derandomize=True,
    database=None,
    deadline=None,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=list(HealthCheck),
)

ZONES = st.sampled_from([UTC, None, timezone(timedelta(hours=14)), timezone(-timedelta(hours=12))])
# Header values as h11 lets a client send them: visible ASCII and obs-text, inner spaces allowed.
header_bytes = st.lists(st.integers(0x21, 0xFF).filter(lambda b: b != 0x7F), max_size=120).map(bytes)
header_text = st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), max_size=120)
digits = st.integers(min_value=-(10**20), max_value=10**20).map(str)
hex_signatures = st.text("0123456789abcdef", min_size=64, max_size=64)
stripe_items = st.tuples(
    st.sampled_from(["t", "v1", "v0", "T", "", "v1 ", "t\t"]),
    st.sampled_from(["=", "", "=="]),
    st.one_of(digits, header_text, hex_signatures),
).map("".join)
# Shaped like the real header (one t, one or more v1) with random values, so parsing gets past its first checks.
well_formed_signatures = st.builds(
    lambda moment, signatures, extra: ",".join([f"t={moment}", *(f"v1={s}" for s in signatures), *extra]),
    st.one_of(digits, header_text, st.just(str(int(time.time())))),
    st.lists(st.one_of(hex_signatures, header_text), min_size=1, max_size=3),
    st.lists(stripe_items, max_size=2),
)
stripe_signatures = st.one_of(
    st.none(),
    header_bytes,
    st.lists(stripe_items, max_size=6).map(",".join).map(str.encode),
    well_formed_signatures.map(str.encode),
)
# Text without NUL: NUL characters are a known finding kept apart (see the end of this module).
texts = st.text(st.characters(codec="utf-8", exclude_characters="\x00"), max_size=40)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | texts,
    lambda children: st.lists(children, max_size=5) | st.dictionaries(texts, children, max_size=5),
    max_leaves=25,
)
bodies = st.one_of(st.binary(max_size=600), json_values.map(lambda value: json.dumps(value).encode()))
STRIPE_EVENT_TYPES = [
    "payment_intent.succeeded",
    "payment_intent.payment_failed",
    "payment_intent.canceled",
    "charge.refunded",
    "refund.updated",
    "charge.dispute.created",
    "charge.dispute.closed",
    "invoice.paid",
    "invoice.payment_failed",
    "customer.subscription.updated",
    "customer.subscription.deleted",
    "checkout.session.completed",
]
PAYPAL_EVENT_TYPES = [
    "CHECKOUT.ORDER.APPROVED",
    "PAYMENT.CAPTURE.COMPLETED",
    "PAYMENT.CAPTURE.DENIED",
    "PAYMENT.CAPTURE.REFUNDED",
    "CUSTOMER.DISPUTE.CREATED",
    "BILLING.SUBSCRIPTION.ACTIVATED",
    "BILLING.SUBSCRIPTION.CANCELLED",
    "PAYMENT.SALE.COMPLETED",
]


def event_ids() -> st.SearchStrategy[str]:
    # Mostly fresh ids (stored), sometimes a repeated one (a duplicate is acknowledged, not stored again).
    return st.one_of(st.builds(lambda: f"evt_fuzz_{uuid.uuid4().hex}"), st.just("evt_fuzz_repeated"), texts)


def stripe_events() -> st.SearchStrategy[dict[str, Any]]:
    """Objects shaped like a Stripe event (id, type, created) with random data inside."""
    return st.fixed_dictionaries(
        {"id": event_ids(), "type": st.one_of(st.sampled_from(STRIPE_EVENT_TYPES), texts)},
        optional={
            "created": st.one_of(st.integers(), st.just(int(time.time())), json_values),
            "object": st.just("event"),
            "data": st.fixed_dictionaries({"object": st.dictionaries(texts, json_values, max_size=6)}),
        },
    )


def paypal_events() -> st.SearchStrategy[dict[str, Any]]:
    """Objects shaped like a PayPal event (id, event_type, create_time) with a random resource."""
    return st.fixed_dictionaries(
        {"id": event_ids(), "event_type": st.one_of(st.sampled_from(PAYPAL_EVENT_TYPES), texts)},
        optional={
            "create_time": st.one_of(st.datetimes(timezones=ZONES).map(lambda moment: moment.isoformat()), texts),
            "resource": st.dictionaries(texts, json_values, max_size=6),
        },
    )


@dataclass
class Fuzzer:
    """Posts deliveries from the worker thread; records every 5xx, hang or unexpected status."""

    client: httpx.Client
    sent: int = 0
    findings: list[str] = field(default_factory=list)

    def post(self, gateway: str, body: bytes, headers: dict[str, bytes], expected: set[int]) -> None:
        self.sent += 1
        try:
            response = self.client.post(f"/webhooks/{gateway}", content=body, headers=headers)
        except httpx.TimeoutException:
            self.findings.append(f"{gateway}: no answer within {HANG_BOUND_SECONDS} s to {headers!r} {body[:200]!r}")
            return
        if response.status_code not in expected:
            self.findings.append(
                f"{gateway}: {response.status_code} (expected {sorted(expected)}) {response.text[:200]}"
                f"\n    headers {headers!r}\n    body {body[:300]!r}"
            )


@pytest.fixture
def fuzzer(server: str) -> Iterator[Fuzzer]:
    with httpx.Client(base_url=server, timeout=HANG_BOUND_SECONDS) as client:
        yield Fuzzer(client)


async def run(fuzzer: Fuzzer, services: Services, deliver: Callable[[], None], *, examples: int = EXAMPLES) -> None:
    """Run the Hypothesis test off the loop, let the stored events settle, then check what was found."""
    await asyncio.to_thread(deliver)
    await settle(services, timeout=60)
    assert fuzzer.sent >= examples
    assert not fuzzer.findings, "\n".join(fuzzer.findings)


@pytest.fixture
def stripe_in_payql(services: Services, monkeypatch: pytest.MonkeyPatch) -> StripeGateway:
    """A Stripe gateway in the running server; it verifies deliveries offline, so it needs no Stripe."""
    gateway = StripeGateway(
        "sk_test_payql_fuzz", webhook_secrets=[STRIPE_WEBHOOK_SECRET], base_url="http://127.0.0.1:9"
    )
    monkeypatch.setitem(services.deps.gateways._gateways, "stripe", gateway)
    return gateway


@pytest.fixture
async def paypal_emulator(services: Services, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[PayPalEmulator]:
    """The PayPal emulator, whose test CA the running server's PayPal gateway trusts for webhook certificates."""
    async with running_emulator() as emulator:
        gateway = PayPalGateway(
            emulator.client_id,
            emulator.client_secret,
            webhook_id=emulator.webhook_id,
            base_url=emulator.base_url,
            cert_host_allowlist=("127.0.0.1",),
            allow_http_cert_url=True,
            webhook_trusted_roots=emulator.signer.ca_pem(),
            timeout=2,
        )
        monkeypatch.setitem(services.deps.gateways._gateways, "paypal", gateway)
        yield emulator
        await gateway.aclose()


async def test_random_deliveries_to_stripe_scheme_endpoints_are_refused(
    fuzzer: Fuzzer, services: Services, stripe_in_payql: StripeGateway
) -> None:
    @FUZZ_SETTINGS
    @given(
        gateway=st.sampled_from(["sandbox", "stripe"]),
        body=bodies,
        signature=stripe_signatures,
        content_type=st.one_of(st.just(b"application/json"), header_bytes),
    )
    def deliver(gateway: str, body: bytes, signature: bytes | None, content_type: bytes) -> None:
        headers = {"content-type": content_type}
        if signature is not None:
            headers["stripe-signature"] = signature
        fuzzer.post(gateway, body, headers, {400})

    await run(fuzzer, services, deliver)


async def test_validly_signed_random_json_is_stored_or_refused(
    fuzzer: Fuzzer, services: Services, stripe_in_payql: StripeGateway
) -> None:
    secrets = {"sandbox": [TEST_WEBHOOK_SECRET, TEST_OLD_WEBHOOK_SECRET], "stripe": [STRIPE_WEBHOOK_SECRET]}

    @FUZZ_SETTINGS
    @given(
        gateway=st.sampled_from(["sandbox", "stripe"]),
        value=st.one_of(stripe_events(), json_values),
        secret_index=st.integers(0, 1),
    )
    def deliver(gateway: str, value: Any, secret_index: int) -> None:
        body = json.dumps(value, ensure_ascii=False).encode()
        secret = secrets[gateway][secret_index % len(secrets[gateway])]
        headers = {
            "content-type": b"application/json",
            "stripe-signature": sign(secret, int(time.time()), body).encode(),
        }
        fuzzer.post(gateway, body, headers, {200} if is_stripe_event(value) else {400})

    await run(fuzzer, services, deliver)


def is_stripe_event(value: Any) -> bool:
    if not isinstance(value, dict):
        return False
    created = value.get("created")
    return (
        isinstance(value.get("id"), str)
        and bool(value["id"])
        and isinstance(value.get("type"), str)
        and bool(value["type"])
        and isinstance(created, int)
        and not isinstance(created, bool)
    )


def paypal_headers(emulator: PayPalEmulator) -> st.SearchStrategy[dict[str, bytes]]:
    """PayPal's five transmission headers, each valid-looking, random or missing."""
    now = datetime.now(UTC)
    values = {
        "paypal-transmission-id": st.one_of(st.uuids().map(str), header_text),
        "paypal-transmission-time": st.one_of(
            st.just(now.strftime("%Y-%m-%dT%H:%M:%SZ")),
            st.datetimes(timezones=ZONES).map(lambda moment: moment.isoformat()),
            header_text,
        ),
        "paypal-transmission-sig": st.one_of(
            st.binary(max_size=300).map(base64.b64encode).map(bytes.decode), header_text
        ),
        "paypal-cert-url": st.one_of(
            st.just(emulator.cert_url),
            st.just(f"{emulator.base_url}/v1/notifications/certs/unknown"),
            st.just("https://api.paypal.com/v1/notifications/certs/CERT-1"),
            header_text,
        ),
        "paypal-auth-algo": st.one_of(st.just("SHA256withRSA"), header_text),
    }
    return st.fixed_dictionaries({}, optional={name: strategy.map(str.encode) for name, strategy in values.items()})


async def test_random_deliveries_to_paypal_are_refused(
    fuzzer: Fuzzer, services: Services, paypal_emulator: PayPalEmulator
) -> None:
    @FUZZ_SETTINGS
    @given(body=bodies, headers=paypal_headers(paypal_emulator))
    def deliver(body: bytes, headers: dict[str, bytes]) -> None:
        fuzzer.post("paypal", body, {"content-type": b"application/json", **headers}, {400})

    await run(fuzzer, services, deliver)


async def test_validly_signed_random_json_to_paypal_is_stored_or_refused(
    fuzzer: Fuzzer, services: Services, paypal_emulator: PayPalEmulator
) -> None:
    @FUZZ_SETTINGS
    @given(value=st.one_of(paypal_events(), json_values))
    def deliver(value: Any) -> None:
        body = json.dumps(value).encode()
        # Whether an object is an event PayPal's parser accepts is its business; a non-object never is.
        fuzzer.post(
            "paypal", body, signed_by_paypal(paypal_emulator, body), {200, 400} if isinstance(value, dict) else {400}
        )

    await run(fuzzer, services, deliver)


def signed_by_paypal(emulator: PayPalEmulator, body: bytes) -> dict[str, bytes]:
    """The headers PayPal would send with `body`: signed by the emulator's certificate for our webhook id."""
    transmission_id = str(uuid.uuid4())
    when = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    message = f"{transmission_id}|{when}|{emulator.webhook_id}|{zlib.crc32(body)}".encode()
    signature = emulator.signer.key.sign(message, padding.PKCS1v15(), hashes.SHA256())
    return {
        "content-type": b"application/json",
        "paypal-transmission-id": transmission_id.encode(),
        "paypal-transmission-time": when.encode(),
        "paypal-transmission-sig": base64.b64encode(signature),
        "paypal-cert-url": emulator.cert_url.encode(),
        "paypal-auth-algo": b"SHA256withRSA",
    }


# Findings of this fuzzer (#11), fixed: one regression test per class of input.


def signed_by_sandbox(body: bytes) -> dict[str, bytes]:
    return {
        "content-type": b"application/json",
        "stripe-signature": sign(TEST_WEBHOOK_SECRET, int(time.time()), body).encode(),
    }


async def test_validly_signed_json_not_in_utf8_is_refused(fuzzer: Fuzzer, services: Services) -> None:
    @settings(FUZZ_SETTINGS, max_examples=10)
    @given(value=stripe_events(), encoding=st.sampled_from(["utf-16", "utf-16-le", "utf-32", "utf-32-be"]))
    def deliver(value: dict[str, Any], encoding: str) -> None:
        body = json.dumps(value).encode(encoding)
        fuzzer.post("sandbox", body, signed_by_sandbox(body), {400})

    await run(fuzzer, services, deliver, examples=10)


async def test_validly_signed_deeply_nested_json_gets_no_server_error(fuzzer: Fuzzer, services: Services) -> None:
    @settings(FUZZ_SETTINGS, max_examples=10)
    @given(event=stripe_events(), depth=st.integers(1_000, 200_000), opener=st.sampled_from([b"[", b'{"a":']))
    def deliver(event: dict[str, Any], depth: int, opener: bytes) -> None:
        closer = b"]" if opener == b"[" else b"}"
        nested = opener * depth + b"1" + closer * depth
        body = json.dumps(event).encode()[:-1] + b', "nested": ' + nested + b"}"
        fuzzer.post("sandbox", body, signed_by_sandbox(body), {200, 400, 413})

    await run(fuzzer, services, deliver, examples=10)


async def test_validly_signed_events_with_nul_characters_get_no_server_error(
    fuzzer: Fuzzer, services: Services
) -> None:
    @settings(FUZZ_SETTINGS, max_examples=10)
    @given(event=stripe_events(), where=st.sampled_from(["id", "type"]), text=texts)
    def deliver(event: dict[str, Any], where: str, text: str) -> None:
        event = {**event, "created": int(time.time()), where: f"{event[where]}\x00{text}"}
        body = json.dumps(event).encode()
        fuzzer.post("sandbox", body, signed_by_sandbox(body), {200, 400})

    await run(fuzzer, services, deliver, examples=10)
