"""The due-date check: disputes still waiting for evidence whose due date is near are flagged, once.

Flagging sets `due_soon_flagged_at` and writes one email to the merchant through the outbox (unique
per dispute), in one transaction with an audit record. A dispute with evidence submitted, or closed,
is never flagged; one already flagged is not flagged again, so the merchant gets one email per dispute.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

from db import disputes
from db.models import Dispute
from db.transitions import Actor
from domain.statuses import DisputeStatus

logger = logging.getLogger(__name__)

ACTOR = Actor(name="system:dispute-deadlines", reason="evidence due soon")


async def flag_disputes_due_soon(*, warning: timedelta, merchant_email: str | None, now: datetime | None = None) -> int:
    """Flag every open dispute without evidence due before `now + warning`; returns how many were flagged."""
    at = now or datetime.now(UTC)
    due = await Dispute.filter(
        status=DisputeStatus.NEEDS_RESPONSE,
        evidence_submitted_at__isnull=True,
        due_soon_flagged_at__isnull=True,
        evidence_due_by__lte=at + warning,
    ).only("id")
    candidates = [dispute.id for dispute in due]
    if candidates and not merchant_email:
        logger.warning("disputes are due soon but PAYQL_MERCHANT_EMAIL is not set: flagged without an email")
    flagged = 0
    for dispute_id in candidates:
        if await disputes.flag_due_soon(dispute_id, at, merchant_email, ACTOR):
            flagged += 1
    if flagged:
        logger.info("flagged %d disputes whose evidence is due soon", flagged)
    return flagged
