"""The emulator's objects as PayPal's JSON, HATEOAS links included (shapes from the OpenAPI descriptions)."""

from __future__ import annotations

from typing import Any

from tests.paypal_emulator.ledger import Authorization, Capture, Ledger, Order, Refund


def _link(href: str, rel: str, method: str = "GET") -> dict[str, str]:
    return {"href": href, "rel": rel, "method": method}


def _related(order_id: str, authorization_id: str | None = None) -> dict[str, Any]:
    ids = {"order_id": order_id}
    if authorization_id:
        ids["authorization_id"] = authorization_id
    return {"related_ids": ids}


def _optional(**values: Any) -> dict[str, Any]:
    return {key: value for key, value in values.items() if value is not None}


def authorization(auth: Authorization, base: str) -> dict[str, Any]:
    href = f"{base}/v2/payments/authorizations/{auth.id}"
    return {
        "id": auth.id,
        "status": auth.status,
        "amount": auth.amount.wire(),
        **_optional(custom_id=auth.custom_id, invoice_id=auth.invoice_id),
        "seller_protection": {"status": "ELIGIBLE"},
        "expiration_time": auth.expiration_time,
        "create_time": auth.create_time,
        "update_time": auth.update_time,
        "supplementary_data": _related(auth.order_id),
        "links": [
            _link(href, "self"),
            _link(f"{href}/capture", "capture", "POST"),
            _link(f"{href}/void", "void", "POST"),
            _link(f"{href}/reauthorize", "reauthorize", "POST"),
            _link(f"{base}/v2/checkout/orders/{auth.order_id}", "up"),
        ],
    }


def capture(cap: Capture, base: str) -> dict[str, Any]:
    href = f"{base}/v2/payments/captures/{cap.id}"
    up = (
        f"{base}/v2/payments/authorizations/{cap.authorization_id}"
        if cap.authorization_id
        else f"{base}/v2/checkout/orders/{cap.order_id}"
    )
    return {
        "id": cap.id,
        "status": cap.status,
        "amount": cap.amount.wire(),
        "final_capture": cap.final_capture,
        **_optional(custom_id=cap.custom_id, invoice_id=cap.invoice_id),
        "seller_protection": {"status": "ELIGIBLE"},
        "create_time": cap.create_time,
        "update_time": cap.update_time,
        "supplementary_data": _related(cap.order_id, cap.authorization_id),
        "links": [_link(href, "self"), _link(f"{href}/refund", "refund", "POST"), _link(up, "up")],
    }


def refund(ref: Refund, base: str) -> dict[str, Any]:
    return {
        "id": ref.id,
        "status": ref.status,
        "amount": ref.amount.wire(),
        **_optional(invoice_id=ref.invoice_id, note_to_payer=ref.note_to_payer),
        "create_time": ref.create_time,
        "update_time": ref.update_time,
        **_optional(custom_id=ref.custom_id),
        "links": [
            _link(f"{base}/v2/payments/refunds/{ref.id}", "self"),
            _link(f"{base}/v2/payments/captures/{ref.capture_id}", "up"),
        ],
    }


def order(o: Order, ledger: Ledger, base: str) -> dict[str, Any]:
    href = f"{base}/v2/checkout/orders/{o.id}"
    payments: dict[str, Any] = {}
    if o.authorization_ids:
        payments["authorizations"] = [authorization(ledger.authorizations[i], base) for i in o.authorization_ids]
    if o.capture_ids:
        payments["captures"] = [capture(ledger.captures[i], base) for i in o.capture_ids]
    if o.refund_ids:
        payments["refunds"] = [refund(ledger.refunds[i], base) for i in o.refund_ids]
    unit: dict[str, Any] = {
        "reference_id": o.reference_id,
        "amount": o.amount.wire(),
        **_optional(custom_id=o.custom_id, invoice_id=o.invoice_id, description=o.description),
    }
    if payments:
        unit["payments"] = payments
    links = [_link(href, "self")]
    if o.status in ("CREATED", "PAYER_ACTION_REQUIRED"):
        links.append(_link(f"{base}/checkoutnow?token={o.id}", "approve" if o.status == "CREATED" else "payer-action"))
    if o.status != "COMPLETED":
        links.append(_link(href, "update", "PATCH"))
        action = "capture" if o.intent == "CAPTURE" else "authorize"
        links.append(_link(f"{href}/{action}", action, "POST"))
    body: dict[str, Any] = {
        "id": o.id,
        "intent": o.intent,
        "status": o.status,
        "purchase_units": [unit],
        "create_time": o.create_time,
        "update_time": o.update_time,
        "links": links,
    }
    if o.status in ("APPROVED", "COMPLETED"):
        body["payer"] = {
            "name": {"given_name": "John", "surname": "Doe"},
            "email_address": "sb-buyer@personal.example.com",
            "payer_id": "QYR5Z8XDVJNXQ",
        }
        body["payment_source"] = {
            "paypal": {
                "email_address": "sb-buyer@personal.example.com",
                "account_id": "QYR5Z8XDVJNXQ",
                "account_status": "VERIFIED",
            }
        }
    return body
