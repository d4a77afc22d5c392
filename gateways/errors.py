"""The one error taxonomy every gateway adapter raises; vendor errors are wrapped into these."""

from __future__ import annotations


class GatewayError(Exception):
    """Base class. `message` is safe to show a shopper; `detail` is for operators' logs only."""

    code = "GATEWAY_ERROR"

    def __init__(self, message: str, *, detail: str = "", reference: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.detail = detail
        self.reference = reference


class PaymentDeclined(GatewayError):
    """The issuer or gateway refused the payment; `decline_code` is normalized (see DECLINE_CODES)."""

    code = "CARD_DECLINED"

    def __init__(self, message: str, *, decline_code: str, detail: str = "", reference: str | None = None) -> None:
        super().__init__(message, detail=detail, reference=reference)
        self.decline_code = decline_code


class CustomerActionRequired(GatewayError):
    """The customer must act (e.g. 3-D Secure) before the payment can go on."""

    code = "AUTHENTICATION_REQUIRED"


class GatewayUnavailable(GatewayError):
    """Timeout, connection failure, rate limit or 5xx: the outcome is unknown until read back.

    Retry with the same idempotency key; never assume nothing happened.
    """

    code = "GATEWAY_UNAVAILABLE"


class GatewayNotAttempted(GatewayUnavailable):
    """The gateway refused before accepting the request: nothing was charged (connection refused, DNS
    failure, a 429 or 503 answered before processing, an open circuit).

    The one failure a payment may fail over from to another gateway. An adapter raises it only where its
    SDK tells this apart from an unknown outcome; when in doubt it raises `GatewayUnavailable`.
    """


class GatewayBusy(GatewayNotAttempted):
    """Our own bulkhead refused the call: this process already has as many calls in flight to the gateway as
    it allows (`gateways.bulkhead`). Nothing was sent, so a payment may fail over; says nothing of the
    gateway's health."""


class GatewayTimeout(GatewayUnavailable):
    """Our own per-call timeout ran out (`gateways.call_guard`): the request may have reached the gateway and
    been acted on, so the outcome is unknown, exactly as the SDK's own timeout."""


class DeadlineExceeded(GatewayUnavailable):
    """The request's deadline (`gateways.deadline`) cut the call short, or had passed before it: the outcome
    is unknown (never failed over); says nothing of the gateway's health, only of the time left."""


class InvalidGatewayRequest(GatewayError):
    code = "INVALID_INPUT"


class GatewayIdempotencyConflict(GatewayError):
    """The idempotency key was already used with other parameters."""

    code = "IDEMPOTENCY_CONFLICT"


class NotSupported(GatewayError):
    code = "NOT_SUPPORTED"


class ShopperReturnRejected(GatewayError):
    """Values the SPA sent back from the provider's checkout failed verification (a bad signature, another
    payment's ids): possibly forged, so nothing changes and the attempt is logged as one."""

    code = "INVALID_INPUT"


class GatewayConfigurationError(GatewayError):
    """Bad credentials or setup: an operator must fix it; shoppers only see a generic message."""

    code = "GATEWAY_UNAVAILABLE"


# Normalized decline codes → the stable GraphQL error code shown to clients.
DECLINE_CODES: dict[str, str] = {
    "generic_decline": "CARD_DECLINED",
    "card_declined": "CARD_DECLINED",
    "insufficient_funds": "INSUFFICIENT_FUNDS",
    "expired_card": "EXPIRED_CARD",
    "processing_error": "PROCESSING_ERROR",
    "authentication_required": "AUTHENTICATION_REQUIRED",
}


def client_code_for_decline(decline_code: str) -> str:
    return DECLINE_CODES.get(decline_code, "CARD_DECLINED")


class WebhookRejected(Exception):
    """A delivery that must not be applied: bad or missing signature, stale or future timestamp,
    malformed body. `reason` is for operators' logs; the sender only gets a 4xx."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
