"""Redis clients over bounded, blocking connection pools.

redis-py's default pool refuses the 101st concurrent command with `MaxConnectionsError`, which
reached clients as "Unexpected error." under a burst. A `BlockingConnectionPool` instead makes a
command wait up to `wait_seconds` for a free connection; past that it raises redis's
`ConnectionError("No connection available.")`, which `payql.exhaustion` answers as RATE_LIMITED with
Retry-After. The web process builds its pool once (`payql.wiring`); the rate limiters, live slots
and the broker's publishes share it; the broker's one listening connection and saq's queue have
their own, each bounded.

Pooled connections outlive a Redis restart as dead sockets; a command that finds its connection closed
reconnects and is sent again (at most `COMMAND_RETRIES` times, with a short jittered backoff) instead of
failing the request that made it.

Never build a Redis client with `Redis.from_url(url)` alone elsewhere: that is the unbounded pool.
"""

from __future__ import annotations

from typing import Final

from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialWithJitterBackoff

# An unreachable Redis fails a command within this, rather than hanging it.
CONNECT_TIMEOUT_SECONDS: Final = 5.0
SOCKET_TIMEOUT_SECONDS: Final = 5.0
# A restarted Redis closes every pooled connection: one reconnect per command is what that takes; a second
# covers a restart still under way. Each retry waits 20-500 ms.
COMMAND_RETRIES: Final = 2


def bounded_redis(
    url: str,
    *,
    max_connections: int,
    wait_seconds: float,
    client_name: str,
    socket_timeout: float | None = SOCKET_TIMEOUT_SECONDS,
) -> Redis:
    """A client whose pool opens at most `max_connections` and makes a command wait at most
    `wait_seconds` for one. `client_name` is what `CLIENT LIST` shows for its connections.
    `socket_timeout=None` is for connections that block on purpose (a pub/sub listener)."""
    pool = BlockingConnectionPool.from_url(
        url,
        max_connections=max_connections,
        timeout=wait_seconds,
        client_name=client_name,
        socket_connect_timeout=CONNECT_TIMEOUT_SECONDS,
        socket_timeout=socket_timeout,
        health_check_interval=30,
        retry=Retry(ExponentialWithJitterBackoff(base=0.02, cap=0.5), retries=COMMAND_RETRIES),
    )
    return Redis.from_pool(pool)
