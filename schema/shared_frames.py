"""Live updates executed once, not once per subscriber: the result of one row read, shared.

Every subscriber of one watched row receives the same row object for each version
(`resolvers.live_stream`). `SharedLiveResults.presented` turns that object into its GraphQL value
once, and `SharedLiveExecution` executes a subscription's selection set over that value once per
(document, operation name, variables, caller): every other subscriber with the same key gets the
same `ExecutionResult`, and `encoded_payload` gives the `next` payload's JSON text once for all of
them (the transport substitutes each frame's id). Once a subscriber was sent a shared result, the
transport knows its key (`key_of`), and `ready_payload` gives it a later version's payload straight
from the row read, when another subscriber with that key already executed it: no execution and no
pass through the subscriber's generators at all.

The caller is part of the key because a field may answer differently per caller (`ledgerEvents`
is for staff only): a result is shared only between subscribers whose principal is the same.
Authorization (may this caller watch this row?) happens before a subscriber joins, as before, and
errors stay per subscriber: a result with errors is never shared (each subscriber executes its
own, and Strawberry masks, logs and sends its errors for that subscriber alone).

What must never happen here: a result shared between two callers, or between two documents,
operation names or variable values; a value seen by a caller who was not authorized to join. A
miss (an evicted version, an unknown document) only costs an unshared execution, never a wrong one.
"""

from __future__ import annotations

import asyncio
import json
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable
from typing import Any, Final, TypeVar, cast

from graphql import ExecutionResult
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext

from schema.context import GraphQLContext

Row = TypeVar("Row")
Execute = Callable[[], "ExecutionResult | Awaitable[ExecutionResult]"]
Shown = TypeVar("Shown")

# Versions kept: every row a process watches has one current version, and a subscriber still
# working through an older one (its queue is bounded) only loses the sharing when it is evicted.
VERSIONS_KEPT: Final = 1024
# Distinct (document, variables, caller) results kept per version: past it, execution is unshared.
RESULTS_PER_VERSION: Final = 256


class _Version:
    """One read of a watched row as its subscribers see it: the presented value and its results."""

    __slots__ = ("encoded", "keys", "results", "shown", "source")

    def __init__(self, source: object, shown: object) -> None:
        self.source = source  # kept alive so that its id() is not reused while this entry exists
        self.shown = shown
        self.results: dict[Hashable, ExecutionResult | asyncio.Future[ExecutionResult]] = {}
        self.encoded: dict[int, tuple[dict[str, Any], str]] = {}  # id(result.data) -> (data, payload text)
        self.keys: dict[int, Hashable] = {}  # id(result.data) -> the key it was executed under


class SharedLiveResults:
    """The recent versions of every watched row in this process, by identity of what was read."""

    def __init__(self, capacity: int = VERSIONS_KEPT) -> None:
        self._capacity = capacity
        self._by_source: OrderedDict[int, _Version] = OrderedDict()
        self._by_shown: dict[int, _Version] = {}
        self._by_data: dict[int, _Version] = {}
        self.executions = 0  # selection sets executed for shared values (for tests and diagnostics)

    def presented(self, source: Row, present: Callable[[Row], Shown]) -> Shown:
        """`present(source)`, the same object for every subscriber handed this very `source`."""
        version = self._by_source.get(id(source))
        if version is not None and version.source is source:
            self._by_source.move_to_end(id(source))
            shown: Shown = version.shown  # type: ignore[assignment]
            return shown
        shown = present(source)
        self._add(_Version(source, shown))
        return shown

    def _add(self, version: _Version) -> None:
        self._forget(self._by_source.get(id(version.source)))
        self._by_source[id(version.source)] = version
        self._by_shown[id(version.shown)] = version
        while len(self._by_source) > self._capacity:
            self._forget(next(iter(self._by_source.values())))

    def _forget(self, version: _Version | None) -> None:
        if version is None:
            return
        del self._by_source[id(version.source)]
        del self._by_shown[id(version.shown)]
        for data_id in version.encoded:
            self._by_data.pop(data_id, None)

    def _version_of(self, shown: object) -> _Version | None:
        version = self._by_shown.get(id(shown))
        return version if version is not None and version.shown is shown else None

    def settled(self, shown: object, key: Hashable) -> ExecutionResult | None:
        """The shared result of `shown` under `key` if it is already there (nothing is executed)."""
        version = self._version_of(shown)
        known = version.results.get(key) if version is not None else None
        return known if isinstance(known, ExecutionResult) else None

    def result(
        self, shown: object, key: Hashable, execute: Execute
    ) -> ExecutionResult | Awaitable[ExecutionResult] | None:
        """The shared result of `shown` under `key`, executing it on the first ask; None when
        `shown` is not a shared value (the caller then executes it alone)."""
        version = self._version_of(shown)
        if version is None:
            return None
        known = version.results.get(key)
        if isinstance(known, ExecutionResult):
            return known
        if known is not None:
            return self._shared_or_own(known, execute)
        if len(version.results) >= RESULTS_PER_VERSION:
            return None
        self.executions += 1
        outcome = execute()
        if isinstance(outcome, ExecutionResult):
            self._keep(version, key, outcome)
            return outcome
        running = asyncio.ensure_future(outcome)
        version.results[key] = running
        running.add_done_callback(lambda done: self._settle(version, key, done))
        # Shielded: a subscriber that leaves mid-execution must not cancel it for the others.
        return asyncio.shield(running)

    async def _shared_or_own(
        self,
        running: asyncio.Future[ExecutionResult],
        execute: Execute,
    ) -> ExecutionResult:
        """The running execution's result, or this subscriber's own execution when that one failed
        or has errors: errors are never handed from one subscriber to another."""
        try:
            result: ExecutionResult | None = await asyncio.shield(running)
        except Exception:
            result = None
        if result is not None and not result.errors:
            return result
        self.executions += 1
        outcome = execute()
        return outcome if isinstance(outcome, ExecutionResult) else await outcome

    def _settle(self, version: _Version, key: Hashable, done: asyncio.Future[ExecutionResult]) -> None:
        if done.cancelled() or done.exception() is not None:
            # Not kept: the next subscriber executes again rather than inherit a failure.
            version.results.pop(key, None)
            return
        self._keep(version, key, done.result())

    def _keep(self, version: _Version, key: Hashable, result: ExecutionResult) -> None:
        if result.errors:
            # Not kept either: each subscriber gets (and logs) its own errors.
            version.results.pop(key, None)
            return
        version.results[key] = result
        if result.data is not None and self._by_shown.get(id(version.shown)) is version:
            version.encoded.setdefault(id(result.data), (result.data, ""))
            version.keys[id(result.data)] = key
            self._by_data[id(result.data)] = version

    def encoded_payload(self, data: object, encode: Callable[[object], str]) -> str | None:
        """The `next` payload `{"data": …}` as JSON text, encoded once per shared result; None when
        `data` is not a shared result without errors (the caller then encodes it itself)."""
        version = self._by_data.get(id(data))
        if version is None:
            return None
        held = version.encoded.get(id(data))
        if held is None or held[0] is not data:
            return None
        if not held[1]:
            held = (held[0], encode({"data": data}))
            version.encoded[id(data)] = held
        return held[1]

    def key_of(self, data: object) -> Hashable | None:
        """The key a shared result without errors was executed under; None for any other `data`."""
        version = self._by_data.get(id(data))
        held = version.encoded.get(id(data)) if version is not None else None
        if version is None or held is None or held[0] is not data:
            return None
        return version.keys.get(id(data))

    def ready_payload(self, source: object, key: Hashable, encode: Callable[[object], str]) -> str | None:
        """The `next` payload of the row read `source` under `key`, when it is already executed
        and error-free; None otherwise (the caller then executes it as usual)."""
        version = self._by_source.get(id(source))
        if version is None or version.source is not source:
            return None
        result = version.results.get(key)
        if not isinstance(result, ExecutionResult) or result.errors or result.extensions or result.data is None:
            return None
        return self.encoded_payload(result.data, encode)


SHARED_LIVE_RESULTS: Final = SharedLiveResults()


def _caller_key(context: object) -> Hashable:
    """Who the result is for: a field may answer differently per principal, never per connection."""
    if not isinstance(context, GraphQLContext):
        return object()  # unknown: share with nobody
    principal = context.caller.principal
    return None if principal is None else (principal.subject, principal.is_admin, principal.email)


class SharedLiveExecution(StrawberryGraphQLCoreExecutionContext):
    """Executes a subscription event over a shared live value once per (document, operation name,
    variables, caller) in the process; everything else as Strawberry's own executor does."""

    _share_key: tuple[str, str | None, str] | None = None

    def build_per_event_executor(self, payload: Any) -> Any:
        if self._share_key is None and self.operation.loc is not None:
            # Once per subscription: the per-event executors are copies of this one.
            self._share_key = (
                self.operation.loc.source.body,
                self.operation.name.value if self.operation.name is not None else None,
                json.dumps(self.variable_values.coerced, sort_keys=True, default=repr),
            )
        if self._share_key is not None:
            settled = SHARED_LIVE_RESULTS.settled(payload, self._event_key())
            if settled is not None:
                # Nothing to execute: no copy of the executor either, for every subscriber after the first.
                return _Settled(settled)
        return super().build_per_event_executor(payload)

    def execute_operation(self, serially: bool | None = None) -> Any:
        if serially is False and self._share_key is not None:
            shared = SHARED_LIVE_RESULTS.result(self.root_value, self._event_key(), self._execute_event)
            if shared is not None:
                return shared
        return super().execute_operation(serially)

    def _event_key(self) -> Hashable:
        return (self._share_key, _caller_key(self.context_value))

    def _execute_event(self) -> ExecutionResult | Awaitable[ExecutionResult]:
        # A subscription event is never incremental (graphql-core refuses @defer/@stream there).
        return cast("ExecutionResult | Awaitable[ExecutionResult]", super().execute_operation(False))


class _Settled:
    """Stands for a per-event executor whose result every subscriber shares and is already there."""

    def __init__(self, result: ExecutionResult) -> None:
        self._result = result

    def execute_operation(self, serially: bool | None = None) -> ExecutionResult:
        return self._result
