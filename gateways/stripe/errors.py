"""Stripe SDK errors → PayQL's gateway error taxonomy (`gateways.errors`); nothing else leaves the adapter.

| Stripe SDK error                                   | PayQL error                   |
|----------------------------------------------------|-------------------------------|
| `CardError` (402)                                  | `PaymentDeclined`             |
| `RateLimitError`, `APIConnectionError`, `APIError` | `GatewayUnavailable`          |
| `AuthenticationError`, `PermissionError`           | `GatewayConfigurationError`   |
| `IdempotencyError`                                 | `GatewayIdempotencyConflict`  |
| `InvalidRequestError`                              | `InvalidGatewayRequest`       |

`GatewayUnavailable` means the outcome is unknown: the caller reads the payment back, or retries with the
same idempotency key. `detail` carries Stripe's own words for operators; `message` is safe for shoppers.
"""

from __future__ import annotations

from collections.abc import Awaitable, Mapping
from typing import Any, TypeVar

import httpx
import stripe

from gateways.errors import (
    GatewayConfigurationError,
    GatewayError,
    GatewayIdempotencyConflict,
    GatewayNotAttempted,
    GatewayUnavailable,
    InvalidGatewayRequest,
    PaymentDeclined,
)
from gateways.stripe.transformers import decline_code

_T = TypeVar("_T")


async def translated(call: Awaitable[_T], *, reference: str | None = None) -> _T:
    """Await an SDK call, turning its failures into `gateways.errors`."""
    try:
        return await call
    except stripe.StripeError as exc:
        raise gateway_error(exc, reference=reference) from exc


def gateway_error(exc: stripe.StripeError, *, reference: str | None = None) -> GatewayError:
    """The PayQL error for one SDK error."""
    body = _error_body(exc)
    detail = _detail(exc, body)
    if isinstance(exc, stripe.CardError):
        intent = body.get("payment_intent")
        intent_id = intent.get("id") if isinstance(intent, Mapping) else None
        code = decline_code(_str(body, "code"), _str(body, "decline_code"))
        return PaymentDeclined(
            _str(body, "message") or "The card was declined.",
            decline_code=code,
            detail=detail,
            reference=intent_id if isinstance(intent_id, str) else reference,
        )
    if isinstance(exc, stripe.IdempotencyError):
        return GatewayIdempotencyConflict(
            "This request was already made with different details.", detail=detail, reference=reference
        )
    if isinstance(exc, stripe.InvalidRequestError):
        return InvalidGatewayRequest("The payment provider refused the request.", detail=detail, reference=reference)
    if isinstance(exc, stripe.AuthenticationError | stripe.PermissionError):
        return GatewayConfigurationError(
            "Payments are temporarily unavailable.",
            detail=f"Stripe refused our credentials or permissions; check the secret key. {detail}",
            reference=reference,
        )
    if isinstance(exc, stripe.RateLimitError):
        # A 429 is answered before the request is processed: nothing was charged.
        return GatewayNotAttempted(
            "The payment provider is busy; please try again.",
            detail=f"rate limited; retry with the same idempotency key. {detail}",
            reference=reference,
        )
    if isinstance(exc, stripe.APIConnectionError) and isinstance(
        exc.__cause__, httpx.ConnectError | httpx.ConnectTimeout
    ):
        # No connection was made (refused, DNS failure, connect timeout): the request was never sent.
        return GatewayNotAttempted(
            "The payment provider is unreachable.", detail=f"not sent: {detail}", reference=reference
        )
    # APIConnectionError (a timeout or a dropped connection after sending), APIError (5xx, 409 lock
    # timeouts, garbled answers) and anything newer: Stripe may or may not have acted.
    return GatewayUnavailable(
        "The payment provider is unavailable.",
        detail=f"outcome unknown: read it back, or retry with the same idempotency key. {detail}",
        reference=reference,
    )


def _error_body(exc: stripe.StripeError) -> Mapping[str, Any]:
    body = exc.json_body
    error = body.get("error") if isinstance(body, Mapping) else None
    return error if isinstance(error, Mapping) else {}


def _detail(exc: stripe.StripeError, body: Mapping[str, Any]) -> str:
    parts = [f"stripe {type(exc).__name__}", f"http {exc.http_status}"]
    for key in ("type", "code", "decline_code", "param", "message"):
        value = _str(body, key)
        if value:
            parts.append(f"{key}={value}")
    if not _str(body, "message") and exc.user_message:
        parts.append(f"message={exc.user_message}")
    if exc.request_id:
        parts.append(f"request_id={exc.request_id}")
    return "; ".join(parts)


def _str(body: Mapping[str, Any], key: str) -> str | None:
    value = body.get(key)
    return value if isinstance(value, str) and value else None
