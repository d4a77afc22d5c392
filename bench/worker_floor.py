"""The worker floor: a bare asyncpg + redis worker that drains a backlog of stored webhook events with
the statements `payql worker` runs for each event it stores and then ignores (read from the
worker's statement log, logger `tortoise.db_client` at DEBUG: 2 statements):

  the claim: one UPDATE … RETURNING that takes the lease unless the event is final or leased;
  the final status written.

Its queue is one Redis list of row ids, popped once per job; as many jobs run at once as a
`payql worker` runs (10), over as many database connections as PayQL's pool holds (5). What it leaves
out is what PayQL adds to the same work: saq's job records and bookkeeping, the ORM, decrypting and
interpreting the event, metrics, spans and log context. When the job's statements change, this list
follows. `bench.worker` runs it in processes of its own until it terminates them:

  FLOOR_DATABASE_URL  postgresql://… of the benchmark's database
  FLOOR_REDIS_URL     the benchmark's Redis
  FLOOR_QUEUE         the Redis list the backlog's row ids wait in
"""

from __future__ import annotations

import asyncio
import os
from datetime import UTC, datetime, timedelta

import asyncpg
from redis.asyncio import Redis

from bench.floor_pool import open_floor_pool

CONCURRENCY = 10  # `payql worker`'s saq concurrency
LEASE = timedelta(seconds=120)  # the webhook RetryPolicy's lease
POP_TIMEOUT_SECONDS = 1

CLAIM = (
    "UPDATE webhook_events SET attempts = attempts + 1, next_attempt_at = $1 WHERE id = $2"
    " AND status NOT IN ('PROCESSED', 'IGNORED', 'DEAD') AND (next_attempt_at IS NULL OR next_attempt_at <= $3)"
    " RETURNING *"
)
DONE = (
    "UPDATE webhook_events SET status = 'IGNORED', processed_at = $1, next_attempt_at = NULL, last_error = NULL"
    " WHERE id = $2"
)


async def run_one(pool: asyncpg.Pool, event_row_id: int) -> None:
    async with pool.acquire() as db:
        now = datetime.now(UTC)
        if await db.fetchrow(CLAIM, now + LEASE, event_row_id, now) is None:
            return
        await db.execute(DONE, datetime.now(UTC), event_row_id)


async def consume(pool: asyncpg.Pool, redis: Redis, queue: str) -> None:
    while True:
        popped = await redis.blpop([queue], timeout=POP_TIMEOUT_SECONDS)
        if popped is not None:
            await run_one(pool, int(popped[1]))


async def main() -> None:
    pool = await open_floor_pool(os.environ["FLOOR_DATABASE_URL"])
    redis = Redis.from_url(os.environ["FLOOR_REDIS_URL"], max_connections=CONCURRENCY)
    try:
        await asyncio.gather(*(consume(pool, redis, os.environ["FLOOR_QUEUE"]) for _ in range(CONCURRENCY)))
    finally:
        await redis.aclose()
        await pool.close()


if __name__ == "__main__":
    asyncio.run(main())
