"""Braintree's failures mapped onto `gateways.errors`: the SDK's exceptions (HTTP status and transport errors) and
the validation errors of an `ErrorResult` (a 422 api-error-response without a transaction).

A decline is not an error here: a declined sale is a transaction (see `transformers.py`). Only failures that
certainly happened before Braintree accepted the request (no connection made, 429, 503) are `GatewayNotAttempted`;
a timeout or a dropped connection after sending is `GatewayUnavailable`: the outcome is unknown until read back.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from urllib3.exceptions import NewConnectionError

from gateways.braintree.sdk import braintree
from gateways.errors import (
    GatewayConfigurationError,
    GatewayError,
    GatewayNotAttempted,
    GatewayUnavailable,
    InvalidGatewayRequest,
)

_sdk_errors = braintree.exceptions
AuthenticationError = _sdk_errors.authentication_error.AuthenticationError
AuthorizationError = _sdk_errors.authorization_error.AuthorizationError
SdkConnectionError = _sdk_errors.http.connection_error.ConnectionError
ConnectTimeoutError = _sdk_errors.http.timeout_error.ConnectTimeoutError
NotFoundError = _sdk_errors.not_found_error.NotFoundError
ServiceUnavailableError = _sdk_errors.service_unavailable_error.ServiceUnavailableError
TooManyRequestsError = _sdk_errors.too_many_requests_error.TooManyRequestsError
UpgradeRequiredError = _sdk_errors.upgrade_required_error.UpgradeRequiredError

_UNAVAILABLE = "The payment provider did not answer. Retry later."

# Validation codes that mean "this payment method cannot be used" (shown to the shopper as such).
NONCE_PROBLEMS = frozenset({"91564", "91565", "91566", "91567", "91569", "81715"})


def translate(exc: BaseException, *, reference: str | None = None) -> GatewayError:
    name = type(exc).__name__
    if isinstance(exc, NotFoundError):
        return InvalidGatewayRequest(
            "The payment provider does not know this object.", detail=str(exc), reference=reference
        )
    if isinstance(exc, AuthenticationError | AuthorizationError | UpgradeRequiredError):
        return GatewayConfigurationError(
            "The payment provider refused our credentials.",
            detail=f"braintree {name}: check the key pair",
            reference=reference,
        )
    if isinstance(exc, TooManyRequestsError | ServiceUnavailableError | ConnectTimeoutError) or _never_connected(exc):
        return GatewayNotAttempted(
            _UNAVAILABLE, detail=f"braintree {name}: refused before processing", reference=reference
        )
    return GatewayUnavailable(_UNAVAILABLE, detail=f"braintree {name}: {exc}; read it back", reference=reference)


def _never_connected(exc: BaseException) -> bool:
    """A connection error whose cause is a connection that was never made (refused, no route, DNS)."""
    if not isinstance(exc, SdkConnectionError):
        return False
    pending: list[BaseException] = [exc]
    visited: set[int] = set()
    while pending:
        current = pending.pop()
        if id(current) in visited:
            continue
        visited.add(id(current))
        if isinstance(current, NewConnectionError | ConnectionRefusedError):
            return True
        pending.extend(arg for arg in current.args if isinstance(arg, BaseException))
        pending.extend(cause for cause in (current.__cause__, current.__context__) if cause is not None)
    return False


def validation_errors(result: Any) -> Iterator[tuple[str, str]]:
    """(code, message) of every validation error of an ErrorResult, nested ones included."""
    for error in result.errors.deep_errors:
        yield str(error.code), str(error.message)


def refused(result: Any, *, reference: str | None, action: str) -> InvalidGatewayRequest:
    """An ErrorResult without a transaction: Braintree refused the request as invalid."""
    errors = list(validation_errors(result))
    codes = ",".join(code for code, _ in errors)
    message = errors[0][1] if errors else str(getattr(result, "message", "") or "Refused.")
    return InvalidGatewayRequest(
        f"The payment provider refused the {action}: {message}",
        detail=f"braintree {action} refused: {codes}",
        reference=reference,
    )
