"""Claiming stored events for one processing attempt each (`webhooks.store.claim_events`): one
statement that takes each lease once, never on a final event, never while another attempt holds it;
and finishing them (`finish_events`)."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import timedelta
from typing import Any

import pytest

from db.models import WebhookEvent, WebhookStatus
from payql.wiring import Services
from webhooks.store import ClaimedEvent, RetryPolicy, claim_events, finish_events, now

POLICY = RetryPolicy(lease_seconds=120.0)


async def claim_for_processing(event_row_id: int, policy: RetryPolicy) -> ClaimedEvent | None:
    """One event's claim: a batch of one."""
    rows = await claim_events([event_row_id], policy)
    assert len(rows) <= 1
    return rows[0] if rows else None


async def stored_event(**fields: Any) -> WebhookEvent:
    """A stored event with no job queued for it (created directly, not through the endpoint)."""
    event_id = f"evt_claim_{uuid.uuid4().hex}"
    body = json.dumps({"id": event_id, "type": "claim.test", "data": {}})
    return await WebhookEvent.create(
        gateway="sandbox", event_id=event_id, event_type="claim.test", headers={"x-kept": "yes"}, body=body, **fields
    )


async def test_a_claim_takes_the_lease_and_returns_what_processing_reads(services: Services) -> None:
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
    # Decrypted and decoded as an ORM read would give them.
    assert json.loads(claimed.body)["id"] == row.event_id
    assert claimed.received_at == row.received_at
    stored = await WebhookEvent.get(id=row.id)
    assert (stored.attempts, stored.status, stored.headers) == (3, WebhookStatus.RECEIVED, {"x-kept": "yes"})
    assert stored.next_attempt_at is not None
    assert stored.next_attempt_at >= before + timedelta(seconds=POLICY.lease_seconds)


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
    await finish_events([(claimed, WebhookStatus.IGNORED)])
    stored = await WebhookEvent.get(id=row.id)
    assert (stored.status, stored.next_attempt_at) == (WebhookStatus.IGNORED, None)
    assert not stored.last_error
    assert stored.processed_at is not None
    assert stored.processed_at >= before
    assert await claim_for_processing(row.id, POLICY) is None


async def test_one_statement_claims_each_event_of_a_batch_on_its_own_conditions(services: Services) -> None:
    free = await stored_event()
    lapsed = await stored_event(attempts=1, next_attempt_at=now() - timedelta(seconds=1))
    held = await stored_event(attempts=1, next_attempt_at=now() + timedelta(hours=1))
    final = await stored_event(status=WebhookStatus.PROCESSED)
    dead = await stored_event(status=WebhookStatus.DEAD)
    ids = [free.id, lapsed.id, held.id, final.id, dead.id, 2**62]
    claimed = await claim_events(ids, POLICY)
    assert sorted(row.id for row in claimed) == sorted([free.id, lapsed.id])
    assert {row.id: row.attempts for row in claimed} == {free.id: 1, lapsed.id: 2}
    stored = {row.id: row.attempts for row in await WebhookEvent.filter(id__in=ids)}
    assert stored == {free.id: 1, lapsed.id: 2, held.id: 1, final.id: 0, dead.id: 0}


async def test_concurrent_batches_sharing_events_take_each_lease_once(services: Services) -> None:
    rows = [await stored_event() for _ in range(6)]
    ids = [row.id for row in rows]
    # The same events in other orders and overlaps, as two processes' sweepers may queue them.
    batches = [ids, ids[::-1], ids[2:], ids[:4][::-1], ids[1::2], ids[::2][::-1]]
    claims = await asyncio.gather(*(claim_events(batch, POLICY) for batch in batches))
    taken = sorted(row.id for claimed in claims for row in claimed)
    assert taken == sorted(ids)
    assert {row.attempts for row in await WebhookEvent.filter(id__in=ids)} == {1}


async def test_one_statement_finishes_a_batch_each_with_its_own_status(services: Services) -> None:
    rows = [await stored_event(last_error="earlier") for _ in range(4)]
    claimed = await claim_events([row.id for row in rows], POLICY)
    statuses = [WebhookStatus.PROCESSED, WebhookStatus.IGNORED, WebhookStatus.IGNORED, WebhookStatus.PROCESSED]
    finished = dict(zip(sorted(row.id for row in claimed), statuses, strict=True))
    await finish_events([(row, finished[row.id]) for row in claimed])
    for stored in await WebhookEvent.filter(id__in=list(finished)):
        assert (stored.status, stored.next_attempt_at, stored.last_error) == (finished[stored.id], None, None)
        assert stored.processed_at is not None


async def test_only_processed_or_ignored_finish_an_event(services: Services) -> None:
    claimed = await claim_for_processing((await stored_event()).id, POLICY)
    assert claimed is not None
    for status in (WebhookStatus.DEAD, WebhookStatus.FAILED, WebhookStatus.RECEIVED):
        with pytest.raises(ValueError, match="only PROCESSED or IGNORED"):
            await finish_events([(claimed, status)])
    assert (await WebhookEvent.get(id=claimed.id)).status == WebhookStatus.RECEIVED
