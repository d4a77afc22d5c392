"""What a PayQL checkout must do beyond the floor's statements, each part measured alone: the least its
machine can spend a checkout above the floor's, whatever the rest of PayQL's code costs.

Run: .venv/bin/python -m bench.obligations [--checkouts 2000] [--jobs server|worker]
Needs PostgreSQL and Redis as the other benchmarks do (`bench.servers`: a run's database gives it
its Redis prefix and clean-up; only Redis is used); `bench.checkout --ceiling` runs it after its
rounds and adds it to its bound. Each part runs as a checkout runs it, through PayQL's own code,
`--checkouts` times (32 in flight, as the benchmark's load), after a warm-up; what it costs is this
process's CPU (every thread: the sandbox's state file is written from one) plus redis-server's, a
checkout:

- the payment limit: one hit of `PaymentRateLimiter` (limits' moving window, a script on Redis), at
  the benchmark's limit, on one shopper's key as the benchmark's shopper is one;
- the gateway call: `SandboxGateway.charge` on a processor with its state file, as `payql serve` runs
  the sandbox;
- encryption at rest: `DataKeys.seal` of what a checkout seals (the order's address and user agent,
  four audit records' addresses, the idempotency record's JSON written twice: 8 values, counted in
  `bench.checkout --profile`'s profile);
- with `--jobs worker`, the receipt's job: queued as a commit queues it (`SaqJobQueue.enqueue_many`;
  no PUBLISH, since no one can watch an order before its checkout answers), then taken, marked ACTIVE
  and ended by `payql worker`'s saq worker around a job that does nothing, over a backlog (the fewest
  round trips a worker takes a job in);
- the receipt's message: built (`build_message`, `bench.receipt_mime`'s three-line receipt), then sent
  to a mailbox (`MailboxMailer.send`: serialized, a file, fsync, from a thread), as the benchmark's
  PayQL sends it.

Each part is the least it costs in a checkout: warm, alone on the machine, without the retries,
circuit breakers, bulkheads, logging, metrics and tracing PayQL wraps around it, and with no work of
its own (the receipt's job does nothing; no statement runs). So the bound it gives is an upper one.

Never here: anything a checkout does not have to do, or a statement (the floor runs those).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from email.message import Message
from pathlib import Path

from saq.types import Context

from bench import receipt_mime
from bench.servers import UNLIMITED, tier_cpu_seconds
from db.encryption import DataKeys
from domain.money import Money
from domain.statuses import CaptureMethod
from gateways.sandbox.adapter import SandboxGateway
from gateways.sandbox.processor import SandboxProcessor
from gateways.types import ChargeRequest
from jobs.queue import JobSpec
from jobs.saq_queue import SaqJobQueue
from jobs.worker import build_worker
from notifications.mailer import MailboxMailer
from payql.rate_limit import PaymentRateLimiter
from payql.redis_pool import bounded_redis

IN_FLIGHT = 32
WARM_UP = 50
# The job a commit queues for a paid order's receipt (`payql.wiring.Services.after_commit`).
RECEIPT_JOB = "dispatch_outbox_message"
# What a checkout seals: five addresses and a user agent as text, and the idempotency record's
# recovery point as JSON, inserted and then updated.
SEALED_TEXT = ("127.0.0.1",) * 5 + ("Python/3.11 aiohttp/3.13.2",)
SEALED_JSON = (json.dumps({"payment_id": str(uuid.uuid4()), "order_id": str(uuid.uuid4())}),) * 2
REDIS = "redis-server"


@dataclass(frozen=True)
class Part:
    name: str
    process_ms: float  # this process's CPU a checkout, every thread
    redis_ms: float  # redis-server's CPU a checkout
    # The development mailer's file, which production's SMTP replaces with a send of its own.
    development_only: bool = False

    @property
    def total_ms(self) -> float:
        return self.process_ms + self.redis_ms


@dataclass(frozen=True)
class Obligations:
    parts: tuple[Part, ...]

    @property
    def total_ms(self) -> float:
        return sum(part.total_ms for part in self.parts)

    @property
    def production_ms(self) -> float:
        """Without the parts only a development set-up has (the mailbox's file)."""
        return sum(part.total_ms for part in self.parts if not part.development_only)


async def measured(name: str, checkouts: int, each: Callable[[int], Awaitable[object]]) -> Part:
    """`each(i)` for `checkouts` values of i, `IN_FLIGHT` at once, after `WARM_UP` calls not counted."""
    for index in range(WARM_UP):
        await each(-1 - index)
    remaining = iter(range(checkouts))

    async def lane() -> None:
        for index in remaining:
            await each(index)

    process, redis = time.process_time(), tier_cpu_seconds((REDIS,))[REDIS]
    await asyncio.gather(*(lane() for _ in range(IN_FLIGHT)))
    return await spent(name, checkouts, process, redis)


async def spent(name: str, checkouts: int, process_before: float, redis_before: float) -> Part:
    process = (time.process_time() - process_before) * 1000 / checkouts
    redis = (tier_cpu_seconds((REDIS,))[REDIS] - redis_before) * 1000 / checkouts
    return Part(name, process, redis)


async def payment_limit(redis_url: str, prefix: str, checkouts: int) -> Part:
    redis = bounded_redis(redis_url, max_connections=50, wait_seconds=5.0, client_name="payql-obligations")
    try:
        limiter = PaymentRateLimiter(UNLIMITED, redis, prefix)
        return await measured("payment limit", checkouts, lambda _: limiter.hit("bench-customer"))
    finally:
        await redis.aclose()


async def gateway_call(work: Path, checkouts: int) -> Part:
    processor = SandboxProcessor(state_path=work / "obligations-sandbox.sqlite3")
    await processor.open()
    gateway = SandboxGateway(processor, "http://127.0.0.1", ["whsec_obligations"])

    def charge(index: int) -> Awaitable[object]:
        order, payment = uuid.uuid4(), uuid.uuid4()
        return gateway.charge(
            ChargeRequest(
                amount=Money(1999, "USD"),
                payment_method="pm_card_visa",
                capture_method=CaptureMethod.AUTOMATIC,
                idempotency_key=f"payql-payment-{payment}",
                description=f"Order {order}",
                metadata={"payql_order_id": str(order), "payql_payment_id": str(payment)},
            )
        )

    try:
        return await measured("gateway call (sandbox)", checkouts, charge)
    finally:
        await processor.aclose()


async def encryption(checkouts: int) -> Part:
    keys = DataKeys((os.urandom(32),), os.urandom(32))

    async def seal_all(_: int) -> None:
        for value in SEALED_TEXT:
            keys.seal(value, "orders.checkout_ip")
        for value in SEALED_JSON:
            keys.seal(value, "idempotency_records.recovery_point")

    return await measured("encryption at rest", checkouts, seal_all)


async def receipt_job(redis_url: str, prefix: str, checkouts: int) -> list[Part]:
    """The receipt's job queued by the server, then run (doing nothing) by a worker over the backlog."""
    done = asyncio.Event()
    ended = 0

    async def nothing(**_: object) -> None:
        pass

    async def count_end(_: Context) -> None:
        nonlocal ended
        ended += 1
        if ended == WARM_UP + checkouts:
            done.set()

    name = f"{prefix}obligations"
    spec = JobSpec(RECEIPT_JOB, nothing)
    queue = SaqJobQueue(redis_url, [spec], name=name)
    await queue.start()
    try:
        queued = await measured(
            "receipt job queued",
            checkouts,
            lambda index: queue.enqueue_many([(RECEIPT_JOB, f"outbox:{index}", {"message_id": index})]),
        )
    finally:
        await queue.aclose()
    worker = build_worker(redis_url, [spec], name=name)
    worker.after_process = [count_end]  # saq calls it once a job has ended, its end written
    await worker.queue.connect()
    process, redis = time.process_time(), tier_cpu_seconds((REDIS,))[REDIS]
    running = asyncio.create_task(worker.start())
    try:
        await asyncio.wait_for(done.wait(), timeout=120)
        # The warm-up's jobs ran in this drain too: the worker's CPU is counted for all of them. Its
        # start-up is counted as well (a few milliseconds, against hundreds of jobs' taken over a backlog,
        # the cheapest way a worker takes them).
        taken = await spent("receipt job run by the worker", WARM_UP + checkouts, process, redis)
    finally:
        # Its process tasks wait in a blocking take: saq warns that it cancels them, as it must.
        saq_logger = logging.getLogger("saq")
        level = saq_logger.level
        saq_logger.setLevel(logging.ERROR)
        try:
            await worker.stop()
        finally:
            saq_logger.setLevel(level)
        running.cancel()
        await worker.queue.disconnect()
    return [queued, taken]


def receipt(index: int) -> Message:
    """A receipt of its own (its Message-ID names its mailbox file)."""
    return receipt_mime.receipt_message(f"receipt:{index}:{uuid.uuid4()}")


async def receipt_message(work: Path, checkouts: int) -> list[Part]:
    """The receipt's message built, then sent: serialized and written to the mailbox (a development
    mailer; production's SMTP serializes it too, and sends it over a connection instead)."""

    async def build(index: int) -> None:
        receipt(index)

    built = await measured("receipt message built", checkouts, build)
    mailer = MailboxMailer(work / "obligations-mailbox")
    # One message a call, the warm-up's (indexes -1 to -WARM_UP) first: each is sent once, to a file of its own.
    messages = [receipt(index) for index in range(-WARM_UP, checkouts)]
    written = await measured(
        "receipt sent to the mailbox", checkouts, lambda index: mailer.send(messages[index + WARM_UP])
    )
    return [built, replace(written, development_only=True)]


async def measure(redis_url: str, prefix: str, work: Path, checkouts: int, jobs: str) -> Obligations:
    """Every part a checkout has to do, with `jobs` as `bench.checkout --jobs` runs receipts."""
    parts = [
        await payment_limit(redis_url, prefix, checkouts),
        await gateway_call(work, checkouts),
        await encryption(checkouts),
    ]
    if jobs == "worker":
        parts.extend(await receipt_job(redis_url, prefix, checkouts))
    parts.extend(await receipt_message(work, checkouts))
    return Obligations(tuple(parts))


def print_obligations(obligations: Obligations) -> None:
    print("what a checkout must do beyond the floor's statements, each part alone (CPU a checkout):")
    for part in obligations.parts:
        print(f"  {part.name:>34}: {part.process_ms:5.2f} ms, redis-server {part.redis_ms:4.2f} ms")
    together, production = obligations.total_ms, obligations.production_ms
    print(f"  {'together':>34}: {together:5.2f} ms ({production:.2f} ms without the mailbox)")


async def main(checkouts: int, jobs: str) -> None:
    from bench.servers import BenchDatabase  # a database too: its Redis prefix and clean-up are the benchmarks'

    async with BenchDatabase.create() as bench:
        print_obligations(await measure(bench.redis_url, bench.redis_prefix, bench.work, checkouts, jobs))


def parse_arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkouts", type=int, default=2000)
    parser.add_argument("--jobs", choices=("server", "worker"), default="server")
    return parser.parse_args()


if __name__ == "__main__":
    arguments = parse_arguments()
    asyncio.run(main(arguments.checkouts, arguments.jobs))
