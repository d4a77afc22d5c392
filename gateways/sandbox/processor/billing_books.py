"""`Books`: what one sandbox processor call sees of the billing objects, and how it changes them.

A call reads committed state overlaid with what it changed so far (the state takes a change only once it
is committed), and writes only through the call's `Changes`, so everything one billing call does (and
everything a clock advance fires) commits as one unit or not at all. Nothing here may block or do I/O.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any, TypeVar

from gateways.sandbox.processor.billing_objects import (
    CUSTOMER,
    INVOICE,
    SUBSCRIPTION,
    InvoiceState,
    SandboxCustomer,
    SandboxInvoice,
    SandboxSubscription,
)
from gateways.sandbox.processor.errors import SandboxInvalidRequest
from gateways.sandbox.processor.objects import SandboxPaymentIntent
from gateways.sandbox.processor.state import Changes, SandboxState, StoredObject
from gateways.sandbox.processor.test_methods import CardBehaviour

_T = TypeVar("_T")

# (payment method, moment on the customer's clock) -> how charging it behaves; raises for an unknown method.
BehaviourLookup = Callable[[str, int], CardBehaviour]


class Books:
    def __init__(self, state: SandboxState, changes: Changes, behaviour: BehaviourLookup) -> None:
        self._state = state
        self._changes = changes
        self.behaviour = behaviour

    @property
    def now(self) -> int:
        """The processor's clock for this call (event and payment intent times)."""
        return self._changes.now

    def customer_now(self, customer: SandboxCustomer) -> int:
        """The customer's test clock: the processor's clock plus the customer's own offset."""
        return self._changes.now + customer.clock_offset

    # -- reading --------------------------------------------------------------------------------------

    def get(self, kind: str, object_id: str) -> Any:
        changed = self._changes.objects.get(kind, {}).get(object_id)
        return changed if changed is not None else self._state.get(kind, object_id)

    def all(self, kind: str) -> list[Any]:
        merged: dict[str, Any] = {obj.id: obj for obj in self._state.all(kind)}
        merged.update(self._changes.objects.get(kind, {}))
        return list(merged.values())

    def intent(self, payment_intent_id: str) -> SandboxPaymentIntent | None:
        changed = self._changes.intents.get(payment_intent_id)
        return changed if changed is not None else self._state.intents.get(payment_intent_id)

    def subscription(self, subscription_id: str) -> SandboxSubscription:
        return _found(self.get(SUBSCRIPTION, subscription_id), SandboxSubscription, "subscription")

    def invoice(self, invoice_id: str) -> SandboxInvoice:
        return _found(self.get(INVOICE, invoice_id), SandboxInvoice, "invoice")

    def customer(self, customer_id: str) -> SandboxCustomer:
        return _found(self.get(CUSTOMER, customer_id), SandboxCustomer, "customer")

    def customer_by_payql_id(self, payql_customer_id: str) -> SandboxCustomer | None:
        for customer in self.all(CUSTOMER):
            if customer.payql_customer_id == payql_customer_id:
                return customer  # type: ignore[no-any-return]
        return None

    def subscriptions_of(self, customer_id: str) -> list[SandboxSubscription]:
        return [sub for sub in self.all(SUBSCRIPTION) if sub.customer == customer_id]

    def open_invoices_of(self, subscription_id: str) -> list[SandboxInvoice]:
        invoices = self.all(INVOICE)
        return [inv for inv in invoices if inv.subscription == subscription_id and inv.status is InvoiceState.OPEN]

    # -- writing --------------------------------------------------------------------------------------

    def put(self, kind: str, obj: StoredObject, *event_types: str) -> None:
        self._changes.put(kind, obj, *event_types)

    def put_intent(self, intent: SandboxPaymentIntent, *event_types: str) -> None:
        self._changes.put_intent(intent, *event_types)

    def emit(self, event_type: str, obj: StoredObject) -> None:
        """An event about an object that is not stored (an upcoming invoice is only a preview)."""
        self._changes.emit(event_type, obj)

    def save_subscription(self, sub: SandboxSubscription, *event_types: str) -> SandboxSubscription:
        """Store a changed subscription with its `updated` counter one higher, and emit `event_types`."""
        stored = self.get(SUBSCRIPTION, sub.id)
        counter = max(sub.updated, stored.updated if stored is not None else 0) + 1
        saved = replace(sub, updated=counter)
        self.put(SUBSCRIPTION, saved, *event_types)
        return saved


def _found(obj: object, kind: type[_T], name: str) -> _T:
    if not isinstance(obj, kind):
        raise SandboxInvalidRequest(f"No such {name}.", code="resource_missing")
    return obj
