"""Build the process-wide services from settings, once at start-up, and tear them down at shutdown."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import timedelta

from redis.asyncio import Redis

from db.subscriptions import subscription_channel
from db.unit_of_work import CommittedWork, add_change_listener, remove_change_listener
from domain.cancel_policy import CancelPolicy, CapturedOnCancel
from domain.dunning import BillingPolicy, FinalAction
from gateways import catalog
from gateways.base import PaymentGateway
from gateways.call_guard import CallGuard, CallLimits, guard_gateway
from gateways.health import BreakerPolicy, LocalHealthBoard
from gateways.package import GatewayConfigurationError, PreparedGateway
from gateways.registry import GatewayRegistry
from gateways.retrying import RetryPolicy as GatewayRetryPolicy
from gateways.routing import RoutingTable
from jobs.definitions import JobContext, SchedulePolicy
from jobs.in_process import InProcessQueue
from jobs.merchant_delivery import DeliveryPolicy
from jobs.periodic import PeriodicJobs
from jobs.queue import JobOffer, JobQueue, JobSpec
from jobs.saq_queue import SaqJobQueue
from notifications.mailer import MailboxMailer, Mailer, SmtpMailer
from payql.auth import TokenVerifier
from payql.gateway_observation import observe_gateway
from payql.job_observation import observed_specs
from payql.live_slots import ProcessLiveSlots, RedisLiveSlots, build_live_slots
from payql.metrics import STATUS_CHANGES, labelled, record_reconciliation
from payql.outbound_urls import OutboundPolicy
from payql.pubsub import Broker, InMemoryBroker, RedisBroker
from payql.rate_limit import ClientIpLimits, KeyedRateLimiter, PaymentRateLimiter, limits_storage
from payql.redis_pool import bounded_redis
from payql.settings import Settings
from payql.shared_circuits import CircuitSync
from payql.tracing import current_trace_context
from resolvers.context import Deps, PaymentPolicy
from resolvers.live_stream import LiveStreams
from resolvers.order_status import order_channel
from webhooks.delivery_batches import DeliveryBatches
from webhooks.store import RetryPolicy

logger = logging.getLogger(__name__)


class ConfigurationError(RuntimeError):
    pass


# Each enabled gateway package's instance for this process, by name (`prepare_gateways`).
PreparedGateways = dict[str, PreparedGateway]


@dataclass
class Services:
    settings: Settings
    deps: Deps
    broker: Broker
    tokens: TokenVerifier
    jobs: JobContext
    queue: JobQueue
    prepared: PreparedGateways
    redis: Redis | None
    ip_limits: ClientIpLimits
    live_slots: ProcessLiveSlots | RedisLiveSlots
    live_streams: LiveStreams
    periodic: PeriodicJobs | None = None
    circuit_sync: CircuitSync | None = None
    # The jobs as the queues run them (`job_observation`): what `payql worker` consumes.
    job_specs: list[JobSpec] = field(default_factory=list)
    # Verified webhook deliveries, stored and queued in batches.
    deliveries: DeliveryBatches = field(init=False)

    def __post_init__(self) -> None:
        self.deliveries = DeliveryBatches(self.enqueue_webhooks)

    async def after_commit(self, work: CommittedWork) -> None:
        """Announce status changes and dispatch new outbox messages; never raises (the sweeper
        finds what this misses)."""
        try:
            channels = dict.fromkeys(
                subscription_channel(change.entity_id)
                if change.entity == "subscription"
                else order_channel(change.order_id)
                for change in work.changes
                # Unheard: no one has an order's id before the request that created it answers.
                if change.entity == "subscription" or change.order_id not in work.created_orders
            )
            for change in work.changes:
                labelled(STATUS_CHANGES, change.entity, change.status_after).inc()
            jobs: list[JobOffer] = [
                ("dispatch_outbox_message", f"outbox:{message_id}", {"message_id": message_id})
                for message_id in work.outbox_ids
            ]
            jobs.extend((job.job, job.key, job.kwargs) for job in work.jobs)
            await self.announce_and_enqueue(list(channels), jobs)
        except Exception:
            logger.exception("after-commit notification failed; the sweeper will catch up")

    async def announce_and_enqueue(self, channels: list[str], jobs: list[JobOffer]) -> None:
        """Announce a change on each channel and queue each job: in one Redis round trip when both go to
        Redis (the same server: both use `redis_url`), else one by one."""
        if isinstance(self.broker, RedisBroker) and isinstance(self.queue, SaqJobQueue):
            announced = [self.broker.wire(channel, {"channel": channel}) for channel in channels]
            await self.queue.enqueue_many(jobs, publish=announced)
            return
        for channel in channels:
            await self.broker.publish(channel, {"channel": channel})
        for job, key, kwargs in jobs:
            await self.queue.enqueue(job, key=key, **kwargs)

    async def enqueue_webhooks(self, event_row_ids: list[int]) -> None:
        """One job for the events one batch of deliveries stored (`webhooks.delivery_batches`); never raises."""
        try:
            if len(event_row_ids) == 1:
                (event_row_id,) = event_row_ids
                await self.queue.enqueue(
                    "process_webhook_event", key=f"webhook:{event_row_id}", event_row_id=event_row_id
                )
            else:
                # The first id is new to this batch, so the key is the batch's own.
                await self.queue.enqueue(
                    "process_webhook_events", key=f"webhooks:{event_row_ids[0]}", event_row_ids=event_row_ids
                )
        except Exception:
            logger.exception("could not queue webhook events %s; the sweeper will", event_row_ids)

    async def aclose(self) -> None:
        remove_change_listener(self.after_commit)
        await self.deliveries.aclose()
        if self.periodic is not None:
            await self.periodic.aclose()
        if self.circuit_sync is not None:
            await self.circuit_sync.aclose()
        for prepared in self.prepared.values():
            await prepared.aclose()
        await self.queue.aclose()
        await self.deps.gateways.aclose()
        await self.live_streams.aclose()
        await self.broker.aclose()
        await self.live_slots.aclose()
        if self.redis is not None:
            await self.redis.aclose()


def prepare_gateways(settings: Settings, *, background: bool = True) -> PreparedGateways:
    """Each enabled package's instance for this process, before the app is built (their routes are mounted
    then). `background` is False in CLI commands: no webhook deliveries or other background work."""
    try:
        return {
            name: catalog.package_of(name).prepare(
                settings.gateway(name), public_base_url=settings.public_base_url, background=background
            )
            for name in settings.gateways
        }
    except GatewayConfigurationError as error:
        raise ConfigurationError(str(error)) from None


def build_mailer(settings: Settings) -> Mailer:
    if settings.smtp_host:
        return SmtpMailer(
            settings.smtp_host,
            settings.smtp_port,
            username=settings.smtp_username,
            password=settings.smtp_password.get_secret_value() if settings.smtp_password else None,
            start_tls=settings.smtp_starttls,
            sender=settings.mail_sender,
        )
    return MailboxMailer(settings.mailbox_path, sender=settings.mail_sender)


def build_job_context(settings: Settings, gateways: GatewayRegistry) -> JobContext:
    return JobContext(
        gateways=gateways,
        mailer=build_mailer(settings),
        retry=RetryPolicy(
            max_attempts=settings.webhook_max_attempts,
            base_delay_seconds=settings.webhook_retry_base_seconds,
            max_delay_seconds=settings.webhook_retry_max_seconds,
            lease_seconds=settings.webhook_lease_seconds,
        ),
        schedule=SchedulePolicy(
            sweep_grace_seconds=settings.sweep_grace_seconds,
            reconcile_window=timedelta(seconds=settings.reconcile_window_seconds),
            orphan_age=timedelta(seconds=settings.orphan_age_seconds),
            order_expiry=timedelta(seconds=settings.order_expiry_seconds),
            outbox_max_attempts=settings.outbox_max_attempts,
            outbox_lease_seconds=settings.outbox_lease_seconds,
            dispute_warning=timedelta(days=settings.dispute_warning_days),
            merchant_email=settings.merchant_email,
        ),
        billing=billing_policy(settings),
        on_reconciled=lambda report: record_reconciliation(
            [item.kind for item in report.discrepancies], len(report.unreachable_gateways)
        ),
        merchant_webhooks=merchant_delivery_policy(settings),
    )


def merchant_delivery_policy(settings: Settings) -> DeliveryPolicy:
    return DeliveryPolicy(
        outbound=outbound_policy(settings),
        max_attempts=settings.merchant_webhook_max_attempts,
        base_delay_seconds=settings.merchant_webhook_retry_base_seconds,
        max_delay_seconds=settings.merchant_webhook_retry_max_seconds,
        timeout_seconds=settings.merchant_webhook_timeout_seconds,
        disable_after=timedelta(days=settings.merchant_webhook_disable_after_days),
        retention=timedelta(days=settings.merchant_webhook_retention_days),
        sweep_grace=timedelta(seconds=settings.sweep_grace_seconds),
        merchant_email=settings.merchant_email,
    )


def outbound_policy(settings: Settings) -> OutboundPolicy:
    return OutboundPolicy(require_https=settings.is_production, allow_private=settings.merchant_webhooks_allow_private)


def billing_policy(settings: Settings) -> BillingPolicy:
    return BillingPolicy(
        retry_days=tuple(settings.dunning_retry_days),
        grace_days=settings.dunning_grace_days,
        final_action=FinalAction(settings.dunning_final_action),
        update_payment_url=settings.billing_update_payment_url,
    )


async def build_gateways(settings: Settings, prepared: PreparedGateways | None = None) -> GatewayRegistry:
    """The registry of the enabled gateways' adapters, with the public configuration each package allows."""
    prepared = prepare_gateways(settings, background=False) if prepared is None else prepared
    gateways: list[PaymentGateway] = [await prepared[name].open() for name in settings.gateways]
    public_configs = {
        name: catalog.package_of(name).public_config(settings.gateway(name), public_base_url=settings.public_base_url)
        for name in settings.gateways
    }
    health = LocalHealthBoard(
        BreakerPolicy(
            consecutive_failures=settings.circuit_consecutive_failures,
            failure_rate=settings.circuit_failure_rate,
            window=settings.circuit_window,
            minimum_calls=settings.circuit_minimum_calls,
            open_seconds=settings.circuit_open_seconds,
            slow_call_seconds=settings.circuit_slow_call_seconds,
        )
    )
    guard = CallGuard(
        CallLimits(
            call_timeout_seconds=settings.gateway_call_timeout_seconds,
            max_concurrent_calls=settings.gateway_max_concurrent_calls,
            request_deadline_seconds=settings.gateway_request_deadline_seconds,
        )
    )
    return GatewayRegistry(
        # Observed outside the guard: its timeout is a failure the breaker hears of, its refusal is not.
        (observe_gateway(guard_gateway(gateway, guard), health) for gateway in gateways),
        public_configs,
        routing=RoutingTable.parse(settings.routing, settings.gateways),
        health=health,
        retries=GatewayRetryPolicy(
            attempts=settings.gateway_retry_attempts,
            base_seconds=settings.gateway_retry_base_seconds,
            max_seconds=settings.gateway_retry_max_seconds,
        ),
        guard=guard,
    )


def periodic_intervals(settings: Settings) -> dict[str, float]:
    """Seconds between runs of each periodic job (0: off): the in-process timers and `payql
    worker`'s cron entries both come from here."""
    return {
        "sweep": settings.sweep_interval_seconds,
        "reconcile": settings.reconcile_interval_seconds,
        "dunning": settings.dunning_interval_seconds,
        "flag_disputes_due_soon": settings.dispute_check_interval_seconds,
    }


def build_job_queue(settings: Settings, job_specs: list[JobSpec]) -> JobQueue:
    """saq over Redis when the settings ask for it (its jobs' heartbeat from them), else in-process."""
    if settings.effective_job_queue == "redis" and settings.redis_url:
        return SaqJobQueue(
            settings.redis_url,
            job_specs,
            name=f"{settings.redis_key_prefix}jobs",
            trace_context=current_trace_context,
            heartbeat_seconds=settings.worker_job_heartbeat_seconds,
        )
    return InProcessQueue(job_specs)


async def build_services(settings: Settings, prepared: PreparedGateways, *, serve_jobs: bool = True) -> Services:
    """Everything a PayQL process needs. `serve_jobs` starts in-process jobs, periodic timers and the
    gateways' background work (the web server on the embedded default); a `payql worker` or a CLI command
    passes False."""
    registry = await build_gateways(settings, prepared)
    redis = (
        bounded_redis(
            settings.redis_url,
            max_connections=settings.redis_max_connections,
            wait_seconds=settings.redis_pool_timeout_seconds,
            client_name=f"{settings.redis_key_prefix}app",
        )
        if settings.redis_url
        else None
    )
    broker: Broker = (
        RedisBroker(redis, settings.redis_url, settings.redis_key_prefix, queue_size=settings.live_update_queue_size)
        if redis is not None and settings.redis_url
        else InMemoryBroker(queue_size=settings.live_update_queue_size)
    )
    jobs = build_job_context(settings, registry)
    job_specs = observed_specs(jobs.specs())
    queue = build_job_queue(settings, job_specs)
    jobs.queue = queue
    await queue.start()
    limits = limits_storage(redis, settings.redis_key_prefix)
    live_slots = build_live_slots(settings.max_live_subscriptions, redis, settings.redis_key_prefix)
    deps = Deps(
        gateways=registry,
        rate_limiter=PaymentRateLimiter(settings.payment_rate_limit, redis, settings.redis_key_prefix, limits),
        complete_limiter=KeyedRateLimiter(settings.complete_payment_rate_limit, limits, "complete-payment"),
        live_subscriptions=live_slots,
        outbound=outbound_policy(settings),
        policy=PaymentPolicy(
            idempotency_ttl_seconds=settings.idempotency_ttl_seconds,
            idempotency_lease_seconds=settings.idempotency_lease_seconds,
            return_origins=frozenset(origin.rstrip("/") for origin in settings.cors_origins),
            billing=jobs.billing,
            cancel=CancelPolicy(
                captured=CapturedOnCancel(settings.cancel_order_captured),
                allow_after_fulfillment=settings.cancel_order_after_fulfillment,
            ),
        ),
    )
    services = Services(
        settings=settings,
        deps=deps,
        broker=broker,
        tokens=TokenVerifier(settings),
        jobs=jobs,
        queue=queue,
        prepared=prepared,
        redis=redis,
        ip_limits=ClientIpLimits(settings.anonymous_rate_limit, settings.failed_auth_rate_limit, limits),
        live_slots=live_slots,
        live_streams=LiveStreams(broker.subscribe, queue_size=settings.live_update_queue_size),
        job_specs=job_specs,
    )
    add_change_listener(services.after_commit)
    if serve_jobs and redis is not None and settings.circuit_sync_seconds > 0:
        health = registry.health
        if isinstance(health, LocalHealthBoard):
            services.circuit_sync = CircuitSync(
                health, redis, settings.redis_key_prefix, settings.gateways, settings.circuit_sync_seconds
            )
            services.circuit_sync.start()
    if serve_jobs and isinstance(queue, InProcessQueue):
        services.periodic = PeriodicJobs(queue, periodic_intervals(settings))
        services.periodic.start()
    if serve_jobs:
        for gateway in prepared.values():
            await gateway.start()
    return services
