"""The subscription and invoice mirror (`db.subscriptions`) and the dunning rules (`domain.dunning`),
fed with gateway results directly: stale copies never win, our UNPAID survives the gateway's past
due, a failed renewal schedules the retry and queues one email per attempt however often it is
applied, and an invoice's money becomes one order and one payment."""

from __future__ import annotations

import itertools
import uuid
from datetime import UTC, datetime

import pytest

from db import subscriptions as mirror
from db.models import (
    AuditRecord,
    Customer,
    Invoice,
    Order,
    OutboxMessage,
    Payment,
    Price,
    PriceType,
    Product,
    RecurringInterval,
    Subscription,
)
from db.transitions import Actor
from db.unit_of_work import unit_of_work
from domain.dunning import DAY, BillingPolicy, FinalAction, grants_access, next_retry_at
from domain.money import Money
from domain.statuses import InvoiceStatus, NextActionType, SubscriptionStatus
from gateways.types import InvoiceResult, NextAction, SubscriptionResult

pytestmark = pytest.mark.usefixtures("server")

S = SubscriptionStatus
ACTOR = Actor("gateway:sandbox", reason="test")
POLICY = BillingPolicy(retry_days=(1, 3), grace_days=5, final_action=FinalAction.UNPAID)
NOW = 1_800_000_000

# Written out independently of db/subscriptions.py: a change there must change this too.
SUBSCRIPTION_MOVES = """
INCOMPLETE         -> TRIALING ACTIVE PAST_DUE INCOMPLETE_EXPIRED CANCELED
TRIALING           -> ACTIVE PAST_DUE PAUSED UNPAID CANCELED
ACTIVE             -> PAST_DUE PAUSED UNPAID CANCELED
PAST_DUE           -> ACTIVE PAUSED UNPAID CANCELED
PAUSED             -> ACTIVE TRIALING PAST_DUE CANCELED
UNPAID             -> ACTIVE CANCELED
INCOMPLETE_EXPIRED ->
CANCELED           ->
"""


def _moves(table: str) -> set[tuple[str, str]]:
    allowed = set()
    for line in table.strip().splitlines():
        before, _, after = line.partition("->")
        allowed |= {(before.strip(), target) for target in after.split()}
    return allowed


def test_the_subscription_transition_table_is_as_documented() -> None:
    expected = _moves(SUBSCRIPTION_MOVES)
    for before, after in itertools.product(S, S):
        assert mirror.can_move_subscription(before, after) == ((before, after) in expected), (before, after)


def test_retries_follow_the_schedule_then_stop() -> None:
    assert next_retry_at(POLICY, 1, NOW) == NOW + 1 * DAY
    assert next_retry_at(POLICY, 2, NOW) == NOW + 3 * DAY
    assert next_retry_at(POLICY, 3, NOW) is None


@pytest.mark.parametrize(
    ("status", "grace_ends", "now", "expected"),
    [
        (S.TRIALING, None, NOW, True),
        (S.ACTIVE, None, NOW, True),
        (S.PAST_DUE, NOW + 10, NOW, True),
        (S.PAST_DUE, NOW, NOW, False),
        (S.PAUSED, None, NOW, False),
        (S.UNPAID, None, NOW, False),
        (S.CANCELED, None, NOW, False),
        (S.INCOMPLETE, None, NOW, False),
    ],
)
def test_access_comes_from_the_status_and_the_grace_period(
    status: SubscriptionStatus, grace_ends: int | None, now: int, expected: bool
) -> None:
    assert grants_access(status, grace_ends, now) is expected


async def _subscription(status: SubscriptionStatus = S.ACTIVE) -> Subscription:
    product = await Product.create(name=f"Plan {uuid.uuid4().hex[:6]}")
    price = await Price.create(
        product=product,
        currency="USD",
        unit_amount=1500,
        type=PriceType.RECURRING,
        recurring_interval=RecurringInterval.MONTH,
    )
    customer = await Customer.create(external_id=f"cus-{uuid.uuid4().hex}", email="sub@shoppers.example")
    subscription_id = uuid.uuid4()
    return await Subscription.create(
        id=subscription_id,
        customer=customer,
        price=price,
        gateway="sandbox",
        gateway_reference=f"sub_{subscription_id.hex[:12]}",
        idempotency_key=f"subscription-{subscription_id}",
        status=status,
        currency="USD",
        unit_amount=1500,
        payment_method="pm_card_visa",
    )


def _result(
    subscription: Subscription, status: SubscriptionStatus, updated: int, **extra: object
) -> SubscriptionResult:
    assert subscription.gateway_reference is not None
    return SubscriptionResult(
        reference=subscription.gateway_reference,
        status=status,
        price_id=str(subscription.price_id),
        updated=updated,
        current_period_start=NOW,
        current_period_end=NOW + 30 * DAY,
        **extra,  # type: ignore[arg-type]
    )


def _invoice(subscription: Subscription, **fields: object) -> InvoiceResult:
    assert subscription.gateway_reference is not None
    values: dict[str, object] = {
        "reference": f"in_{uuid.uuid4().hex[:12]}",
        "subscription_reference": subscription.gateway_reference,
        "status": InvoiceStatus.OPEN,
        "amount_due": Money(1500, "USD"),
        "billing_reason": "subscription_cycle",
        "attempt_count": 1,
        "decline_code": "card_declined",
    }
    values.update(fields)
    return InvoiceResult(**values)  # type: ignore[arg-type]


async def _apply(subscription: Subscription, result: SubscriptionResult) -> bool:
    async with unit_of_work() as uow:
        locked = await mirror.lock_subscription(subscription.id, uow)
        return await mirror.apply_subscription_result(locked, result, actor=ACTOR, uow=uow)


async def _apply_invoice(subscription: Subscription, result: InvoiceResult, now: int = NOW) -> mirror.InvoiceApplied:
    async with unit_of_work() as uow:
        locked = await mirror.lock_subscription(subscription.id, uow)
        return await mirror.apply_invoice_result(locked, result, now=now, policy=POLICY, actor=ACTOR, uow=uow)


async def test_an_older_copy_never_overwrites_a_newer_one() -> None:
    subscription = await _subscription()
    assert await _apply(subscription, _result(subscription, S.PAST_DUE, updated=5))
    assert not await _apply(subscription, _result(subscription, S.ACTIVE, updated=4))
    assert (await Subscription.get(id=subscription.id)).status is S.PAST_DUE
    assert await _apply(subscription, _result(subscription, S.ACTIVE, updated=6))
    fresh = await Subscription.get(id=subscription.id)
    assert (fresh.status, fresh.gateway_updated) == (S.ACTIVE, 6)
    assert fresh.current_period_end == datetime.fromtimestamp(NOW + 30 * DAY, UTC)
    actions = await AuditRecord.filter(entity_id=str(subscription.id)).order_by("id").values_list("action", flat=True)
    assert actions == ["subscription.past_due", "subscription.active"]


async def test_an_ended_subscription_stays_ended() -> None:
    subscription = await _subscription()
    assert await _apply(subscription, _result(subscription, S.CANCELED, updated=3, ended_at=NOW))
    # Without a version marker (a gateway that has none), the table alone refuses the stale move.
    assert not await _apply(subscription, _result(subscription, S.ACTIVE, updated=0))
    assert (await Subscription.get(id=subscription.id)).status is S.CANCELED


async def test_our_unpaid_survives_the_gateways_past_due_and_a_payment_recovers_it() -> None:
    subscription = await _subscription(S.UNPAID)
    await Subscription.filter(id=subscription.id).update(failed_attempts=3, grace_until=NOW)
    await _apply(subscription, _result(subscription, S.PAST_DUE, updated=7))
    assert (await Subscription.get(id=subscription.id)).status is S.UNPAID
    assert await _apply(subscription, _result(subscription, S.ACTIVE, updated=8))
    fresh = await Subscription.get(id=subscription.id)
    assert (fresh.status, fresh.failed_attempts, fresh.next_retry_at, fresh.grace_until) == (S.ACTIVE, 0, None, None)


async def test_the_gateways_past_due_copy_of_our_unpaid_is_mirrored_except_its_status() -> None:
    subscription = await _subscription(S.UNPAID)
    assert await _apply(subscription, _result(subscription, S.PAST_DUE, updated=7))
    fresh = await Subscription.get(id=subscription.id)
    assert (fresh.status, fresh.gateway_updated) == (S.UNPAID, 7)
    assert fresh.current_period_end == datetime.fromtimestamp(NOW + 30 * DAY, UTC)


async def test_a_failed_renewal_schedules_the_retry_and_queues_one_email_per_attempt() -> None:
    subscription = await _subscription(S.PAST_DUE)
    first = _invoice(subscription, attempt_count=1)
    await _apply_invoice(subscription, first)
    await _apply_invoice(subscription, first)  # the same fact again (a duplicate webhook)
    fresh = await Subscription.get(id=subscription.id)
    assert (fresh.failed_attempts, fresh.next_retry_at, fresh.grace_until) == (1, NOW + DAY, NOW + 5 * DAY)
    mine = [
        e
        for e in await OutboxMessage.filter(kind="subscription_payment_failed")
        if e.payload["subscription_id"] == str(subscription.id)
    ]
    assert [(e.payload["attempt"], e.payload["next_retry_at"]) for e in mine] == [(1, NOW + DAY)]

    later = NOW + DAY
    await _apply_invoice(subscription, _invoice(subscription, reference=first.reference, attempt_count=2), later)
    fresh = await Subscription.get(id=subscription.id)
    # The grace period runs from the first failure; the next retry from this one.
    assert (fresh.failed_attempts, fresh.next_retry_at, fresh.grace_until) == (2, later + 3 * DAY, NOW + 5 * DAY)

    last = later + 3 * DAY
    await _apply_invoice(subscription, _invoice(subscription, reference=first.reference, attempt_count=3), last)
    fresh = await Subscription.get(id=subscription.id)
    assert (fresh.failed_attempts, fresh.next_retry_at) == (3, last)  # retries exhausted: the final action is due
    mine = [
        e
        for e in await OutboxMessage.filter(kind="subscription_payment_failed")
        if e.payload["subscription_id"] == str(subscription.id)
    ]
    assert sorted(e.payload["attempt"] for e in mine) == [1, 2, 3]
    assert [e.payload["final_action"] for e in mine if e.payload["attempt"] == 3] == ["UNPAID"]


async def test_the_first_invoice_is_not_dunned() -> None:
    subscription = await _subscription(S.INCOMPLETE)
    await _apply_invoice(subscription, _invoice(subscription, billing_reason="subscription_create"))
    fresh = await Subscription.get(id=subscription.id)
    assert (fresh.failed_attempts, fresh.next_retry_at) == (0, None)


async def test_a_paid_invoice_clears_dunning_and_never_reopens() -> None:
    subscription = await _subscription(S.PAST_DUE)
    failed = _invoice(subscription)
    await _apply_invoice(subscription, failed)
    paid = _invoice(
        subscription, reference=failed.reference, status=InvoiceStatus.PAID, amount_paid=1500, decline_code=None
    )
    await _apply_invoice(subscription, paid)
    await _apply_invoice(subscription, failed)  # a late copy of the failure
    invoice = await Invoice.get(gateway="sandbox", gateway_reference=failed.reference)
    fresh = await Subscription.get(id=subscription.id)
    assert (invoice.status, invoice.amount_paid) == (InvoiceStatus.PAID, 1500)
    assert (fresh.failed_attempts, fresh.next_retry_at, fresh.grace_until) == (0, None, None)


async def test_an_invoice_payment_becomes_one_order_and_one_payment() -> None:
    subscription = await _subscription()
    result = _invoice(subscription, status=InvoiceStatus.PAID, payment_reference=f"pi_{uuid.uuid4().hex[:12]}")
    first = await _apply_invoice(subscription, result)
    again = await _apply_invoice(subscription, result)
    assert first.payment is not None and again.payment is not None
    assert first.payment.id == again.payment.id
    payment = await Payment.get(id=first.payment.id)
    order = await Order.get(id=payment.order_id)
    invoice = await Invoice.get(gateway="sandbox", gateway_reference=result.reference)
    assert invoice.order_id == order.id
    assert (order.customer_id, order.total_amount, order.currency) == (subscription.customer_id, 1500, "USD")
    assert (payment.gateway_reference, payment.amount) == (result.payment_reference, 1500)
    assert await Payment.filter(gateway="sandbox", gateway_reference=result.payment_reference).count() == 1


async def test_an_action_required_invoice_queues_one_email() -> None:
    subscription = await _subscription(S.PAST_DUE)
    result = _invoice(
        subscription, decline_code=None, next_action=NextAction(NextActionType.CONFIRM_WITH_SDK, client_secret="cs_1")
    )
    await _apply_invoice(subscription, result)
    await _apply_invoice(subscription, result)
    invoice = await Invoice.get(gateway="sandbox", gateway_reference=result.reference)
    assert invoice.next_action == {"type": "CONFIRM_WITH_SDK", "redirect_url": None, "client_secret": "cs_1"}
    assert await OutboxMessage.filter(dedupe_key=f"subscription-action:{invoice.id}").count() == 1
