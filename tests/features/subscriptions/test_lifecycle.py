"""The subscription lifecycle end to end on the sandbox's test clocks: GraphQL over HTTP, the sandbox
billing engine's signed webhooks, the dunning job and real SMTP.

Trial, first charge and renewals; a failed renewal dunned on the schedule with access kept in grace,
then recovered by a new payment method; a renewal that needs authentication; exhausted retries."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime
from typing import Any

from db.models import Invoice, Order, Payment
from domain.dunning import BillingPolicy, FinalAction
from domain.statuses import PaymentStatus
from jobs.dunning import run_dunning
from payql.wiring import Services
from tests.features.subscriptions.kit import (
    ADVANCE,
    DAY,
    SUBSCRIPTION_FIELDS,
    UPDATE_METHOD,
    advance,
    advance_past_period_end,
    current,
    has_access,
    key,
    recurring_price,
    subscribe,
)
from tests.gateways.sandbox_access import STAFF_HEADERS
from tests.smtp_server import SmtpServer
from tests.testkit import Shopper, email_of, settle
from tests.wsclient import graphql_ws

STATUS_STREAM = f"subscription($id: ID!) {{ subscriptionStatus(subscriptionId: $id) {{ {SUBSCRIPTION_FIELDS} }} }}"


def _subjects(mail_server: SmtpServer, shopper: Shopper) -> list[str]:
    return [str(message["Subject"]) for message in mail_server.messages_to(email_of(shopper.subject))]


async def _update_method(shopper: Shopper, subscription_id: str, method: str) -> dict[str, Any]:
    variables = {"input": {"subscriptionId": subscription_id, "paymentMethod": method, "idempotencyKey": key()}}
    payload: dict[str, Any] = (await shopper.data(UPDATE_METHOD, variables))["updateDefaultPaymentMethod"]
    assert payload["userErrors"] == []
    return payload


class StatusWatch:
    """The statuses a subscriptionStatus stream pushed, each only when it changes, and a way to wait for them."""

    def __init__(self) -> None:
        self.seen: list[str] = []
        self._changed = asyncio.Condition()

    async def run(self, server: str, shopper: Shopper, subscription_id: str) -> None:
        async with graphql_ws(server, shopper.token) as ws:
            async for message in ws.subscribe(STATUS_STREAM, {"id": subscription_id}):
                status = message["payload"]["data"]["subscriptionStatus"]["status"]
                async with self._changed:
                    if not self.seen or self.seen[-1] != status:
                        self.seen.append(status)
                    self._changed.notify_all()

    async def until(self, condition: Callable[[list[str]], bool]) -> None:
        async with self._changed:
            await asyncio.wait_for(self._changed.wait_for(lambda: condition(self.seen)), 10)


async def test_trial_renewals_failure_grace_and_recovery(
    shopper: Shopper, admin: Shopper, services: Services, server: str, mail_server: SmtpServer
) -> None:
    price = await recurring_price(1500)
    created = await subscribe(shopper, price, trial_days=14)
    assert created["userErrors"] == []
    subscription_id = created["subscription"]["id"]
    assert created["subscription"]["status"] == "TRIALING"
    assert await has_access(shopper, price)

    watch = StatusWatch()
    watcher = asyncio.create_task(watch.run(server, shopper, subscription_id))
    # The stream subscribes before it reads: its first status means no later change is missed.
    await watch.until(lambda seen: len(seen) >= 1)
    try:
        await advance(admin, services, subscription_id, 12 * DAY)
        assert any("trial ends" in subject for subject in _subjects(mail_server, shopper))
        await advance(admin, services, subscription_id, 3 * DAY)
        after_trial = await current(shopper, subscription_id)
        assert after_trial["status"] == "ACTIVE"
        assert [(i["status"], i["amountDue"]["amount"]) for i in after_trial["invoices"]] == [("PAID", 1500)]

        for _ in range(3):
            await advance_past_period_end(admin, services, shopper, subscription_id)
        renewed = await current(shopper, subscription_id)
        assert renewed["status"] == "ACTIVE"
        assert [(i["status"], i["amountDue"]["amount"]) for i in renewed["invoices"]] == [("PAID", 1500)] * 4
        # Each paid invoice is an order whose payment the ledger shows captured.
        for invoice in renewed["invoices"]:
            payment = await Payment.get(order_id=invoice["orderId"])
            assert (payment.status, payment.amount_captured) == (PaymentStatus.PAID, 1500)

        await _update_method(shopper, subscription_id, "pm_card_chargeDeclined")
        failed_at = await advance_past_period_end(admin, services, shopper, subscription_id)
        past_due = await current(shopper, subscription_id)
        assert past_due["status"] == "PAST_DUE"
        assert past_due["failedAttempts"] == 1
        # A day after the failure; the clock runs on in real time, so a second may separate the two.
        assert 0 <= _epoch(past_due["nextRetryAt"]) - (failed_at + DAY) <= 60
        assert await has_access(shopper, price)  # within the grace period

        await advance(admin, services, subscription_id, DAY)  # the first retry: declined again
        retried = await current(shopper, subscription_id)
        assert retried["failedAttempts"] == 2
        assert retried["invoices"][0]["attemptCount"] == 2
        await advance(admin, services, subscription_id, 3 * DAY)  # the second retry
        assert (await current(shopper, subscription_id))["failedAttempts"] == 3
        assert await has_access(shopper, price)

        recovered = await _update_method(shopper, subscription_id, "pm_card_visa")
        await settle(services)
        assert recovered["subscription"]["status"] == "ACTIVE"
        final = await current(shopper, subscription_id)
        assert (final["status"], final["failedAttempts"], final["nextRetryAt"]) == ("ACTIVE", 0, None)
        assert final["invoices"][0]["status"] == "PAID"
        assert await has_access(shopper, price)
        await watch.until(lambda seen: "PAST_DUE" in seen and seen[-1] == "ACTIVE")
    finally:
        watcher.cancel()
        await asyncio.gather(watcher, return_exceptions=True)
    assert watch.seen == ["TRIALING", "ACTIVE", "PAST_DUE", "ACTIVE"]
    failures = [s for s in _subjects(mail_server, shopper) if s.startswith("Payment failed")]
    assert len(failures) == 3  # one per failed attempt, none twice


async def test_a_renewal_that_needs_authentication_is_completed_by_the_customer(
    shopper: Shopper, admin: Shopper, services: Services, mail_server: SmtpServer
) -> None:
    price = await recurring_price(2000)
    subscription_id = (await subscribe(shopper, price))["subscription"]["id"]
    await _update_method(shopper, subscription_id, "pm_card_authenticationRequired")
    await advance_past_period_end(admin, services, shopper, subscription_id)
    waiting = await current(shopper, subscription_id)
    assert waiting["status"] == "PAST_DUE"
    invoice = waiting["invoices"][0]
    assert invoice["status"] == "OPEN"
    assert invoice["nextAction"] is not None
    confirmations = [s for s in _subjects(mail_server, shopper) if s.startswith("Confirm your")]
    assert len(confirmations) == 1

    row = await Invoice.get(id=invoice["id"])
    answer = await shopper.http.post(
        f"/sandbox/authenticate/{row.payment_reference}", json={"outcome": "succeed"}, headers=STAFF_HEADERS
    )
    assert answer.status_code == 200, answer.text
    await settle(services)
    done = await current(shopper, subscription_id)
    assert done["status"] == "ACTIVE"
    assert done["invoices"][0]["status"] == "PAID"
    order = await Order.get(id=done["invoices"][0]["orderId"])
    assert order.status == "PAID"


async def test_exhausted_retries_cancel_and_the_emails_go_once_each(
    shopper: Shopper, admin: Shopper, services: Services, mail_server: SmtpServer
) -> None:
    price = await recurring_price(900)
    subscription_id = (await subscribe(shopper, price))["subscription"]["id"]
    await _update_method(shopper, subscription_id, "pm_card_chargeDeclinedInsufficientFunds")
    await advance_past_period_end(admin, services, shopper, subscription_id)
    for days in (1, 3, 5):
        await advance(admin, services, subscription_id, days * DAY)
    assert not await has_access(shopper, price)  # nine days past due: the seven-day grace is over
    assert (await current(shopper, subscription_id))["status"] == "PAST_DUE"
    await advance(admin, services, subscription_id, 7 * DAY)  # the last retry fails; the final action follows
    ended = await current(shopper, subscription_id)
    assert ended["status"] == "CANCELED"
    await services.jobs.dunning()  # nothing left to do: no second cancel, no second email
    await settle(services)
    subjects = _subjects(mail_server, shopper)
    assert len([s for s in subjects if s.startswith("Payment failed")]) == 5
    assert len([s for s in subjects if s.endswith("was canceled")]) == 1


async def test_exhausted_retries_can_leave_the_subscription_unpaid(
    shopper: Shopper, admin: Shopper, services: Services
) -> None:
    price = await recurring_price(700)
    subscription_id = (await subscribe(shopper, price))["subscription"]["id"]
    await _update_method(shopper, subscription_id, "pm_card_chargeDeclined")
    await advance_past_period_end(admin, services, shopper, subscription_id)
    # Past the retry the server's own schedule set, a policy with no retries left and UNPAID at the end.
    await admin.data(ADVANCE, {"id": subscription_id, "seconds": 2 * DAY})
    await settle(services)
    unpaid_policy = BillingPolicy(retry_days=(), grace_days=0, final_action=FinalAction.UNPAID)
    await run_dunning(services.deps.gateways, unpaid_policy)
    await settle(services)
    assert (await current(shopper, subscription_id))["status"] == "UNPAID"
    assert not await has_access(shopper, price)
    recovered = await _update_method(shopper, subscription_id, "pm_card_visa")
    assert recovered["subscription"]["status"] == "ACTIVE"


def _epoch(value: str) -> int:
    return int(datetime.fromisoformat(value).timestamp())
