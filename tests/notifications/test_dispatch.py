"""The dispatcher against a real SMTP server: one email per outbox message however many jobs run,
failures back off and retry, hopeless messages end DEAD, leases stop a second sender and expire
after a crash, and the sweeper query picks exactly the due rows."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from email.message import Message

import pytest
from tortoise import connections
from tortoise.backends.base.client import BaseDBAsyncClient

from db.models import Customer, Order, OutboxMessage, OutboxStatus
from db.transaction import transaction
from notifications.dispatch import (
    BACKOFF_BASE_SECONDS,
    backoff_seconds,
    dispatch_outbox_message,
    due_outbox_ids,
)
from notifications.mailer import SmtpMailer
from tests.notifications.conftest import SENDER, SmtpServer, make_receipt
from tests.ports import free_port

pytestmark = pytest.mark.usefixtures("server")


def now() -> datetime:
    return datetime.now(UTC)


async def row(message_id: int) -> OutboxMessage:
    return await OutboxMessage.get(id=message_id)


async def make_due(message_id: int) -> None:
    """Let the backoff (or a lease) run out, as if time had passed."""
    await OutboxMessage.filter(id=message_id).update(next_attempt_at=now() - timedelta(seconds=1))


class GatedMailer:
    """Holds every send until `release` is set, so a test can act while a dispatcher is mid-send."""

    def __init__(self, inner: SmtpMailer) -> None:
        self.inner = inner
        self.entered = asyncio.Event()
        self.release = asyncio.Event()
        self.calls = 0
        self.client: BaseDBAsyncClient | None = None

    async def send(self, message: Message) -> None:
        self.calls += 1
        self.client = connections.get("default")  # what a statement here would run on
        self.entered.set()
        await self.release.wait()
        await self.inner.send(message)


async def test_dispatching_one_id_five_times_in_a_row_sends_one_email(smtp: SmtpServer, mailer: SmtpMailer) -> None:
    case = await make_receipt("USD", [("Widget", 1999, 1)])
    for _ in range(5):
        await dispatch_outbox_message(case.message.id, mailer=mailer)
    assert case.email is not None
    assert len(smtp.messages_to(case.email)) == 1
    sent = await row(case.message.id)
    assert (sent.status, sent.attempts) == (OutboxStatus.SENT, 1)


async def test_five_concurrent_dispatchers_of_one_id_send_one_email(smtp: SmtpServer, mailer: SmtpMailer) -> None:
    cases = [await make_receipt("USD", [("Widget", 1999, 1)]) for _ in range(3)]
    await asyncio.gather(*(dispatch_outbox_message(case.message.id, mailer=mailer) for case in cases for _ in range(5)))
    for case in cases:
        assert case.email is not None
        assert len(smtp.messages_to(case.email)) == 1
        sent = await row(case.message.id)
        assert (sent.status, sent.attempts) == (OutboxStatus.SENT, 1)


async def test_no_row_lock_is_held_while_sending_and_the_lease_stops_a_second_sender(
    smtp: SmtpServer, mailer: SmtpMailer
) -> None:
    case = await make_receipt("USD", [("Widget", 500, 1)])
    gated = GatedMailer(mailer)
    first = asyncio.create_task(dispatch_outbox_message(case.message.id, mailer=gated))
    await asyncio.wait_for(gated.entered.wait(), timeout=10)

    # While the first dispatcher is in the network send, the row is neither locked nor sendable.
    leased = await row(case.message.id)
    assert leased.status is OutboxStatus.PENDING
    assert leased.next_attempt_at is not None and leased.next_attempt_at > now()
    second = GatedMailer(mailer)
    second.release.set()
    await asyncio.wait_for(dispatch_outbox_message(case.message.id, mailer=second), timeout=10)
    assert second.calls == 0
    await asyncio.wait_for(OutboxMessage.filter(id=case.message.id).update(last_error="touched"), timeout=10)

    gated.release.set()
    await asyncio.wait_for(first, timeout=10)
    assert case.email is not None
    assert len(smtp.messages_to(case.email)) == 1
    assert (await row(case.message.id)).status is OutboxStatus.SENT


async def test_no_database_connection_is_held_while_sending(smtp: SmtpServer, mailer: SmtpMailer) -> None:
    """A slow mail server must not keep a connection from the pool's other users: the claim and the
    template's reads (one connection, `db.one_connection`) end before the send."""
    case = await make_receipt("USD", [("Widget", 500, 1)])
    outside = connections.get("default")  # no transaction, no `one_connection` block
    gated = GatedMailer(mailer)
    sending = asyncio.create_task(dispatch_outbox_message(case.message.id, mailer=gated))
    await asyncio.wait_for(gated.entered.wait(), timeout=10)
    client_while_sending = gated.client
    gated.release.set()
    await asyncio.wait_for(sending, timeout=10)
    assert client_while_sending is outside
    assert (await row(case.message.id)).status is OutboxStatus.SENT


async def test_a_crashed_dispatchers_lease_expires_and_the_message_is_sent_once(
    smtp: SmtpServer, mailer: SmtpMailer
) -> None:
    case = await make_receipt("USD", [("Widget", 500, 1)])
    stuck = GatedMailer(mailer)
    crashed = asyncio.create_task(dispatch_outbox_message(case.message.id, mailer=stuck))
    await asyncio.wait_for(stuck.entered.wait(), timeout=10)
    crashed.cancel()  # the worker died mid-send: the lease stays behind
    with pytest.raises(asyncio.CancelledError):
        await crashed

    await dispatch_outbox_message(case.message.id, mailer=mailer)
    assert case.email is not None
    assert smtp.messages_to(case.email) == []  # still leased
    assert case.message.id not in await due_outbox_ids(limit=100_000)

    await make_due(case.message.id)  # the lease expires
    assert case.message.id in await due_outbox_ids(limit=100_000)
    await dispatch_outbox_message(case.message.id, mailer=mailer)
    assert len(smtp.messages_to(case.email)) == 1
    sent = await row(case.message.id)
    assert (sent.status, sent.attempts) == (OutboxStatus.SENT, 2)


async def test_a_dispatcher_that_lost_its_lease_cannot_overwrite_the_newer_attempt(
    smtp: SmtpServer, mailer: SmtpMailer
) -> None:
    case = await make_receipt("USD", [("Widget", 500, 1)])

    class SlowFailure:
        def __init__(self) -> None:
            self.entered = asyncio.Event()
            self.release = asyncio.Event()

        async def send(self, message: Message) -> None:
            self.entered.set()
            await self.release.wait()
            raise TimeoutError("gave up waiting for the server")

    slow = SlowFailure()
    stale = asyncio.create_task(dispatch_outbox_message(case.message.id, mailer=slow, lease_seconds=0))
    await asyncio.wait_for(slow.entered.wait(), timeout=10)
    newer = GatedMailer(mailer)  # the lease ran out: a new attempt claims the message
    current = asyncio.create_task(dispatch_outbox_message(case.message.id, mailer=newer))
    await asyncio.wait_for(newer.entered.wait(), timeout=10)

    slow.release.set()
    await stale  # its failure is not recorded: the newer attempt owns the row
    leased = await row(case.message.id)
    assert (leased.status, leased.attempts) == (OutboxStatus.PENDING, 2)
    assert leased.last_error is None
    assert leased.next_attempt_at is not None and leased.next_attempt_at > now() + timedelta(seconds=60)

    newer.release.set()
    await current
    sent = await row(case.message.id)
    assert (sent.status, sent.attempts) == (OutboxStatus.SENT, 2)
    assert sent.last_error is None
    assert case.email is not None
    assert len(smtp.messages_to(case.email)) == 1


async def test_nothing_overwrites_sent(smtp: SmtpServer, mailer: SmtpMailer) -> None:
    case = await make_receipt("USD", [("Widget", 500, 1)])
    slow = GatedMailer(SmtpMailer("127.0.0.1", free_port(), sender=SENDER, timeout=5))  # will fail
    stale = asyncio.create_task(dispatch_outbox_message(case.message.id, mailer=slow, lease_seconds=0))
    await asyncio.wait_for(slow.entered.wait(), timeout=10)
    await dispatch_outbox_message(case.message.id, mailer=mailer)
    slow.release.set()
    await stale
    sent = await row(case.message.id)
    assert sent.status is OutboxStatus.SENT
    assert sent.last_error is None
    assert case.email is not None
    assert len(smtp.messages_to(case.email)) == 1


async def test_smtp_down_fails_with_backoff_then_up_sends_once(smtp: SmtpServer, mailer: SmtpMailer) -> None:
    case = await make_receipt("USD", [("Widget", 500, 1)])
    await smtp.stop()

    before = now()
    await dispatch_outbox_message(case.message.id, mailer=mailer)
    failed = await row(case.message.id)
    assert failed.status is OutboxStatus.FAILED
    assert failed.attempts == 1
    assert failed.sent_at is None
    assert failed.last_error is not None and "SMTPConnect" in failed.last_error
    assert failed.next_attempt_at is not None
    assert before + timedelta(seconds=BACKOFF_BASE_SECONDS / 2) <= failed.next_attempt_at
    assert failed.next_attempt_at <= now() + timedelta(seconds=BACKOFF_BASE_SECONDS)
    assert case.message.id not in await due_outbox_ids(limit=100_000)

    await smtp.start()
    await dispatch_outbox_message(case.message.id, mailer=mailer)  # too early: the backoff holds
    assert case.email is not None
    assert smtp.messages_to(case.email) == []
    assert (await row(case.message.id)).status is OutboxStatus.FAILED

    await make_due(case.message.id)
    assert case.message.id in await due_outbox_ids(limit=100_000)
    for _ in range(3):
        await dispatch_outbox_message(case.message.id, mailer=mailer)
    assert len(smtp.messages_to(case.email)) == 1
    sent = await row(case.message.id)
    assert (sent.status, sent.attempts) == (OutboxStatus.SENT, 2)
    assert sent.sent_at is not None
    assert sent.last_error is not None  # the history stays visible to operators


async def test_after_max_attempts_the_message_is_dead() -> None:
    case = await make_receipt("USD", [("Widget", 500, 1)])
    nobody_listens = SmtpMailer("127.0.0.1", free_port(), sender=SENDER, timeout=5)
    for attempt in (1, 2):
        await dispatch_outbox_message(case.message.id, mailer=nobody_listens, max_attempts=3)
        failed = await row(case.message.id)
        assert (failed.status, failed.attempts) == (OutboxStatus.FAILED, attempt)
        await make_due(case.message.id)
    await dispatch_outbox_message(case.message.id, mailer=nobody_listens, max_attempts=3)

    dead = await row(case.message.id)
    assert (dead.status, dead.attempts, dead.next_attempt_at) == (OutboxStatus.DEAD, 3, None)
    assert dead.last_error is not None and "SMTPConnect" in dead.last_error
    assert case.message.id not in await due_outbox_ids(limit=100_000)
    await dispatch_outbox_message(case.message.id, mailer=nobody_listens, max_attempts=3)
    assert (await row(case.message.id)).attempts == 3


async def test_a_message_whose_dispatchers_keep_dying_ends_dead(mailer: SmtpMailer) -> None:
    case = await make_receipt("USD", [("Widget", 500, 1)])
    await OutboxMessage.filter(id=case.message.id).update(attempts=3, next_attempt_at=now() - timedelta(seconds=1))
    await dispatch_outbox_message(case.message.id, mailer=mailer, max_attempts=3)
    dead = await row(case.message.id)
    assert (dead.status, dead.attempts) == (OutboxStatus.DEAD, 3)
    assert dead.last_error is not None and "never finished" in dead.last_error


@pytest.mark.parametrize("email", [None, "", "   "])
async def test_a_customer_without_an_email_is_dead_with_no_recipient(
    smtp: SmtpServer, mailer: SmtpMailer, email: str | None
) -> None:
    case = await make_receipt("USD", [("Widget", 500, 1)], email=None)
    if email is not None:
        order = await Order.get(id=case.message.payload["order_id"])
        await Customer.filter(id=order.customer_id).update(email=email)
    await dispatch_outbox_message(case.message.id, mailer=mailer)
    dead = await row(case.message.id)
    assert (dead.status, dead.last_error, dead.sent_at) == (OutboxStatus.DEAD, "no recipient", None)
    assert smtp.received == []


async def test_a_refused_recipient_is_dead_at_once(smtp: SmtpServer, mailer: SmtpMailer) -> None:
    case = await make_receipt("USD", [("Widget", 500, 1)])
    assert case.email is not None
    smtp.handler.refuse.add(case.email)
    await dispatch_outbox_message(case.message.id, mailer=mailer)
    dead = await row(case.message.id)
    assert (dead.status, dead.attempts) == (OutboxStatus.DEAD, 1)
    assert dead.last_error is not None and "550" in dead.last_error


async def test_an_unknown_kind_or_a_missing_order_is_dead(mailer: SmtpMailer) -> None:
    unknown = await OutboxMessage.create(kind="carrier_pigeon", dedupe_key=f"pigeon:{free_port()}:{now()}")
    missing = await OutboxMessage.create(
        kind="receipt",
        dedupe_key=f"receipt:missing:{now().timestamp()}",
        payload={"order_id": "00000000-0000-4000-8000-000000000000"},
    )
    for message in (unknown, missing):
        await dispatch_outbox_message(message.id, mailer=mailer)
    assert (await row(unknown.id)).last_error == "no template for kind 'carrier_pigeon'"
    assert (await row(missing.id)).last_error == "order not found"
    assert {(await row(m.id)).status for m in (unknown, missing)} == {OutboxStatus.DEAD}


async def test_a_missing_id_does_nothing(mailer: SmtpMailer) -> None:
    await dispatch_outbox_message(2**62, mailer=mailer)


def test_backoff_grows_exponentially_with_jitter_and_a_cap() -> None:
    for attempt in range(1, 6):
        ceiling = BACKOFF_BASE_SECONDS * 2 ** (attempt - 1)
        delays = {backoff_seconds(attempt) for _ in range(50)}
        assert all(ceiling / 2 <= delay <= ceiling for delay in delays)
        assert len(delays) > 1
    assert backoff_seconds(60) <= 6 * 3600


class RollBack(Exception):
    pass


async def test_due_outbox_ids_picks_exactly_the_due_rows() -> None:
    # Inside a transaction that is rolled back: the app's own sweeper never sees these rows.
    tag = f"due-test-{now().timestamp()}"
    with pytest.raises(RollBack):
        async with transaction():
            await check_due_rows(tag)
            raise RollBack
    assert not await OutboxMessage.filter(dedupe_key__startswith=tag).exists()


async def check_due_rows(tag: str) -> None:
    t = now()

    async def message(name: str, status: OutboxStatus, *, age: float = 0, next_in: float | None = None) -> int:
        created = await OutboxMessage.create(kind="test.noop", dedupe_key=f"{tag}:{name}", status=status)
        await OutboxMessage.filter(id=created.id).update(
            created_at=t - timedelta(seconds=age),
            next_attempt_at=None if next_in is None else t + timedelta(seconds=next_in),
        )
        return int(created.id)

    ids = {
        "pending_fresh": await message("pending_fresh", OutboxStatus.PENDING, age=5),
        "pending_old": await message("pending_old", OutboxStatus.PENDING, age=60),
        "pending_leased": await message("pending_leased", OutboxStatus.PENDING, age=60, next_in=120),
        "pending_lease_expired": await message("pending_lease_expired", OutboxStatus.PENDING, age=60, next_in=-1),
        "failed_due": await message("failed_due", OutboxStatus.FAILED, age=600, next_in=-1),
        "failed_waiting": await message("failed_waiting", OutboxStatus.FAILED, age=600, next_in=300),
        "sent": await message("sent", OutboxStatus.SENT, age=600),
        "sent_with_old_lease": await message("sent_with_old_lease", OutboxStatus.SENT, age=600, next_in=-60),
        "dead": await message("dead", OutboxStatus.DEAD, age=600, next_in=-60),
    }
    mine = set(ids.values())

    due = set(await due_outbox_ids(limit=100_000)) & mine
    assert due == {ids["pending_old"], ids["pending_lease_expired"], ids["failed_due"]}

    due_short_grace = set(await due_outbox_ids(limit=100_000, grace_seconds=1)) & mine
    assert due_short_grace == due | {ids["pending_fresh"]}

    limited = await due_outbox_ids(limit=2)
    assert len(limited) <= 2
    assert limited == sorted(limited)
