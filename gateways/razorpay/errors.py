"""Razorpay's failures onto `gateways.errors`.

An error answer is `{"error": {"code", "description", "field", "source", "step", "reason", "metadata"}}` with an
HTTP status (400 for a bad request, an unknown id or an invalid state; 401 for bad keys; 5xx for Razorpay's own
trouble). The SDK raises `BadRequestError`/`GatewayError`/`ServerError` with the description only; the status
and body come from the answer `client.py` attaches. Declines never come back from an API call (the shopper pays
in Checkout): they are read from a failed payment's `error_reason` (`decline_code`).
"""

from __future__ import annotations

import json
from typing import Any, Final

import requests
import urllib3

from gateways.errors import (
    GatewayConfigurationError,
    GatewayError,
    GatewayNotAttempted,
    GatewayUnavailable,
    InvalidGatewayRequest,
)

# A failed payment's `error_reason` (Razorpay's documented reasons) → our normalized decline code.
_DECLINE_REASONS: Final = {
    "insufficient_funds": "insufficient_funds",
    "insufficient_balance": "insufficient_funds",
    "card_expired": "expired_card",
    "authentication_failed": "authentication_required",
    "card_not_enrolled": "authentication_required",
}


def decline_code(error_reason: str | None) -> str:
    """The normalized decline code of a failed payment's `error_reason`; any other reason is a generic decline."""
    return _DECLINE_REASONS.get(error_reason or "", "generic_decline")


def error_body(response: requests.Response | None) -> dict[str, Any]:
    if response is None:
        return {}
    try:
        body = json.loads(response.text)
    except ValueError:
        return {}
    error = body.get("error") if isinstance(body, dict) else None
    return error if isinstance(error, dict) else {}


def translate(exc: BaseException, *, reference: str | None) -> GatewayError:
    """The `gateways.errors` exception for one failed Razorpay call."""
    if _never_connected(exc):
        return GatewayNotAttempted(
            "The payment provider is unreachable.", detail=f"razorpay connect: {exc!r}", reference=reference
        )
    if isinstance(exc, requests.exceptions.Timeout):
        return GatewayUnavailable(
            "The payment provider did not answer in time.",
            detail=f"razorpay timeout: {exc!r}; it may have acted: read it back before retrying",
            reference=reference,
        )
    response: requests.Response | None = getattr(exc, "payql_response", None)
    if response is None or isinstance(exc, requests.exceptions.RequestException):
        return GatewayUnavailable(
            "The payment provider is unavailable.", detail=f"razorpay: {exc!r}", reference=reference
        )
    status = response.status_code
    error = error_body(response)
    detail = (
        f"razorpay {status} {error.get('code', '-')} reason={error.get('reason', '-')} "
        f"field={error.get('field', '-')}: {error.get('description', exc)}"
    )
    if status == 401:
        return GatewayConfigurationError("The payment provider is unavailable.", detail=detail, reference=reference)
    if status == 429:
        # Rate limited before processing: nothing was done.
        return GatewayNotAttempted("The payment provider is busy.", detail=detail, reference=reference)
    if status >= 500 or status in (408, 409) or error.get("code") in ("GATEWAY_ERROR", "SERVER_ERROR"):
        return GatewayUnavailable("The payment provider is unavailable.", detail=detail, reference=reference)
    return InvalidGatewayRequest(_safe_message(error), detail=detail, reference=reference)


def _safe_message(error: dict[str, Any]) -> str:
    description = str(error.get("description") or "")
    if "refund amount" in description or "fully refunded" in description:
        return "The refund is more than what is left to refund."
    if "already been captured" in description:
        return "The payment is already captured."
    if "does not exist" in description:
        return "The payment provider does not know this payment."
    return "The payment provider refused the request."


def _never_connected(exc: BaseException) -> bool:
    """No connection was made (refused, DNS failure, connect timeout), so the request was never sent; a
    connection dropped after sending is an unknown outcome instead."""
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return True
    if not isinstance(exc, requests.exceptions.ConnectionError):
        return False
    reason = getattr(exc.args[0], "reason", None) if exc.args else None
    return isinstance(reason, urllib3.exceptions.NewConnectionError)
