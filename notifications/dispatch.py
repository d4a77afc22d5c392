"""Sending outbox messages exactly once, as far as one side can: claim with a lease, send, mark SENT.

`dispatch_outbox_message` is the job the queue runs after a commit; `due_outbox_ids` is what the
sweeper re-enqueues. Three short transactions, and no row lock is ever held across the network:

1. claim: lock the row, skip it if it is SENT, DEAD, leased by another dispatcher or backing off;
   otherwise count the attempt and set `next_attempt_at = now + lease` as the lease, commit.
2. render and send, with no transaction open.
3. finish: lock the row again and record SENT, FAILED (with backoff) or DEAD.

A dispatcher that dies between 1 and 3 leaves the lease behind; when it expires the sweeper finds
the row and it is sent again (at least once; the Message-ID is stable so a receiver can drop the
copy). A claimed attempt counts whether or not it finishes, so a message that keeps killing its
dispatcher still ends DEAD after `max_attempts`. A finish from a dispatcher whose lease was taken
over is ignored unless it reports a send (the email did go out), and nothing overwrites SENT or DEAD.
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from tortoise.expressions import Q

from db.models import OutboxMessage, OutboxStatus
from db.transaction import transaction
from notifications import billing_templates, merchant_templates
from notifications.mailer import Mailer, PermanentSendError
from notifications.templates import Undeliverable, render

logger = logging.getLogger(__name__)

# Template modules beyond `notifications.templates` register on import; naming them here makes sure
# every process that dispatches has them.
TEMPLATE_MODULES = (billing_templates, merchant_templates)

LEASE_SECONDS = 300.0  # longer than one send can take (SMTP timeout, job timeout)
BACKOFF_BASE_SECONDS = 30.0
BACKOFF_MAX_SECONDS = 6 * 3600.0
PENDING_GRACE_SECONDS = 30.0  # new messages are dispatched right after commit; the sweeper waits this long
MAX_ERROR_LENGTH = 2000

FINAL = (OutboxStatus.SENT, OutboxStatus.DEAD)
_random = secrets.SystemRandom()


def utcnow() -> datetime:
    return datetime.now(UTC)


def backoff_seconds(attempt: int) -> float:
    """Delay after failed attempt number `attempt` (1-based): exponential, capped, with jitter
    between half and all of it so messages that failed together do not retry together."""
    ceiling = min(BACKOFF_MAX_SECONDS, BACKOFF_BASE_SECONDS * 2 ** max(attempt - 1, 0))
    return _random.uniform(ceiling / 2, ceiling)


@dataclass(frozen=True, slots=True)
class _Claim:
    id: int
    kind: str
    dedupe_key: str
    payload: dict[str, Any]
    attempt: int  # the row's `attempts` after this claim: identifies the lease


async def dispatch_outbox_message(
    message_id: int, *, mailer: Mailer, max_attempts: int = 8, lease_seconds: float = LEASE_SECONDS
) -> None:
    """Send one outbox message unless it is already sent, dead, leased or not yet due. Idempotent:
    a duplicate or concurrent job for the same id does nothing. Never raises for a failed send; the
    failure is recorded on the row and the sweeper retries it when due."""
    claim = await _claim(message_id, max_attempts=max_attempts, lease_seconds=lease_seconds)
    if claim is None:
        return
    try:
        message = await render(claim.kind, claim.dedupe_key, claim.payload)
        await mailer.send(message)
    except (Undeliverable, PermanentSendError) as exc:
        logger.error("outbox message %s (%s) is undeliverable: %s", claim.id, claim.kind, exc)
        await _finish(claim, OutboxStatus.DEAD, error=str(exc))
    except Exception as exc:
        error = f"{type(exc).__name__}: {exc}"
        if claim.attempt >= max_attempts:
            logger.error(
                "outbox message %s (%s) failed for good after %s attempts", claim.id, claim.kind, claim.attempt
            )
            await _finish(claim, OutboxStatus.DEAD, error=error)
        else:
            delay = backoff_seconds(claim.attempt)
            logger.warning(
                "outbox message %s (%s) attempt %s failed, retry in %.0fs: %s",
                claim.id,
                claim.kind,
                claim.attempt,
                delay,
                error,
            )
            await _finish(claim, OutboxStatus.FAILED, error=error, retry_at=utcnow() + timedelta(seconds=delay))
    else:
        await _finish(claim, OutboxStatus.SENT)


async def _claim(message_id: int, *, max_attempts: int, lease_seconds: float) -> _Claim | None:
    async with transaction() as connection:
        row = await OutboxMessage.filter(id=message_id).using_db(connection).select_for_update().first()
        if row is None or row.status in FINAL:
            return None
        now = utcnow()
        if row.next_attempt_at is not None and row.next_attempt_at > now:
            return None  # another dispatcher holds the lease, or the backoff has not passed
        if row.attempts >= max_attempts:
            # The last claimed attempt never reported back (its dispatcher died) and no attempts are left.
            row.status = OutboxStatus.DEAD
            row.next_attempt_at = None
            row.last_error = _clip(f"gave up after {row.attempts} attempts; the last one never finished")
            await row.save(using_db=connection, update_fields=["status", "next_attempt_at", "last_error"])
            logger.error("outbox message %s (%s) is dead: %s", row.id, row.kind, row.last_error)
            return None
        row.attempts += 1
        row.next_attempt_at = now + timedelta(seconds=lease_seconds)
        await row.save(using_db=connection, update_fields=["attempts", "next_attempt_at"])
        return _Claim(row.id, row.kind, row.dedupe_key, dict(row.payload or {}), row.attempts)


async def _finish(
    claim: _Claim, status: OutboxStatus, *, error: str | None = None, retry_at: datetime | None = None
) -> None:
    async with transaction() as connection:
        row = await OutboxMessage.filter(id=claim.id).using_db(connection).select_for_update().first()
        if row is None or row.status in FINAL:
            return
        if status is not OutboxStatus.SENT and row.attempts != claim.attempt:
            return  # our lease expired and a newer attempt owns the row; its outcome counts
        row.status = status
        row.next_attempt_at = retry_at
        update = ["status", "next_attempt_at"]
        if status is OutboxStatus.SENT:
            row.sent_at = utcnow()
            update.append("sent_at")
        if error is not None:
            row.last_error = _clip(error)
            update.append("last_error")
        await row.save(using_db=connection, update_fields=update)


async def due_outbox_ids(limit: int = 100, *, grace_seconds: float = PENDING_GRACE_SECONDS) -> list[int]:
    """Messages the sweeper should enqueue, oldest first: PENDING ones older than the grace period
    (their after-commit dispatch was lost), FAILED ones whose backoff has passed, and any whose
    dispatcher's lease has expired."""
    now = utcnow()
    never_tried = Q(
        status=OutboxStatus.PENDING,
        next_attempt_at__isnull=True,
        created_at__lte=now - timedelta(seconds=grace_seconds),
    )
    due_again = Q(status__in=[OutboxStatus.PENDING, OutboxStatus.FAILED], next_attempt_at__lte=now)
    rows = OutboxMessage.filter(never_tried | due_again).order_by("id").limit(limit)
    return [row.id for row in await rows.only("id")]


def _clip(error: str) -> str:
    return error if len(error) <= MAX_ERROR_LENGTH else error[: MAX_ERROR_LENGTH - 1] + "…"
