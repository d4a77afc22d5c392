"""SharedLiveResults: one presentation per row read, one execution per key of it, one encoding of
an error-free result; a subscriber that leaves never cancels the execution the others wait on; a
failed execution, an evicted version or a result with errors is simply not shared."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable
from typing import Any

import pytest
from graphql import ExecutionResult, GraphQLError

from schema.shared_frames import SharedLiveResults


class Row:
    """Stands for a row read: equal to any other read of the same row, but a different object."""

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Row)

    __hash__ = object.__hash__


class Shown:
    def __init__(self, row: Row) -> None:
        self.row = row


def test_one_read_is_presented_once_and_another_read_again() -> None:
    shared = SharedLiveResults()
    first, second = Row(), Row()
    presented: list[Row] = []

    def present(row: Row) -> Shown:
        presented.append(row)
        return Shown(row)

    assert shared.presented(first, present) is shared.presented(first, present)
    assert shared.presented(second, present) is not shared.presented(first, present)
    assert presented == [first, second]


async def test_a_key_is_executed_once_and_other_keys_apart() -> None:
    shared = SharedLiveResults()
    shown = shared.presented(Row(), Shown)
    executed: list[str] = []

    def execute(label: str) -> Any:
        async def run() -> ExecutionResult:
            executed.append(label)
            return ExecutionResult({"label": label}, None)

        return lambda: run()

    results = [await _settled(shared.result(shown, key, execute(key))) for key in ("a", "a", "b", "a")]
    assert [result.data for result in results] == [{"label": "a"}, {"label": "a"}, {"label": "b"}, {"label": "a"}]
    assert executed == ["a", "b"]
    assert shared.executions == 2
    assert shared.result(object(), "a", execute("a")) is None  # not a shared value: the caller executes


async def test_a_subscriber_leaving_mid_execution_does_not_cancel_it_for_the_others() -> None:
    shared = SharedLiveResults()
    shown = shared.presented(Row(), Shown)
    started, release = asyncio.Event(), asyncio.Event()

    async def slow() -> ExecutionResult:
        started.set()
        await release.wait()
        return ExecutionResult({"ok": True}, None)

    first = asyncio.ensure_future(_settled(shared.result(shown, "key", slow)))
    second = asyncio.ensure_future(_settled(shared.result(shown, "key", slow)))
    await started.wait()  # both subscribers are waiting on the one execution
    first.cancel()
    release.set()
    assert (await second).data == {"ok": True}
    with pytest.raises(asyncio.CancelledError):
        await first
    assert shared.executions == 1


async def test_a_failed_execution_is_not_kept() -> None:
    shared = SharedLiveResults()
    shown = shared.presented(Row(), Shown)

    async def failing() -> ExecutionResult:
        raise RuntimeError("boom")

    async def working() -> ExecutionResult:
        return ExecutionResult({"ok": True}, None)

    with pytest.raises(RuntimeError):
        await _settled(shared.result(shown, "key", failing))
    assert (await _settled(shared.result(shown, "key", working))).data == {"ok": True}


async def test_a_result_with_errors_is_not_shared() -> None:
    shared = SharedLiveResults()
    shown = shared.presented(Row(), Shown)
    started, release = asyncio.Event(), asyncio.Event()
    executed: list[int] = []

    async def refused() -> ExecutionResult:
        executed.append(len(executed))
        started.set()
        await release.wait()
        return ExecutionResult({"n": None}, [GraphQLError(f"no {len(executed)}")])

    first = asyncio.ensure_future(_settled(shared.result(shown, "key", refused)))
    waiting = asyncio.ensure_future(_settled(shared.result(shown, "key", refused)))
    await started.wait()  # the second subscriber waits on the first one's execution
    release.set()
    later = await _settled(shared.result(shown, "key", refused))
    results = [await first, await waiting, later]
    assert len(executed) == 3  # each executed its own
    assert len({id(result) for result in results}) == 3


async def test_an_error_free_result_is_encoded_once_and_one_with_errors_never() -> None:
    shared = SharedLiveResults()
    shown = shared.presented(Row(), Shown)
    encoded: list[object] = []

    def encode(value: object) -> str:
        encoded.append(value)
        return json.dumps(value, separators=(",", ":"))

    clean = await _settled(shared.result(shown, "clean", lambda: ExecutionResult({"n": 1}, None)))
    faulty = await _settled(shared.result(shown, "faulty", lambda: ExecutionResult({"n": None}, [GraphQLError("no")])))
    assert shared.encoded_payload(clean.data, encode) == '{"data":{"n":1}}'
    assert shared.encoded_payload(clean.data, encode) == '{"data":{"n":1}}'
    assert encoded == [{"data": {"n": 1}}]
    assert shared.encoded_payload(faulty.data, encode) is None
    assert shared.encoded_payload({"n": 1}, encode) is None  # an equal value that is not the shared one


async def test_an_evicted_version_is_executed_unshared() -> None:
    shared = SharedLiveResults(capacity=1)
    old = shared.presented(Row(), Shown)
    shared.presented(Row(), Shown)
    assert shared.result(old, "key", lambda: ExecutionResult({}, None)) is None


async def _settled(outcome: ExecutionResult | Awaitable[ExecutionResult] | None) -> ExecutionResult:
    assert outcome is not None
    return outcome if isinstance(outcome, ExecutionResult) else await outcome
