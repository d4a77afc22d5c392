"""Square's error bodies: `{"errors": [{"category", "code", "detail", "field"}]}` (the `Error` object of
Square's connect-api-specification, api.json), with the HTTP status Square answers them with."""

from __future__ import annotations

from typing import Any


class SquareError(Exception):
    """An error answer: `status` and one `Error` object; `payment` rides along where CreatePayment adds it."""

    def __init__(
        self,
        status: int,
        category: str,
        code: str,
        detail: str,
        *,
        field: str | None = None,
        payment: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(f"{status} {code}: {detail}")
        self.status = status
        self.error: dict[str, Any] = {"category": category, "code": code, "detail": detail}
        if field is not None:
            self.error["field"] = field
        self.payment = payment

    @property
    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"errors": [self.error]}
        if self.payment is not None:
            body["payment"] = self.payment
        return body


def invalid(code: str, detail: str, *, field: str | None = None) -> SquareError:
    return SquareError(400, "INVALID_REQUEST_ERROR", code, detail, field=field)


def not_found(kind: str, identifier: str) -> SquareError:
    return SquareError(404, "INVALID_REQUEST_ERROR", "NOT_FOUND", f"Could not find {kind} with id: {identifier}")


def unauthorized() -> SquareError:
    return SquareError(
        401,
        "AUTHENTICATION_ERROR",
        "UNAUTHORIZED",
        "This request could not be authorized.",
    )


def server_error(status: int) -> SquareError:
    codes = {429: ("RATE_LIMIT_ERROR", "RATE_LIMITED"), 503: ("API_ERROR", "SERVICE_UNAVAILABLE")}
    category, code = codes.get(status, ("API_ERROR", "INTERNAL_SERVER_ERROR"))
    return SquareError(
        status, category, code, "An internal error has occurred, and the API was unable to service your request."
    )
