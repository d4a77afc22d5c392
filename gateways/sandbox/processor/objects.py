"""The sandbox processor's own objects: payment intents, refunds, card tokens, idempotency records.

These are the processor's wire shapes (Stripe-like dicts through `to_dict`), not PayQL's: mapping onto
`gateways.types` happens only in the adapter's `transformers.py`. Objects are immutable snapshots and a state
change makes a new one. A card number or CVC must never become a field here.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from gateways.sandbox.processor.test_methods import CardBehaviour

JsonDict = dict[str, object]


class IntentStatus(StrEnum):
    REQUIRES_PAYMENT_METHOD = "requires_payment_method"  # declined, or 3-D Secure failed
    REQUIRES_ACTION = "requires_action"
    PROCESSING = "processing"
    REQUIRES_CAPTURE = "requires_capture"
    SUCCEEDED = "succeeded"
    CANCELED = "canceled"


class CaptureMode(StrEnum):
    AUTOMATIC = "automatic"
    MANUAL = "manual"


REFUND_SUCCEEDED = "succeeded"
REFUND_FAILED = "failed"


def new_id(prefix: str) -> str:
    return f"{prefix}_sbx_{secrets.token_hex(12)}"


def new_client_secret(payment_intent_id: str) -> str:
    return f"{payment_intent_id}_secret_{secrets.token_hex(12)}"


def make_event(event_type: str, obj: JsonDict, created: int) -> JsonDict:
    return {
        "id": new_id("evt"),
        "object": "event",
        "type": event_type,
        "created": created,
        "livemode": False,
        "data": {"object": obj},
    }


@dataclass(frozen=True, slots=True)
class SandboxPaymentIntent:
    id: str
    amount: int
    currency: str
    status: IntentStatus
    capture_method: CaptureMode
    payment_method: str
    client_secret: str
    created: int
    amount_capturable: int = 0
    amount_received: int = 0
    amount_refunded: int = 0
    description: str = ""
    return_url: str | None = None
    customer: str | None = None
    metadata: Mapping[str, str] = field(default_factory=dict)
    decline_code: str | None = None
    decline_message: str | None = None
    canceled_at: int | None = None
    invoice: str | None = None  # the billing engine's invoice this intent collects

    def to_dict(self) -> JsonDict:
        error: JsonDict | None = None
        if self.decline_code is not None:
            error = {
                "type": "card_error",
                "code": "card_declined",
                "decline_code": self.decline_code,
                "message": self.decline_message,
            }
        return {
            "id": self.id,
            "object": "payment_intent",
            "amount": self.amount,
            "amount_capturable": self.amount_capturable,
            "amount_received": self.amount_received,
            "amount_refunded": self.amount_refunded,
            "currency": self.currency,
            "status": self.status.value,
            "capture_method": self.capture_method.value,
            "payment_method": self.payment_method,
            "client_secret": self.client_secret,
            "created": self.created,
            "canceled_at": self.canceled_at,
            "description": self.description,
            "return_url": self.return_url,
            "customer": self.customer,
            "metadata": dict(self.metadata),
            "last_payment_error": error,
            "invoice": self.invoice,
            "livemode": False,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> SandboxPaymentIntent:
        error = _opt_dict(data, "last_payment_error")
        return cls(
            id=_str(data, "id"),
            amount=_int(data, "amount"),
            currency=_str(data, "currency"),
            status=IntentStatus(_str(data, "status")),
            capture_method=CaptureMode(_str(data, "capture_method")),
            payment_method=_str(data, "payment_method"),
            client_secret=_str(data, "client_secret"),
            created=_int(data, "created"),
            amount_capturable=_int(data, "amount_capturable"),
            amount_received=_int(data, "amount_received"),
            amount_refunded=_int(data, "amount_refunded"),
            description=_str(data, "description"),
            return_url=_opt_str(data, "return_url"),
            customer=_opt_str(data, "customer"),
            metadata=_str_map(data, "metadata"),
            decline_code=None if error is None else _str(error, "decline_code"),
            decline_message=None if error is None else _str(error, "message"),
            canceled_at=_opt_int(data, "canceled_at"),
            invoice=_opt_str(data, "invoice"),
        )


@dataclass(frozen=True, slots=True)
class SandboxRefund:
    id: str
    payment_intent: str
    amount: int
    currency: str
    status: str
    created: int
    reason: str = ""

    def to_dict(self) -> JsonDict:
        return {
            "id": self.id,
            "object": "refund",
            "payment_intent": self.payment_intent,
            "amount": self.amount,
            "currency": self.currency,
            "status": self.status,
            "reason": self.reason,
            "created": self.created,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> SandboxRefund:
        return cls(
            id=_str(data, "id"),
            payment_intent=_str(data, "payment_intent"),
            amount=_int(data, "amount"),
            currency=_str(data, "currency"),
            status=_str(data, "status"),
            created=_int(data, "created"),
            reason=_str(data, "reason"),
        )


@dataclass(frozen=True, slots=True)
class SandboxCardToken:
    """A tokenized test card: what it does when charged, never the number it was made from."""

    id: str
    behaviour: CardBehaviour
    exp_month: int
    exp_year: int
    created: int

    def to_dict(self) -> JsonDict:
        return {
            "id": self.id,
            "object": "payment_method",
            "brand": self.behaviour.brand,
            "last4": self.behaviour.last4,
            "exp_month": self.exp_month,
            "exp_year": self.exp_year,
            "decline_code": self.behaviour.decline_code,
            "requires_authentication": self.behaviour.requires_authentication,
            "created": self.created,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> SandboxCardToken:
        behaviour = CardBehaviour(
            brand=_str(data, "brand"),
            last4=_str(data, "last4"),
            decline_code=_opt_str(data, "decline_code"),
            requires_authentication=_bool(data, "requires_authentication"),
        )
        return cls(
            id=_str(data, "id"),
            behaviour=behaviour,
            exp_month=_int(data, "exp_month"),
            exp_year=_int(data, "exp_year"),
            created=_int(data, "created"),
        )


@dataclass(frozen=True, slots=True)
class IdempotencyRecord:
    """The first outcome of a key: the object answered (`response`) or the decline raised (`error`)."""

    key: str
    fingerprint: str
    created: int
    response: JsonDict | None = None
    error: JsonDict | None = None

    def to_dict(self) -> JsonDict:
        return {
            "key": self.key,
            "fingerprint": self.fingerprint,
            "created": self.created,
            "response": self.response,
            "error": self.error,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> IdempotencyRecord:
        return cls(
            key=_str(data, "key"),
            fingerprint=_str(data, "fingerprint"),
            created=_int(data, "created"),
            response=_opt_dict(data, "response"),
            error=_opt_dict(data, "error"),
        )


# Strict readers for dicts coming back from the state file: a wrong type is a corrupt file, not a guess.


def _int(data: Mapping[str, object], key: str) -> int:
    value = data[key]
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{key} must be an int")
    return value


def _opt_int(data: Mapping[str, object], key: str) -> int | None:
    return None if data.get(key) is None else _int(data, key)


def _bool(data: Mapping[str, object], key: str) -> bool:
    value = data[key]
    if not isinstance(value, bool):
        raise ValueError(f"{key} must be a boolean")
    return value


def _str(data: Mapping[str, object], key: str) -> str:
    value = data[key]
    if not isinstance(value, str):
        raise ValueError(f"{key} must be a string")
    return value


def _opt_str(data: Mapping[str, object], key: str) -> str | None:
    return None if data.get(key) is None else _str(data, key)


def _opt_dict(data: Mapping[str, object], key: str) -> JsonDict | None:
    value = data.get(key)
    if value is None:
        return None
    if not isinstance(value, dict):
        raise ValueError(f"{key} must be an object")
    return {str(k): v for k, v in value.items()}


def _str_map(data: Mapping[str, object], key: str) -> dict[str, str]:
    value = _opt_dict(data, key) or {}
    if not all(isinstance(v, str) for v in value.values()):
        raise ValueError(f"{key} values must be strings")
    return {k: str(v) for k, v in value.items()}
