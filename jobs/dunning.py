"""The dunning job: retry failed renewals on our schedule, then apply the policy's final action.

Each past-due subscription whose next retry has come (on its own billing clock) is retried once
through the gateway's pay-invoice call, with an idempotency key naming the invoice and the attempt,
so two workers (or a retried job) charge at most once. The outcome is applied through the same
mirror the webhooks use; a failure schedules the next retry there. When no retry is left, the
final action (cancel at the gateway, or UNPAID) is taken and the customer told, once.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from db import subscriptions as mirror
from db.models import Invoice, Subscription
from db.transitions import Actor
from db.unit_of_work import unit_of_work
from domain.dunning import BillingPolicy, FinalAction
from domain.statuses import InvoiceStatus, SubscriptionStatus
from gateways.errors import GatewayError, NotSupported
from gateways.registry import GatewayRegistry, UnknownGateway
from resolvers.subscription_sync import sync_invoice, sync_subscription

logger = logging.getLogger(__name__)

ACTOR = Actor(name="system:dunning", reason="dunning schedule")


@dataclass
class DunningReport:
    retried: int = 0
    final_actions: int = 0
    failed: int = 0


async def run_dunning(gateways: GatewayRegistry, policy: BillingPolicy) -> DunningReport:
    report = DunningReport()
    due = await Subscription.filter(status=SubscriptionStatus.PAST_DUE, next_retry_at__isnull=False).order_by(
        "next_retry_at"
    )
    for subscription in due:
        try:
            # A retry that was the last one makes the final action due at once: it is taken in this run.
            if await _dun(subscription, gateways, policy, report) == "retried":
                await _dun(await Subscription.get(id=subscription.id), gateways, policy, report)
        except (UnknownGateway, NotSupported) as error:
            # A gateway taken out of the configuration: nothing can be collected through it here.
            report.failed += 1
            logger.warning("dunning subscription %s: its gateway is not available: %s", subscription.id, error)
        except GatewayError as error:
            # Retried on the next run: the idempotency key makes a repeat of an answered call harmless.
            report.failed += 1
            logger.warning("dunning subscription %s: %s", subscription.id, error.detail or error.message)
    return report


async def _dun(
    subscription: Subscription, gateways: GatewayRegistry, policy: BillingPolicy, report: DunningReport
) -> str | None:
    """Retry the open invoice or take the final action, if due; says which ("retried", "ended")."""
    if subscription.status is not SubscriptionStatus.PAST_DUE:
        return None
    if subscription.gateway_reference is None or subscription.next_retry_at is None:
        return None
    billing = gateways.billing(subscription.gateway)
    gateway = gateways.get(subscription.gateway)
    now = await billing.billing_now(subscription.gateway_reference)
    if subscription.next_retry_at > now:
        return None
    invoice = (
        await Invoice.filter(subscription_id=subscription.id, status=InvoiceStatus.OPEN).order_by("-created_at").first()
    )
    retries_left = invoice is not None and invoice.attempt_count - 1 < len(policy.retry_days)
    if invoice is not None and retries_left:
        result = await billing.pay_invoice(
            invoice.gateway_reference, idempotency_key=f"dunning-{invoice.id}-{invoice.attempt_count + 1}"
        )
        await sync_invoice(gateway, billing, subscription.id, result, actor=ACTOR, policy=policy)
        report.retried += 1
        return "retried"
    await _final_action(subscription, gateways, policy)
    report.final_actions += 1
    return "ended"


async def _final_action(subscription: Subscription, gateways: GatewayRegistry, policy: BillingPolicy) -> None:
    assert subscription.gateway_reference is not None
    if policy.final_action is FinalAction.CANCEL:
        billing = gateways.billing(subscription.gateway)
        result = await billing.cancel_subscription(
            subscription.gateway_reference, at_period_end=False, idempotency_key=f"dunning-cancel-{subscription.id}"
        )
        await sync_subscription(
            gateways.get(subscription.gateway), billing, subscription.id, result, actor=ACTOR, policy=policy
        )
    async with unit_of_work() as uow:
        locked = await mirror.lock_subscription(subscription.id, uow)
        if policy.final_action is FinalAction.UNPAID:
            await mirror.move_subscription(locked, SubscriptionStatus.UNPAID, actor=ACTOR, uow=uow)
        else:
            locked.next_retry_at = None
            await locked.save(using_db=uow.connection, update_fields=["next_retry_at", "updated_at"])
        await mirror.queue_final_action_email(locked, policy, uow)
