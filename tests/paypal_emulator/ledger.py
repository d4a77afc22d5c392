"""The emulator's objects and their status progressions (Orders v2 and Payments v2), with no HTTP in sight.

Amounts are `Decimal` major units, as PayPal's `value` strings are. Every change that PayPal announces with a
webhook calls `on_event(event_type, resource_type, resource)` with the resource as rendered by `render.py`.
"""

from __future__ import annotations

import re
import secrets
import string
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from domain.money import UnknownCurrency, currency_exponent
from tests.paypal_emulator.errors import PayPalError, api_error, not_found

_VALUE = re.compile(r"^((-?[0-9]+)|(-?([0-9]+)?[.][0-9]+))$")


def new_id(length: int = 17) -> str:
    return "".join(secrets.choice(string.ascii_uppercase + string.digits) for _ in range(length))


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class Amount:
    currency: str
    value: Decimal

    def wire(self) -> dict[str, str]:
        return {"currency_code": self.currency, "value": f"{self.value:.{currency_exponent(self.currency)}f}"}

    @classmethod
    def parse(cls, raw: Any, field_name: str) -> Amount:
        if not isinstance(raw, dict) or not isinstance(raw.get("value"), str) or not raw.get("currency_code"):
            raise api_error(400, "MISSING_REQUIRED_PARAMETER", field=field_name)
        try:
            exponent = currency_exponent(str(raw["currency_code"]))
        except UnknownCurrency:
            raise api_error(422, "INVALID_CURRENCY_CODE", field=f"{field_name}/currency_code") from None
        text = raw["value"]
        if not _VALUE.match(text) or ("." in text and len(text.split(".")[1]) > exponent):
            raise api_error(422, "DECIMAL_PRECISION", field=f"{field_name}/value", value=text)
        value = Decimal(text)
        if value <= 0:
            raise api_error(422, "CANNOT_BE_ZERO_OR_NEGATIVE", field=f"{field_name}/value", value=text)
        return cls(str(raw["currency_code"]), value)


@dataclass
class Order:
    id: str
    intent: str
    amount: Amount
    reference_id: str
    custom_id: str | None
    invoice_id: str | None
    description: str | None
    status: str = "CREATED"
    create_time: str = field(default_factory=now)
    update_time: str = field(default_factory=now)
    authorization_ids: list[str] = field(default_factory=list)
    capture_ids: list[str] = field(default_factory=list)
    refund_ids: list[str] = field(default_factory=list)


@dataclass
class Authorization:
    id: str
    order_id: str
    amount: Amount
    custom_id: str | None
    invoice_id: str | None
    status: str = "CREATED"
    captured: Decimal = Decimal(0)
    create_time: str = field(default_factory=now)
    update_time: str = field(default_factory=now)
    expiration_time: str = field(default_factory=lambda: (datetime.now(UTC) + timedelta(days=29)).isoformat())


@dataclass
class Capture:
    id: str
    order_id: str
    authorization_id: str | None
    amount: Amount
    final_capture: bool
    custom_id: str | None
    invoice_id: str | None
    status: str = "COMPLETED"
    refunded: Decimal = Decimal(0)
    create_time: str = field(default_factory=now)
    update_time: str = field(default_factory=now)


@dataclass
class Refund:
    id: str
    capture_id: str
    order_id: str
    amount: Amount
    invoice_id: str | None
    note_to_payer: str | None
    custom_id: str | None = None
    status: str = "COMPLETED"
    create_time: str = field(default_factory=now)
    update_time: str = field(default_factory=now)


EventSink = Callable[[str, Any], None]


class Ledger:
    """Orders, authorizations, captures and refunds, with PayPal's rules for moving between statuses."""

    def __init__(self, on_event: EventSink | None = None) -> None:
        self.orders: dict[str, Order] = {}
        self.authorizations: dict[str, Authorization] = {}
        self.captures: dict[str, Capture] = {}
        self.refunds: dict[str, Refund] = {}
        self._on_event = on_event or (lambda _type, _obj: None)
        self.base_url = ""  # where the emulator is served, for the links it hands out

    # --- lookups ---------------------------------------------------------------------------------------------
    def order(self, order_id: str) -> Order:
        if order_id not in self.orders:
            raise not_found("order_id", order_id)
        return self.orders[order_id]

    def authorization(self, authorization_id: str) -> Authorization:
        if authorization_id not in self.authorizations:
            raise not_found("authorization_id", authorization_id)
        return self.authorizations[authorization_id]

    def capture(self, capture_id: str) -> Capture:
        if capture_id not in self.captures:
            raise not_found("capture_id", capture_id)
        return self.captures[capture_id]

    # --- Orders v2 -------------------------------------------------------------------------------------------
    def create_order(self, body: Any) -> Order:
        if not isinstance(body, dict):
            raise api_error(400, "MALFORMED_REQUEST_JSON")
        intent = body.get("intent")
        if intent not in ("CAPTURE", "AUTHORIZE"):
            raise api_error(
                400, "MISSING_REQUIRED_PARAMETER" if intent is None else "INVALID_PARAMETER_VALUE", field="/intent"
            )
        units = body.get("purchase_units")
        if not isinstance(units, list) or not units:
            raise api_error(400, "MISSING_REQUIRED_PARAMETER", field="/purchase_units")
        if len(units) > 1:
            raise api_error(
                422, "INVALID_PARAMETER_VALUE", field="/purchase_units", value="the emulator supports one purchase unit"
            )
        unit = units[0]
        order = Order(
            id=new_id(),
            intent=intent,
            amount=Amount.parse(unit.get("amount"), "/purchase_units/@reference_id=='default'/amount"),
            reference_id=str(unit.get("reference_id") or "default"),
            custom_id=unit.get("custom_id"),
            invoice_id=unit.get("invoice_id"),
            description=unit.get("description"),
        )
        self.orders[order.id] = order
        return order

    def approve(self, order_id: str) -> Order:
        """The buyer's approval on PayPal's page (test-only)."""
        order = self.order(order_id)
        if order.status in ("CREATED", "PAYER_ACTION_REQUIRED"):
            order.status, order.update_time = "APPROVED", now()
            self._on_event("CHECKOUT.ORDER.APPROVED", order)
        return order

    def _check_completable(self, order: Order, intent: str) -> None:
        if order.intent != intent:
            raise api_error(422, "ACTION_DOES_NOT_MATCH_INTENT")
        if order.status == "COMPLETED":
            raise api_error(422, "ORDER_ALREADY_CAPTURED" if intent == "CAPTURE" else "ORDER_ALREADY_AUTHORIZED")
        if order.status != "APPROVED":
            raise api_error(422, "ORDER_NOT_APPROVED")
        if order.invoice_id and any(
            other.invoice_id == order.invoice_id and other.status == "COMPLETED" and other.id != order.id
            for other in self.orders.values()
        ):
            raise api_error(422, "DUPLICATE_INVOICE_ID")

    def capture_order(self, order_id: str, *, decline: str | None = None) -> Order:
        order = self.order(order_id)
        self._check_completable(order, "CAPTURE")
        if decline is not None:
            raise self._declined(order, decline)
        capture = Capture(new_id(), order.id, None, order.amount, True, order.custom_id, order.invoice_id)
        self.captures[capture.id] = capture
        order.capture_ids.append(capture.id)
        order.status, order.update_time = "COMPLETED", now()
        self._on_event("PAYMENT.CAPTURE.COMPLETED", capture)
        self._on_event("CHECKOUT.ORDER.COMPLETED", order)
        return order

    def authorize_order(self, order_id: str, *, decline: str | None = None) -> Order:
        order = self.order(order_id)
        self._check_completable(order, "AUTHORIZE")
        if decline is not None:
            raise self._declined(order, decline)
        auth = Authorization(new_id(), order.id, order.amount, order.custom_id, order.invoice_id)
        self.authorizations[auth.id] = auth
        order.authorization_ids.append(auth.id)
        order.status, order.update_time = "COMPLETED", now()
        self._on_event("PAYMENT.AUTHORIZATION.CREATED", auth)
        self._on_event("CHECKOUT.ORDER.COMPLETED", order)
        return order

    def _declined(self, order: Order, issue: str) -> PayPalError:
        """INSTRUMENT_DECLINED sends the buyer back to choose another funding source: the order needs approval again."""
        if issue in ("INSTRUMENT_DECLINED", "PAYER_ACTION_REQUIRED"):
            order.status = "PAYER_ACTION_REQUIRED" if issue == "PAYER_ACTION_REQUIRED" else "CREATED"
            rel = "payer-action" if issue == "PAYER_ACTION_REQUIRED" else "redirect"
            link = {"href": f"{self.base_url}/checkoutnow?token={order.id}", "rel": rel, "method": "GET"}
            return api_error(422, issue, links=[link])
        return api_error(422, issue)

    # --- Payments v2 -----------------------------------------------------------------------------------------
    def capture_authorization(self, authorization_id: str, body: Any, *, decline: str | None = None) -> Capture:
        auth = self.authorization(authorization_id)
        body = body if isinstance(body, dict) else {}
        if auth.status == "VOIDED":
            raise api_error(422, "AUTHORIZATION_VOIDED")
        if auth.status == "CAPTURED":
            raise api_error(422, "AUTHORIZATION_ALREADY_CAPTURED")
        remaining = auth.amount.value - auth.captured
        amount = (
            Amount.parse(body["amount"], "/amount") if "amount" in body else Amount(auth.amount.currency, remaining)
        )
        if amount.currency != auth.amount.currency:
            raise api_error(422, "CURRENCY_MISMATCH", field="/amount/currency_code")
        # PayPal allows up to 115% (or +$75) over the authorization; the emulator allows none.
        if amount.value > remaining:
            raise api_error(422, "MAX_CAPTURE_AMOUNT_EXCEEDED", field="/amount/value")
        if decline is not None:
            raise api_error(422, decline)
        final = bool(body.get("final_capture", False))
        capture = Capture(
            new_id(), auth.order_id, auth.id, amount, final, auth.custom_id, body.get("invoice_id") or auth.invoice_id
        )
        self.captures[capture.id] = capture
        self.orders[auth.order_id].capture_ids.append(capture.id)
        auth.captured += amount.value
        auth.status = "CAPTURED" if final or auth.captured >= auth.amount.value else "PARTIALLY_CAPTURED"
        auth.update_time = now()
        self._on_event("PAYMENT.CAPTURE.COMPLETED", capture)
        return capture

    def void_authorization(self, authorization_id: str) -> Authorization:
        auth = self.authorization(authorization_id)
        if auth.status == "VOIDED":
            raise api_error(422, "PREVIOUSLY_VOIDED")
        if auth.status in ("CAPTURED", "PARTIALLY_CAPTURED"):
            raise api_error(422, "PREVIOUSLY_CAPTURED")
        auth.status, auth.update_time = "VOIDED", now()
        self._on_event("PAYMENT.AUTHORIZATION.VOIDED", auth)
        return auth

    def reauthorize(self, authorization_id: str, body: Any) -> Authorization:
        old = self.authorization(authorization_id)
        if old.status != "CREATED":
            raise api_error(422, "REAUTHORIZATION_NOT_ALLOWED" if old.status != "VOIDED" else "AUTHORIZATION_VOIDED")
        amount = Amount.parse(body["amount"], "/amount") if isinstance(body, dict) and "amount" in body else old.amount
        auth = Authorization(new_id(), old.order_id, amount, old.custom_id, old.invoice_id)
        self.authorizations[auth.id] = auth
        self.orders[old.order_id].authorization_ids.append(auth.id)
        return auth

    def refund(self, capture_id: str, body: Any) -> Refund:
        capture = self.capture(capture_id)
        body = body if isinstance(body, dict) else {}
        remaining = capture.amount.value - capture.refunded
        if remaining <= 0:
            raise api_error(422, "CAPTURE_FULLY_REFUNDED")
        amount = (
            Amount.parse(body["amount"], "/amount") if "amount" in body else Amount(capture.amount.currency, remaining)
        )
        if amount.currency != capture.amount.currency:
            raise api_error(422, "REFUND_CAPTURE_CURRENCY_MISMATCH", field="/amount/currency_code")
        if amount.value > remaining:
            raise api_error(422, "REFUND_AMOUNT_EXCEEDED", field="/amount/value", value=body["amount"]["value"])
        refund = Refund(
            new_id(),
            capture.id,
            capture.order_id,
            amount,
            body.get("invoice_id"),
            body.get("note_to_payer"),
            body.get("custom_id"),
        )
        self.refunds[refund.id] = refund
        self.orders[capture.order_id].refund_ids.append(refund.id)
        capture.refunded += amount.value
        capture.status = "REFUNDED" if capture.refunded >= capture.amount.value else "PARTIALLY_REFUNDED"
        capture.update_time = now()
        self._on_event("PAYMENT.CAPTURE.REFUNDED", refund)
        return refund
