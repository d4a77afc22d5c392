"""`WebhookDeliverer`: POSTs the sandbox processor's events to a webhook endpoint, signed, at least once.

Like a real processor's: every event is serialized once and sent from a background task (never inside
the processor call that produced it), signed with `signing.sign` in a `stripe-signature` header. A
non-2xx answer or a connection error is retried with exponential backoff and jitter, up to
`max_attempts`. Attempts go out one at a time, in the order they became due.

Durability: an event counts as delivered once the endpoint answered 2xx, and the processor records
that in its state file (`acknowledge_events`). `start()` queues every event not yet acknowledged, so a
server killed mid-delivery (even with SIGKILL) sends its webhooks after the restart; one that gave up
after `max_attempts` is also tried again then. `switches` make deliveries misbehave on purpose (tests).

One deliverer per state file: when another process shares the file (`payql worker`), the events it
commits reach this deliverer through the processor's `on_event` at this process's next processor
call, or at the latest after `poll_interval` seconds (`processor.refresh()`, one cheap query when
nothing changed).
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import time
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any

import httpx

from gateways.sandbox.processor.errors import SandboxError
from gateways.sandbox.processor.objects import JsonDict
from gateways.sandbox.processor.processor import SandboxProcessor
from gateways.sandbox.processor.webhook_switches import WebhookSwitches
from gateways.stripe_signature import SIGNATURE_HEADER, sign

__all__ = ["WebhookDeliverer", "WebhookSwitches"]

_log = logging.getLogger(__name__)
_jitter = random.SystemRandom()
_USER_AGENT = "PayQL-Sandbox-Webhooks/1.0"


@dataclass(slots=True, eq=False)
class _Delivery:
    event_id: str
    event_type: str
    body: bytes  # serialized once: every attempt and duplicate sends these very bytes
    attempts: int = 0


class WebhookDeliverer:
    def __init__(
        self,
        processor: SandboxProcessor,
        endpoint_url: str,
        signing_secret: str,
        *,
        http: httpx.AsyncClient | None = None,
        max_attempts: int = 8,
        base_delay: float = 0.2,
        max_delay: float = 30.0,
        request_timeout: float = 10.0,
        poll_interval: float = 1.0,
    ) -> None:
        if not signing_secret:
            raise ValueError("signing_secret must not be empty")
        if max_attempts < 1:
            raise ValueError("max_attempts must be >= 1")
        if base_delay < 0 or max_delay < base_delay:
            raise ValueError("delays must satisfy 0 <= base_delay <= max_delay")
        if not poll_interval > 0:
            raise ValueError("poll_interval must be > 0")
        self.processor = processor
        self.endpoint_url = endpoint_url
        self.switches = WebhookSwitches(self._flush_held)
        self._secret = signing_secret
        self._given_http = http
        self._http: httpx.AsyncClient | None = None
        self._max_attempts = max_attempts
        self._base_delay = base_delay
        self._max_delay = max_delay
        self._request_timeout = request_timeout
        self._poll_interval = poll_interval
        self._worker: asyncio.Task[None] | None = None
        self._poller: asyncio.Task[None] | None = None
        self._reset()

    def _reset(self) -> None:
        self._queue: asyncio.Queue[_Delivery] = asyncio.Queue()
        self._held: list[_Delivery] = []
        self._timers: set[asyncio.Task[None]] = set()  # delayed first attempts, backoffs, drop bookkeeping
        self._seen: set[str] = set()  # event ids taken on since start(): a race may offer one twice
        self._outstanding = 0  # events taken on and not yet acknowledged, given up on or dropped
        self._failed_attempts = 0  # since start(): non-2xx answers and connection errors
        self._idle = asyncio.Event()
        self._idle.set()

    # -- lifecycle ---------------------------------------------------------------------------------

    async def start(self) -> None:
        """Listen to the processor's events and queue every event no endpoint acknowledged yet."""
        if self._worker is not None:
            raise RuntimeError("the webhook deliverer is already running")
        if self.processor.on_event is not None:
            raise RuntimeError("the sandbox processor already has an event listener")
        self._http = self._given_http or httpx.AsyncClient(timeout=self._request_timeout)
        # Listening first, then reading the backlog: an event in between is offered twice, taken once.
        self.processor.on_event = self._on_event
        self._worker = asyncio.create_task(self._run(), name="sandbox-webhook-deliverer")
        if self.processor.state_path is not None:  # another process may commit events to the file
            self._poller = asyncio.create_task(self._poll(), name="sandbox-webhook-poller")
        try:
            backlog = await self.processor.unacknowledged_events()
        except BaseException:
            await self.aclose()
            raise
        for event in backlog:
            self._take_on(event)

    async def aclose(self) -> None:
        """Stop listening and sending; what was not acknowledged is sent after the next `start()`."""
        if self.processor.on_event == self._on_event:
            self.processor.on_event = None
        tasks = [*self._timers, *(task for task in (self._worker, self._poller) if task is not None)]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._worker = self._poller = None
        if self._http is not None and self._given_http is None:
            await self._http.aclose()
        self._http = None
        self._idle.set()  # nothing will be sent any more: release whoever waits in idle()
        self._reset()

    async def idle(self) -> None:
        """Return once nothing is queued, waiting on a delay or backoff, in flight or held (or on aclose)."""
        await self._idle.wait()

    def status(self) -> JsonDict:
        """The switches; how many deliveries are held, events not yet settled, and attempts that failed."""
        return {
            **self.switches.snapshot(),
            "held": len(self._held),
            "pending": self._outstanding,
            "failed_attempts": self._failed_attempts,
        }

    # -- taking events on --------------------------------------------------------------------------

    async def _on_event(self, event: JsonDict) -> None:
        # Called inside the processor's call: only queue here, never send.
        self._take_on(event)

    def _take_on(self, event: JsonDict) -> None:
        event_id, event_type = event.get("id"), event.get("type")
        if not isinstance(event_id, str) or not isinstance(event_type, str):
            _log.error("sandbox webhook: an event without a string id and type was not queued")
            return
        if event_id in self._seen:
            return
        self._seen.add(event_id)
        self._outstanding += 1
        self._idle.clear()
        if self.switches.take_drop():
            _log.info("sandbox webhook %s %s dropped on purpose (drop switch)", event_type, event_id)
            self._spawn(self._settle_dropped(event_id))
            return
        delivery = _Delivery(event_id, event_type, json.dumps(event).encode())
        self._schedule(delivery, self.switches.delay_seconds)

    def _schedule(self, delivery: _Delivery, after: float) -> None:
        if after > 0:
            self._spawn(self._due_after(after, delivery))
        else:
            self._due(delivery)

    async def _due_after(self, seconds: float, delivery: _Delivery) -> None:
        await asyncio.sleep(seconds)
        self._due(delivery)

    def _due(self, delivery: _Delivery) -> None:
        if self.switches.holding:
            self._held.append(delivery)
        else:
            self._queue.put_nowait(delivery)

    def _flush_held(self, reverse: bool) -> None:
        held, self._held = self._held, []
        for delivery in reversed(held) if reverse else held:
            self._queue.put_nowait(delivery)

    async def _poll(self) -> None:
        """Catch up with the state file now and then: the processor passes others' events to `_on_event`."""
        while True:
            await asyncio.sleep(self._poll_interval)
            try:
                await self.processor.refresh()
            except SandboxError as exc:
                _log.warning("sandbox webhook: the state file could not be read for new events: %s", exc.message)
            except Exception:
                _log.exception("sandbox webhook: looking for new events failed")

    def _spawn(self, coroutine: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(coroutine)
        self._timers.add(task)
        task.add_done_callback(self._timers.discard)

    # -- sending -----------------------------------------------------------------------------------

    async def _run(self) -> None:
        while True:
            delivery = await self._queue.get()
            if self.switches.holding:  # held after it was queued: it waits too
                self._held.append(delivery)
                continue
            try:
                await self._attempt(delivery)
            except Exception:
                # Not acknowledged, so the next start() sends it again; the worker itself goes on.
                _log.exception("sandbox webhook %s %s: delivery failed", delivery.event_type, delivery.event_id)
                self._settled()

    async def _attempt(self, delivery: _Delivery) -> None:
        delivery.attempts += 1
        accepted = False
        for _copy in range(self.switches.copies):
            accepted = await self._post(delivery) or accepted
        if accepted:
            await self._acknowledge(delivery.event_id)
            self._settled()
        elif delivery.attempts >= self._max_attempts:
            _log.warning(
                "sandbox webhook %s %s: giving up after %d attempts (resent after the next start)",
                delivery.event_type,
                delivery.event_id,
                delivery.attempts,
            )
            self._settled()
        else:
            self._schedule(delivery, self._backoff(delivery.attempts))
        if not accepted:
            self._failed_attempts += 1

    async def _post(self, delivery: _Delivery) -> bool:
        assert self._http is not None, "start() creates the client"
        # Signed at send time with the real clock, as a processor does: the test clock may run ahead.
        timestamp = int(time.time())
        headers = {
            "content-type": "application/json",
            SIGNATURE_HEADER: sign(self._secret, timestamp, delivery.body),
            "user-agent": _USER_AGENT,
        }
        try:
            response = await self._http.post(self.endpoint_url, content=delivery.body, headers=headers)
        except httpx.HTTPError as exc:
            _log.info(
                "sandbox webhook %s %s attempt %d: %s",
                delivery.event_type,
                delivery.event_id,
                delivery.attempts,
                type(exc).__name__,
            )
            return False
        if not response.is_success:
            _log.info(
                "sandbox webhook %s %s attempt %d: HTTP %d",
                delivery.event_type,
                delivery.event_id,
                delivery.attempts,
                response.status_code,
            )
        return response.is_success

    def _backoff(self, attempts: int) -> float:
        """Exponential, capped at `max_delay`, with "equal jitter": between half and all of the step."""
        step = min(self._max_delay, self._base_delay * 2.0 ** min(attempts - 1, 32))
        return step / 2 + _jitter.uniform(0, step / 2)

    # -- bookkeeping -------------------------------------------------------------------------------

    async def _acknowledge(self, event_id: str) -> None:
        try:
            await self.processor.acknowledge_events([event_id])
        except SandboxError as exc:
            # Delivered but not recorded: it is sent again after a restart (at least once, as promised).
            _log.warning("sandbox webhook %s delivered but not recorded: %s", event_id, exc.message)

    async def _settle_dropped(self, event_id: str) -> None:
        try:
            await self._acknowledge(event_id)
        finally:
            self._settled()

    def _settled(self) -> None:
        self._outstanding -= 1
        if self._outstanding == 0:
            self._idle.set()
