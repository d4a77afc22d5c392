"""The checkout floor's receipts in a process of their own, as PayQL's run in `payql worker`: the floor
(`bench.checkout_floor` with FLOOR_RECEIPT_QUEUE set) pushes each paid order's outbox message and order
ids on a Redis list, and this process takes them off it and runs the receipt's 5 statements
(`checkout_floor.receipt`), `CONSUMERS` at a time, as saq runs PayQL's jobs 10 at a time. Nothing else:
no job records, retries or heartbeat. `bench.checkout --jobs worker` runs it:
  FLOOR_DATABASE_URL   postgresql://… of the benchmark's database
  FLOOR_REDIS_URL      redis://… where the list is
  FLOOR_RECEIPT_QUEUE  the list's key

Never here: a receipt taken off the list and dropped without its statements (the benchmark waits for
every message to be SENT).
"""

from __future__ import annotations

import asyncio
import os
import uuid

from redis.asyncio import Redis

from bench import checkout_floor
from bench.floor_pool import open_floor_pool

CONSUMERS = 10
# A wait on the list, in seconds: under redis-py's socket timeout (5 s), which a longer BRPOP would trip
# while the other side's round runs and nothing is pushed.
WAIT_SECONDS = 1


async def consume(redis: Redis, key: str) -> None:
    while True:
        taken = await redis.brpop([key], timeout=WAIT_SECONDS)
        if taken is None:
            continue
        message_id, order_id = str(taken[1]).split()
        await checkout_floor.receipt(int(message_id), uuid.UUID(order_id))


async def main() -> None:
    checkout_floor.state["pool"] = await open_floor_pool(os.environ["FLOOR_DATABASE_URL"])
    # One connection per consumer: each waits in BRPOP on its own.
    redis = Redis.from_url(os.environ["FLOOR_REDIS_URL"], max_connections=CONSUMERS, decode_responses=True)
    try:
        await asyncio.gather(*(consume(redis, os.environ["FLOOR_RECEIPT_QUEUE"]) for _ in range(CONSUMERS)))
    finally:
        await redis.aclose()
        await checkout_floor.state["pool"].close()


if __name__ == "__main__":
    asyncio.run(main())
