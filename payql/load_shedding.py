"""Load shedding: past a set number of HTTP requests in flight, a new one is refused at once.

A burst larger than the database and Redis pools can serve would otherwise queue inside the
process, every request waiting its turn until clients time out. Refusing the excess immediately
with 503 and `Retry-After` keeps the accepted requests fast and tells the rest when to come back.
It counts /graphql over HTTP only: health checks must answer under load, websockets are capped per
principal elsewhere, and a gateway's webhook must never be refused for our load (it would retry,
but later). Nothing here reads a request's body or identity.
"""

from __future__ import annotations

from typing import Final

from starlette.types import ASGIApp, Receive, Scope, Send

from payql.retry_later import Unavailable
from resolvers.errors import ErrorCode

SHED_RETRY_AFTER_SECONDS: Final = 1
SHED_MESSAGE: Final = "The server is at capacity. Retry shortly."
SHED: Final = Unavailable(ErrorCode.RATE_LIMITED, SHED_MESSAGE, SHED_RETRY_AFTER_SECONDS)


class InFlightLimit:
    """How many requests may be inside at once, how many are, and how many were refused."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.in_flight = 0
        self.shed = 0  # refused since start, for diagnostics and tests


class LoadShedding:
    """Pure ASGI: at most `gate.limit` HTTP requests to `path` inside `app` at once."""

    def __init__(self, app: ASGIApp, gate: InFlightLimit, path: str = "/graphql") -> None:
        self.app = app
        self.gate = gate
        self.path = path

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].removeprefix(scope.get("root_path", "")) != self.path:
            await self.app(scope, receive, send)
            return
        gate = self.gate
        if gate.in_flight >= gate.limit:
            gate.shed += 1
            await self._refuse(send)
            return
        # The event loop is single-threaded: the check above and this increment cannot interleave.
        gate.in_flight += 1
        try:
            await self.app(scope, receive, send)
        finally:
            gate.in_flight -= 1

    @staticmethod
    async def _refuse(send: Send) -> None:
        await SHED.send_503(send)
