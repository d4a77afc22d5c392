"""The jobs PayQL runs, bound to the process's services; the same list feeds both queues."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from db import merchant_deliveries
from db.idempotency import purge_expired
from db.merchant_events import DELIVERY_JOB, delivery_job
from domain.dunning import BillingPolicy
from gateways.registry import GatewayRegistry
from jobs.dispute_deadlines import flag_disputes_due_soon
from jobs.dunning import run_dunning
from jobs.merchant_delivery import DeliveryPolicy, deliver
from jobs.queue import JobQueue, JobSpec
from jobs.reconcile import ReconciliationReport, reconcile
from jobs.sweeper import sweep_once
from notifications.dispatch import LEASE_SECONDS, dispatch_outbox_message, due_outbox_ids
from notifications.mailer import Mailer
from webhooks.batches import EventBatches
from webhooks.processing import WebhookProcessing
from webhooks.store import RetryPolicy


@dataclass(frozen=True, slots=True)
class SchedulePolicy:
    sweep_grace_seconds: float = 30.0
    reconcile_window: timedelta = timedelta(days=2)
    orphan_age: timedelta = timedelta(minutes=15)
    order_expiry: timedelta = timedelta(days=1)
    outbox_max_attempts: int = 8
    outbox_lease_seconds: float = LEASE_SECONDS
    dispute_warning: timedelta = timedelta(days=3)  # flag disputes without evidence due within this
    merchant_email: str | None = None  # who is told of disputes due soon


@dataclass
class JobContext:
    gateways: GatewayRegistry
    mailer: Mailer
    retry: RetryPolicy
    schedule: SchedulePolicy
    queue: JobQueue | None = field(default=None)
    billing: BillingPolicy = field(default_factory=BillingPolicy)
    # Told each periodic run's report (the reconciliation metrics); jobs know nothing of metrics.
    on_reconciled: Callable[[ReconciliationReport], None] | None = None
    merchant_webhooks: DeliveryPolicy | None = None
    # Every webhook job of this process shares its claim and final-status statements with the others.
    webhooks: WebhookProcessing = field(init=False)

    def __post_init__(self) -> None:
        self.webhooks = WebhookProcessing(
            gateways=self.gateways,
            policy=self.retry,
            schedule_retry=self.schedule_webhook_retry,
            billing=self.billing,
            batches=EventBatches(self.retry),
        )

    def require_queue(self) -> JobQueue:
        if self.queue is None:
            raise RuntimeError("job queue not attached")
        return self.queue

    async def process_webhook(self, event_row_id: int) -> None:
        await self.webhooks.event(event_row_id)

    async def process_webhooks(self, event_row_ids: list[int]) -> None:
        """The events one batch of deliveries stored, at once: their claims and final statuses share
        statements (`webhooks.batches`); each event's failure and retry stay its own."""
        await self.webhooks.events(event_row_ids)

    async def schedule_webhook_retry(self, event_row_id: int, delay: float) -> None:
        await self.require_queue().enqueue(
            "process_webhook_event",
            key=f"webhook:{event_row_id}",
            delay_seconds=delay,
            event_row_id=event_row_id,
        )

    async def dispatch_outbox(self, message_id: int) -> None:
        await dispatch_outbox_message(
            message_id,
            mailer=self.mailer,
            max_attempts=self.schedule.outbox_max_attempts,
            lease_seconds=self.schedule.outbox_lease_seconds,
        )

    async def deliver_merchant_webhook(self, delivery_id: int) -> None:
        if self.merchant_webhooks is None:
            return
        outcome = await deliver(delivery_id, self.merchant_webhooks)
        if outcome is not None and outcome.retry_in is not None:
            job = delivery_job(delivery_id)
            await self.require_queue().enqueue(job.job, key=job.key, delay_seconds=outcome.retry_in, **job.kwargs)

    async def sweep(self) -> None:
        await purge_expired()
        await sweep_once(
            self.require_queue(),
            webhook_grace_seconds=self.schedule.sweep_grace_seconds,
            due_outbox_ids=due_outbox_ids,
        )
        if self.merchant_webhooks is not None:
            await self.sweep_merchant_webhooks(self.merchant_webhooks)

    async def sweep_merchant_webhooks(self, policy: DeliveryPolicy) -> None:
        """Queue deliveries whose job was lost or whose retry is due; prune what is past retention."""
        for delivery_id in await merchant_deliveries.due_delivery_ids(policy.sweep_grace):
            job = delivery_job(delivery_id)
            await self.require_queue().enqueue(job.job, key=job.key, **job.kwargs)
        await merchant_deliveries.prune(datetime.now(UTC) - policy.retention)

    async def reconcile(self) -> None:
        report = await reconcile(
            self.gateways,
            since=datetime.now(UTC) - self.schedule.reconcile_window,
            orphan_age=self.schedule.orphan_age,
            order_expiry=self.schedule.order_expiry,
            billing=self.billing,
        )
        if self.on_reconciled is not None:
            self.on_reconciled(report)

    async def dunning(self) -> None:
        await run_dunning(self.gateways, self.billing)

    async def flag_disputes_due_soon(self) -> None:
        await flag_disputes_due_soon(warning=self.schedule.dispute_warning, merchant_email=self.schedule.merchant_email)

    def specs(self) -> list[JobSpec]:
        return [
            JobSpec("process_webhook_event", self.process_webhook, timeout_seconds=self.retry.lease_seconds),
            JobSpec("process_webhook_events", self.process_webhooks, timeout_seconds=self.retry.lease_seconds),
            # Timed out well inside its lease, so a send still running is never taken over by another process.
            JobSpec(
                "dispatch_outbox_message",
                self.dispatch_outbox,
                timeout_seconds=min(60.0, self.schedule.outbox_lease_seconds / 2),
            ),
            JobSpec(DELIVERY_JOB, self.deliver_merchant_webhook, timeout_seconds=self._delivery_timeout()),
            JobSpec("sweep", self.sweep, timeout_seconds=300),
            JobSpec("reconcile", self.reconcile, timeout_seconds=1800),
            JobSpec("flag_disputes_due_soon", self.flag_disputes_due_soon, timeout_seconds=600),
            JobSpec("dunning", self.dunning, timeout_seconds=1800),
        ]

    def _delivery_timeout(self) -> float:
        policy = self.merchant_webhooks
        return policy.lease.total_seconds() if policy is not None else 60.0
