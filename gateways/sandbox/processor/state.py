"""The sandbox processor's state in memory, and the unit (`Changes`) in which one call changes it.

Without a state file, memory is all there is, and a call runs on it at once, on the event loop (no
thread). With one, memory is a cache of the file, which other processes (`payql serve` and `payql
worker`) share, and calls are committed in groups: calls that arrive while a group is being committed
queue (holding no lock), and one worker-thread hop runs the whole next group. It takes the file's write
lock (when any call of the group writes) before it catches up with what other processes committed (one
cheap query when nothing changed), runs each call in arrival order on memory (each sees the effects
of those before it; one that raises anything but a SandboxError changes nothing, and the others go
on), then writes all their changes and commits once. So each call acts on the newest state and no
process loses another's write. If the commit fails, every call of the group fails
(SandboxUnavailable) and memory is read from the file afresh on the next call; memory never keeps a
change the file lost, and the clock moves only once the file has its new offset. A caller cancelled
before its group began never runs; one whose group began is committed all the same. A thread lock
guards the connection and memory against `close()`.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, Generic, Protocol, TypeVar

import anyio.to_thread

from gateways.sandbox.processor.clock import SandboxClock
from gateways.sandbox.processor.errors import SandboxError, SandboxUnavailable
from gateways.sandbox.processor.objects import (
    IdempotencyRecord,
    JsonDict,
    SandboxCardToken,
    SandboxPaymentIntent,
    SandboxRefund,
    make_event,
)
from gateways.sandbox.processor.state_file import SandboxStateFile, StateWrite, StoredState

_INTENT, _REFUND, _TOKEN, _IDEMPOTENCY = "payment_intent", "refund", "payment_method", "idempotency_key"
_NOT_LOADED = -1  # the version a process has seen before it read the file: a first read reads it all

_T = TypeVar("_T")


class StoredObject(Protocol):
    """A sandbox object kept under a registered kind (subscriptions, invoices, disputes, ...)."""

    @property
    def id(self) -> str: ...

    def to_dict(self) -> JsonDict: ...


# kind -> a decoder from the stored JSON; the kinds beyond the four built-in ones register here.
_KINDS: dict[str, Callable[[JsonDict], Any]] = {}


def register_kind(kind: str, decode: Callable[[JsonDict], Any]) -> None:
    """Let `Changes.put` store objects of `kind` and the state file read them back with `decode`."""
    if kind in (_INTENT, _REFUND, _TOKEN, _IDEMPOTENCY):
        raise ValueError(f"{kind} is a built-in kind")
    _KINDS[kind] = decode


@dataclass(slots=True)
class Changes:
    """What one call changed, stamped with the one clock reading the call uses throughout."""

    now: int
    intents: dict[str, SandboxPaymentIntent] = field(default_factory=dict)
    refunds: dict[str, SandboxRefund] = field(default_factory=dict)
    tokens: dict[str, SandboxCardToken] = field(default_factory=dict)
    records: dict[str, IdempotencyRecord] = field(default_factory=dict)
    # Registered kinds: kind -> id -> object.
    objects: dict[str, dict[str, StoredObject]] = field(default_factory=dict)
    events: list[JsonDict] = field(default_factory=list)
    clock_offset: int | None = None  # the test clock's new offset
    acknowledged: list[str] = field(default_factory=list)  # events a webhook endpoint acknowledged

    def put_intent(self, intent: SandboxPaymentIntent, *event_types: str) -> None:
        self.intents[intent.id] = intent
        for event_type in event_types:
            self.emit(event_type, intent)

    def put_refund(self, refund: SandboxRefund, *event_types: str) -> None:
        self.refunds[refund.id] = refund
        for event_type in event_types:
            self.emit(event_type, refund)

    def put(self, kind: str, obj: StoredObject, *event_types: str) -> None:
        """Store an object of a registered kind and emit `event_types` about it."""
        if kind not in _KINDS:
            raise KeyError(f"unregistered sandbox object kind {kind}")
        self.objects.setdefault(kind, {})[obj.id] = obj
        for event_type in event_types:
            self.emit(event_type, obj)

    def emit(self, event_type: str, obj: StoredObject) -> None:
        self.events.append(make_event(event_type, obj.to_dict(), self.now))

    def is_empty(self) -> bool:
        return not (
            self.intents
            or self.refunds
            or self.tokens
            or self.records
            or self.objects
            or self.events
            or self.clock_offset is not None
            or self.acknowledged
        )

    def state_write(self) -> StateWrite:
        objects: list[tuple[str, str, JsonDict]] = []
        objects += [(_INTENT, key, value.to_dict()) for key, value in self.intents.items()]
        objects += [(_REFUND, key, value.to_dict()) for key, value in self.refunds.items()]
        objects += [(_TOKEN, key, value.to_dict()) for key, value in self.tokens.items()]
        objects += [(_IDEMPOTENCY, key, value.to_dict()) for key, value in self.records.items()]
        for kind, stored in self.objects.items():
            objects += [(kind, key, value.to_dict()) for key, value in stored.items()]
        return StateWrite(
            objects=objects,
            events=list(self.events),
            clock_offset=self.clock_offset,
            acknowledged=list(self.acknowledged),
        )


@dataclass(frozen=True, slots=True)
class Outcome(Generic[_T]):
    """A call's result (or the SandboxError it raised), what it changed, and others' news."""

    result: _T | SandboxError
    changes: Changes
    # Events other processes committed that this process first saw during the call, in commit order.
    discovered: list[JsonDict]


# What a queued call is answered with: its Outcome, or the exception it (or its group's commit) raised.
_Answer = Outcome[Any] | Exception


@dataclass(eq=False, slots=True)
class _Call:
    """One call waiting for its group; `answer` is cancelled when its caller stops waiting."""

    clock: SandboxClock
    operation: Callable[[Changes], Any]
    writes: bool
    answer: asyncio.Future[Outcome[Any]]


class SandboxState:
    def __init__(self, state_path: Path | None) -> None:
        self._file = SandboxStateFile(state_path) if state_path is not None else None
        self._version = _NOT_LOADED  # the file's version memory reflects
        self._thread_lock = threading.Lock()
        self._queue: deque[_Call] = deque()  # calls waiting for the next group, in arrival order
        self._committer: asyncio.Task[None] | None = None  # runs the groups while calls are queued
        self.intents: dict[str, SandboxPaymentIntent] = {}
        self.refunds: dict[str, SandboxRefund] = {}
        self.tokens: dict[str, SandboxCardToken] = {}
        self.records: dict[str, IdempotencyRecord] = {}
        self.objects: dict[str, dict[str, Any]] = {}
        self.events: list[JsonDict] = []
        self.acknowledged: set[str] = set()  # events a webhook endpoint acknowledged

    def get(self, kind: str, object_id: str) -> Any:
        """The object of a registered kind with this id, or None."""
        return self.objects.get(kind, {}).get(object_id)

    def all(self, kind: str) -> list[Any]:
        """Every object of a registered kind, in the order first stored."""
        return list(self.objects.get(kind, {}).values())

    @property
    def path(self) -> Path | None:
        return None if self._file is None else self._file.path

    async def run(self, clock: SandboxClock, operation: Callable[[Changes], _T], *, writes: bool) -> Outcome[_T]:
        """Catch up with the file, run `operation` on memory, and commit what it changed.

        A SandboxError from `operation` is its outcome (what it changed is committed all the same: a
        decline keeps its intent); any other exception changes nothing. `writes=False` is for calls
        that only read: they need no write lock (unless another call of their group writes), and must
        change nothing.
        """
        if self._file is None:
            changes = Changes(now=clock.now())
            result = _attempt(operation, changes)
            self._check_read_only(changes, writes)
            self._apply(changes)
            _advance(clock, changes)
            return Outcome(result, changes, [])
        call = _Call(clock, operation, writes, asyncio.get_running_loop().create_future())
        self._queue.append(call)
        committer = self._committer
        if committer is None or committer.done() or committer.get_loop() is not call.answer.get_loop():
            self._committer = asyncio.create_task(self._commit_groups(), name="sandbox-state-commits")
        # Cancelling this wait cancels `answer`: a group not yet begun skips the call, one begun commits it.
        outcome: Outcome[_T] = await call.answer
        return outcome

    def unacknowledged_events(self) -> list[JsonDict]:
        return [event for event in self.events if event["id"] not in self.acknowledged]

    async def close(self) -> None:
        """Close the state file; the next call opens it and reads it all again."""
        if self._file is not None:
            await anyio.to_thread.run_sync(self._close_file)

    # -- on the event loop: one task runs the groups ---------------------------------------------

    async def _commit_groups(self) -> None:
        group: list[_Call] = []
        try:
            while self._queue:
                group = [call for call in self._queue if not call.answer.done()]  # done: its caller left
                self._queue.clear()
                if not group:
                    continue
                answers = await anyio.to_thread.run_sync(partial(self._run_group, group))
                # The calls it did not reach wait for the next group, still first in line.
                self._queue.extendleft(reversed(group[len(answers) :]))
                # In arrival order: callers resume, and deliver their events, in commit order.
                for call, answer in zip(group, answers, strict=False):
                    _settle(call, answer)
                group = []
        except BaseException as exc:
            # Only the event loop shutting down (or a bug) gets here: no caller may wait forever.
            for call in [*group, *self._queue]:
                _settle(call, SandboxUnavailable(f"the sandbox state could not be committed: {exc!r}"))
            self._queue.clear()
            raise

    # -- in a worker thread ------------------------------------------------------------------------

    def _run_group(self, group: list[_Call]) -> list[_Answer]:
        """Run the group's calls in order on memory and commit all they changed in one transaction.

        Returns an answer for each call it ran, from the first. It stops after a call that moves the
        clock (the clock moves once committed, and the calls after it must see it moved) and before a
        call on another clock. If the file fails, every call of the group fails.
        """
        file = self._file
        assert file is not None, "only called with a state file"
        clock = group[0].clock
        answers: list[_Answer] = []
        written: list[Changes] = []
        with self._thread_lock:
            try:
                if any(call.writes for call in group):
                    file.begin_write()
                try:
                    discovered = self._catch_up(file, clock)
                    for call in group:
                        if call.clock is not clock:
                            break
                        changes = Changes(now=clock.now())
                        try:
                            result = _attempt(call.operation, changes)
                            self._check_read_only(changes, call.writes)
                        except Exception as exc:  # this call's own failure: it changes nothing, the others go on
                            answers.append(exc)
                            continue
                        # Before the commit, so the next call sees it; a failed commit re-reads memory.
                        self._apply(changes)
                        if not changes.is_empty():
                            written.append(changes)
                        answers.append(Outcome(result, changes, discovered))
                        discovered = []  # others' events go to the first call only
                        if changes.clock_offset is not None:
                            break
                    if written:
                        version = self._version + 1
                        file.write(_merged(written), version)
                        file.commit()
                        self._version = version
                finally:
                    file.rollback()  # a no-op after a commit; else the write lock is released unused
            except (sqlite3.Error, OSError) as exc:
                # Memory may hold the group's uncommitted changes; reading it all again on the next call is safest.
                self._reset_file()
                return [_unavailable(f"the sandbox state file could not be used: {exc}", exc) for _ in group]
            except SandboxUnavailable as exc:
                self._reset_file()
                return [_unavailable(str(exc), exc) for _ in group]
        for changes in written:
            _advance(clock, changes)
        return answers

    def _catch_up(self, file: SandboxStateFile, clock: SandboxClock) -> list[JsonDict]:
        """Bring memory up to the file's version; return the events others committed meanwhile."""
        if self._version != _NOT_LOADED and file.version() == self._version:
            return []  # the common case: one indexed read of one row
        full = self._version == _NOT_LOADED
        try:
            stored = file.read_since(self._version)
            if stored.version < self._version:  # not the file memory came from (replaced): start afresh
                full, stored = True, file.read_since(_NOT_LOADED)
        except ValueError as exc:  # a row that is not JSON
            raise SandboxUnavailable(f"the sandbox state file is corrupt: {exc}") from exc
        fresh = _decoded(stored)
        if full:
            self.intents, self.refunds, self.tokens, self.records, self.objects = {}, {}, {}, {}, {}
            self.events, self.acknowledged = [], set()
        fresh.clock_offset = stored.clock_offset
        fresh.acknowledged = list(stored.acknowledged)
        self._apply(fresh)
        _advance(clock, fresh)
        self._version = stored.version
        # A first read's events are the backlog (`unacknowledged_events`), not news.
        return [] if full else fresh.events

    def _apply(self, changes: Changes) -> None:
        """Put `changes` into memory; the clock moves separately (`_advance`), once they are committed."""
        self.intents.update(changes.intents)
        self.refunds.update(changes.refunds)
        self.tokens.update(changes.tokens)
        self.records.update(changes.records)
        for kind, stored in changes.objects.items():
            self.objects.setdefault(kind, {}).update(stored)
        self.events.extend(changes.events)
        self.acknowledged.update(changes.acknowledged)

    def _check_read_only(self, changes: Changes, writes: bool) -> None:
        if not writes and not changes.is_empty():
            raise RuntimeError("a read-only sandbox call tried to change the state")

    def _close_file(self) -> None:
        with self._thread_lock:
            self._reset_file()

    def _reset_file(self) -> None:
        assert self._file is not None
        self._version = _NOT_LOADED
        try:
            self._file.rollback()
        except sqlite3.Error:
            pass  # the connection is closed next anyway
        finally:
            self._file.close()


def _advance(clock: SandboxClock, changes: Changes) -> None:
    if changes.clock_offset is not None and changes.clock_offset > clock.offset:
        clock.advance(changes.clock_offset - clock.offset)


def _merged(changes: list[Changes]) -> StateWrite:
    """One write of several calls' changes, in call order (a later call's object row wins)."""
    merged = StateWrite()
    for one in changes:
        write = one.state_write()
        merged.objects += write.objects
        merged.events += write.events
        merged.acknowledged += write.acknowledged
        if write.clock_offset is not None:
            merged.clock_offset = write.clock_offset
    return merged


def _unavailable(message: str, cause: BaseException) -> SandboxUnavailable:
    """A SandboxUnavailable of its own for each caller (one exception raised in several tasks would
    collect all their tracebacks)."""
    error = SandboxUnavailable(message)
    error.__cause__ = cause
    return error


def _settle(call: _Call, answer: _Answer) -> None:
    if call.answer.done():  # its caller stopped waiting: what its call committed stays committed
        return
    if isinstance(answer, Exception):
        call.answer.set_exception(answer)
    else:
        call.answer.set_result(answer)


def _attempt(operation: Callable[[Changes], _T], changes: Changes) -> _T | SandboxError:
    try:
        return operation(changes)
    except SandboxError as exc:
        return exc


def _decoded(stored: StoredState) -> Changes:
    """The stored rows as objects, in the order they were first written; a bad row is a corrupt file."""
    fresh = Changes(now=0)
    try:
        for kind, body in stored.objects:
            if kind == _INTENT:
                fresh.put_intent(SandboxPaymentIntent.from_dict(body))
            elif kind == _REFUND:
                fresh.put_refund(SandboxRefund.from_dict(body))
            elif kind == _TOKEN:
                token = SandboxCardToken.from_dict(body)
                fresh.tokens[token.id] = token
            elif kind == _IDEMPOTENCY:
                record = IdempotencyRecord.from_dict(body)
                fresh.records[record.key] = record
            elif kind in _KINDS:
                obj = _KINDS[kind](body)
                fresh.objects.setdefault(kind, {})[obj.id] = obj
            else:
                raise ValueError(f"unknown object kind {kind}")
        for event in stored.events:
            if not isinstance(event.get("id"), str):
                raise ValueError("a stored event has no id")
    except (KeyError, ValueError) as exc:
        raise SandboxUnavailable(f"the sandbox state file is corrupt: {exc}") from exc
    fresh.events = list(stored.events)
    return fresh
