"""Sending outbox messages exactly once, as far as one side can: claim with a lease, send, mark SENT.

`dispatch_outbox_message` is the job the queue runs after a commit; `due_outbox_ids` is what the
sweeper re-enqueues. Two statements, and no row lock is ever held across the network:

1. claim: one `UPDATE … RETURNING` that takes the row only if it is not SENT or DEAD, not leased by
   another dispatcher or backing off, and has attempts left; it counts the attempt and sets
   `next_attempt_at = now + lease` as the lease. (A row out of attempts is marked DEAD instead.)
2. render and send, with no transaction open; the claim and the template's reads share one pooled
   connection (`db.one_connection`), given back before the send.
3. finish: one `UPDATE` that records SENT, FAILED (with backoff) or DEAD, under the same conditions.

The UPDATE locks the row, and a concurrent one waits for it and then checks its conditions against
the row as it left it (PostgreSQL re-reads an updated row; SQLite runs writes one at a time), so a
lease is taken once without a transaction around a locking read. A dispatcher that dies between 1
and 3 leaves the lease behind; when it expires the sweeper finds the row and it is sent again (at
least once; the Message-ID is stable so a receiver can drop the copy). A claimed attempt counts
whether or not it finishes, so a message that keeps killing its dispatcher still ends DEAD after
`max_attempts`. A finish from a dispatcher whose lease was taken over is ignored unless it reports
a send (the email did go out), and nothing overwrites SENT or DEAD.
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from tortoise import connections
from tortoise.expressions import Q

from db import sent_statements
from db.models import OutboxMessage, OutboxStatus
from db.one_connection import one_connection
from db.placeholders import for_connection
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
    # The claim and the template's reads on one connection, given back before the mailer's wait.
    async with one_connection():
        claim = await _claim(message_id, max_attempts=max_attempts, lease_seconds=lease_seconds)
        if claim is None:
            return
        try:
            message = await render(claim.kind, claim.dedupe_key, claim.payload)
        except Exception as exc:
            await _record_failure(claim, exc, max_attempts)
            return
    try:
        await mailer.send(message)
    except Exception as exc:
        await _record_failure(claim, exc, max_attempts)
    else:
        await _finish(claim, OutboxStatus.SENT)


async def _record_failure(claim: _Claim, exc: Exception, max_attempts: int) -> None:
    """DEAD when no retry can help (or none is left); otherwise FAILED, due again after a backoff."""
    if isinstance(exc, Undeliverable | PermanentSendError):
        logger.error("outbox message %s (%s) is undeliverable: %s", claim.id, claim.kind, exc)
        await _finish(claim, OutboxStatus.DEAD, error=str(exc))
        return
    error = f"{type(exc).__name__}: {exc}"
    if claim.attempt >= max_attempts:
        logger.error("outbox message %s (%s) failed for good after %s attempts", claim.id, claim.kind, claim.attempt)
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


# The claim, the dead end and the finish, each one statement written out: the ORM's builder cost as much
# as running them, and a locking read plus an update in a transaction took four round trips each.
_NOT_FINAL = f"status NOT IN ({', '.join(repr(str(status)) for status in FINAL)})"
_DUE = "(next_attempt_at IS NULL OR next_attempt_at <= $2)"
_CLAIM = (
    "UPDATE outbox_messages SET attempts = attempts + 1, next_attempt_at = $3"  # noqa: S608 - constants only
    f" WHERE id = $1 AND {_NOT_FINAL} AND {_DUE} AND attempts < $4 RETURNING id, kind, dedupe_key, payload, attempts"
)
_GIVE_UP = (
    "UPDATE outbox_messages SET status = 'DEAD', next_attempt_at = NULL,"  # noqa: S608 - constants only
    " last_error = 'gave up after ' || attempts || ' attempts; the last one never finished'"
    f" WHERE id = $1 AND {_NOT_FINAL} AND {_DUE} AND attempts >= $3 RETURNING kind, last_error"
)
# A stale dispatcher (its lease taken over: another attempt counted) may still report a send.
_FINISH = (
    "UPDATE outbox_messages SET status = $2, next_attempt_at = $3,"  # noqa: S608 - constants only
    " sent_at = COALESCE($4, sent_at), last_error = COALESCE($5, last_error)"
    f" WHERE id = $1 AND {_NOT_FINAL} AND ($2 = 'SENT' OR attempts = $6)"
)


def _stamp(moment: datetime | None) -> Any:
    return OutboxMessage._meta.fields_map["next_attempt_at"].to_db_value(moment, OutboxMessage)


async def _claim(message_id: int, *, max_attempts: int, lease_seconds: float) -> _Claim | None:
    connection = connections.get("default")
    now = utcnow()
    lease = now + timedelta(seconds=lease_seconds)
    values = [message_id, _stamp(now), _stamp(lease), max_attempts]
    rows = await sent_statements.fetch(connection, for_connection(_CLAIM, connection), values)
    if rows:
        row = rows[0]
        payload = OutboxMessage._meta.fields_map["payload"].to_python_value(row["payload"])
        return _Claim(row["id"], row["kind"], row["dedupe_key"], dict(payload or {}), row["attempts"])
    # Not claimed: sent, dead, leased, backing off, unknown, or out of attempts. Only the last
    # changes anything: the last claimed attempt never reported back (its dispatcher died).
    dead = await sent_statements.fetch(connection, for_connection(_GIVE_UP, connection), [*values[:2], max_attempts])
    if dead:
        logger.error("outbox message %s (%s) is dead: %s", message_id, dead[0]["kind"], dead[0]["last_error"])
    return None


async def _finish(
    claim: _Claim, status: OutboxStatus, *, error: str | None = None, retry_at: datetime | None = None
) -> None:
    connection = connections.get("default")
    sent_at = utcnow() if status is OutboxStatus.SENT else None
    values = [
        claim.id,
        str(status),
        _stamp(retry_at),
        _stamp(sent_at),
        None if error is None else _clip(error),
        claim.attempt,
    ]
    await sent_statements.execute(connection, for_connection(_FINISH, connection), values)


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
