"""Claiming a stored event for one processing attempt (`webhooks.store.claim_for_processing`): one
statement that takes the lease once, never on a final event, never while another attempt holds it."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import timedelta
from typing import Any

from db.models import WebhookEvent, WebhookStatus
from payql.wiring import Services
from webhooks.store import RetryPolicy, claim_for_processing, mark_done, now

POLICY = RetryPolicy(lease_seconds=120.0)


async def stored_event(**fields: Any) -> WebhookEvent:
    """A stored event with no job queued for it (created directly, not through the endpoint)."""
    event_id = f"evt_claim_{uuid.uuid4().hex}"
    body = json.dumps({"id": event_id, "type": "claim.test", "data": {}})
    return await WebhookEvent.create(
        gateway="sandbox", event_id=event_id, event_type="claim.test", headers={"x-kept": "yes"}, body=body, **fields
    )


async def test_a_claim_takes_the_lease_and_returns_the_whole_row(services: Services) -> None:
    row = await stored_event(attempts=2)
    before = now()
    claimed = await claim_for_processing(row.id, POLICY)
    assert claimed is not None
    assert (claimed.id, claimed.gateway, claimed.event_id, claimed.event_type) == (
        row.id,
        "sandbox",
        row.event_id,
        "claim.test",
    )
    assert claimed.attempts == 3
    assert claimed.status == WebhookStatus.RECEIVED
    # Decrypted and decoded as an ORM read would give them.
    assert json.loads(claimed.body)["id"] == row.event_id
    assert claimed.headers == {"x-kept": "yes"}
    assert claimed.received_at == row.received_at
    assert claimed.next_attempt_at is not None
    assert claimed.next_attempt_at >= before + timedelta(seconds=POLICY.lease_seconds)
    stored = await WebhookEvent.get(id=row.id)
    assert (stored.attempts, stored.next_attempt_at) == (3, claimed.next_attempt_at)


async def test_a_held_lease_is_not_taken_again(services: Services) -> None:
    row = await stored_event()
    assert await claim_for_processing(row.id, POLICY) is not None
    assert await claim_for_processing(row.id, POLICY) is None
    assert (await WebhookEvent.get(id=row.id)).attempts == 1


async def test_a_lapsed_lease_or_a_due_retry_is_taken(services: Services) -> None:
    lapsed = await stored_event(attempts=1, next_attempt_at=now() - timedelta(seconds=1))
    failed = await stored_event(attempts=1, status=WebhookStatus.FAILED, next_attempt_at=now() - timedelta(seconds=1))
    not_due = await stored_event(attempts=1, status=WebhookStatus.FAILED, next_attempt_at=now() + timedelta(hours=1))
    assert await claim_for_processing(lapsed.id, POLICY) is not None
    assert await claim_for_processing(failed.id, POLICY) is not None
    assert await claim_for_processing(not_due.id, POLICY) is None


async def test_a_final_or_unknown_event_is_never_claimed(services: Services) -> None:
    for status in (WebhookStatus.PROCESSED, WebhookStatus.IGNORED, WebhookStatus.DEAD):
        row = await stored_event(status=status)
        assert await claim_for_processing(row.id, POLICY) is None
        assert (await WebhookEvent.get(id=row.id)).attempts == 0
    assert await claim_for_processing(2**62, POLICY) is None


async def test_concurrent_claims_take_the_lease_once(services: Services) -> None:
    row = await stored_event()
    claims = await asyncio.gather(*(claim_for_processing(row.id, POLICY) for _ in range(8)))
    assert sum(claim is not None for claim in claims) == 1
    assert (await WebhookEvent.get(id=row.id)).attempts == 1


async def test_a_claimed_event_is_marked_done_with_its_time_and_no_lease_or_error(services: Services) -> None:
    row = await stored_event(last_error="an earlier attempt's traceback")
    claimed = await claim_for_processing(row.id, POLICY)
    assert claimed is not None
    before = now()
    await mark_done(claimed, WebhookStatus.IGNORED)
    stored = await WebhookEvent.get(id=row.id)
    assert (stored.status, stored.next_attempt_at) == (WebhookStatus.IGNORED, None)
    assert not stored.last_error
    assert stored.processed_at is not None
    assert stored.processed_at >= before
    assert await claim_for_processing(row.id, POLICY) is None
