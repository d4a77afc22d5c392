"""Plan changes, metered usage, cancellation, pause and resume on the sandbox's test clocks, and
subscription webhooks delivered twice and out of order."""

from __future__ import annotations

from datetime import datetime

from db.ledger import ledger_mismatches
from db.models import Invoice, Order, Payment, Refund, Subscription, UsageRecord
from domain.statuses import OrderStatus, RefundStatus, SubscriptionStatus
from payql.wiring import Services
from tests.features.subscriptions.kit import (
    CANCEL,
    CHANGE,
    PAUSE,
    PREVIEW,
    RESUME,
    SUBSCRIPTION,
    USAGE,
    advance,
    advance_past_period_end,
    current,
    has_access,
    key,
    recurring_price,
    subscribe,
)
from tests.gateways.sandbox_access import STAFF_HEADERS
from tests.testkit import Shopper, sandbox_deliverer, settle


async def test_an_upgrade_charges_exactly_the_preview_and_a_downgrade_waits_for_the_period_end(
    shopper: Shopper, admin: Shopper, services: Services
) -> None:
    basic = await recurring_price(1000)
    pro = await recurring_price(3000, product=await basic.product)
    subscription_id = (await subscribe(shopper, basic))["subscription"]["id"]
    await advance(admin, services, subscription_id, 10 * 86_400)

    preview = (await shopper.data(PREVIEW, {"id": subscription_id, "price": str(pro.id)}))["previewSubscriptionChange"]
    due_now = preview["amountDueNow"]["amount"]
    assert 0 < due_now < 2000  # two thirds of the difference, give or take the month's length
    assert preview["nextInvoiceAmount"] == {"amount": 3000, "currency": "USD"}
    variables = {
        "input": {
            "subscriptionId": subscription_id,
            "priceId": str(pro.id),
            "proration": "IMMEDIATE",
            "idempotencyKey": key(),
        }
    }
    upgraded = (await shopper.data(CHANGE, variables))["changeSubscriptionPlan"]
    assert upgraded["userErrors"] == []
    await settle(services)
    now = await current(shopper, subscription_id)
    assert now["priceId"] == str(pro.id)
    proration = now["invoices"][0]
    assert (proration["billingReason"], proration["status"]) == ("subscription_update", "PAID")
    assert proration["amountDue"]["amount"] == due_now

    downgrade = {
        "input": {
            "subscriptionId": subscription_id,
            "priceId": str(basic.id),
            "proration": "AT_PERIOD_END",
            "idempotencyKey": key(),
        }
    }
    scheduled = (await shopper.data(CHANGE, downgrade))["changeSubscriptionPlan"]["subscription"]
    assert (scheduled["priceId"], scheduled["pendingPriceId"]) == (str(pro.id), str(basic.id))
    await advance_past_period_end(admin, services, shopper, subscription_id)
    renewed = await current(shopper, subscription_id)
    assert (renewed["priceId"], renewed["pendingPriceId"]) == (str(basic.id), None)
    assert renewed["invoices"][0]["amountDue"]["amount"] == 1000


async def test_a_metered_invoice_is_the_reported_usage_times_the_unit_price(
    shopper: Shopper, admin: Shopper, services: Services
) -> None:
    metered = await recurring_price(25, metered=True)
    subscription_id = (await subscribe(shopper, metered))["subscription"]["id"]
    replayed = key()
    for quantity, usage_key in ((10, key()), (5, replayed), (5, replayed), (7, key())):
        variables = {
            "input": {
                "subscriptionId": subscription_id,
                "priceId": str(metered.id),
                "quantity": quantity,
                "idempotencyKey": usage_key,
            }
        }
        reported = (await shopper.data(USAGE, variables))["reportUsage"]
        assert reported["userErrors"] == []
    assert await UsageRecord.filter(subscription_id=subscription_id).count() == 3
    await advance_past_period_end(admin, services, shopper, subscription_id)
    invoice = (await current(shopper, subscription_id))["invoices"][0]
    assert invoice["amountDue"]["amount"] == (10 + 5 + 7) * 25
    assert invoice["status"] == "PAID"


async def test_usage_for_a_licensed_price_is_refused(shopper: Shopper) -> None:
    licensed = await recurring_price(500)
    subscription_id = (await subscribe(shopper, licensed))["subscription"]["id"]
    variables = {
        "input": {
            "subscriptionId": subscription_id,
            "priceId": str(licensed.id),
            "quantity": 1,
            "idempotencyKey": key(),
        }
    }
    refused = (await shopper.data(USAGE, variables))["reportUsage"]
    assert [e["code"] for e in refused["userErrors"]] == ["INVALID_INPUT"]
    assert await UsageRecord.filter(subscription_id=subscription_id).count() == 0


async def test_cancel_at_period_end_keeps_access_until_then(
    shopper: Shopper, admin: Shopper, services: Services
) -> None:
    price = await recurring_price(1200)
    subscription_id = (await subscribe(shopper, price))["subscription"]["id"]
    variables = {"input": {"subscriptionId": subscription_id, "atPeriodEnd": True, "idempotencyKey": key()}}
    canceling = (await shopper.data(CANCEL, variables))["cancelSubscription"]["subscription"]
    assert (canceling["status"], canceling["cancelAtPeriodEnd"]) == ("ACTIVE", True)
    assert await has_access(shopper, price)
    await advance_past_period_end(admin, services, shopper, subscription_id)
    ended = await current(shopper, subscription_id)
    assert ended["status"] == "CANCELED"
    assert len(ended["invoices"]) == 1  # no renewal was billed
    assert not await has_access(shopper, price)


async def test_cancel_now_ends_at_once_and_twice_is_refused(shopper: Shopper) -> None:
    price = await recurring_price(1300)
    subscription_id = (await subscribe(shopper, price))["subscription"]["id"]
    variables = {"input": {"subscriptionId": subscription_id, "atPeriodEnd": False, "idempotencyKey": key()}}
    ended = (await shopper.data(CANCEL, variables))["cancelSubscription"]["subscription"]
    assert ended["status"] == "CANCELED"
    assert ended["endedAt"] is not None
    assert not await has_access(shopper, price)
    again = {"input": {"subscriptionId": subscription_id, "atPeriodEnd": False, "idempotencyKey": key()}}
    refused = (await shopper.data(CANCEL, again))["cancelSubscription"]
    assert [e["code"] for e in refused["userErrors"]] == ["INVALID_STATE"]


async def test_pause_and_resume(shopper: Shopper) -> None:
    price = await recurring_price(800)
    subscription_id = (await subscribe(shopper, price))["subscription"]["id"]
    action = {"input": {"subscriptionId": subscription_id, "idempotencyKey": key()}}
    paused = (await shopper.data(PAUSE, action))["pauseSubscription"]["subscription"]
    assert paused["status"] == "PAUSED"
    assert not await has_access(shopper, price)
    resumed = await shopper.data(RESUME, {"input": {"subscriptionId": subscription_id, "idempotencyKey": key()}})
    assert resumed["resumeSubscription"]["subscription"]["status"] == "ACTIVE"
    assert await has_access(shopper, price)


async def test_someone_elses_subscription_is_not_found(shopper: Shopper, other_shopper: Shopper) -> None:
    price = await recurring_price(800)
    subscription_id = (await subscribe(shopper, price))["subscription"]["id"]
    action = {"input": {"subscriptionId": subscription_id, "idempotencyKey": key()}}
    refused = (await other_shopper.data(PAUSE, action))["pauseSubscription"]
    assert [e["code"] for e in refused["userErrors"]] == ["NOT_FOUND"]
    assert (await Subscription.get(id=subscription_id)).status is SubscriptionStatus.ACTIVE


INVOICES = "query($id: ID!) { invoices(subscriptionId: $id) { id } }"


async def test_someone_elses_subscription_and_its_invoices_cannot_be_read(
    shopper: Shopper, other_shopper: Shopper
) -> None:
    price = await recurring_price(900)
    subscription_id = (await subscribe(shopper, price))["subscription"]["id"]
    assert (await shopper.data(SUBSCRIPTION, {"id": subscription_id}))["subscription"]["id"] == subscription_id
    assert (await shopper.data(INVOICES, {"id": subscription_id}))["invoices"] != []

    for query in (SUBSCRIPTION, INVOICES):
        theirs = await other_shopper.gql(query, {"id": subscription_id})
        assert theirs["data"] is None, theirs
        assert [e["extensions"]["code"] for e in theirs["errors"]] == ["NOT_FOUND"]


async def test_a_double_click_creates_one_subscription_and_a_decline_is_reported(shopper: Shopper) -> None:
    price = await recurring_price(600)
    same = key()
    first = await subscribe(shopper, price, key=same)
    second = await subscribe(shopper, price, key=same)
    assert first["subscription"]["id"] == second["subscription"]["id"]
    assert await Subscription.filter(price_id=price.id).count() == 1

    declined = await subscribe(shopper, price, "pm_card_chargeDeclined")
    assert declined["subscription"]["status"] == "INCOMPLETE"
    assert [e["code"] for e in declined["userErrors"]] == ["CARD_DECLINED"]


async def test_webhooks_twice_and_in_reverse_leave_the_right_state(
    shopper: Shopper, admin: Shopper, services: Services
) -> None:
    deliverer = sandbox_deliverer(services)
    assert deliverer is not None
    price = await recurring_price(1100)
    switches = deliverer.switches
    await settle(services)
    switches.hold()
    try:
        subscription_id = (await subscribe(shopper, price, trial_days=3))["subscription"]["id"]
        # What the API answers were is forgotten: only the webhooks may bring the mirror to the truth.
        await Subscription.filter(id=subscription_id).update(status=SubscriptionStatus.INCOMPLETE, gateway_updated=0)
        await admin.data(
            "mutation($id: ID!, $s: Int!) { advanceClock(subscriptionId: $id, seconds: $s) { now } }",
            {"id": subscription_id, "s": 4 * 86_400},
        )
        switches.duplicate(2)
        switches.release(reverse=True)
        await settle(services)
    finally:
        switches.reset()
    final = await current(shopper, subscription_id)
    assert final["status"] == "ACTIVE"
    charged = [(i["status"], i["amountDue"]["amount"]) for i in final["invoices"] if i["amountDue"]["amount"]]
    assert charged == [("PAID", 1100)]  # the trial's end billed once, however often it was told
    assert await Invoice.filter(subscription_id=subscription_id, amount_due__gt=0).count() == 1
    assert datetime.fromisoformat(final["currentPeriodEnd"]) > datetime.fromisoformat(final["currentPeriodStart"])


CANCEL_WITH_REFUND = (
    "mutation($input: CancelSubscriptionInput!) { cancelSubscription(input: $input) {"
    " subscription { id status endedAt } userErrors { code field } } }"
)


async def test_staff_cancel_now_refunds_the_unused_share_once(
    shopper: Shopper, admin: Shopper, services: Services
) -> None:
    price = await recurring_price(3000)
    subscription_id = (await subscribe(shopper, price))["subscription"]["id"]
    await advance(admin, services, subscription_id, 10 * 86_400)
    variables = {
        "input": {
            "subscriptionId": subscription_id,
            "atPeriodEnd": False,
            "refund": "PRORATED",
            "idempotencyKey": key(),
        }
    }
    first = (await admin.data(CANCEL_WITH_REFUND, variables))["cancelSubscription"]
    again = (await admin.data(CANCEL_WITH_REFUND, variables))["cancelSubscription"]  # a double click
    assert first["userErrors"] == again["userErrors"] == []
    assert first["subscription"]["status"] == "CANCELED"
    await settle(services)

    invoice = await Invoice.get(subscription_id=subscription_id, amount_due__gt=0)
    payment = await Payment.get(order_id=invoice.order_id)
    [refund] = await Refund.filter(payment_id=payment.id)
    ended = (await Subscription.get(id=subscription_id)).ended_at
    assert invoice.period_start is not None and invoice.period_end is not None and ended is not None
    unused = (invoice.period_end - ended).total_seconds() / (invoice.period_end - invoice.period_start).total_seconds()
    assert abs(refund.amount - 3000 * unused) <= 1
    assert 1800 < refund.amount < 2300  # about two thirds of a month left
    assert refund.status is RefundStatus.SUCCEEDED
    assert (await Order.get(id=payment.order_id)).status is OrderStatus.PARTIALLY_REFUNDED
    assert [m for m in await ledger_mismatches() if m.payment_id == payment.id] == []


async def test_only_staff_may_refund_on_cancel(shopper: Shopper) -> None:
    price = await recurring_price(3000)
    subscription_id = (await subscribe(shopper, price))["subscription"]["id"]
    variables = {
        "input": {"subscriptionId": subscription_id, "atPeriodEnd": False, "refund": "FULL", "idempotencyKey": key()}
    }
    refused = (await shopper.data(CANCEL_WITH_REFUND, variables))["cancelSubscription"]
    assert [e["code"] for e in refused["userErrors"]] == ["FORBIDDEN"]
    assert (await Subscription.get(id=subscription_id)).status is SubscriptionStatus.ACTIVE


async def test_a_first_payment_that_needs_authentication_returns_the_next_action(
    shopper: Shopper, services: Services
) -> None:
    price = await recurring_price(1700)
    started = await subscribe(shopper, price, "pm_card_authenticationRequired")
    assert started["subscription"]["status"] == "INCOMPLETE"
    assert started["userErrors"] == []
    action = started["nextAction"]
    assert action is not None and action["type"] in ("REDIRECT", "CONFIRM_WITH_SDK")
    assert started["latestInvoice"]["nextAction"] == action
    invoice = await Invoice.get(id=started["latestInvoice"]["id"])
    answer = await shopper.http.post(
        f"/sandbox/authenticate/{invoice.payment_reference}", json={"outcome": "succeed"}, headers=STAFF_HEADERS
    )
    assert answer.status_code == 200, answer.text
    await settle(services)
    active = await current(shopper, started["subscription"]["id"])
    assert active["status"] == "ACTIVE"
    assert active["invoices"][0]["status"] == "PAID"
    assert await has_access(shopper, price)
