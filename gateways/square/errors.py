"""Square SDK failures → PayQL's gateway error taxonomy (`gateways.errors`); nothing else leaves the adapter.

| Square answer (`ApiError`) or transport failure           | PayQL error                   |
|-----------------------------------------------------------|-------------------------------|
| category PAYMENT_METHOD_ERROR (a decline, HTTP 400/402)   | `PaymentDeclined`             |
| code IDEMPOTENCY_KEY_REUSED                               | `GatewayIdempotencyConflict`  |
| 401/403, category AUTHENTICATION_ERROR                    | `GatewayConfigurationError`   |
| 429 RATE_LIMITED; no connection made                      | `GatewayNotAttempted`         |
| 408/409, 5xx, timeouts, dropped connections, garbled body | `GatewayUnavailable`          |
| any other 4xx (INVALID_REQUEST_ERROR, REFUND_ERROR, ...)  | `InvalidGatewayRequest`       |

`GatewayUnavailable` means the outcome is unknown: the caller reads back, or retries with the same key. `detail`
carries Square's own words for operators; `message` is safe for shoppers.
"""

from __future__ import annotations

from collections.abc import Awaitable, Mapping
from typing import Any, Final, TypeVar

import httpx
from square.core.api_error import ApiError

from gateways.errors import (
    GatewayConfigurationError,
    GatewayError,
    GatewayIdempotencyConflict,
    GatewayNotAttempted,
    GatewayUnavailable,
    InvalidGatewayRequest,
    PaymentDeclined,
)
from gateways.square.transformers import decline_code

_T = TypeVar("_T")

_SAFE_MESSAGES: Final[Mapping[str, str]] = {
    "REFUND_AMOUNT_INVALID": "The refund is more than what is left to refund.",
    "REFUND_ALREADY_PENDING": "A refund of this payment is still pending; try again once it has completed.",
    "REFUND_ERROR_PAYMENT_NEEDS_COMPLETION": "The payment is not captured yet: cancel it instead.",
    "PAYMENT_NOT_REFUNDABLE": "This payment can no longer be refunded.",
    "PAYMENT_NOT_REFUNDABLE_DUE_TO_DISPUTE": "This payment is disputed and cannot be refunded.",
    "NOT_FOUND": "The payment provider does not know this payment.",
    "CARD_TOKEN_USED": "This card entry was already used; please enter the card again.",
    "CARD_TOKEN_EXPIRED": "This card entry has expired; please enter the card again.",
}


async def translated(call: Awaitable[_T], *, reference: str | None = None) -> _T:
    """Await an SDK call, turning its failures into `gateways.errors`."""
    try:
        return await call
    except GatewayError:
        raise
    except (ApiError, httpx.HTTPError) as exc:
        raise gateway_error(exc, reference=reference) from exc


def gateway_error(exc: ApiError | httpx.HTTPError, *, reference: str | None = None) -> GatewayError:
    if isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout):
        # No connection was made (refused, DNS failure, connect timeout): the request was never sent.
        return GatewayNotAttempted(
            "The payment provider is unreachable.", detail=f"square: {exc!r}", reference=reference
        )
    if isinstance(exc, httpx.HTTPError):
        return GatewayUnavailable(
            "The payment provider did not answer.",
            detail=f"square transport: {exc!r}; outcome unknown: read it back, or retry with the same key",
            reference=reference,
        )
    status = exc.status_code or 0
    body = exc.body if isinstance(exc.body, Mapping) else {}
    error = first_error(body)
    category, code = _str(error, "category"), _str(error, "code")
    detail = f"square {status} {category} {code} field={_str(error, 'field') or '-'}: {_str(error, 'detail')}"
    if category == "PAYMENT_METHOD_ERROR":
        payment = body.get("payment")
        failed = payment.get("id") if isinstance(payment, Mapping) else None
        return PaymentDeclined(
            "The card was declined.",
            decline_code=decline_code(code),
            detail=detail,
            reference=failed if isinstance(failed, str) else reference,
        )
    if code == "IDEMPOTENCY_KEY_REUSED":
        return GatewayIdempotencyConflict(
            "This request was already made with different details.", detail=detail, reference=reference
        )
    if status in (401, 403) or category == "AUTHENTICATION_ERROR":
        return GatewayConfigurationError(
            "Payments are temporarily unavailable.",
            detail=f"Square refused our access token or its permissions. {detail}",
            reference=reference,
        )
    if status == 429 or category == "RATE_LIMIT_ERROR":
        return GatewayNotAttempted(
            "The payment provider is busy; please try again.", detail=f"rate limited. {detail}", reference=reference
        )
    if status in (408, 409) or status >= 500 or not error:
        return GatewayUnavailable(
            "The payment provider is unavailable.",
            detail=f"outcome unknown: read it back, or retry with the same key. {detail}",
            reference=reference,
        )
    message = _SAFE_MESSAGES.get(code, "The payment provider refused the request.")
    return InvalidGatewayRequest(message, detail=detail, reference=reference)


def first_error(body: Mapping[str, Any]) -> Mapping[str, Any]:
    errors = body.get("errors")
    if isinstance(errors, list) and errors and isinstance(errors[0], Mapping):
        return errors[0]
    return {}


def _str(error: Mapping[str, Any], key: str) -> str:
    value = error.get(key)
    return value if isinstance(value, str) else ""
