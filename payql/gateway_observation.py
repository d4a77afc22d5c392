"""Every call to a payment gateway is counted and timed (and, with tracing on, spanned) by gateway,
operation and outcome, whatever resolver or job makes it, and reported to the gateway's circuit breaker
(`gateways.health`): a call that got no useful answer (unreachable, timed out, 5xx) is a failure, a
decline or a refused request is not (the gateway answered). A call our own bulkhead refused unsent, or one
the request's deadline cut short (`gateways.call_guard`), says nothing of the gateway: the breaker is not
told, and a refusal is counted apart, not as a call.

The adapters stay unaware of it: `observe_gateway` replaces each public coroutine method on the
adapter *instance* with a timed wrapper (instance attributes, not a proxy object, so that
`isinstance` checks on the adapter's class keep working). It never changes an argument, a result
or an exception.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable
from functools import wraps
from typing import Any

from gateways.base import PaymentGateway
from gateways.call_guard import NOT_CALLS
from gateways.errors import DeadlineExceeded, GatewayBusy, GatewayError, GatewayUnavailable, PaymentDeclined
from gateways.health import CircuitState, HealthBoard
from payql.metrics import (
    GATEWAY_BULKHEAD_REJECTIONS,
    GATEWAY_CALLS,
    GATEWAY_CIRCUIT,
    GATEWAY_DURATION,
    PAYMENT_DECLINES,
    labelled,
)
from payql.tracing import span

# The outcome of a call our own bulkhead refused: never sent, so neither timed nor told to the breaker.
_REFUSED_UNSENT = "refused unsent"

_CIRCUIT_GAUGE = {CircuitState.CLOSED: 0, CircuitState.HALF_OPEN: 1, CircuitState.OPEN: 2}


def observe_gateway(gateway: PaymentGateway, health: HealthBoard | None = None) -> PaymentGateway:
    for name, member in inspect.getmembers(type(gateway)):
        if name.startswith("_") or name in NOT_CALLS or not inspect.iscoroutinefunction(member):
            continue
        setattr(gateway, name, _timed(gateway.name, name, getattr(gateway, name), health))
    return gateway


def _timed(
    gateway: str, operation: str, call: Callable[..., Awaitable[Any]], health: HealthBoard | None
) -> Callable[..., Awaitable[Any]]:
    @wraps(call)
    async def timed(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        outcome = "ok"
        # None: the call tells nothing of the gateway's health.
        healthy: bool | None = True
        try:
            with span(f"gateway {gateway}.{operation}", {"payql.gateway": gateway, "payql.operation": operation}):
                return await call(*args, **kwargs)
        except GatewayBusy:
            outcome = _REFUSED_UNSENT
            GATEWAY_BULKHEAD_REJECTIONS.labels(gateway=gateway, operation=operation).inc()
            raise
        except PaymentDeclined as declined:
            outcome = "PaymentDeclined"
            PAYMENT_DECLINES.labels(gateway=gateway, decline_code=declined.decline_code).inc()
            raise
        except DeadlineExceeded:
            # The request ran out of time, which may be all its own doing (a long wait before this call).
            outcome = "DeadlineExceeded"
            healthy = None
            raise
        except GatewayError as error:
            outcome = type(error).__name__
            healthy = not isinstance(error, GatewayUnavailable)
            raise
        except asyncio.CancelledError:
            # Our caller gave up (its deadline, a closed connection): says nothing of the gateway.
            outcome = "cancelled"
            raise
        except BaseException:
            outcome = "error"
            healthy = False
            raise
        finally:
            _finished(gateway, operation, outcome, healthy, time.perf_counter() - started, health)

    return timed


def _finished(
    gateway: str, operation: str, outcome: str, healthy: bool | None, seconds: float, health: HealthBoard | None
) -> None:
    if outcome == _REFUSED_UNSENT:
        return
    if health is not None and healthy is not None:
        health.record(gateway, ok=healthy, seconds=seconds)
        labelled(GATEWAY_CIRCUIT, gateway).set(_CIRCUIT_GAUGE[health.view(gateway).state])
    labelled(GATEWAY_CALLS, gateway, operation, outcome).inc()
    labelled(GATEWAY_DURATION, gateway, operation).observe(seconds)
