"""The sandbox processor's state in memory, and the unit (`Changes`) in which one call changes it.

Without a state file, memory is all there is. With one, memory is a cache of the file, which other
processes (`payql serve` and `payql worker`) share: `run` first catches up with what they committed
(one cheap query when nothing changed), then runs the call; a call that writes holds the file's write
lock from before it catches up until it committed, so it acts on the newest state and no process loses
another's write. Memory takes a change only once the file has it. All file work runs in a worker
thread. The processor serializes calls; a thread lock also guards the connection and memory, in case
an abandoned caller's thread still runs.
"""

from __future__ import annotations

import sqlite3
import threading
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


class SandboxState:
    def __init__(self, state_path: Path | None) -> None:
        self._file = SandboxStateFile(state_path) if state_path is not None else None
        self._version = _NOT_LOADED  # the file's version memory reflects
        self._thread_lock = threading.Lock()
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
        that only read: they skip the write lock, and must change nothing.
        """
        if self._file is None:
            changes = Changes(now=clock.now())
            result = _attempt(operation, changes)
            self._check_read_only(changes, writes)
            self._apply(changes, clock)
            return Outcome(result, changes, [])
        # Not abandoned on cancellation: the thread finishes, and memory and file agree whatever happens.
        return await anyio.to_thread.run_sync(partial(self._run_on_file, clock, operation, writes=writes))

    def unacknowledged_events(self) -> list[JsonDict]:
        return [event for event in self.events if event["id"] not in self.acknowledged]

    async def close(self) -> None:
        """Close the state file; the next call opens it and reads it all again."""
        if self._file is not None:
            await anyio.to_thread.run_sync(self._close_file)

    # -- in a worker thread ------------------------------------------------------------------------

    def _run_on_file(self, clock: SandboxClock, operation: Callable[[Changes], _T], *, writes: bool) -> Outcome[_T]:
        file = self._file
        assert file is not None, "only called with a state file"
        with self._thread_lock:
            try:
                if writes:
                    file.begin_write()
                try:
                    discovered = self._catch_up(file, clock)
                    changes = Changes(now=clock.now())
                    result = _attempt(operation, changes)
                    self._check_read_only(changes, writes)
                    if writes and not changes.is_empty():
                        version = self._version + 1
                        file.write(changes.state_write(), version)
                        file.commit()
                        self._apply(changes, clock)
                        self._version = version
                finally:
                    file.rollback()  # a no-op after a commit; else the write lock is released unused
            except (sqlite3.Error, OSError) as exc:
                # Memory is as the file was at `_version`; reading it all again on the next call is safest.
                self._reset_file()
                raise SandboxUnavailable(f"the sandbox state file could not be used: {exc}") from exc
            except SandboxUnavailable:
                self._reset_file()
                raise
        return Outcome(result, changes, discovered)

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
        self._apply(fresh, clock)
        self._version = stored.version
        # A first read's events are the backlog (`unacknowledged_events`), not news.
        return [] if full else fresh.events

    def _apply(self, changes: Changes, clock: SandboxClock) -> None:
        self.intents.update(changes.intents)
        self.refunds.update(changes.refunds)
        self.tokens.update(changes.tokens)
        self.records.update(changes.records)
        for kind, stored in changes.objects.items():
            self.objects.setdefault(kind, {}).update(stored)
        self.events.extend(changes.events)
        self.acknowledged.update(changes.acknowledged)
        if changes.clock_offset is not None and changes.clock_offset > clock.offset:
            clock.advance(changes.clock_offset - clock.offset)

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
