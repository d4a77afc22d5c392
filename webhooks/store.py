"""Storing verified deliveries exactly once, and moving stored events through their own lifecycle.

The webhook_events table is the truth: a job only carries a row id, and the sweeper finds any row
whose job was lost. Its kept headers and address never carry a card number on (they are redacted).
"""

from __future__ import annotations

import json
import random
import traceback
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from tortoise import connections

from db import sent_statements
from db.insert_once import insert_each_once
from db.models import WebhookEvent, WebhookStatus
from db.placeholders import in_dialect
from domain.card_numbers import looks_like_card_number, redact_card_numbers
from gateways.types import VerifiedEvent, WebhookDelivery
from payql.metrics import WEBHOOK_ATTEMPTS, WEBHOOK_LAG, labelled

# Never keep credentials that a proxy may have forwarded with the delivery.
_DROPPED_HEADERS = frozenset({"authorization", "cookie", "proxy-authorization"})
FINAL_STATUSES = frozenset({WebhookStatus.PROCESSED, WebhookStatus.IGNORED, WebhookStatus.DEAD})
_DONE_STATUSES = frozenset({WebhookStatus.PROCESSED, WebhookStatus.IGNORED})


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    max_attempts: int = 8
    base_delay_seconds: float = 5.0
    max_delay_seconds: float = 3600.0
    # How long one processing attempt may hold an event before the sweeper may take it again.
    lease_seconds: float = 120.0

    def delay_after(self, attempts: int) -> float:
        """Exponential backoff with full jitter, so retries of many events do not arrive together."""
        ceiling = min(self.max_delay_seconds, self.base_delay_seconds * 2 ** max(0, attempts - 1))
        return random.uniform(ceiling / 2, ceiling)  # noqa: S311 - jitter, not cryptography


def now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class ClaimedEvent:
    """A stored event taken for one processing attempt: what processing reads of its row, its body
    opened. Not the whole row: reading and converting the headers kept for operators, and building
    an ORM instance, cost more than processing an event it ignores."""

    id: int
    gateway: str
    event_id: str
    event_type: str
    body: str
    attempts: int  # this attempt's number
    received_at: datetime


@dataclass(frozen=True, slots=True)
class VerifiedDelivery:
    """A delivery whose signature its gateway's adapter verified, as it is to be stored."""

    gateway: str
    event: VerifiedEvent
    delivery: WebhookDelivery
    source_ip: str | None


def _kept_fields(verified: VerifiedDelivery) -> dict[str, Any]:
    # The headers are not signed: a proxy or a replaying client may put a card number in one.
    headers = {k: redact_card_numbers(v) for k, v in verified.delivery.headers.items() if k not in _DROPPED_HEADERS}
    source_ip = verified.source_ip
    return {
        "gateway": verified.gateway,
        "event_id": verified.event.event_id,
        "event_type": verified.event.event_type,
        "headers": headers,
        "body": verified.delivery.body.decode("utf-8"),
        "source_ip": None if source_ip is None or looks_like_card_number(source_ip) else source_ip,
    }


async def store_deliveries(verified: list[VerifiedDelivery]) -> list[int | None]:
    """Insert each delivery once, all in one statement; each one's new row id, or None for a
    duplicate (of a stored event, or of one earlier in the list), which inserts nothing."""
    # One statement: a duplicate delivery inserts nothing (no transaction, no refused INSERT).
    return await insert_each_once(
        WebhookEvent, [_kept_fields(one) for one in verified], connections.get("default"), ("gateway", "event_id")
    )


async def store_delivery(
    gateway: str, event: VerifiedEvent, delivery: WebhookDelivery, source_ip: str | None
) -> tuple[WebhookEvent, bool]:
    """Insert the delivery once; its stored row, and whether this call stored it."""
    (row_id,) = await store_deliveries([VerifiedDelivery(gateway, event, delivery, source_ip)])
    if row_id is not None:
        return await WebhookEvent.get(id=row_id), True
    return await WebhookEvent.get(gateway=gateway, event_id=event.event_id), False


# The claim and the final status are each one statement for a whole batch of events. On PostgreSQL
# the batch's rows are locked in id order first, so two batches that share events (two processes'
# sweepers queueing the same due events) wait for each other instead of deadlocking; SQLite runs
# writes one at a time and takes the ids as a JSON array, having no arrays. Only constants (status
# values) are put into the SQL; every value is a parameter.
_FINAL_LIST = ", ".join(f"'{status.value}'" for status in sorted(FINAL_STATUSES))
_BATCH = {
    "postgres": "id IN (SELECT id FROM webhook_events WHERE id = ANY($2::bigint[]) ORDER BY id FOR UPDATE)",
    "sqlite": "id IN (SELECT value FROM json_each(?2))",
}
_CLAIM = (
    "UPDATE webhook_events SET attempts = attempts + 1, next_attempt_at = $1"
    " WHERE {batch} AND status NOT IN ({final}) AND (next_attempt_at IS NULL OR next_attempt_at <= $3)"
    " RETURNING id, gateway, event_id, event_type, body, attempts, received_at"
)
_FINISH = (
    "UPDATE webhook_events SET status = CASE WHEN {ignored} THEN '{ignored_status}' ELSE '{processed_status}' END,"
    " processed_at = $1, next_attempt_at = NULL, last_error = NULL WHERE {batch}"
)
_IGNORED = {"postgres": "id = ANY($3::bigint[])", "sqlite": "id IN (SELECT value FROM json_each(?3))"}
_STATEMENTS = {
    dialect: (
        in_dialect(_CLAIM.format(batch=batch, final=_FINAL_LIST), dialect),
        in_dialect(
            _FINISH.format(
                batch=batch,
                ignored=_IGNORED[dialect],
                ignored_status=WebhookStatus.IGNORED.value,
                processed_status=WebhookStatus.PROCESSED.value,
            ),
            dialect,
        ),
    )
    for dialect, batch in _BATCH.items()
}


def _ids(ids: list[int], dialect: str) -> list[int] | str:
    return ids if dialect == "postgres" else json.dumps(ids)


def _stamp(moment: datetime) -> Any:
    return WebhookEvent._meta.fields_map["next_attempt_at"].to_db_value(moment, WebhookEvent)


async def claim_events(event_row_ids: list[int], policy: RetryPolicy) -> list[ClaimedEvent]:
    """Take each of the events for one attempt, in one statement; the events taken, without those
    that are final or that another attempt holds (or unknown ids).

    One statement, not a transaction of a locking read and an update: the UPDATE locks each row, and
    a concurrent claim waits for it and then checks the conditions against the row as it left it
    (PostgreSQL re-reads an updated row; SQLite runs writes one at a time), so each lease is taken
    once."""
    connection = connections.get("default")
    dialect = connection.capabilities.dialect
    current = now()
    values = [
        _stamp(current + timedelta(seconds=policy.lease_seconds)),
        _ids(event_row_ids, dialect),
        _stamp(current),
    ]
    rows = await sent_statements.fetch(connection, _STATEMENTS[dialect][0], values)
    fields = WebhookEvent._meta.fields_map
    body, received_at = fields["body"], fields["received_at"]
    return [
        ClaimedEvent(
            id=row["id"],
            gateway=row["gateway"],
            event_id=row["event_id"],
            event_type=row["event_type"],
            body=body.to_python_value(row["body"]),
            attempts=row["attempts"],
            received_at=received_at.to_python_value(row["received_at"]),
        )
        for row in rows
    ]


async def finish_events(finished: list[tuple[ClaimedEvent, WebhookStatus]]) -> None:
    """Each claimed event is PROCESSED or IGNORED, in one statement; each one's lag from arrival and
    the attempts it took go to the metrics here, from the claimed row, rather than from reads after the job."""
    if any(status not in _DONE_STATUSES for _, status in finished):
        raise ValueError("only PROCESSED or IGNORED finish an event here")
    connection = connections.get("default")
    dialect = connection.capabilities.dialect
    processed_at = now()
    values = [
        _stamp(processed_at),
        _ids([row.id for row, _ in finished], dialect),
        _ids([row.id for row, status in finished if status is WebhookStatus.IGNORED], dialect),
    ]
    await sent_statements.execute(connection, _STATEMENTS[dialect][1], values)
    for row, status in finished:
        labelled(WEBHOOK_LAG, row.gateway).observe((processed_at - row.received_at).total_seconds())
        labelled(WEBHOOK_ATTEMPTS, row.gateway, str(status)).observe(row.attempts)


async def mark_failed(row: ClaimedEvent, error: BaseException, policy: RetryPolicy) -> float | None:
    """Record the failure with its traceback; returns the retry delay, or None once it is dead."""
    detail = "".join(traceback.format_exception(error))[-8000:]
    if row.attempts >= policy.max_attempts:
        await WebhookEvent.filter(id=row.id).update(status=WebhookStatus.DEAD, next_attempt_at=None, last_error=detail)
        labelled(WEBHOOK_ATTEMPTS, row.gateway, str(WebhookStatus.DEAD)).observe(row.attempts)
        return None
    delay = policy.delay_after(row.attempts)
    await WebhookEvent.filter(id=row.id).update(
        status=WebhookStatus.FAILED, next_attempt_at=now() + timedelta(seconds=delay), last_error=detail
    )
    return delay


async def reset_for_replay(event_row_id: int) -> bool:
    """An operator's replay: the event starts a fresh series of attempts. False if unknown."""
    updated = await WebhookEvent.filter(id=event_row_id).update(
        status=WebhookStatus.RECEIVED, attempts=0, next_attempt_at=None, processed_at=None
    )
    return updated == 1


async def due_event_ids(grace_seconds: float, limit: int = 500) -> list[int]:
    """Events whose job may have been lost: received a while ago and unprocessed, failed and due,
    or held by an attempt whose lease ran out."""
    current = now()
    received_before = current - timedelta(seconds=grace_seconds)
    rows = (
        await WebhookEvent.filter(status__in=[WebhookStatus.RECEIVED, WebhookStatus.FAILED])
        .filter(received_at__lte=received_before)
        .order_by("id")
        .limit(limit)
        .values_list("id", "next_attempt_at")
    )
    return [row_id for row_id, next_at in rows if next_at is None or next_at <= current]
