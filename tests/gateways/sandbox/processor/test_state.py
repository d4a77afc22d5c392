"""The sandbox state's grouped commits: concurrent calls share one worker-thread hop and one commit,
each with its own result, and none is lost, half-applied or seen by the file before it is committed.

Calls started together with `asyncio.gather` are all queued before the task that commits them runs
(asyncio runs ready tasks in the order they were scheduled), so they form one group.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import anyio.to_thread
import pytest

from gateways.sandbox.processor import SandboxClock, SandboxProcessor
from gateways.sandbox.processor.errors import SandboxError, SandboxUnavailable
from gateways.sandbox.processor.objects import JsonDict
from gateways.sandbox.processor.state import Changes, Outcome, SandboxState
from gateways.sandbox.processor.state_file import SandboxStateFile

DAY = 86_400
WAIT = 30.0  # seconds a test waits for a worker thread's signal before failing instead of hanging

_T = TypeVar("_T")


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "sandbox.sqlite3"


def _result(outcome: Outcome[_T]) -> _T:
    assert not isinstance(outcome.result, SandboxError), outcome.result
    return outcome.result


def _ack(event_id: str) -> Callable[[Changes], str]:
    def acknowledge(changes: Changes) -> str:
        changes.acknowledged = [event_id]
        return event_id

    return acknowledge


def _commits(path: Path) -> int:
    """How many write transactions the file committed (each bumps its version once)."""
    state_file = SandboxStateFile(path)
    try:
        return state_file.version()
    finally:
        state_file.close()


async def _acknowledged(state: SandboxState, clock: SandboxClock) -> set[str]:
    """What `state` has acknowledged in memory, after catching up with the file."""
    return _result(await state.run(clock, lambda _changes: set(state.acknowledged), writes=False))


async def _acknowledged_in_file(path: Path) -> set[str]:
    """What a fresh process reading the file finds acknowledged."""
    fresh = SandboxState(path)
    try:
        return _result(await fresh.run(SandboxClock(), lambda _changes: set(fresh.acknowledged), writes=False))
    finally:
        await fresh.close()


async def _create(processor: SandboxProcessor, key: str, amount: int = 1000) -> str:
    intent = await processor.create_payment_intent(
        amount=amount, currency="USD", payment_method="pm_card_visa", idempotency_key=key
    )
    return intent.id


async def test_concurrent_calls_share_a_commit_and_are_all_durable(path: Path) -> None:
    processor = SandboxProcessor(state_path=path)
    await processor.open()
    ids = await asyncio.gather(*(_create(processor, f"key-{index}", 1000 + index) for index in range(20)))
    await processor.aclose()

    assert len(set(ids)) == 20
    assert _commits(path) < 20
    reopened = SandboxProcessor(state_path=path)
    stored = {intent.id: intent.amount for intent in await reopened.list_payment_intents()}
    assert stored == {intent_id: 1000 + index for index, intent_id in enumerate(ids)}
    # The idempotency records were committed with them: each key replays its own intent.
    assert await _create(reopened, "key-7", 1007) == ids[7]
    await reopened.aclose()


async def test_each_call_of_a_group_sees_the_ones_before_it(path: Path) -> None:
    state, clock = SandboxState(path), SandboxClock()
    first, seen = await asyncio.gather(
        state.run(clock, _ack("first"), writes=True),
        state.run(clock, lambda _changes: "first" in state.acknowledged, writes=False),
    )
    assert _result(first) == "first"
    assert _result(seen) is True
    assert _commits(path) == 1
    await state.close()


async def test_a_call_that_arrives_after_another_finished_sees_its_effect(path: Path) -> None:
    processor = SandboxProcessor(state_path=path)
    intent_id = await _create(processor, "key")
    assert (await processor.retrieve(intent_id)).amount == 1000
    await processor.aclose()


async def test_the_same_key_twice_in_one_group_makes_one_intent(path: Path) -> None:
    processor = SandboxProcessor(state_path=path)
    await processor.open()
    first, second = await asyncio.gather(_create(processor, "same-key"), _create(processor, "same-key"))
    assert first == second
    assert _commits(path) == 1  # one group: the second call replayed the first's uncommitted record
    assert [intent.id for intent in await processor.list_payment_intents()] == [first]
    await processor.aclose()


async def test_an_unexpected_exception_changes_nothing_for_its_call_only(path: Path) -> None:
    state, clock = SandboxState(path), SandboxClock()

    def broken(changes: Changes) -> None:
        changes.acknowledged = ["broken"]
        raise RuntimeError("a bug in one operation")

    before, failed, after = await asyncio.gather(
        state.run(clock, _ack("before"), writes=True),
        state.run(clock, broken, writes=True),
        state.run(clock, _ack("after"), writes=True),
        return_exceptions=True,
    )
    assert isinstance(failed, RuntimeError)
    assert isinstance(before, Outcome) and isinstance(after, Outcome)
    assert _commits(path) == 1
    assert state.acknowledged == {"before", "after"}
    assert await _acknowledged_in_file(path) == {"before", "after"}
    await state.close()


async def test_a_failed_commit_fails_the_whole_group_and_memory_is_read_afresh(
    path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    state, clock = SandboxState(path), SandboxClock()
    _result(await state.run(clock, _ack("committed"), writes=True))
    commit = SandboxStateFile.commit

    def fail_once(self: SandboxStateFile) -> None:
        if self.path != path:  # the session's own sandbox, committing on the same loop meanwhile
            return commit(self)
        monkeypatch.setattr(SandboxStateFile, "commit", commit)
        raise sqlite3.OperationalError("disk I/O error")

    monkeypatch.setattr(SandboxStateFile, "commit", fail_once)
    answers = await asyncio.gather(
        *(state.run(clock, _ack(f"lost-{index}"), writes=True) for index in range(3)), return_exceptions=True
    )
    assert all(isinstance(answer, SandboxUnavailable) for answer in answers)

    # Memory had taken the group's changes for its later calls; the next call reads the file instead.
    assert await _acknowledged(state, clock) == {"committed"}
    assert await _acknowledged_in_file(path) == {"committed"}
    _result(await state.run(clock, _ack("next"), writes=True))
    assert await _acknowledged_in_file(path) == {"committed", "next"}
    await state.close()


async def test_the_clock_moves_only_once_committed(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    commit = SandboxStateFile.commit

    def fail(self: SandboxStateFile) -> None:
        if self.path != path:  # the session's own sandbox, committing on the same loop meanwhile
            return commit(self)
        raise sqlite3.OperationalError("disk I/O error")

    processor = SandboxProcessor(state_path=path)
    await processor.open()
    with monkeypatch.context() as patched:
        patched.setattr(SandboxStateFile, "commit", fail)
        with pytest.raises(SandboxUnavailable):
            await processor.advance_clock(DAY)
    assert processor.clock.offset == 0
    await processor.aclose()


async def test_a_call_grouped_after_a_clock_move_sees_the_moved_clock(path: Path) -> None:
    processor = SandboxProcessor(state_path=path)
    await processor.open()
    start = processor.clock.now()
    _, intent_id = await asyncio.gather(processor.advance_clock(DAY), _create(processor, "key"))
    assert (await processor.retrieve(intent_id)).created >= start + DAY
    await processor.aclose()


async def test_two_states_on_one_file_never_lose_each_others_writes(path: Path) -> None:
    first, second = SandboxState(path), SandboxState(path)
    clock = SandboxClock()
    await asyncio.gather(
        *(
            state.run(clock, _ack(f"{name}-{index}"), writes=True)
            for index in range(10)
            for name, state in (("first", first), ("second", second))
        )
    )
    everything = {f"{name}-{index}" for index in range(10) for name in ("first", "second")}
    for state in (first, second):
        assert await _acknowledged(state, clock) == everything
        await state.close()
    assert await _acknowledged_in_file(path) == everything


class _Gate:
    """Holds a call's operation in the worker thread until the test releases it."""

    def __init__(self) -> None:
        self.entered, self.released = threading.Event(), threading.Event()

    def hold(self, event_id: str) -> Callable[[Changes], str]:
        def held(changes: Changes) -> str:
            self.entered.set()
            assert self.released.wait(WAIT), "the test never released the held call"
            changes.acknowledged = [event_id]
            return event_id

        return held

    async def wait_entered(self) -> None:
        assert await anyio.to_thread.run_sync(self.entered.wait, WAIT), "the held call never ran"


async def test_a_caller_cancelled_before_its_group_began_never_runs(path: Path) -> None:
    state, clock, gate = SandboxState(path), SandboxClock(), _Gate()
    held = asyncio.create_task(state.run(clock, gate.hold("held"), writes=True))
    await gate.wait_entered()
    abandoned = asyncio.create_task(state.run(clock, _ack("abandoned"), writes=True))

    async def cancel() -> None:
        abandoned.cancel()

    # Scheduled after `abandoned`, so it cancels it once its call is queued (tasks start in order).
    await asyncio.create_task(cancel())
    gate.released.set()
    _result(await held)
    with pytest.raises(asyncio.CancelledError):
        await abandoned
    assert await _acknowledged(state, clock) == {"held"}
    assert await _acknowledged_in_file(path) == {"held"}
    await state.close()


async def test_a_caller_cancelled_after_its_group_began_is_committed_all_the_same(path: Path) -> None:
    state, clock, gate = SandboxState(path), SandboxClock(), _Gate()
    held = asyncio.create_task(state.run(clock, gate.hold("held"), writes=True))
    await gate.wait_entered()
    held.cancel()
    with pytest.raises(asyncio.CancelledError):
        await held
    gate.released.set()
    # Queued behind the held group, so it runs once that group committed.
    assert await _acknowledged(state, clock) == {"held"}
    assert await _acknowledged_in_file(path) == {"held"}
    await state.close()


async def test_without_a_state_file_no_call_leaves_the_event_loop(monkeypatch: pytest.MonkeyPatch) -> None:
    async def no_thread(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("a worker thread was used without a state file")

    monkeypatch.setattr(anyio.to_thread, "run_sync", no_thread)
    processor = SandboxProcessor()
    ids = await asyncio.gather(*(_create(processor, f"key-{index}") for index in range(5)))
    assert sorted(intent.id for intent in await processor.list_payment_intents()) == sorted(ids)


async def test_a_groups_events_reach_the_listener_in_commit_order(path: Path) -> None:
    processor = SandboxProcessor(state_path=path)
    await processor.open()
    delivered: list[str] = []

    async def listen(event: JsonDict) -> None:
        delivered.append(str(event["id"]))

    processor.on_event = listen
    await asyncio.gather(*(_create(processor, f"key-{index}") for index in range(10)))
    assert _commits(path) < 10
    assert delivered == [event["id"] for event in await processor.list_events()]
    await processor.aclose()
