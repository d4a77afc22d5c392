"""Expected failures of a use case, with the stable codes clients program against."""

from __future__ import annotations

from enum import StrEnum


class ErrorCode(StrEnum):
    CARD_DECLINED = "CARD_DECLINED"
    INSUFFICIENT_FUNDS = "INSUFFICIENT_FUNDS"
    EXPIRED_CARD = "EXPIRED_CARD"
    PROCESSING_ERROR = "PROCESSING_ERROR"
    AUTHENTICATION_REQUIRED = "AUTHENTICATION_REQUIRED"
    GATEWAY_UNAVAILABLE = "GATEWAY_UNAVAILABLE"
    IDEMPOTENCY_CONFLICT = "IDEMPOTENCY_CONFLICT"
    INVALID_INPUT = "INVALID_INPUT"
    NOT_FOUND = "NOT_FOUND"
    FORBIDDEN = "FORBIDDEN"
    UNAUTHENTICATED = "UNAUTHENTICATED"
    RATE_LIMITED = "RATE_LIMITED"
    ALREADY_PAID = "ALREADY_PAID"
    PAYMENT_IN_PROGRESS = "PAYMENT_IN_PROGRESS"
    INVALID_STATE = "INVALID_STATE"
    NOT_SUPPORTED = "NOT_SUPPORTED"
    # A service the server needs (Redis) cannot be reached: retry shortly, with the same idempotency key.
    SERVICE_UNAVAILABLE = "SERVICE_UNAVAILABLE"


class UseCaseError(Exception):
    """An expected failure: shown to the client as a user error, never as a stack trace."""

    def __init__(self, code: ErrorCode, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.field = field
