"""PayPal's error bodies, as the OpenAPI descriptions in `../shared/reference/paypal` (from the root) spell them."""

from __future__ import annotations

import secrets
from typing import Any

_NAMES: dict[int, tuple[str, str]] = {
    400: ("INVALID_REQUEST", "Request is not well-formed, syntactically incorrect, or violates schema."),
    403: ("NOT_AUTHORIZED", "Authorization failed due to insufficient permissions."),
    404: ("RESOURCE_NOT_FOUND", "The specified resource does not exist."),
    409: ("RESOURCE_CONFLICT", "The server has detected a conflict while processing this request."),
    422: (
        "UNPROCESSABLE_ENTITY",
        "The requested action could not be performed, semantically incorrect, or failed business validation.",
    ),
    429: ("RATE_LIMIT_REACHED", "Too many requests. Blocked due to rate limiting."),
    500: ("INTERNAL_SERVER_ERROR", "An internal server error occurred."),
    502: ("BAD_GATEWAY", "Bad Gateway."),
    503: ("SERVICE_UNAVAILABLE", "Service Unavailable."),
    504: ("GATEWAY_TIMEOUT", "Gateway Timeout."),
}

# The `description` PayPal sends with each `issue` the emulator can raise.
DESCRIPTIONS: dict[str, str] = {
    "ORDER_NOT_APPROVED": "Payer has not yet approved the Order for payment. Please redirect the payer to the "
    "'rel':'approve' url returned as part of the HATEOAS links within the Create Order call or provide a valid "
    "payment_source in the request.",
    "ORDER_ALREADY_CAPTURED": "Order already captured. If 'intent=CAPTURE' only one capture per order is allowed.",
    "ORDER_ALREADY_AUTHORIZED": "Order already authorized. If 'intent=AUTHORIZE' only one authorization per order "
    "is allowed.",
    "ACTION_DOES_NOT_MATCH_INTENT": "Order was created with an intent to 'CAPTURE'. Please use "
    "v2/checkout/orders/order_id/capture to complete the transaction or alternately create an order with an intent "
    "of 'AUTHORIZE'.",
    "INSTRUMENT_DECLINED": "The instrument presented  was either declined by the processor or bank, or it can't be "
    "used for this payment.",
    "PAYER_ACTION_REQUIRED": "Transaction cannot complete successfully, instruct the buyer to return to PayPal.",
    "DUPLICATE_INVOICE_ID": "Duplicate Invoice ID detected. To avoid a potential duplicate transaction your account "
    "setting requires that Invoice Id be unique for each transaction.",
    "REFUND_AMOUNT_EXCEEDED": "The refund amount must be less than or equal to the capture amount that has not yet "
    "been refunded.",
    "CAPTURE_FULLY_REFUNDED": "The capture has already been fully refunded",
    "AUTHORIZATION_ALREADY_CAPTURED": "Authorization has previously been captured.",
    "MAX_CAPTURE_AMOUNT_EXCEEDED": "Capture amount exceeds allowable limit.",
    "AUTHORIZATION_VOIDED": "A voided authorization cannot be captured or reauthorized.",
    "PREVIOUSLY_CAPTURED": "Authorization has been previously captured and hence cannot be voided.",
    "PREVIOUSLY_VOIDED": "Authorization has been previously voided and hence cannot be voided again.",
    "CURRENCY_MISMATCH": "Currency of capture must be the same as currency of authorization.",
    "INVALID_RESOURCE_ID": "Specified resource ID does not exist. Please check the resource ID and try again.",
    "MISSING_REQUIRED_PARAMETER": "A required field / parameter is missing.",
    "INVALID_PARAMETER_VALUE": "The value of a field is invalid.",
}


def debug_id() -> str:
    return secrets.token_hex(7)


class PayPalError(Exception):
    """An error answer: `status` and the JSON body PayPal would send."""

    def __init__(self, status: int, body: dict[str, Any]) -> None:
        super().__init__(f"{status} {body.get('name') or body.get('error')}")
        self.status = status
        self.body = body


def api_error(
    status: int,
    issue: str | None = None,
    *,
    field: str | None = None,
    value: str | None = None,
    links: list[dict[str, str]] | None = None,
) -> PayPalError:
    name, message = _NAMES[status]
    body: dict[str, Any] = {"name": name, "message": message, "debug_id": debug_id()}
    if issue is not None:
        detail: dict[str, Any] = {"issue": issue, "description": DESCRIPTIONS.get(issue, issue)}
        if field is not None:
            detail["field"] = field
            detail["location"] = "path" if status == 404 else "body"
        if value is not None:
            detail["value"] = value
        body["details"] = [detail]
        body["links"] = [
            {
                "href": f"https://developer.paypal.com/api/rest/reference/orders/v2/errors/#{issue}",
                "rel": "information_link",
                "method": "GET",
            },
            *(links or []),
        ]
    return PayPalError(status, body)


def v1_error(status: int, name: str, message: str) -> PayPalError:
    """A v1 API error (Payments v1 sales): the reason is the `name`, with no `details`."""
    link = f"https://developer.paypal.com/docs/api/payments/v1/#error-{name}"
    return PayPalError(status, {"name": name, "message": message, "information_link": link, "debug_id": debug_id()})


def not_found(field: str, value: str) -> PayPalError:
    return api_error(404, "INVALID_RESOURCE_ID", field=field, value=value)


def invalid_token() -> PayPalError:
    """What PayPal answers a call whose bearer token is unknown or expired (an OAuth-style body, not a name)."""
    return PayPalError(401, {"error": "invalid_token", "error_description": "Access Token not found in cache"})


def invalid_client() -> PayPalError:
    return PayPalError(401, {"error": "invalid_client", "error_description": "Client Authentication failed"})
