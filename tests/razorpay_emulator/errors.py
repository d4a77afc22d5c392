"""Razorpay's error bodies: `{"error": {"code", "description", "field", "source", "step", "reason", "metadata"}}`,
as the API reference and the SDK's `tests/mocks/bad_request_error.json` spell them."""

from __future__ import annotations

from typing import Any


class RazorpayError(Exception):
    """An error answer: `status` and the JSON body Razorpay would send."""

    def __init__(
        self,
        status: int,
        description: str,
        *,
        code: str = "BAD_REQUEST_ERROR",
        field: str | None = None,
        reason: str = "input_validation_failed",
        source: str = "business",
        step: str = "payment_initiation",
        metadata: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(description)
        self.status = status
        self.body: dict[str, Any] = {
            "error": {
                "code": code,
                "description": description,
                "source": source,
                "step": step,
                "reason": reason,
                "metadata": metadata or {},
                "field": field,
            }
        }


def bad_request(
    description: str, *, field: str | None = None, reason: str = "input_validation_failed"
) -> RazorpayError:
    return RazorpayError(400, description, field=field, reason=reason)


def not_found(description: str = "The id provided does not exist") -> RazorpayError:
    return RazorpayError(400, description, field="id", reason="NA", source="NA", step="NA")


def unauthorized() -> RazorpayError:
    return RazorpayError(401, "The api key provided is invalid", reason="NA", source="NA", step="NA")


def server_error(status: int) -> RazorpayError:
    return RazorpayError(
        status,
        "We are facing some trouble completing your request at the moment.",
        code="SERVER_ERROR",
        reason="NA",
        source="NA",
        step="NA",
    )
