"""Reconciling subscriptions: every subscription that has not ended is read back from its gateway's
billing engine and our mirror brought to it (a lost webhook, a change made in the gateway's own
dashboard). What differed is reported; the repair goes through the same mirror as every webhook.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from db.models import Subscription
from db.subscriptions import status_to_mirror
from db.transitions import Actor
from domain.dunning import BillingPolicy
from domain.statuses import SUBSCRIPTION_ENDED, SubscriptionStatus
from gateways.errors import GatewayError, NotSupported
from gateways.registry import GatewayRegistry, UnknownGateway
from gateways.types import SubscriptionResult
from resolvers.subscription_sync import sync_subscription

logger = logging.getLogger(__name__)

ACTOR = Actor(name="system:reconciliation", reason="subscription reconciliation")


@dataclass(frozen=True, slots=True)
class SubscriptionDrift:
    subscription_id: str
    gateway: str
    reference: str
    ours: str
    theirs: str


async def reconcile_subscriptions(gateways: GatewayRegistry, policy: BillingPolicy) -> list[SubscriptionDrift]:
    drifts: list[SubscriptionDrift] = []
    running = await Subscription.filter(gateway_reference__isnull=False).exclude(status__in=list(SUBSCRIPTION_ENDED))
    for subscription in running:
        reference = subscription.gateway_reference
        assert reference is not None
        try:
            billing = gateways.billing(subscription.gateway)
            result = await billing.retrieve_subscription(reference)
        except (UnknownGateway, NotSupported):
            continue
        except GatewayError as error:
            logger.warning("subscription %s could not be read back: %s", subscription.id, error.detail or error.message)
            continue
        ours, theirs = _summary(subscription), _their_summary(subscription, result)
        if ours == theirs:
            continue
        drifts.append(SubscriptionDrift(str(subscription.id), subscription.gateway, reference, ours, theirs))
        await sync_subscription(
            gateways.get(subscription.gateway), billing, subscription.id, result, actor=ACTOR, policy=policy
        )
    return drifts


def _summary(subscription: Subscription) -> str:
    end = int(subscription.current_period_end.timestamp()) if subscription.current_period_end else None
    price = subscription.price_id
    return f"{subscription.status} price={price} period_end={end} cancel={subscription.cancel_at_period_end}"


def _their_summary(subscription: Subscription, result: SubscriptionResult) -> str:
    status = status_to_mirror(SubscriptionStatus(subscription.status), result.status)
    end = result.current_period_end
    return f"{status} price={result.price_id} period_end={end} cancel={result.cancel_at_period_end}"
