"""Adyen's failures (SDK exceptions carrying a `ServiceError` body, transport errors) mapped onto
`gateways.errors`.

Adyen's error body is `{status, errorCode, message, errorType, pspReference}`; the errorCode, errorType and
pspReference go into `detail` for operators. A refusal is not an error at Adyen: it is a 200 answer with
`resultCode` Refused (see `transformers.py`).
"""

from __future__ import annotations

import json
from typing import Any, Final

import requests
import urllib3
from Adyen.exceptions import AdyenError

from gateways.errors import (
    GatewayConfigurationError,
    GatewayError,
    GatewayIdempotencyConflict,
    GatewayNotAttempted,
    GatewayUnavailable,
    InvalidGatewayRequest,
)

# errorCode 704: the Idempotency-Key is in use (a concurrent call, or one with another body).
_IDEMPOTENCY_CONFLICT: Final = "704"


def error_body(exc: AdyenError) -> dict[str, Any]:
    try:
        body = json.loads(exc.raw_response or "")
    except (TypeError, ValueError):
        return {}
    return body if isinstance(body, dict) else {}


def translate(exc: BaseException, *, reference: str | None) -> GatewayError:
    """The `gateways.errors` exception for one failed Adyen call."""
    if _never_connected(exc):
        return GatewayNotAttempted(
            "The payment provider is unreachable.", detail=f"adyen connect: {exc!r}", reference=reference
        )
    if isinstance(exc, requests.exceptions.Timeout):
        return GatewayUnavailable(
            "The payment provider did not answer in time.",
            detail=f"adyen timeout: {exc!r}; it may have acted: retry with the same Idempotency-Key",
            reference=reference,
        )
    if not isinstance(exc, AdyenError):
        return GatewayUnavailable(
            "The payment provider is unavailable.", detail=f"adyen transport: {exc!r}", reference=reference
        )
    return _from_answer(exc, reference)


def _from_answer(exc: AdyenError, reference: str | None) -> GatewayError:
    """An error Adyen answered (a `ServiceError` body, or none)."""
    status = int(exc.status_code) if str(exc.status_code).isdigit() else 0
    body = error_body(exc)
    code = str(body.get("errorCode") or exc.error_code or "")
    detail = (
        f"adyen {status} errorCode={code} errorType={body.get('errorType', '-')} "
        f"pspReference={body.get('pspReference', '-')}: {body.get('message', exc.message)}"
    )
    if status in (401, 403):
        return GatewayConfigurationError("The payment provider is unavailable.", detail=detail, reference=reference)
    if status == 429:
        return GatewayNotAttempted("The payment provider is busy.", detail=detail, reference=reference)
    if code == _IDEMPOTENCY_CONFLICT:
        return GatewayIdempotencyConflict(
            "This request was already made with other details.", detail=detail, reference=reference
        )
    if status == 0 or status >= 500:
        return GatewayUnavailable("The payment provider is unavailable.", detail=detail, reference=reference)
    return InvalidGatewayRequest("The payment provider refused the request.", detail=detail, reference=reference)


def _never_connected(exc: BaseException) -> bool:
    """No connection was made (refused, DNS failure, connect timeout), so the request was never sent."""
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return True
    if not isinstance(exc, requests.exceptions.ConnectionError):
        return False
    reason = getattr(exc.args[0], "reason", None) if exc.args else None
    return isinstance(reason, urllib3.exceptions.NewConnectionError)
