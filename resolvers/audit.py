"""Reading the audit trail: staff see every record about an entity, newest first."""

from __future__ import annotations

import csv
from datetime import datetime
from typing import TextIO

from db.models import AuditRecord
from resolvers.context import Caller
from resolvers.errors import ErrorCode, UseCaseError

MAX_RECORDS = 500
CSV_COLUMNS = (
    "id",
    "created_at",
    "actor",
    "action",
    "entity_type",
    "entity_id",
    "status_before",
    "status_after",
    "amount",
    "currency",
    "reason",
    "request_id",
    "source_ip",
)


async def audit_log(caller: Caller, entity_id: str, limit: int) -> list[AuditRecord]:
    caller.require_admin()
    if not 1 <= limit <= MAX_RECORDS:
        raise UseCaseError(ErrorCode.INVALID_INPUT, f"limit must be 1 to {MAX_RECORDS}.", "limit")
    return await AuditRecord.filter(entity_id=entity_id).order_by("-id").limit(limit)


async def export_csv(since: datetime, out: TextIO) -> int:
    """Write every audit record since `since` as CSV, oldest first, in pages; returns the count."""
    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS)
    last_id, count = 0, 0
    while True:
        page = await AuditRecord.filter(created_at__gte=since, id__gt=last_id).order_by("id").limit(1000)
        for record in page:
            writer.writerow(
                [record.created_at.isoformat() if c == "created_at" else getattr(record, c) for c in CSV_COLUMNS]
            )
        count += len(page)
        if len(page) < 1000:
            return count
        last_id = page[-1].id
