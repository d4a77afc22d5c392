"""The state of outgoing webhook deliveries: claiming one for an attempt, recording its outcome,
resending, finding lost work for the sweeper, and pruning old rows.

Like the email outbox (`notifications.dispatch`), an attempt is three steps and no row lock is held
across the network: claim (count the attempt, take a lease in `next_attempt_at`, commit), send with no
transaction open, finish (record the attempt and DELIVERED, FAILED with a retry time, or DEAD). A
dispatcher that dies after its claim leaves a lease that expires; the sweeper then queues the delivery
again. A finish whose lease was taken over by a newer attempt records its attempt row but does not
move the delivery, unless it delivered. Nothing moves a DELIVERED delivery except a staff resend.
Locks, when both are taken: endpoint, then delivery (deleting an endpoint cascades in that order).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from uuid import UUID

from tortoise.expressions import Q

from db.audit_trail import record_audit
from db.merchant_events import delivery_job
from db.merchant_models import (
    DeliveryStatus,
    MerchantDelivery,
    MerchantDeliveryAttempt,
    MerchantEndpoint,
    MerchantEvent,
)
from db.transitions import Actor
from db.unit_of_work import UnitOfWork, unit_of_work

S = DeliveryStatus
FINAL = (S.DELIVERED, S.DEAD)
MAX_ERROR_LENGTH = 2000
PRUNE_BATCH = 1000  # events per sweep: a long backlog is pruned over several sweeps


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class Claim:
    delivery_id: int
    attempt: int  # the delivery's `attempts` after this claim: identifies the lease
    endpoint: MerchantEndpoint
    event: MerchantEvent


@dataclass(frozen=True, slots=True)
class AttemptResult:
    status_code: int | None
    latency_ms: int | None
    response_excerpt: str
    error: str | None

    @property
    def delivered(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


async def claim(delivery_id: int, *, max_attempts: int, lease: timedelta) -> Claim | None:
    """Take a due delivery for one attempt; None when it is final, leased, backing off or gone.

    A delivery whose endpoint was disabled becomes DEAD here instead: a disabled endpoint gets nothing.
    """
    async with unit_of_work() as uow:
        row = await MerchantDelivery.filter(id=delivery_id).using_db(uow.connection).select_for_update().first()
        if row is None or row.status in FINAL:
            return None
        now = utcnow()
        if row.next_attempt_at is not None and row.next_attempt_at > now:
            return None
        endpoint = await MerchantEndpoint.filter(id=row.endpoint_id).using_db(uow.connection).get()
        if not endpoint.enabled:
            await _move(row, S.DEAD, uow, error="the endpoint is disabled")
            return None
        if row.attempts >= max_attempts:
            await _move(row, S.DEAD, uow, error=f"gave up after {row.attempts} attempts; the last never finished")
            return None
        row.attempts += 1
        row.next_attempt_at = now + lease
        await row.save(using_db=uow.connection, update_fields=["attempts", "next_attempt_at"])
        event = await MerchantEvent.filter(id=row.event_id).using_db(uow.connection).get()
        return Claim(row.id, row.attempts, endpoint, event)


async def finish(
    claimed: Claim, result: AttemptResult, *, retry_at: datetime | None
) -> tuple[DeliveryStatus, MerchantEndpoint | None]:
    """Record the attempt and move the delivery: DELIVERED on a 2xx, else FAILED until `retry_at`, or
    DEAD when `retry_at` is None. Also keeps the endpoint's failure streak; returns the delivery's
    status and the endpoint (None when it was removed meanwhile)."""
    async with unit_of_work() as uow:
        # Endpoint, then delivery: the order in which deleting an endpoint (a cascade) takes them. No
        # key lock on the endpoint, so transactions announcing events (whose new deliveries hold a
        # key-share lock on it) are never blocked by a delivery finishing.
        endpoint = (
            await MerchantEndpoint.filter(id=claimed.endpoint.id)
            .using_db(uow.connection)
            .select_for_update(no_key=True)
            .first()
        )
        row = await MerchantDelivery.filter(id=claimed.delivery_id).using_db(uow.connection).select_for_update().first()
        if row is None or endpoint is None:
            return S.DEAD, None
        await MerchantDeliveryAttempt.create(
            delivery_id=row.id,
            number=claimed.attempt,
            status_code=result.status_code,
            latency_ms=result.latency_ms,
            response_excerpt=result.response_excerpt,
            error=_clip(result.error) if result.error else None,
            using_db=uow.connection,
        )
        now = utcnow()
        if result.delivered:
            if endpoint.failing_since is not None:
                endpoint.failing_since = None
                await endpoint.save(using_db=uow.connection, update_fields=["failing_since", "updated_at"])
        elif endpoint.failing_since is None:
            endpoint.failing_since = now
            await endpoint.save(using_db=uow.connection, update_fields=["failing_since", "updated_at"])
        if row.status in FINAL or (not result.delivered and row.attempts != claimed.attempt):
            return DeliveryStatus(row.status), endpoint  # a newer attempt owns the row; its outcome counts
        row.last_status_code = result.status_code
        if result.delivered:
            row.delivered_at = now
            await _move(row, S.DELIVERED, uow, extra=["last_status_code", "delivered_at"])
        elif retry_at is None:
            await _move(row, S.DEAD, uow, error=_failure(result), extra=["last_status_code"])
        else:
            await _move(row, S.FAILED, uow, error=_failure(result), retry_at=retry_at, extra=["last_status_code"])
        return DeliveryStatus(row.status), endpoint


async def resend(delivery_id: int, actor: Actor) -> MerchantDelivery | None:
    """Staff: send one delivery again from a fresh attempt count, whatever its status."""
    async with unit_of_work() as uow:
        row = await MerchantDelivery.filter(id=delivery_id).using_db(uow.connection).select_for_update().first()
        if row is None:
            return None
        await _reset(row, actor, uow)
    return row


async def resend_failed_since(since: datetime, actor: Actor, endpoint_id: UUID | None = None) -> int:
    """Staff: send again every FAILED or DEAD delivery created since `since` (to enabled endpoints,
    optionally one); returns how many were queued."""
    query = MerchantDelivery.filter(status__in=[S.FAILED, S.DEAD], created_at__gte=since, endpoint__enabled=True)
    if endpoint_id is not None:
        query = query.filter(endpoint_id=endpoint_id)
    count = 0
    for delivery_id in await query.order_by("id").values_list("id", flat=True):
        async with unit_of_work() as uow:
            row = await MerchantDelivery.filter(id=delivery_id).using_db(uow.connection).select_for_update().first()
            if row is not None and row.status in (S.FAILED, S.DEAD):
                await _reset(row, actor, uow)
                count += 1
    return count


async def due_delivery_ids(grace: timedelta, limit: int = 100) -> list[int]:
    """Deliveries the sweeper should queue: never tried and older than the grace period (the job after
    the commit was lost), FAILED ones whose retry time has come, and any whose lease expired."""
    now = utcnow()
    never_tried = Q(status=S.PENDING, next_attempt_at__isnull=True, created_at__lte=now - grace)
    due_again = Q(status__in=[S.PENDING, S.FAILED], next_attempt_at__lte=now)
    rows = MerchantDelivery.filter(never_tried | due_again).order_by("id").limit(limit)
    return [row.id for row in await rows.only("id")]


async def prune(older_than: datetime) -> int:
    """Delete events older than the cut-off none of whose deliveries is still pending or failing;
    their deliveries and attempts go with them. Returns how many events were deleted."""
    unfinished = MerchantDelivery.filter(status__in=[S.PENDING, S.FAILED]).values_list("event_id", flat=True)
    busy = set(await unfinished)
    old = MerchantEvent.filter(created_at__lt=older_than).order_by("id").limit(PRUNE_BATCH)
    done = [event_id for event_id in await old.values_list("id", flat=True) if event_id not in busy]
    if done:
        await MerchantEvent.filter(id__in=done).delete()
    return len(done)


async def _reset(row: MerchantDelivery, actor: Actor, uow: UnitOfWork) -> None:
    before = row.status
    row.status = S.PENDING
    row.attempts = 0
    row.next_attempt_at = None
    await row.save(using_db=uow.connection, update_fields=["status", "attempts", "next_attempt_at"])
    record_audit(
        actor,
        "merchant_delivery.resent",
        "merchant_delivery",
        row.id,
        before=before,
        after=S.PENDING,
        amount=None,
        currency=None,
        uow=uow,
        data={"endpoint_id": str(row.endpoint_id), "event_id": row.event_id},
    )
    uow.jobs.append(delivery_job(row.id))


async def _move(
    row: MerchantDelivery,
    status: DeliveryStatus,
    uow: UnitOfWork,
    *,
    error: str | None = None,
    retry_at: datetime | None = None,
    extra: list[str] | None = None,
) -> None:
    row.status = status
    row.next_attempt_at = retry_at
    fields = ["status", "next_attempt_at", *(extra or [])]
    if error is not None:
        row.last_error = _clip(error)
        fields.append("last_error")
    await row.save(using_db=uow.connection, update_fields=fields)


def _failure(result: AttemptResult) -> str:
    return result.error or f"HTTP {result.status_code}"


def _clip(text: str) -> str:
    return text if len(text) <= MAX_ERROR_LENGTH else text[: MAX_ERROR_LENGTH - 1] + "…"
