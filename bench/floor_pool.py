"""The floors' PostgreSQL pool: asyncpg's, giving a connection back without asyncpg's reset query
(`pg_advisory_unlock_all; CLOSE ALL; UNLISTEN *; RESET ALL`), as PayQL's pool does (`db.config`). With the
reset, a floor paid a round trip per checkout of a connection that PayQL does not, which flattered PayQL.

Never here: anything a floor would do that PayQL does not.
"""

from __future__ import annotations

import asyncpg

# As many connections as PayQL's Tortoise pool holds by default, so neither side has more.
_POOL_SIZE = 5


async def no_reset(_: asyncpg.Connection) -> None:
    """Nothing to undo: a floor sets no session state, and asyncpg rolls back a transaction left open."""


async def open_floor_pool(database_url: str) -> asyncpg.Pool:
    pool: asyncpg.Pool = await asyncpg.create_pool(database_url, min_size=1, max_size=_POOL_SIZE, reset=no_reset)
    return pool
