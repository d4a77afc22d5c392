"""`SandboxProcessor`: an in-process payment processor with its own state, modelled on Stripe.

Every operation's changes (objects, idempotency record, events) are one unit, written through to the
state file before it answers. No lock is held while a call waits: concurrent calls queue, and are run
one after another on memory and committed together, in one worker-thread hop and one transaction per
group (see `state.py`); each still gets its own result, and its events are delivered in commit order.
Several processes may share one state file (`payql serve` and `payql worker`): each group first catches
up with what the others committed, and a changing one holds the file's write lock throughout. Nothing
here may block the event loop, keep a card number or CVC, or let an event listener's failure undo a
committed change.
"""

from __future__ import annotations

import copy
import hashlib
import json
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import NoReturn, TypeVar

from gateways.sandbox.processor import disputes
from gateways.sandbox.processor import validation as check
from gateways.sandbox.processor.billing import SandboxBilling
from gateways.sandbox.processor.billing_objects import SandboxInvoice, SandboxSubscription, SandboxUsageRecord
from gateways.sandbox.processor.clock import SandboxClock
from gateways.sandbox.processor.disputes import SandboxDispute
from gateways.sandbox.processor.errors import (
    SandboxCardDeclined,
    SandboxError,
    SandboxIdempotencyError,
    SandboxInvalidRequest,
    SandboxTimeout,
    SandboxUnavailable,
)
from gateways.sandbox.processor.faults import FaultMode, FaultSwitch, HeldAnswers
from gateways.sandbox.processor.objects import (
    REFUND_FAILED,
    REFUND_SUCCEEDED,
    CaptureMode,
    IdempotencyRecord,
    IntentStatus,
    JsonDict,
    SandboxCardToken,
    SandboxPaymentIntent,
    SandboxRefund,
    new_client_secret,
    new_id,
)
from gateways.sandbox.processor.state import Changes, SandboxState
from gateways.sandbox.processor.test_methods import (
    CardBehaviour,
    behaviour_for_card_number,
    behaviour_for_payment_method,
    decline_message,
)

__all__ = ["EventListener", "SandboxClock", "SandboxProcessor"]

_log = logging.getLogger(__name__)

EventListener = Callable[[JsonDict], Awaitable[None]]

_T = TypeVar("_T")
_Replayable = TypeVar(
    "_Replayable", SandboxPaymentIntent, SandboxRefund, SandboxSubscription, SandboxInvoice, SandboxUsageRecord
)


class SandboxProcessor:
    """The sandbox processor. Amounts are `int` minor units; currencies are upper-case ISO-4217 codes.

    With `state_path`, state is loaded on `open()` (or the first call) and written through on every
    change, and what other processes sharing the file commit is read before every call; without it,
    state lives in memory only. `on_event` is awaited with each Stripe-shaped event after the call that
    caused it committed; like Stripe's, events may arrive out of order. Events committed by another
    process sharing the file reach `on_event` after the first call (or `refresh()`) that sees them;
    those already in the file when it is first read do not (`unacknowledged_events` lists them).
    """

    def __init__(self, *, clock: SandboxClock | None = None, state_path: Path | None = None) -> None:
        self.clock = clock if clock is not None else SandboxClock()
        self.on_event: EventListener | None = None
        self._faults = FaultSwitch()
        self.held_answers = HeldAnswers()
        self._state = SandboxState(state_path)
        # Subscriptions on per-customer test clocks (billing.py); it runs its calls through this processor.
        self.billing = SandboxBilling(self)

    # -- lifecycle and test controls ---------------------------------------------------------------

    @property
    def state_path(self) -> Path | None:
        """The state file (which other processes may share), or None when state lives in memory only."""
        return self._state.path

    async def open(self) -> None:
        """Load the state file now rather than on the first call."""
        await self._transact(_read_nothing, writes=False)

    async def refresh(self) -> None:
        """Catch up with what other processes sharing the state file committed, passing their events
        to `on_event` (every other call does this too; a webhook deliverer calls this when idle)."""
        await self._transact(_read_nothing, writes=False)

    async def aclose(self) -> None:
        """Close the state file; a later call opens it again."""
        await self._state.close()

    def arm_fault(self, mode: str, count: int = 1) -> None:
        """Make the next `count` calls fail: `unavailable` before acting, `timeout` after committing, `hold`
        after committing until `held_answers.release()`."""
        self._faults.arm(mode, count)

    def clear_faults(self) -> None:
        self._faults.clear()
        self.held_answers.release()

    async def advance_clock(self, seconds: int) -> int:
        """Advance the clock, persisting the offset with the state, and return the new `now()`."""
        if isinstance(seconds, bool) or not isinstance(seconds, int):
            raise TypeError("seconds must be an int")
        if seconds < 0:
            raise ValueError("the sandbox clock only moves forward")

        def advance(changes: Changes) -> None:
            # From the offset as the file has it now: another process may have moved the clock too.
            changes.clock_offset = self.clock.offset + seconds

        await self._transact(advance, writes=True)
        return self.clock.now()

    # -- payment intents ---------------------------------------------------------------------------

    async def create_payment_intent(
        self,
        *,
        amount: int,
        currency: str,
        payment_method: str,
        idempotency_key: str,
        capture_method: str = CaptureMode.AUTOMATIC,
        return_url: str | None = None,
        description: str = "",
        customer: str | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> SandboxPaymentIntent:
        """Create and confirm a payment intent; a declined one is kept, and `SandboxCardDeclined` raised."""
        request: JsonDict = {
            "operation": "create_payment_intent",
            "amount": amount,
            "currency": currency,
            "payment_method": payment_method,
            "capture_method": str(capture_method),
            "return_url": return_url,
            "description": description,
            "customer": customer,
            "metadata": dict(metadata or {}),
        }

        def create(changes: Changes) -> SandboxPaymentIntent:
            intent_id = new_id("pi")
            intent = SandboxPaymentIntent(
                id=intent_id,
                amount=check.positive_amount(amount, "amount"),
                currency=check.currency(currency),
                status=IntentStatus.REQUIRES_PAYMENT_METHOD,
                capture_method=check.capture_mode(capture_method),
                payment_method=payment_method,
                client_secret=new_client_secret(intent_id),
                created=changes.now,
                description=check.text(description, "description", 1000),
                return_url=check.return_url(return_url),
                customer=None if customer is None else check.text(customer, "customer", 255),
                metadata=check.metadata(metadata),
            )
            behaviour = self._behaviour(payment_method, changes.now)
            if behaviour.decline_code is not None:
                _decline(changes, intent, behaviour.decline_code, "payment_intent.created")
            if behaviour.requires_authentication:
                intent = replace(intent, status=IntentStatus.REQUIRES_ACTION)
                changes.put_intent(intent, "payment_intent.created", "payment_intent.requires_action")
                return intent
            intent, event_type = _authorized(intent)
            changes.put_intent(intent, "payment_intent.created", event_type)
            return intent

        return await self._call(
            lambda changes: self._idempotent(changes, idempotency_key, request, SandboxPaymentIntent, create)
        )

    async def retrieve(self, payment_intent_id: str) -> SandboxPaymentIntent:
        return await self._call(lambda _changes: self._intent(payment_intent_id), writes=False)

    async def list_payment_intents(self, created_gte: int | None = None) -> list[SandboxPaymentIntent]:
        """Every payment intent (or those created at or after `created_gte`), oldest first."""

        def select(_changes: Changes) -> list[SandboxPaymentIntent]:
            intents = self._state.intents.values()
            chosen = [i for i in intents if created_gte is None or i.created >= created_gte]
            return sorted(chosen, key=lambda intent: intent.created)

        return await self._call(select, writes=False)

    async def capture(
        self,
        payment_intent_id: str,
        *,
        idempotency_key: str,
        amount_to_capture: int | None = None,
        currency: str | None = None,
    ) -> SandboxPaymentIntent:
        """Capture all or part of what is capturable; like Stripe, a partial capture releases the rest.

        `currency`, when given, must be the intent's: a guard against capturing yen as dollars.
        """
        request: JsonDict = {
            "operation": "capture",
            "payment_intent": payment_intent_id,
            "amount_to_capture": amount_to_capture,
            "currency": currency,
        }

        def capture(changes: Changes) -> SandboxPaymentIntent:
            intent = self._intent(payment_intent_id)
            check.require_status(intent, IntentStatus.REQUIRES_CAPTURE)
            check.require_currency(intent, currency)
            amount = intent.amount_capturable if amount_to_capture is None else amount_to_capture
            check.require_within(
                check.positive_amount(amount, "amount_to_capture"), intent.amount_capturable, "capturable"
            )
            captured = replace(intent, status=IntentStatus.SUCCEEDED, amount_received=amount, amount_capturable=0)
            changes.put_intent(captured, "payment_intent.succeeded")
            return captured

        return await self._call(
            lambda changes: self._idempotent(changes, idempotency_key, request, SandboxPaymentIntent, capture)
        )

    async def cancel(self, payment_intent_id: str, *, idempotency_key: str) -> SandboxPaymentIntent:
        """Void a payment intent that waits for capture or for the shopper's 3-D Secure action."""
        request: JsonDict = {"operation": "cancel", "payment_intent": payment_intent_id}

        def cancel(changes: Changes) -> SandboxPaymentIntent:
            intent = self._intent(payment_intent_id)
            check.require_status(intent, IntentStatus.REQUIRES_CAPTURE, IntentStatus.REQUIRES_ACTION)
            canceled = replace(intent, status=IntentStatus.CANCELED, amount_capturable=0, canceled_at=changes.now)
            changes.put_intent(canceled, "payment_intent.canceled")
            return canceled

        return await self._call(
            lambda changes: self._idempotent(changes, idempotency_key, request, SandboxPaymentIntent, cancel)
        )

    async def complete_authentication(self, payment_intent_id: str, *, succeed: bool) -> SandboxPaymentIntent:
        """The shopper's 3-D Secure answer: authorized or paid, or failed with `authentication_required`."""

        def complete(changes: Changes) -> SandboxPaymentIntent:
            # An invoice's intent is read after its subscription caught up: an expired first invoice canceled it.
            intent = self.billing.intent_before_authentication(changes, payment_intent_id) or self._intent(
                payment_intent_id
            )
            check.require_status(intent, IntentStatus.REQUIRES_ACTION)
            if not succeed:
                failed = _declined(intent, "authentication_required")
                changes.put_intent(failed, "payment_intent.payment_failed")
                self.billing.after_authentication(changes, failed)
                return failed
            authorized, event_type = _authorized(intent)
            changes.put_intent(authorized, event_type)
            self.billing.after_authentication(changes, authorized)  # an invoice's payment settles its invoice
            return authorized

        return await self._call(complete)

    # -- refunds, card tokens, events --------------------------------------------------------------

    async def refund(
        self,
        payment_intent_id: str,
        *,
        idempotency_key: str,
        amount: int | None = None,
        currency: str | None = None,
        reason: str = "",
    ) -> SandboxRefund:
        """Refund up to what was captured and not yet refunded (all of it by default); succeeds at once.

        Emits `refund.created` (the refund) and `charge.refunded` (the payment intent, with its new
        `amount_refunded`).
        """
        request: JsonDict = {
            "operation": "refund",
            "payment_intent": payment_intent_id,
            "amount": amount,
            "currency": currency,
            "reason": reason,
        }

        def refund(changes: Changes) -> SandboxRefund:
            intent = self._intent(payment_intent_id)
            check.require_status(intent, IntentStatus.SUCCEEDED)
            check.require_currency(intent, currency)
            refundable = intent.amount_received - intent.amount_refunded
            if refundable == 0:
                raise SandboxInvalidRequest(
                    "This payment has already been refunded in full.", code="charge_already_refunded"
                )
            to_refund = refundable if amount is None else amount
            check.require_within(check.positive_amount(to_refund, "amount"), refundable, "refundable")
            created = SandboxRefund(
                id=new_id("re"),
                payment_intent=intent.id,
                amount=to_refund,
                currency=intent.currency,
                status=REFUND_SUCCEEDED,
                created=changes.now,
                reason=check.text(reason, "reason", 500),
            )
            changes.put_refund(created, "refund.created")
            refunded = replace(intent, amount_refunded=intent.amount_refunded + to_refund)
            changes.put_intent(refunded, "charge.refunded")
            return created

        return await self._call(
            lambda changes: self._idempotent(changes, idempotency_key, request, SandboxRefund, refund)
        )

    async def fail_refund(self, refund_id: str) -> SandboxRefund:
        """Test switch: a refund that succeeded is returned by the bank days later.

        Emits `refund.updated` (the refund, now failed) and `charge.refunded` (the payment intent,
        whose `amount_refunded` goes back down), as Stripe does for a failed refund.
        """

        def fail(changes: Changes) -> SandboxRefund:
            refund = self._state.refunds.get(refund_id)
            if refund is None:
                raise SandboxInvalidRequest("No such refund.", code="resource_missing")
            if refund.status != REFUND_SUCCEEDED:
                raise SandboxInvalidRequest("Only a succeeded refund can fail.", code="refund_not_succeeded")
            failed = replace(refund, status=REFUND_FAILED)
            changes.put_refund(failed, "refund.updated")
            intent = self._intent(refund.payment_intent)
            changes.put_intent(
                replace(intent, amount_refunded=intent.amount_refunded - refund.amount), "charge.refunded"
            )
            return failed

        return await self._call(fail)

    # -- disputes (see disputes.py) ------------------------------------------------------------------

    async def create_dispute(self, payment_intent_id: str, reason: str, amount: int | None = None) -> SandboxDispute:
        """Test switch: the cardholder disputes a succeeded payment (all of the capture by default).

        Emits `charge.dispute.created` and `charge.dispute.funds_withdrawn`.
        """
        return await self._transact(
            lambda changes: disputes.open_dispute(
                self._state, changes, self._intent(payment_intent_id), reason, amount
            ),
            writes=True,
        )

    async def retrieve_dispute(self, dispute_id: str) -> SandboxDispute:
        return await self._call(lambda _changes: disputes.find(self._state, dispute_id), writes=False)

    async def submit_dispute_evidence(self, dispute_id: str, evidence: Mapping[str, str]) -> SandboxDispute:
        """Submit the merchant's evidence once; emits `charge.dispute.updated` (now `under_review`)."""
        return await self._call(lambda changes: disputes.submit_evidence(self._state, changes, dispute_id, evidence))

    async def close_dispute(self, dispute_id: str, *, won: bool) -> SandboxDispute:
        """Test switch: the issuer decides. Emits `charge.dispute.closed`, and for a won dispute
        `charge.dispute.funds_reinstated`."""
        return await self._transact(
            lambda changes: disputes.close(self._state, changes, dispute_id, won=won), writes=True
        )

    async def tokenize_card(self, number: str, exp_month: int, exp_year: int, cvc: str) -> SandboxCardToken:
        """Turn a test card into a reusable `pm_sbx_…` token; any other number is refused, never echoed."""

        def tokenize(changes: Changes) -> SandboxCardToken:
            behaviour = behaviour_for_card_number(number) if isinstance(number, str) else None
            if behaviour is None:
                raise SandboxInvalidRequest("Only sandbox test card numbers are accepted.", code="card_number_not_test")
            year = check.expiry_year(exp_month, exp_year, changes.now)
            check.cvc(cvc)
            token = SandboxCardToken(
                id=new_id("pm"), behaviour=behaviour, exp_month=exp_month, exp_year=year, created=changes.now
            )
            changes.tokens[token.id] = token
            _log.info("sandbox card token %s created (%s ending %s)", token.id, behaviour.brand, behaviour.last4)
            return token

        return await self._call(tokenize)

    async def list_events(self, created_gte: int | None = None) -> list[JsonDict]:
        """Every event recorded (or those from `created_gte` on), in the order they were committed."""

        def select(_changes: Changes) -> list[JsonDict]:
            events = self._state.events
            return [copy.deepcopy(e) for e in events if created_gte is None or _created(e) >= created_gte]

        return await self._call(select, writes=False)

    async def unacknowledged_events(self) -> list[JsonDict]:
        """Events no webhook endpoint has acknowledged yet, in commit order (what a deliverer resends).

        With a shared state file this includes events other processes committed.
        """
        return await self._transact(lambda _changes: copy.deepcopy(self._state.unacknowledged_events()), writes=False)

    async def acknowledge_events(self, event_ids: Sequence[str]) -> None:
        """Mark events as delivered, durably; a webhook deliverer's bookkeeping, never hit by armed faults."""
        ids = list(dict.fromkeys(event_ids))

        def acknowledge(changes: Changes) -> None:
            changes.acknowledged = [event_id for event_id in ids if event_id not in self._state.acknowledged]

        if ids:
            await self._transact(acknowledge, writes=True)

    # -- machinery ---------------------------------------------------------------------------------

    async def _call(self, operation: Callable[[Changes], _T], *, writes: bool = True) -> _T:
        """Run one operation: the armed fault, the operation, then the commit (its group's) of all it changed.

        `writes=False` marks an operation that only reads: it takes no write lock unless its group writes.
        """
        fault = self._faults.take()
        if fault is FaultMode.UNAVAILABLE:
            raise SandboxUnavailable("The sandbox processor is unavailable (armed fault).")
        outcome = await self._state.run(self.clock, operation, writes=writes)
        await self._deliver([*outcome.discovered, *outcome.changes.events])
        if fault is FaultMode.HOLD:
            await self.held_answers.hold()
        if fault is FaultMode.TIMEOUT:
            raise SandboxTimeout("The sandbox processor did not answer in time (armed fault).")
        if isinstance(outcome.result, SandboxError):
            raise outcome.result
        return outcome.result

    async def _transact(self, operation: Callable[[Changes], _T], *, writes: bool) -> _T:
        """Like `_call`, without the armed faults (bookkeeping and test controls are never hit)."""
        outcome = await self._state.run(self.clock, operation, writes=writes)
        await self._deliver([*outcome.discovered, *outcome.changes.events])
        if isinstance(outcome.result, SandboxError):
            raise outcome.result
        return outcome.result

    def _idempotent(
        self,
        changes: Changes,
        key: str,
        request: JsonDict,
        kind: type[_Replayable],
        apply: Callable[[Changes], _Replayable],
    ) -> _Replayable:
        """Run `apply` once per key: replay its result or decline for the same request, refuse any other."""
        check.idempotency_key(key)
        fingerprint = hashlib.sha256(json.dumps(request, sort_keys=True, default=str).encode()).hexdigest()
        record = self._state.records.get(key)
        if record is not None:
            if record.fingerprint != fingerprint:
                raise SandboxIdempotencyError(
                    "Keys for idempotent requests can only be used with the same parameters they were first used with."
                )
            if record.error is not None:
                raise SandboxCardDeclined.from_dict(record.error)
            if record.response is None:
                raise SandboxUnavailable("The stored idempotent result is missing.")
            return kind.from_dict(record.response)
        # A refusal (SandboxInvalidRequest) is not recorded: it changed nothing, so a retry is harmless.
        try:
            result = apply(changes)
        except SandboxCardDeclined as declined:
            changes.records[key] = IdempotencyRecord(key, fingerprint, changes.now, error=declined.to_dict())
            raise
        changes.records[key] = IdempotencyRecord(key, fingerprint, changes.now, response=result.to_dict())
        return result

    async def _deliver(self, events: list[JsonDict]) -> None:
        listener = self.on_event
        if listener is None:
            return
        for event in events:
            try:
                await listener(copy.deepcopy(event))
            except Exception:
                # The change is committed whatever the listener does; its failure is only reported.
                _log.exception("sandbox event listener failed on %s %s", event["type"], event["id"])

    def _intent(self, payment_intent_id: str) -> SandboxPaymentIntent:
        intent = self._state.intents.get(payment_intent_id)
        if intent is None:
            raise SandboxInvalidRequest("No such payment_intent.", code="resource_missing")
        return intent

    def _behaviour(self, payment_method: str, now: int) -> CardBehaviour:
        token = self._state.tokens.get(payment_method)
        if token is not None:
            if (token.exp_year, token.exp_month) < check.year_month(now):
                # A saved card expires as the clock advances (subscriptions); the issuer then declines it.
                return replace(token.behaviour, decline_code="expired_card", requires_authentication=False)
            return token.behaviour
        behaviour = behaviour_for_payment_method(payment_method)
        if behaviour is None:
            # Not echoed: a client that sends a card number here by mistake must not find it in logs.
            raise SandboxInvalidRequest("No such PaymentMethod.", code="resource_missing")
        return behaviour


def _read_nothing(_changes: Changes) -> None:
    return None


def _authorized(intent: SandboxPaymentIntent) -> tuple[SandboxPaymentIntent, str]:
    if intent.capture_method is CaptureMode.MANUAL:
        held = replace(intent, status=IntentStatus.REQUIRES_CAPTURE, amount_capturable=intent.amount)
        return held, "payment_intent.amount_capturable_updated"
    paid = replace(intent, status=IntentStatus.SUCCEEDED, amount_received=intent.amount)
    return paid, "payment_intent.succeeded"


def _declined(intent: SandboxPaymentIntent, decline_code: str) -> SandboxPaymentIntent:
    return replace(
        intent,
        status=IntentStatus.REQUIRES_PAYMENT_METHOD,
        amount_capturable=0,
        decline_code=decline_code,
        decline_message=decline_message(decline_code),
    )


def _decline(changes: Changes, intent: SandboxPaymentIntent, decline_code: str, *event_types: str) -> NoReturn:
    """Record the declined intent, then raise the decline that carries its id."""
    declined = _declined(intent, decline_code)
    changes.put_intent(declined, *event_types, "payment_intent.payment_failed")
    raise SandboxCardDeclined(decline_message(decline_code), payment_intent_id=declined.id, decline_code=decline_code)


def _created(event: JsonDict) -> int:
    created = event["created"]
    return created if isinstance(created, int) else 0
