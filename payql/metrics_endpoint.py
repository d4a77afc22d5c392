"""GET /metrics: Prometheus text, behind a bearer token (PAYQL_METRICS_TOKEN).

Without a token it is served only in development; production without one does not serve it at
all, so nothing about the business (payment counts, declines, backlogs) is public by accident.
The gauges that describe shared state (webhook backlog, outbox, queue depth) are read from the
database and the queue at each scrape, within a bounded time; a slow read leaves the last values.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
from collections.abc import Callable

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route
from tortoise.functions import Count

from db.merchant_models import DeliveryStatus, MerchantDelivery
from db.models import OutboxMessage, OutboxStatus, WebhookEvent, WebhookStatus
from jobs.in_process import InProcessQueue
from jobs.saq_queue import SaqJobQueue
from payql import metrics
from payql.settings import Settings
from payql.wiring import Services

logger = logging.getLogger(__name__)

REFRESH_TIMEOUT_SECONDS = 3.0
_BACKLOG_STATUSES = (WebhookStatus.RECEIVED, WebhookStatus.FAILED, WebhookStatus.DEAD)
_UNDELIVERED = (DeliveryStatus.PENDING, DeliveryStatus.FAILED, DeliveryStatus.DEAD)


def metrics_route(settings: Settings, services: Callable[[], Services]) -> Route | None:
    """The /metrics route, or None when it must not be served (production without a token)."""
    token = settings.metrics_token.get_secret_value() if settings.metrics_token else None
    if token is None and settings.is_production:
        return None
    expected = f"Bearer {token}".encode() if token else None

    async def serve_metrics(request: Request) -> Response:
        if expected is not None:
            given = request.headers.get("authorization", "").encode()
            if not hmac.compare_digest(given, expected):
                return PlainTextResponse("metrics need PAYQL_METRICS_TOKEN as a bearer token", status_code=401)
        try:
            async with asyncio.timeout(REFRESH_TIMEOUT_SECONDS):
                await refresh_shared_gauges(services())
        except Exception:
            logger.warning("metrics: could not read the backlogs; serving the last values", exc_info=True)
        body, content_type = metrics.render()
        return Response(body, media_type=content_type)

    return Route("/metrics", serve_metrics, methods=["GET"])


async def refresh_shared_gauges(services: Services) -> None:
    rows = (
        await WebhookEvent.filter(status__in=_BACKLOG_STATUSES)
        .annotate(count=Count("id"))
        .group_by("status")
        .values("status", "count")
    )
    counts = {str(row["status"]): int(row["count"]) for row in rows}
    for status in _BACKLOG_STATUSES:
        metrics.WEBHOOK_EVENTS.labels(status=str(status)).set(counts.get(str(status), 0))
    undelivered = (
        await MerchantDelivery.filter(status__in=_UNDELIVERED)
        .annotate(count=Count("id"))
        .group_by("status")
        .values("status", "count")
    )
    waiting = {str(row["status"]): int(row["count"]) for row in undelivered}
    for delivery_status in _UNDELIVERED:
        metrics.MERCHANT_DELIVERIES.labels(status=str(delivery_status)).set(waiting.get(str(delivery_status), 0))
    unsent = (OutboxStatus.PENDING, OutboxStatus.FAILED)
    metrics.OUTBOX_BACKLOG.set(await OutboxMessage.filter(status__in=unsent).count())
    queue = services.queue
    if isinstance(queue, SaqJobQueue):
        metrics.JOB_QUEUE_DEPTH.set(await queue.saq_queue.count("queued"))
    elif isinstance(queue, InProcessQueue):
        metrics.JOB_QUEUE_DEPTH.set(queue.depth())
