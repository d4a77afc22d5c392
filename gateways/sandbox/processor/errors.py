"""The sandbox processor's own failures, the way a vendor SDK has its own exception classes.

Only the adapter (`gateways/sandbox/error_translation.py`) and `routes.py` catch these and turn them into
PayQL's `gateways.errors` or HTTP answers. A message here may reach a shopper, so it must never contain a card
number or a CVC.
"""

from __future__ import annotations

from collections.abc import Mapping


class SandboxError(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class SandboxInvalidRequest(SandboxError):
    """The request was refused before anything changed; `code` is Stripe-like (`resource_missing`…)."""

    def __init__(self, message: str, *, code: str) -> None:
        super().__init__(message)
        self.code = code


class SandboxCardDeclined(SandboxError):
    """The charge was declined; the declined payment intent exists and is `payment_intent_id`."""

    def __init__(self, message: str, *, payment_intent_id: str, decline_code: str) -> None:
        super().__init__(message)
        self.payment_intent_id = payment_intent_id
        self.decline_code = decline_code

    def to_dict(self) -> dict[str, object]:
        return {
            "type": "card_error",
            "code": "card_declined",
            "decline_code": self.decline_code,
            "message": self.message,
            "payment_intent": self.payment_intent_id,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> SandboxCardDeclined:
        return cls(
            str(data["message"]),
            payment_intent_id=str(data["payment_intent"]),
            decline_code=str(data["decline_code"]),
        )


class SandboxIdempotencyError(SandboxError):
    """The idempotency key was first used with other parameters."""


class SandboxUnavailable(SandboxError):
    """The processor did nothing: an armed `unavailable` fault, or the state file could not be used."""


class SandboxTimeout(SandboxError):
    """An armed `timeout` fault: the operation was committed, then its answer was lost."""
