"""The delivery job of outgoing webhooks, called directly on rows made here: a 2xx delivers and is
recorded; redirects are not followed; a slow endpoint times out; the request goes to the address
that was checked; an endpoint failing too long is disabled and the merchant emailed; concurrent jobs
for one delivery send it once; the default backoff spans about three days; pruning keeps what is
unfinished; over https the pinned address must show a certificate for the endpoint's hostname."""

from __future__ import annotations

import asyncio
import socket
import ssl
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from db.merchant_deliveries import prune
from db.merchant_models import (
    DeliveryStatus,
    MerchantDelivery,
    MerchantDeliveryAttempt,
    MerchantEndpoint,
    MerchantEvent,
)
from db.models import AuditRecord, OutboxMessage
from jobs.merchant_delivery import ENDPOINT_DISABLED_EMAIL, DeliveryPolicy, deliver
from payql.outbound_urls import OutboundPolicy
from tests.asgi_server import serving
from tests.merchant_receiver import Receiver, receiving

pytestmark = pytest.mark.usefixtures("server")

LOCAL = OutboundPolicy(require_https=False, allow_private=True)
POLICY = DeliveryPolicy(outbound=LOCAL, max_attempts=3, base_delay_seconds=60, timeout_seconds=5)


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    async with receiving() as running:
        yield running


async def endpoint_at(url: str) -> MerchantEndpoint:
    return await MerchantEndpoint.create(url=url, event_types=["*"], secret="whsec_job_test")


async def delivery_to(endpoint: MerchantEndpoint, **event_fields: Any) -> MerchantDelivery:
    """An event and its delivery, written without a unit of work: no job is queued for them."""
    event = await MerchantEvent.create(
        public_id=f"evt_{uuid.uuid4().hex}", type="endpoint.test", object_type="endpoint",
        object_id=str(endpoint.id), object_version=0, dedupe_key=f"job-test:{uuid.uuid4()}",
        body='{"id":"evt_job_test"}', **event_fields,
    )  # fmt: skip
    return await MerchantDelivery.create(event_id=event.id, endpoint_id=endpoint.id)


@pytest.fixture
async def cleanup() -> AsyncIterator[list[MerchantEndpoint]]:
    made: list[MerchantEndpoint] = []
    yield made
    await MerchantEndpoint.filter(id__in=[e.id for e in made]).delete()


async def test_a_2xx_answer_delivers_and_the_attempt_is_recorded(
    receiver: Receiver, cleanup: list[MerchantEndpoint]
) -> None:
    receiver.answer = lambda _request, _before: 202
    endpoint = await endpoint_at(receiver.url)
    cleanup.append(endpoint)
    delivery = await delivery_to(endpoint)
    outcome = await deliver(delivery.id, POLICY)
    assert outcome is not None and (outcome.status, outcome.retry_in) == (DeliveryStatus.DELIVERED, None)
    [attempt] = await MerchantDeliveryAttempt.filter(delivery_id=delivery.id)
    assert (attempt.number, attempt.status_code) == (1, 202) and attempt.error is None
    assert attempt.response_excerpt == "answered 202" and attempt.latency_ms is not None
    row = await MerchantDelivery.get(id=delivery.id)
    assert (row.attempts, row.last_status_code, row.delivered_at is not None) == (1, 202, True)
    assert await deliver(delivery.id, POLICY) is None  # delivered: nothing more to do
    assert len(receiver.requests) == 1


async def test_a_redirect_is_a_failure_and_is_not_followed(receiver: Receiver, cleanup: list[MerchantEndpoint]) -> None:
    receiver.answer = lambda _request, _before: 302
    endpoint = await endpoint_at(receiver.url)
    cleanup.append(endpoint)
    delivery = await delivery_to(endpoint)
    outcome = await deliver(delivery.id, POLICY)
    assert outcome is not None and outcome.status is DeliveryStatus.FAILED and outcome.retry_in is not None
    assert [r.headers.get("host") for r in receiver.requests] == [receiver.url.split("/")[2]]
    row = await MerchantDelivery.get(id=delivery.id)
    assert row.last_status_code == 302 and row.next_attempt_at is not None
    assert await deliver(delivery.id, POLICY) is None  # backing off until next_attempt_at


async def test_a_slow_endpoint_times_out(cleanup: list[MerchantEndpoint]) -> None:
    release = asyncio.Event()

    async def hanging(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await release.wait()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    async with serving(hanging) as base:
        endpoint = await endpoint_at(base + "/in")
        cleanup.append(endpoint)
        delivery = await delivery_to(endpoint)
        quick = DeliveryPolicy(outbound=LOCAL, max_attempts=3, timeout_seconds=0.3)
        outcome = await deliver(delivery.id, quick)
        release.set()
    assert outcome is not None and outcome.status is DeliveryStatus.FAILED
    [attempt] = await MerchantDeliveryAttempt.filter(delivery_id=delivery.id)
    assert attempt.status_code is None and attempt.error is not None and "Timeout" in attempt.error


async def test_the_request_goes_to_the_address_that_was_checked(
    receiver: Receiver, cleanup: list[MerchantEndpoint]
) -> None:
    port = receiver.url.split(":")[2].split("/")[0]
    asked: list[str] = []

    async def resolver(host: str, _port: int) -> list[str]:
        asked.append(host)
        return ["127.0.0.1"]

    endpoint = await endpoint_at(f"http://merchant.example:{port}/in")
    cleanup.append(endpoint)
    delivery = await delivery_to(endpoint)
    pinned = DeliveryPolicy(outbound=LOCAL, resolver=resolver)
    outcome = await deliver(delivery.id, pinned)
    assert outcome is not None and outcome.status is DeliveryStatus.DELIVERED
    assert asked == ["merchant.example"]
    [request] = receiver.requests
    assert request.headers["host"] == f"merchant.example:{port}"


async def test_an_endpoint_failing_too_long_is_disabled_and_the_merchant_emailed(
    receiver: Receiver, cleanup: list[MerchantEndpoint]
) -> None:
    receiver.answer = lambda _request, _before: 500
    endpoint = await endpoint_at(receiver.url)
    cleanup.append(endpoint)
    first, second = await delivery_to(endpoint), await delivery_to(endpoint)
    impatient = DeliveryPolicy(outbound=LOCAL, disable_after=timedelta(0), merchant_email="ops@shop.example")
    await deliver(first.id, impatient)
    stored = await MerchantEndpoint.get(id=endpoint.id)
    assert not stored.enabled and stored.disabled_reason == "every delivery failed for 0 days"
    emails = await OutboxMessage.filter(kind=ENDPOINT_DISABLED_EMAIL)
    [email] = [e for e in emails if e.payload["endpoint_id"] == str(endpoint.id)]
    assert email.payload["to"] == "ops@shop.example"
    [record] = await AuditRecord.filter(entity_id=str(endpoint.id), action="merchant_endpoint.disabled")
    assert record.actor == "system:merchant-webhooks"
    # A disabled endpoint gets nothing more: its next delivery dies without a request.
    assert await deliver(second.id, impatient) is None
    assert (await MerchantDelivery.get(id=second.id)).status is DeliveryStatus.DEAD
    assert len(receiver.requests) == 1


async def test_concurrent_jobs_for_one_delivery_send_it_once(
    receiver: Receiver, cleanup: list[MerchantEndpoint]
) -> None:
    endpoint = await endpoint_at(receiver.url)
    cleanup.append(endpoint)
    delivery = await delivery_to(endpoint)
    outcomes = await asyncio.gather(*(deliver(delivery.id, POLICY) for _ in range(5)))
    assert [o.status for o in outcomes if o is not None] == [DeliveryStatus.DELIVERED]
    assert len(receiver.requests) == 1


def test_the_default_retries_span_about_three_days() -> None:
    policy = DeliveryPolicy(outbound=LOCAL)
    waits = [policy.backoff_seconds(attempt) for attempt in range(1, policy.max_attempts)]
    assert waits == sorted(waits) or max(waits) <= policy.max_delay_seconds
    assert timedelta(days=2.5) <= timedelta(seconds=sum(waits)) <= timedelta(days=3.5)


async def test_pruning_deletes_old_finished_events_only(cleanup: list[MerchantEndpoint]) -> None:
    endpoint = await endpoint_at("http://127.0.0.1:9/in")
    cleanup.append(endpoint)
    long_ago = datetime.now(UTC) - timedelta(days=40)
    old_done = await delivery_to(endpoint, created_at=long_ago)
    old_failing = await delivery_to(endpoint, created_at=long_ago)
    recent_done = await delivery_to(endpoint)
    await MerchantDelivery.filter(id__in=[old_done.id, recent_done.id]).update(status=DeliveryStatus.DELIVERED)
    await MerchantDelivery.filter(id=old_failing.id).update(status=DeliveryStatus.FAILED)
    assert await prune(datetime.now(UTC) - timedelta(days=30)) >= 1
    left = set(await MerchantDelivery.filter(endpoint_id=endpoint.id).values_list("id", flat=True))
    assert left == {old_failing.id, recent_done.id}


def self_signed(directory: Path, hostname: str) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hostname)])
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(hostname)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = directory / "cert.pem", directory / "key.pem"
    cert_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_file, key_file


@pytest.mark.parametrize(("certificate_for", "delivered"), [("merchant.example", True), ("other.example", False)])
async def test_https_to_the_pinned_address_checks_the_certificate_against_the_hostname(
    tmp_path: Path, cleanup: list[MerchantEndpoint], certificate_for: str, delivered: bool
) -> None:
    cert_file, key_file = self_signed(tmp_path, certificate_for)
    seen: list[dict[str, str]] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        seen.append({k.decode(): v.decode() for k, v in scope["headers"]})
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, log_config=None, lifespan="off", ssl_certfile=cert_file, ssl_keyfile=key_file)
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        while not server.started:
            await asyncio.sleep(0.01)

        async def resolver(host: str, _port: int) -> list[str]:
            return ["127.0.0.1"]

        endpoint = await endpoint_at(f"https://merchant.example:{port}/in")
        cleanup.append(endpoint)
        delivery = await delivery_to(endpoint)
        trusting = ssl.create_default_context(cafile=str(cert_file))
        https_only = OutboundPolicy(require_https=True, allow_private=True)
        policy = DeliveryPolicy(outbound=https_only, resolver=resolver, tls=trusting)
        outcome = await deliver(delivery.id, policy)
    finally:
        server.should_exit = True
        await task
        sock.close()
    assert outcome is not None
    if delivered:
        assert outcome.status is DeliveryStatus.DELIVERED
        assert [s["host"] for s in seen] == [f"merchant.example:{port}"]
    else:
        assert outcome.status is DeliveryStatus.FAILED and seen == []
        [attempt] = await MerchantDeliveryAttempt.filter(delivery_id=delivery.id)
        assert attempt.error is not None and "ConnectError" in attempt.error
