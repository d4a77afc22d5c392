"""Redis clients over bounded, blocking connection pools.

redis-py's default pool refuses the 101st concurrent command with `MaxConnectionsError`, which
reached clients as "Unexpected error." under a burst. A `BlockingConnectionPool` instead makes a
command wait up to `wait_seconds` for a free connection; past that it raises redis's
`ConnectionError("No connection available.")`, which `payql.retry_later` answers as RATE_LIMITED with
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

Behind Redis Sentinel, the URL names the sentinels and the service instead of a server:
`redis+sentinel://[[user]:password@]host[:port][,host[:port]…]/service[/db]` (port 26379 by
default; the password is the data nodes', the sentinels are asked without one). Every connection
then asks a sentinel for the service's primary as it connects, and a connection to a primary that
has since been demoted is dropped at its first READONLY answer, so after a failover commands reach
the new primary through the same reconnects and retries as after a restart. While the sentinels have
not yet agreed on a new primary (their `down-after-milliseconds`, then an election), commands fail
as they do while a single Redis is down.

Never build a Redis client with `Redis.from_url(url)` alone elsewhere: that is the unbounded pool.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import unquote

import redis
from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import Sentinel, SentinelConnectionPool
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
SENTINEL_SCHEME: Final = "redis+sentinel://"
SENTINEL_DEFAULT_PORT: Final = 26379


@dataclass(frozen=True, slots=True)
class SentinelAddress:
    """Where a `redis+sentinel://` URL says the service's primary is to be found."""

    sentinels: tuple[tuple[str, int], ...]
    service: str
    db: int = 0
    username: str | None = None
    password: str | None = None


def sentinel_address(url: str) -> SentinelAddress | None:
    """The sentinels, service and credentials of a `redis+sentinel://` URL; None for any other URL.
    Raises ValueError for a sentinel URL that names no sentinel or no service."""
    if not url.startswith(SENTINEL_SCHEME):
        return None
    location, _, path = url[len(SENTINEL_SCHEME) :].partition("/")
    credentials, _, hosts = location.rpartition("@")
    username, _, password = credentials.partition(":")
    sentinels = tuple(_host_and_port(host) for host in hosts.split(",") if host)
    service, _, db = path.strip("/").partition("/")
    if not sentinels or not service:
        raise ValueError(
            "a redis+sentinel:// URL names its sentinels and its service: redis+sentinel://host:26379/service"
        )
    if db and not db.isdigit():
        raise ValueError(f"the database of a redis+sentinel:// URL is a number, not {db!r}")
    return SentinelAddress(
        sentinels, unquote(service), int(db or 0), unquote(username) or None, unquote(password) or None
    )


def _host_and_port(host: str) -> tuple[str, int]:
    if host.startswith("["):  # [IPv6]:port
        name, _, rest = host[1:].partition("]")
        port = rest.removeprefix(":")
    else:
        name, _, port = host.partition(":")
    if not name or (port and not port.isdigit()):
        raise ValueError(f"a sentinel is host[:port], not {host!r}")
    return name, int(port or SENTINEL_DEFAULT_PORT)


class _BlockingSentinelPool(SentinelConnectionPool, BlockingConnectionPool):
    """redis-py's sentinel pool (each connection finds the primary as it connects) with the blocking
    pool's bounded wait for a free connection."""

    async def disconnect(self, inuse_connections: bool = True) -> None:
        await super().disconnect(inuse_connections)
        if inuse_connections:
            # The pool is being closed (a failover only drops idle connections): so are the sentinels' clients.
            await self.sentinel_manager.aclose()


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
    options: dict[str, Any] = {
        "max_connections": max_connections,
        "timeout": wait_seconds,
        "client_name": client_name,
        "socket_connect_timeout": CONNECT_TIMEOUT_SECONDS,
        "socket_timeout": socket_timeout,
        "health_check_interval": 30,
        "retry": Retry(_BACKOFF, retries=COMMAND_RETRIES, supported_errors=(RedisConnectionError,)),
        "driver_info": _DRIVER,
    }
    address = sentinel_address(url)
    if address is None:
        return Redis.from_pool(BlockingConnectionPool.from_url(url, **options))
    sentinels = Sentinel(  # type: ignore[no-untyped-call]
        address.sentinels,
        sentinel_kwargs={"socket_connect_timeout": CONNECT_TIMEOUT_SECONDS, "socket_timeout": SOCKET_TIMEOUT_SECONDS},
    )
    credentials = {"db": address.db, "username": address.username, "password": address.password}
    pool = _BlockingSentinelPool(address.service, sentinels, **options, **credentials)  # type: ignore[no-untyped-call]
    return Redis.from_pool(pool)
