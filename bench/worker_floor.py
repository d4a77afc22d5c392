"""The worker floor: a bare asyncpg + redis worker that drains a backlog of stored webhook events with
the statements `payql worker` runs for each event it stores and then ignores (read from the
worker's statement log, logger `tortoise.db_client` at DEBUG: 3 statements, one transaction):

  BEGIN; the row FOR UPDATE; attempts and lease written; COMMIT (the claim);
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

CONCURRENCY = 10  # `payql worker`'s saq concurrency
POOL_SIZE = 5  # PayQL's default database pool
LEASE = timedelta(seconds=120)  # the webhook RetryPolicy's lease
POP_TIMEOUT_SECONDS = 1
FINAL = ("PROCESSED", "IGNORED", "DEAD")

CLAIM = (
    "SELECT gateway, id, processed_at, event_id, event_type, status, received_at, body, next_attempt_at, last_error,"
    " headers, attempts, source_ip FROM webhook_events WHERE id = $1 LIMIT 1 FOR UPDATE"
)
TAKE = "UPDATE webhook_events SET attempts = $1, next_attempt_at = $2 WHERE id = $3"
DONE = (
    "UPDATE webhook_events SET status = 'IGNORED', processed_at = $1, next_attempt_at = NULL, last_error = NULL"
    " WHERE id = $2"
)


async def run_one(pool: asyncpg.Pool, event_row_id: int) -> None:
    async with pool.acquire() as db:
        async with db.transaction():
            row = await db.fetchrow(CLAIM, event_row_id)
            if row is None or row["status"] in FINAL:
                return
            await db.execute(TAKE, row["attempts"] + 1, datetime.now(UTC) + LEASE, event_row_id)
        await db.execute(DONE, datetime.now(UTC), event_row_id)


async def consume(pool: asyncpg.Pool, redis: Redis, queue: str) -> None:
    while True:
        popped = await redis.blpop([queue], timeout=POP_TIMEOUT_SECONDS)
        if popped is not None:
            await run_one(pool, int(popped[1]))


async def main() -> None:
    pool = await asyncpg.create_pool(os.environ["FLOOR_DATABASE_URL"], min_size=1, max_size=POOL_SIZE)
    redis = Redis.from_url(os.environ["FLOOR_REDIS_URL"], max_connections=CONCURRENCY)
    try:
        await asyncio.gather(*(consume(pool, redis, os.environ["FLOOR_QUEUE"]) for _ in range(CONCURRENCY)))
    finally:
        await redis.aclose()
        await pool.close()


if __name__ == "__main__":
    asyncio.run(main())
