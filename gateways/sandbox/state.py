"""The sandbox processor's state in memory, and the unit (`Changes`) in which one call changes it.

A commit applies a call's changes to memory and writes them through to the state file (when there is
one) in one transaction. Nothing here takes a lock: the processor serializes every call to it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from gateways.sandbox.clock import SandboxClock
from gateways.sandbox.errors import SandboxUnavailable
from gateways.sandbox.objects import (
    IdempotencyRecord,
    JsonDict,
    SandboxCardToken,
    SandboxPaymentIntent,
    SandboxRefund,
    make_event,
)
from gateways.sandbox.state_file import SandboxStateFile, StateWrite

_INTENT, _REFUND, _TOKEN, _IDEMPOTENCY = "payment_intent", "refund", "payment_method", "idempotency_key"


@dataclass(slots=True)
class Changes:
    """What one call changed, stamped with the one clock reading the call uses throughout."""

    now: int
    intents: dict[str, SandboxPaymentIntent] = field(default_factory=dict)
    refunds: dict[str, SandboxRefund] = field(default_factory=dict)
    tokens: dict[str, SandboxCardToken] = field(default_factory=dict)
    records: dict[str, IdempotencyRecord] = field(default_factory=dict)
    events: list[JsonDict] = field(default_factory=list)

    def put_intent(self, intent: SandboxPaymentIntent, *event_types: str) -> None:
        self.intents[intent.id] = intent
        for event_type in event_types:
            self.emit(event_type, intent)

    def put_refund(self, refund: SandboxRefund, *event_types: str) -> None:
        self.refunds[refund.id] = refund
        for event_type in event_types:
            self.emit(event_type, refund)

    def emit(self, event_type: str, obj: SandboxPaymentIntent | SandboxRefund) -> None:
        self.events.append(make_event(event_type, obj.to_dict(), self.now))

    def is_empty(self) -> bool:
        return not (self.intents or self.refunds or self.tokens or self.records or self.events)

    def state_write(self) -> StateWrite:
        objects: list[tuple[str, str, JsonDict]] = []
        objects += [(_INTENT, key, value.to_dict()) for key, value in self.intents.items()]
        objects += [(_REFUND, key, value.to_dict()) for key, value in self.refunds.items()]
        objects += [(_TOKEN, key, value.to_dict()) for key, value in self.tokens.items()]
        objects += [(_IDEMPOTENCY, key, value.to_dict()) for key, value in self.records.items()]
        return StateWrite(objects=objects, events=list(self.events))


class SandboxState:
    def __init__(self, state_path: Path | None) -> None:
        self._file = SandboxStateFile(state_path) if state_path is not None else None
        self._loaded = state_path is None
        self.intents: dict[str, SandboxPaymentIntent] = {}
        self.refunds: dict[str, SandboxRefund] = {}
        self.tokens: dict[str, SandboxCardToken] = {}
        self.records: dict[str, IdempotencyRecord] = {}
        self.events: list[JsonDict] = []
        self.acknowledged: set[str] = set()  # events a webhook endpoint acknowledged

    async def ensure_loaded(self, clock: SandboxClock) -> None:
        """Read the state file unless already done; a stored clock offset moves `clock` forward to it."""
        if self._loaded or self._file is None:
            return
        stored = await self._file.load()
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
        except (KeyError, ValueError) as exc:
            raise SandboxUnavailable(f"the sandbox state file is corrupt: {exc}") from exc
        self.intents, self.refunds, self.tokens = fresh.intents, fresh.refunds, fresh.tokens
        self.records, self.events = fresh.records, stored.events
        self.acknowledged = set(stored.acknowledged)
        if stored.clock_offset > clock.offset:
            clock.advance(stored.clock_offset - clock.offset)
        self._loaded = True

    async def commit(self, changes: Changes) -> None:
        if changes.is_empty():
            return
        # Memory first: a cancelled caller cannot stop the worker thread's write, so memory must hold it too.
        self.intents.update(changes.intents)
        self.refunds.update(changes.refunds)
        self.tokens.update(changes.tokens)
        self.records.update(changes.records)
        self.events.extend(changes.events)
        if self._file is None:
            return
        try:
            await self._file.write(changes.state_write())
        except SandboxUnavailable:
            # Memory now holds what the file refused; the file is the truth, so the next call reloads it.
            await self.close()
            raise

    def unacknowledged_events(self) -> list[JsonDict]:
        return [event for event in self.events if event["id"] not in self.acknowledged]

    async def acknowledge(self, event_ids: list[str]) -> None:
        """Record that these events reached a webhook endpoint (or were dropped on purpose)."""
        fresh = [event_id for event_id in event_ids if event_id not in self.acknowledged]
        if not fresh:
            return
        self.acknowledged.update(fresh)
        if self._file is None:
            return
        try:
            await self._file.write(StateWrite(acknowledged=fresh))
        except SandboxUnavailable:
            # As in `commit`: the file is the truth, so the next call reloads it (without these acks).
            await self.close()
            raise

    async def save_clock_offset(self, offset: int) -> None:
        if self._file is not None:
            await self._file.write(StateWrite(clock_offset=offset))

    async def close(self) -> None:
        """Close the state file; the next `ensure_loaded` reads it again."""
        if self._file is not None:
            self._loaded = False
            await self._file.close()
