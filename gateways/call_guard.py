"""The one place every call to a gateway passes through on its way out: its bulkhead slot, then the call
under our own timeout, whatever resolver or job makes it.

- **Bulkhead** (`gateways.bulkhead`): past `max_concurrent_calls` calls in flight to one gateway in this
  process, the next is refused at once with `GatewayBusy` (nothing sent: a payment may fail over).
- **Per-call timeout**: `call_timeout_seconds`, independent of each SDK's own. Running out is
  `GatewayTimeout`, an unknown outcome like any timeout after sending: never failed over, retried only on
  the same gateway with the same idempotency key, or read back later.
- **Request deadline** (`gateways.deadline`): inside one, a call gets no more than the time left, and one
  cut short (or not started, the deadline being past) is `DeadlineExceeded`, also an unknown outcome.

A listing (`list_*`) pages through the gateway's records with one SDK request per page, each bounded by the
SDK's own timeout, so it is not cut by the per-call timeout (only by a request deadline).

`guard_gateway` replaces each public coroutine method on the adapter *instance* (as
`payql.gateway_observation` does), so `isinstance` checks on the adapter's class keep working. It never
changes an argument or a result; the only errors it adds are the three above. `CallGuard.limits` is read at
each call, so it can be changed while the process runs. It never waits for a slot, never retries and never
decides what a failure means for a payment: the retries (`gateways.retrying`) and the routing policy do.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from functools import wraps
from typing import Any

from gateways import deadline
from gateways.base import PaymentGateway
from gateways.bulkhead import Bulkhead
from gateways.errors import DeadlineExceeded, GatewayTimeout

# Not calls to the gateway's service: local signature checks and the adapter's own lifecycle.
NOT_CALLS = frozenset({"aclose", "open", "verify_webhook"})


@dataclass(frozen=True, slots=True)
class CallLimits:
    # Our own bound on one call (0: only the SDK's); a listing is exempt.
    call_timeout_seconds: float = 8.0
    # Calls in flight to one gateway in one process (0: no bound).
    max_concurrent_calls: int = 64
    # The gateway work of one GraphQL request (its calls and retries) ends by then; read by the use cases.
    request_deadline_seconds: float = 10.0


@dataclass(slots=True)
class CallGuard:
    limits: CallLimits = field(default_factory=CallLimits)
    bulkhead: Bulkhead = field(default_factory=Bulkhead)

    async def call(self, gateway: str, operation: str, call: Callable[[], Awaitable[Any]]) -> Any:
        limits = self.limits
        with self.bulkhead.slot(gateway, limits.max_concurrent_calls):
            left = deadline.remaining()
            if left is not None and left <= 0:
                raise DeadlineExceeded(
                    "The payment service did not answer in time.",
                    detail=f"the request's deadline passed before {gateway}.{operation} was sent",
                )
            timeout = None if operation.startswith("list_") else limits.call_timeout_seconds or None
            by_deadline = left is not None and (timeout is None or left < timeout)
            scope = asyncio.timeout(left if by_deadline else timeout)
            try:
                async with scope:
                    return await call()
            except TimeoutError:
                if not scope.expired():
                    raise  # the call's own, not ours
                if by_deadline:
                    raise DeadlineExceeded(
                        "The payment service did not answer in time.",
                        detail=f"{gateway}.{operation} cut short by the request's deadline; outcome unknown",
                    ) from None
                raise GatewayTimeout(
                    "The payment service did not answer in time.",
                    detail=f"{gateway}.{operation} took longer than {timeout:g} s; outcome unknown",
                ) from None


def guard_gateway(gateway: PaymentGateway, guard: CallGuard) -> PaymentGateway:
    for name, member in inspect.getmembers(type(gateway)):
        if name.startswith("_") or name in NOT_CALLS or not inspect.iscoroutinefunction(member):
            continue
        setattr(gateway, name, _guarded(guard, gateway.name, name, getattr(gateway, name)))
    return gateway


def _guarded(
    guard: CallGuard, gateway: str, operation: str, method: Callable[..., Awaitable[Any]]
) -> Callable[..., Awaitable[Any]]:
    @wraps(method)
    async def guarded(*args: Any, **kwargs: Any) -> Any:
        return await guard.call(gateway, operation, lambda: method(*args, **kwargs))

    return guarded
