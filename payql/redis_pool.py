"""Redis clients over bounded, blocking connection pools.

redis-py's default pool refuses the 101st concurrent command with `MaxConnectionsError`, which
reached clients as "Unexpected error." under a burst. A `BlockingConnectionPool` instead makes a
command wait up to `wait_seconds` for a free connection; past that it raises redis's
`ConnectionError("No connection available.")`, which `payql.exhaustion` answers as RATE_LIMITED with
Retry-After. The web process builds its pool once (`payql.wiring`); the rate limiters, live slots
and the broker's publishes share it; the broker's one listening connection and saq's queue have
their own, each bounded.

Pooled connections outlive a Redis restart as dead sockets, and a restart or a failover leaves Redis
refusing connections for a moment; a command that finds its connection closed or refused reconnects and
is sent again (`COMMAND_RETRIES` times, backing off over about a second in all) instead of
failing the request that made it. A command that timed out is not sent again: its answer may still come,
and a second wait would hold the request twice as long.

Every connection names the library's version to Redis (`CLIENT SETINFO`); redis-py looks it up in
the installed packages' metadata for each new connection, about 1.5 ms of disk reads and parsing,
paid by the first commands of a burst while the pool grows. It is read once here instead.

Never build a Redis client with `Redis.from_url(url)` alone elsewhere: that is the unbounded pool.
"""

from __future__ import annotations

from typing import Final

import redis
from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.retry import Retry
from redis.backoff import EqualJitterBackoff
from redis.driver_info import DriverInfo
from redis.exceptions import ConnectionError as RedisConnectionError

# An unreachable Redis fails a command within this, rather than hanging it.
CONNECT_TIMEOUT_SECONDS: Final = 5.0
SOCKET_TIMEOUT_SECONDS: Final = 5.0
# A restarted Redis closes every pooled connection, then refuses new ones until it listens again (a process
# restart): the retries wait 50-100, 100-200, 200-400 and 250-500 ms, so a command rides out a Redis that
# listens again within 0.6 s at the least (1.2 s at the most). redis-py also retries a connection's handshake
# with the same policy, inside each command's attempt: a Redis that accepts connections and drops them at
# once costs up to 25 of them and about 6 s before the command fails, hence no more retries than these.
COMMAND_RETRIES: Final = 4
_BACKOFF: Final = EqualJitterBackoff(cap=0.5, base=0.05)
_DRIVER: Final = DriverInfo(lib_version=redis.__version__)


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
        retry=Retry(_BACKOFF, retries=COMMAND_RETRIES, supported_errors=(RedisConnectionError,)),
        driver_info=_DRIVER,
    )
    return Redis.from_pool(pool)
