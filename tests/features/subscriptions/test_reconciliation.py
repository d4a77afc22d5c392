"""Reconciliation reads every running subscription back from its gateway and repairs our mirror:
here, webhooks that never arrived (dropped by the sandbox deliverer) while the clock moved."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from db.models import Subscription
from domain.statuses import SubscriptionStatus
from jobs.reconcile import reconcile
from payql.wiring import Services
from tests.features.subscriptions.kit import ADVANCE, DAY, current, recurring_price, subscribe
from tests.testkit import Shopper, sandbox_deliverer, settle


async def test_lost_subscription_webhooks_are_repaired_by_reconciliation(
    shopper: Shopper, admin: Shopper, services: Services
) -> None:
    deliverer = sandbox_deliverer(services)
    assert deliverer is not None
    price = await recurring_price(1900)
    subscription_id = (await subscribe(shopper, price, trial_days=2))["subscription"]["id"]
    await settle(services)
    switches = deliverer.switches
    switches.drop(1000)
    try:
        await admin.data(ADVANCE, {"id": subscription_id, "seconds": 3 * DAY})
        await settle(services)
    finally:
        switches.reset()
    stale = await Subscription.get(id=subscription_id)
    assert stale.status is SubscriptionStatus.TRIALING  # nobody told us the trial ended

    report = await reconcile(
        services.deps.gateways,
        since=datetime.now(UTC) - timedelta(days=1),
        orphan_age=timedelta(days=365),
        order_expiry=timedelta(days=365),
        billing=services.jobs.billing,
    )
    await settle(services)
    drifts = [d for d in report.discrepancies if d.kind == "subscription_mismatch" and d.payment_id == subscription_id]
    assert len(drifts) == 1
    assert drifts[0].ours is not None and drifts[0].ours.startswith("TRIALING")
    repaired = await current(shopper, subscription_id)
    assert repaired["status"] == "ACTIVE"
    assert [(i["status"], i["amountDue"]["amount"]) for i in repaired["invoices"] if i["amountDue"]["amount"]] == [
        ("PAID", 1900)
    ]

    again = await reconcile(
        services.deps.gateways,
        since=datetime.now(UTC) - timedelta(days=1),
        orphan_age=timedelta(days=365),
        order_expiry=timedelta(days=365),
        billing=services.jobs.billing,
    )
    assert [d for d in again.discrepancies if d.payment_id == subscription_id] == []
