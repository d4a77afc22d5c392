"""PayPal's failures (SDK exceptions, error bodies, transport errors) mapped onto `gateways.errors`.

PayPal's error body is `{name, message, debug_id, details: [{issue, description}], links}` (OAuth failures are
`{error, error_description}`). The `debug_id` and our PayPal-Request-Id go into `detail` for operators.
"""

from __future__ import annotations

import json
from typing import Any, Final

import requests
import urllib3
from apimatic_core.exceptions.auth_validation_exception import AuthValidationException
from paypalserversdk.exceptions.api_exception import ApiException

from gateways.errors import (
    CustomerActionRequired,
    GatewayConfigurationError,
    GatewayError,
    GatewayNotAttempted,
    GatewayUnavailable,
    InvalidGatewayRequest,
    PaymentDeclined,
)

# 422 issues that mean the buyer's funding was refused: shown as a decline.
_DECLINE_ISSUES: Final[dict[str, str]] = {
    "INSTRUMENT_DECLINED": "generic_decline",
    "TRANSACTION_REFUSED": "generic_decline",
    "PAYER_CANNOT_PAY": "generic_decline",
    "DECLINED_DUE_TO_RELATED_TXN": "generic_decline",
    "REDIRECT_PAYER_FOR_ALTERNATE_FUNDING": "generic_decline",
    "PAYER_ACCOUNT_LOCKED_OR_CLOSED": "generic_decline",
    "PAYER_ACCOUNT_RESTRICTED": "generic_decline",
    "REFERENCED_CARD_EXPIRED": "expired_card",
    "TRANSACTION_LIMIT_EXCEEDED": "generic_decline",
    "REFUND_FAILED_INSUFFICIENT_FUNDS": "insufficient_funds",
}
_ACTION_ISSUES: Final = frozenset({"PAYER_ACTION_REQUIRED"})
_REFUND_EXCEEDED: Final = frozenset(
    {
        "REFUND_AMOUNT_EXCEEDED",
        "CAPTURE_FULLY_REFUNDED",
        "REFUND_EXCEEDED_TRANSACTION_AMOUNT",
        "TRANSACTION_ALREADY_REFUNDED",
    }
)


def error_body(exc: ApiException) -> dict[str, Any]:
    text = getattr(exc.response, "text", None) or ""
    try:
        body = json.loads(text)
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def issue_of(body: dict[str, Any]) -> str | None:
    details = body.get("details")
    if isinstance(details, list) and details and isinstance(details[0], dict):
        issue = details[0].get("issue")
        return str(issue) if issue else None
    return None


def translate(exc: BaseException, *, reference: str | None, request_id: str | None) -> GatewayError:
    """The `gateways.errors` exception for one failed PayPal call."""
    suffix = f" request_id={request_id}" if request_id else ""
    if _never_connected(exc):
        return GatewayNotAttempted(
            "The payment provider is unreachable.", detail=f"paypal connect: {exc!r}{suffix}", reference=reference
        )
    if isinstance(exc, requests.exceptions.Timeout):
        return GatewayUnavailable(
            "The payment provider did not answer in time.",
            detail=f"paypal timeout: {exc!r}; it may have acted: read it back, or retry with the same key.{suffix}",
            reference=reference,
        )
    if isinstance(exc, requests.exceptions.RequestException):
        return GatewayUnavailable(
            "The payment provider is unavailable.", detail=f"paypal transport: {exc!r}{suffix}", reference=reference
        )
    if isinstance(exc, AuthValidationException):
        return GatewayConfigurationError(
            "The payment provider is unavailable.", detail=f"paypal oauth: {exc}{suffix}", reference=reference
        )
    if not isinstance(exc, ApiException):
        return GatewayUnavailable(
            "The payment provider is unavailable.", detail=f"paypal: {exc!r}{suffix}", reference=reference
        )
    status = int(exc.response_code)
    body = error_body(exc)
    issue = issue_of(body)
    name = body.get("name") or body.get("error") or ""
    message = body.get("message") or body.get("error_description") or ""
    detail = f"paypal {status} {name} {issue or ''} debug_id={body.get('debug_id', '-')}: {message}{suffix}"
    if status in (401, 403):
        return GatewayConfigurationError("The payment provider is unavailable.", detail=detail, reference=reference)
    if status == 429:
        # Rate limited before processing: nothing was done.
        return GatewayNotAttempted("The payment provider is busy.", detail=detail, reference=reference)
    if status in (408, 409) or status >= 500:
        return GatewayUnavailable("The payment provider is unavailable.", detail=detail, reference=reference)
    if issue in _DECLINE_ISSUES:
        return PaymentDeclined(
            "The payment was declined.", decline_code=_DECLINE_ISSUES[issue], detail=detail, reference=reference
        )
    if issue in _ACTION_ISSUES:
        return CustomerActionRequired(
            "The customer must complete the payment with PayPal.", detail=detail, reference=reference
        )
    # v1 endpoints (sales) put the specific reason in `name` and send no `details`.
    return InvalidGatewayRequest(_safe_message(issue or name, status), detail=detail, reference=reference)


def _safe_message(issue: str | None, status: int) -> str:
    if issue == "ORDER_NOT_APPROVED":
        return "The buyer has not approved the PayPal payment yet."
    if issue in _REFUND_EXCEEDED:
        return "The refund is more than what is left to refund."
    if issue in ("MAX_CAPTURE_AMOUNT_EXCEEDED", "AUTHORIZATION_ALREADY_CAPTURED"):
        return "The capture is more than what is left authorized."
    if status == 404:
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
