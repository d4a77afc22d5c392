"""The job that sends one outgoing webhook delivery to a merchant's endpoint, and its retries.

One run: claim the delivery (db.merchant_deliveries), sign the stored body with the endpoint's live
secrets, check the URL and pin the address it resolves to (payql.outbound_urls), POST it without
following redirects under a short timeout, record the attempt, and schedule the next one with
exponential backoff (about three days in all by default) or declare the delivery DEAD. An endpoint
that has failed every attempt for `disable_after` is disabled and the merchant is emailed. A job lost
to a crash or a restart is found again by the sweeper, since the database holds every delivery's state.

Never here: a database transaction held open across the network, following a redirect, or
connecting to an address that was not checked.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import ssl
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import httpx

from db import merchant_deliveries
from db.merchant_deliveries import AttemptResult, Claim
from db.merchant_endpoints import auto_disable, live_secrets
from db.merchant_models import DeliveryStatus, MerchantEndpoint
from db.outbox import add_message
from db.transitions import Actor
from db.unit_of_work import unit_of_work
from domain.card_numbers import redact_card_numbers
from payql.outbound_urls import OutboundPolicy, RefusedUrl, Resolver, pin, system_resolver
from payql.webhook_signing import EVENT_ID_HEADER, EVENT_TYPE_HEADER, SIGNATURE_HEADER, signature_header

logger = logging.getLogger(__name__)

ENDPOINT_DISABLED_EMAIL = "merchant_endpoint_disabled"
MAX_EXCERPT_BYTES = 1024
USER_AGENT = "PayQL-Webhooks/1"
SYSTEM = Actor(name="system:merchant-webhooks", reason="the endpoint failed every delivery for too long")
_random = secrets.SystemRandom()


@dataclass(frozen=True, slots=True)
class DeliveryPolicy:
    outbound: OutboundPolicy
    max_attempts: int = 17
    base_delay_seconds: float = 30.0
    max_delay_seconds: float = 12 * 3600.0
    timeout_seconds: float = 10.0
    disable_after: timedelta = timedelta(days=5)
    retention: timedelta = timedelta(days=30)
    sweep_grace: timedelta = timedelta(seconds=30)
    merchant_email: str | None = None
    resolver: Resolver = field(default=system_resolver)
    # Certificates are checked against the endpoint's hostname (sent as the TLS server name), with the
    # system's trusted authorities unless a context says otherwise.
    tls: ssl.SSLContext | None = None

    @property
    def lease(self) -> timedelta:
        """Longer than one attempt can take, so a live attempt is never taken over."""
        return timedelta(seconds=self.timeout_seconds * 2 + 30)

    def backoff_seconds(self, attempt: int) -> float:
        """Delay after failed attempt `attempt` (1-based): doubling, capped, with up to 20% jitter so
        deliveries that failed together do not retry together. The defaults add up to about 3 days."""
        ceiling = min(self.max_delay_seconds, self.base_delay_seconds * 2 ** max(attempt - 1, 0))
        return _random.uniform(ceiling * 0.8, ceiling)


@dataclass(frozen=True, slots=True)
class Outcome:
    status: DeliveryStatus
    retry_in: float | None  # seconds until the next attempt, when one is scheduled


async def deliver(delivery_id: int, policy: DeliveryPolicy) -> Outcome | None:
    """Make one attempt at a delivery; None when it is not due (final, leased, backing off, gone)."""
    claimed = await merchant_deliveries.claim(delivery_id, max_attempts=policy.max_attempts, lease=policy.lease)
    if claimed is None:
        return None
    result = await send(claimed, policy)
    last = result.delivered or claimed.attempt >= policy.max_attempts
    retry_in = None if last else policy.backoff_seconds(claimed.attempt)
    retry_at = datetime.now(UTC) + timedelta(seconds=retry_in) if retry_in is not None else None
    status, endpoint = await merchant_deliveries.finish(claimed, result, retry_at=retry_at)
    if status is DeliveryStatus.DEAD:
        logger.error("merchant webhook delivery %s is dead: %s", delivery_id, result.error or result.status_code)
    if endpoint is not None and endpoint.enabled and _failing_too_long(endpoint, policy):
        await _disable(claimed, policy)
    return Outcome(status, retry_in if status is DeliveryStatus.FAILED else None)


def _failing_too_long(endpoint: MerchantEndpoint, policy: DeliveryPolicy) -> bool:
    since = endpoint.failing_since
    return since is not None and datetime.now(UTC) - since >= policy.disable_after


async def send(claimed: Claim, policy: DeliveryPolicy) -> AttemptResult:
    """One signed POST of the event's stored body; never raises for what the endpoint does."""
    body = claimed.event.body.encode("utf-8")
    try:
        target = await pin(claimed.endpoint.url, policy.outbound, policy.resolver)
    except RefusedUrl as refused:
        return AttemptResult(None, None, "", f"refused: {refused}")
    timestamp = int(time.time())
    headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "Host": target.host,
        SIGNATURE_HEADER: signature_header(live_secrets(claimed.endpoint, datetime.now(UTC)), timestamp, body),
        EVENT_ID_HEADER: claimed.event.public_id,
        EVENT_TYPE_HEADER: claimed.event.type,
    }
    extensions = {"sni_hostname": target.sni_hostname} if target.sni_hostname else {}
    started = time.monotonic()
    try:
        # trust_env=False: a proxy from the environment would connect somewhere we did not check.
        async with httpx.AsyncClient(
            timeout=policy.timeout_seconds, follow_redirects=False, trust_env=False, verify=policy.tls or True
        ) as client:
            status, excerpt = await asyncio.wait_for(
                _post(client, target.url, body, headers, extensions), timeout=policy.timeout_seconds
            )
    except (httpx.HTTPError, TimeoutError, OSError) as error:
        latency = _ms_since(started)
        return AttemptResult(None, latency, "", f"{type(error).__name__}: {error}".strip())
    return AttemptResult(status, _ms_since(started), excerpt, None)


async def _post(
    client: httpx.AsyncClient, url: str, body: bytes, headers: dict[str, str], extensions: dict[str, str]
) -> tuple[int, str]:
    """The answer's status and the start of its body (no more is read: an endpoint cannot make us buffer)."""
    request = client.build_request("POST", url, content=body, headers=headers, extensions=extensions)
    response = await client.send(request, stream=True)
    try:
        read = b""
        async for chunk in response.aiter_bytes():
            read += chunk
            if len(read) >= MAX_EXCERPT_BYTES:
                break
    finally:
        await response.aclose()
    return response.status_code, redact_card_numbers(read[:MAX_EXCERPT_BYTES].decode("utf-8", errors="replace"))


async def _disable(claimed: Claim, policy: DeliveryPolicy) -> None:
    days = policy.disable_after.total_seconds() / 86400
    reason = f"every delivery failed for {days:g} days"
    async with unit_of_work() as uow:
        endpoint = await auto_disable(claimed.endpoint.id, reason, SYSTEM, uow)
        if endpoint is not None and policy.merchant_email:
            payload = {"endpoint_id": str(endpoint.id), "to": policy.merchant_email, "reason": reason}
            # Keyed by when it was disabled: disabled again after a re-enable, the merchant hears again.
            key = f"{ENDPOINT_DISABLED_EMAIL}:{endpoint.id}:{endpoint.updated_at.isoformat()}"
            await add_message(uow, ENDPOINT_DISABLED_EMAIL, key, payload)
    if endpoint is not None:
        logger.warning("merchant webhook endpoint %s disabled: %s", claimed.endpoint.id, reason)


def _ms_since(started: float) -> int:
    return int((time.monotonic() - started) * 1000)
