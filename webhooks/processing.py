"""Applying a stored webhook event: interpret it with its gateway, re-read what may be stale, and
hand each effect to the use case an API answer goes through too (`resolvers.payment_sync` for a
payment or a dispute, `resolvers.refunds`, `resolvers.subscription_sync`), idempotently by event id.
Nothing here writes a payment, refund, dispute or subscription itself.

A failure is recorded on the event with its traceback and retried with backoff; after the last
attempt the event is dead until an operator replays it.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeGuard

from db.models import EventSource, Refund, WebhookStatus
from db.transitions import Actor
from domain.dunning import BillingPolicy
from domain.log_context import log_scope
from gateways.base import PaymentGateway
from gateways.billing import BillingGateway
from gateways.registry import GatewayRegistry
from gateways.stored_events import StoredEventReader
from gateways.types import (
    DisputeObserved,
    EventIgnored,
    InvoiceObserved,
    PaymentObserved,
    RefundObserved,
    SubscriptionNotice,
    SubscriptionNoticeKind,
    SubscriptionObserved,
    VerifiedEvent,
)
from resolvers.payment_sync import complete_if_approved, find_payment, sync_payment
from resolvers.refunds import apply_refund_result
from resolvers.subscription_sync import (
    UnknownSubscription,
    find_subscription,
    queue_trial_ending_email,
    sync_invoice,
    sync_subscription,
)
from webhooks.batches import EventBatches
from webhooks.store import ClaimedEvent, RetryPolicy, mark_failed

logger = logging.getLogger(__name__)

ScheduleRetry = Callable[[int, float], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class WebhookProcessing:
    """A process's processing of stored events: by the gateways, under the retry policy, with the
    process's shared claim and final-status batches. `event` is one event's job (a retry, a
    sweeper's requeue), `events` one batch of deliveries' job."""

    gateways: GatewayRegistry
    policy: RetryPolicy
    schedule_retry: ScheduleRetry
    billing: BillingPolicy
    batches: EventBatches

    async def event(self, event_row_id: int) -> None:
        """One attempt at the event, unless it is final or another attempt holds it. Its claim and
        its final status go into this process's batches; its failure and its retry are its own."""
        async with self.batches.attempt():
            row = await self.batches.claim(event_row_id)
            if row is None:
                return
            status = await self._attempt(row)
            if status is not None:
                await self.batches.finish(row, status)

    async def events(self, event_row_ids: list[int]) -> None:
        """One attempt at each of the events (one batch of deliveries), all at once: their claims
        and their final statuses are submitted together, so that they share statements; one event's
        failure is its own and stops no other."""
        async with self.batches.attempt(len(event_row_ids)) as at_work:
            claimed = [row for row in await self.batches.claim_many(event_row_ids) if row is not None]
            at_work.ended(len(event_row_ids) - len(claimed))

            async def attempt(row: ClaimedEvent) -> WebhookStatus | None:
                status = await self._attempt(row)
                if status is None:
                    at_work.ended(1)
                return status

            outcomes = await asyncio.gather(*(attempt(row) for row in claimed), return_exceptions=True)
            finished = [
                (row, outcome)
                for row, outcome in zip(claimed, outcomes, strict=True)
                if isinstance(outcome, WebhookStatus)
            ]
            if finished:
                await self.batches.finish_many(finished)
        # An event whose failure could not even be recorded (the database gone) holds its lease: the
        # sweeper takes it again once it lapses.
        unrecorded = [outcome for outcome in outcomes if isinstance(outcome, Exception)]
        if unrecorded:
            raise ExceptionGroup(f"{len(unrecorded)} of {len(claimed)} webhook events not processed", unrecorded)

    async def _attempt(self, row: ClaimedEvent) -> WebhookStatus | None:
        """The claimed event applied: its final status; or its failure recorded, its retry
        scheduled, and None."""
        # The event's id on its own log lines: a batch's job runs several events at once.
        with log_scope(webhook_event_id=row.id):
            try:
                applied = await apply_event(row, self.gateways.get(row.gateway), self.billing)
            except Exception as error:
                delay = await mark_failed(row, error, self.policy)
                logger.warning(
                    "webhook event %s (%s %s) failed on attempt %d%s",
                    row.id,
                    row.gateway,
                    row.event_type,
                    row.attempts,
                    "" if delay is None else f"; retrying in {delay:.1f}s",
                )
                if delay is not None:
                    await self.schedule_retry(row.id, delay)
                return None
        return WebhookStatus.PROCESSED if applied else WebhookStatus.IGNORED


# By class: `isinstance` against a runtime protocol walks the protocol's members on every call, and
# `stored_payload` is a plain method of an adapter's class (the call guard wraps only coroutines).
_READS_STORED_EVENTS: dict[type, bool] = {}


def _reads_stored_events(gateway: PaymentGateway) -> TypeGuard[StoredEventReader]:
    kind = type(gateway)
    reads = _READS_STORED_EVENTS.get(kind)
    if reads is None:
        reads = _READS_STORED_EVENTS[kind] = isinstance(gateway, StoredEventReader)
    return reads


async def apply_event(row: ClaimedEvent, gateway: PaymentGateway, billing: BillingPolicy) -> bool:
    """Apply every effect of the event; False when there was nothing to apply."""
    # A gateway that does not post JSON reads its own stored bodies.
    payload = gateway.stored_payload(row.body) if _reads_stored_events(gateway) else json.loads(row.body)
    event = VerifiedEvent(row.event_id, row.event_type, int(payload.get("created", 0)), payload)
    actor = Actor(name=f"gateway:{row.gateway}", reason=f"webhook {row.event_type} {row.event_id}")
    applied = False
    for effect in gateway.interpret_event(event):
        if isinstance(effect, EventIgnored):
            continue
        if isinstance(effect, PaymentObserved):
            await _apply_payment(row, gateway, effect, actor)
            applied = True
        elif isinstance(effect, RefundObserved):
            await _apply_refund(row, effect, actor)
            applied = True
        elif isinstance(effect, DisputeObserved):
            applied = await _apply_dispute(row, gateway, effect, actor) or applied
        elif isinstance(effect, SubscriptionObserved | InvoiceObserved | SubscriptionNotice):
            applied = await _apply_billing(row, gateway, effect, billing, actor) or applied
    return applied


async def _apply_payment(row: ClaimedEvent, gateway: PaymentGateway, effect: PaymentObserved, actor: Actor) -> None:
    payment = await find_payment(row.gateway, effect.result)
    if payment is None:
        logger.info("webhook event %s is about a payment PayQL did not create; ignored", row.id)
        return
    # An event's copy of the object can be older than the truth (events arrive out of order), so
    # the gateway is asked again; the answer, not the event, is applied.
    result = await gateway.retrieve(effect.result.reference) if effect.stale_possible else effect.result
    result = await complete_if_approved(gateway, payment, result)
    key = f"webhook:{row.event_id}"
    await sync_payment(payment.id, result, source=EventSource.WEBHOOK, actor=actor, dedupe_key=key)


async def _apply_refund(row: ClaimedEvent, effect: RefundObserved, actor: Actor) -> None:
    refund = await Refund.get_or_none(gateway_reference=effect.result.reference, payment__gateway=row.gateway)
    if refund is None:
        # Not (yet) known by reference: a refund made at the gateway directly, or one whose API
        # answer is still on its way. The payment's own event carries its amount either way.
        logger.info("webhook event %s is about a refund PayQL does not know yet; left to the payment", row.id)
        return
    await apply_refund_result(refund.id, effect.result, actor, EventSource.WEBHOOK)


async def _apply_billing(
    row: ClaimedEvent,
    gateway: PaymentGateway,
    effect: SubscriptionObserved | InvoiceObserved | SubscriptionNotice,
    policy: BillingPolicy,
    actor: Actor,
) -> bool:
    if not isinstance(gateway, BillingGateway):
        logger.warning("webhook event %s is about billing, which the %s adapter does not do", row.id, row.gateway)
        return False
    try:
        if isinstance(effect, SubscriptionNotice):
            subscription = await find_subscription(row.gateway, effect.subscription_reference, None)
            if effect.kind is SubscriptionNoticeKind.TRIAL_WILL_END:
                await queue_trial_ending_email(subscription.id, policy)
            return True
        if isinstance(effect, SubscriptionObserved):
            subscription = await find_subscription(
                row.gateway, effect.result.reference, effect.result.payql_subscription_id
            )
            # The event's copy may be older than the truth: the gateway's current copy is applied.
            result = (
                await gateway.retrieve_subscription(effect.result.reference) if effect.stale_possible else effect.result
            )
            await sync_subscription(gateway, gateway, subscription.id, result, actor=actor, policy=policy)
            return True
        subscription = await find_subscription(
            row.gateway, effect.result.subscription_reference, effect.result.payql_subscription_id
        )
        invoice = await gateway.retrieve_invoice(effect.result.reference) if effect.stale_possible else effect.result
        await sync_invoice(gateway, gateway, subscription.id, invoice, actor=actor, policy=policy)
        return True
    except UnknownSubscription:
        logger.info("webhook event %s is about a subscription PayQL did not create; ignored", row.id)
        return False


async def _apply_dispute(row: ClaimedEvent, gateway: PaymentGateway, effect: DisputeObserved, actor: Actor) -> bool:
    # As for payments: the gateway's current copy is applied, not the event's (which may be older).
    # It is read first because it may name our payment where the event does not (Stripe's events
    # carry only the payment intent's id, and a hosted payment is known to us by its session).
    result = await gateway.retrieve_dispute(effect.result.reference) if effect.stale_possible else effect.result
    payment = await find_payment(row.gateway, result)
    if payment is None:
        logger.info("webhook event %s is about a dispute on a payment PayQL did not create; ignored", row.id)
        return False
    await sync_payment(payment.id, result, source=EventSource.WEBHOOK, actor=actor)
    return True
