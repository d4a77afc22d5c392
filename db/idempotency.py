"""Idempotency records for our own API: one effect per (scope, key), however many copies arrive.

The first request inserts an IN_PROGRESS record with a lease; concurrent copies wait for it and
replay its stored response; the same key with another request fingerprint is a conflict. A
request that died mid-way leaves its lease to expire, and the next copy takes the record over
and resumes from its recovery point (the ids it had created) instead of starting again.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from tortoise import connections
from tortoise.backends.base.client import BaseDBAsyncClient

from db.insert_once import insert_once
from db.models import IdempotencyRecord, IdempotencyState
from db.new_rows import new_row
from db.row_updates import update_columns

_POLL_SECONDS = 0.05


class IdempotencyKeyConflict(Exception):
    """The key was used before with a different request."""


class RequestStillInProgress(Exception):
    """Another copy of this request holds the key and did not finish in time."""


@dataclass(frozen=True, slots=True)
class Replay:
    response: dict[str, Any]


@dataclass(slots=True)
class Claim:
    record_id: int
    recovery_point: dict[str, Any] = field(default_factory=dict)
    resumed: bool = False


def fingerprint(payload: dict[str, Any]) -> str:
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def _now() -> datetime:
    return datetime.now(UTC)


async def claim_or_replay(
    scope: str,
    key: str,
    request_hash: str,
    *,
    lease_seconds: float,
    ttl_seconds: int,
    wait_seconds: float,
) -> Claim | Replay:
    """Take the key for this request, or return the response of the copy that already ran."""
    deadline = asyncio.get_running_loop().time() + wait_seconds
    while True:
        now = _now()
        record = new_row(
            IdempotencyRecord,
            scope=scope,
            key=key,
            request_hash=request_hash,
            locked_until=now + timedelta(seconds=lease_seconds),
            expires_at=now + timedelta(seconds=ttl_seconds),
        )
        # One statement, no savepoint: a key taken already refuses nothing, so an outer transaction
        # (if any) goes on.
        if await insert_once(record, connections.get("default")):
            return Claim(record.id)
        existing = await IdempotencyRecord.get_or_none(scope=scope, key=key)
        if existing is None:
            continue
        if existing.expires_at <= now:
            await IdempotencyRecord.filter(id=existing.id, expires_at__lte=now).delete()
            continue
        if existing.request_hash != request_hash:
            raise IdempotencyKeyConflict(key)
        if existing.state is IdempotencyState.COMPLETED and existing.response is not None:
            return Replay(existing.response)
        if existing.locked_until <= now:
            taken = await IdempotencyRecord.filter(
                id=existing.id, state=IdempotencyState.IN_PROGRESS, locked_until__lte=now
            ).update(locked_until=now + timedelta(seconds=lease_seconds))
            if taken == 1:
                return Claim(existing.id, dict(existing.recovery_point or {}), resumed=True)
            continue
        if asyncio.get_running_loop().time() >= deadline:
            raise RequestStillInProgress(key)
        await asyncio.sleep(_POLL_SECONDS)


async def save_recovery_point(claim: Claim, data: dict[str, Any], connection: BaseDBAsyncClient) -> None:
    """Record what the request created, in the same transaction that created it."""
    claim.recovery_point.update(data)
    await update_columns(IdempotencyRecord, claim.record_id, {"recovery_point": claim.recovery_point}, connection)


async def complete(claim: Claim, response: dict[str, Any]) -> None:
    values = {"state": IdempotencyState.COMPLETED, "response": response}
    await update_columns(IdempotencyRecord, claim.record_id, values, connections.get("default"))


async def release(claim: Claim) -> None:
    """Let the next copy resume at once: the outcome is unknown (e.g. the gateway timed out)."""
    await IdempotencyRecord.filter(id=claim.record_id).update(locked_until=_now())


async def forget(claim: Claim) -> None:
    """Drop the record of a request refused before it changed anything (bad input)."""
    await IdempotencyRecord.filter(id=claim.record_id, state=IdempotencyState.IN_PROGRESS).delete()


async def purge_expired() -> int:
    return await IdempotencyRecord.filter(expires_at__lte=_now()).delete()
