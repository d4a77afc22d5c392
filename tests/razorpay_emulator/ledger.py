"""The emulator's state: orders, payments, refunds and disputes as Razorpay renders them (plain dicts), and the
rules each operation checks. Events are reported through `emit(event_type, payload)`."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections.abc import Callable
from typing import Any

from tests.razorpay_emulator.errors import RazorpayError, bad_request, not_found

Emit = Callable[[str, dict[str, Any]], None]


def new_id(prefix: str) -> str:
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
    return f"{prefix}_" + "".join(secrets.choice(alphabet) for _ in range(14))


def payment_signature(key_secret: str, order_id: str, payment_id: str) -> str:
    """What Checkout hands the SPA: hex HMAC-SHA256 of `order_id|payment_id` with the key secret."""
    return hmac.new(key_secret.encode(), f"{order_id}|{payment_id}".encode(), hashlib.sha256).hexdigest()


class Ledger:
    def __init__(self, emit: Emit) -> None:
        self.orders: dict[str, dict[str, Any]] = {}
        self.payments: dict[str, dict[str, Any]] = {}
        self.refunds: dict[str, dict[str, Any]] = {}
        self.disputes: dict[str, dict[str, Any]] = {}
        self.refunds_pending = False
        # Not part of a rendered order (Razorpay does not echo it): whether its payments capture at once.
        self._auto_capture: dict[str, bool] = {}
        self._emit = emit

    # --- orders ----------------------------------------------------------------------------------------------
    def create_order(self, body: dict[str, Any]) -> dict[str, Any]:
        amount, currency = body.get("amount"), body.get("currency")
        if not isinstance(amount, int) or isinstance(amount, bool) or amount < 1:
            raise bad_request("The amount must be an integer.", field="amount")
        if not isinstance(currency, str) or len(currency) != 3:
            raise bad_request("The currency field is required.", field="currency")
        receipt = body.get("receipt")
        if receipt is not None and (not isinstance(receipt, str) or len(receipt) > 40):
            raise bad_request("The receipt may not be greater than 40 characters.", field="receipt")
        notes = body.get("notes") or {}
        if not isinstance(notes, dict) or len(notes) > 15:
            raise bad_request("The notes may not have more than 15 items.", field="notes")
        capture = body.get("payment_capture", True)
        order = {
            "id": new_id("order"),
            "entity": "order",
            "amount": amount,
            "amount_paid": 0,
            "amount_due": amount,
            "currency": currency,
            "receipt": receipt,
            "offer_id": None,
            "status": "created",
            "attempts": 0,
            "notes": notes or [],  # Razorpay renders empty notes as a list
            "created_at": int(time.time()),
        }
        self.orders[order["id"]] = order
        self._auto_capture[order["id"]] = capture not in (0, "0", False, "false")
        return order

    def order(self, order_id: str) -> dict[str, Any]:
        found = self.orders.get(order_id)
        if found is None:
            raise not_found()
        return found

    def payments_of(self, order_id: str) -> list[dict[str, Any]]:
        return [p for p in self.payments.values() if p["order_id"] == order_id]

    # --- checkout (the shopper) -------------------------------------------------------------------------------
    def pay(self, order_id: str, *, decline_reason: str | None = None) -> dict[str, Any]:
        order = self.order(order_id)
        if order["status"] == "paid":
            raise bad_request("Order has already been paid")
        payment = {
            "id": new_id("pay"),
            "entity": "payment",
            "amount": order["amount"],
            "currency": order["currency"],
            "status": "created",
            "order_id": order_id,
            "invoice_id": None,
            "international": False,
            "method": "card",
            "amount_refunded": 0,
            "refund_status": None,
            "captured": False,
            "description": None,
            "card_id": new_id("card"),
            "bank": None,
            "wallet": None,
            "vpa": None,
            "email": "shopper@example.com",
            "contact": "+919999999999",
            "notes": order["notes"],
            "fee": None,
            "tax": None,
            "error_code": None,
            "error_description": None,
            "error_source": None,
            "error_step": None,
            "error_reason": None,
            "created_at": int(time.time()),
        }
        self.payments[payment["id"]] = payment
        order["attempts"] += 1
        order["status"] = "attempted"
        if decline_reason is not None:
            payment.update(
                status="failed",
                error_code="BAD_REQUEST_ERROR",
                error_description="Your payment has been declined by the bank.",
                error_source="issuer_bank",
                error_step="payment_authorization",
                error_reason=decline_reason,
            )
            self._emit("payment.failed", {"payment": payment})
            return payment
        payment["status"] = "authorized"
        self._emit("payment.authorized", {"payment": payment})
        if self._auto_capture.get(order_id, True):
            self._capture(payment)
        return payment

    # --- payments --------------------------------------------------------------------------------------------
    def payment(self, payment_id: str) -> dict[str, Any]:
        found = self.payments.get(payment_id)
        if found is None:
            raise not_found()
        return found

    def capture(self, payment_id: str, body: dict[str, Any]) -> dict[str, Any]:
        payment = self.payment(payment_id)
        if payment["status"] != "authorized":
            if payment["captured"]:
                raise bad_request("This payment has already been captured", field="id")
            raise bad_request("Only payments which have been authorized and not yet captured can be captured")
        if body.get("amount") != payment["amount"]:
            raise bad_request("Capture amount must be equal to the amount authorized", field="amount")
        if body.get("currency") != payment["currency"]:
            raise bad_request("The currency should be same as the payment currency", field="currency")
        self._capture(payment)
        return payment

    def _capture(self, payment: dict[str, Any]) -> None:
        payment.update(status="captured", captured=True)
        order = self.orders[payment["order_id"]]
        order.update(status="paid", amount_paid=payment["amount"], amount_due=0)
        self._emit("payment.captured", {"payment": payment})
        self._emit("order.paid", {"payment": payment, "order": order})

    def refund(self, payment_id: str, body: dict[str, Any]) -> dict[str, Any]:
        payment = self.payment(payment_id)
        if not payment["captured"]:
            raise bad_request("The payment has not been captured yet and hence cannot be refunded", field="id")
        rest = payment["amount"] - payment["amount_refunded"]
        amount = body.get("amount", rest)
        if not isinstance(amount, int) or amount < 1:
            raise bad_request("The amount must be atleast INR 1.00", field="amount")
        if rest == 0:
            raise bad_request("The payment has been fully refunded already", field="id")
        if amount > rest:
            raise bad_request("The refund amount provided is greater than amount captured", field="amount")
        notes = body.get("notes") or {}
        refund = {
            "id": new_id("rfnd"),
            "entity": "refund",
            "amount": amount,
            "currency": payment["currency"],
            "payment_id": payment_id,
            "notes": notes or [],
            "receipt": body.get("receipt"),
            "acquirer_data": {"arn": None},
            "created_at": int(time.time()),
            "batch_id": None,
            "status": "pending" if self.refunds_pending else "processed",
            "speed_processed": "normal",
            "speed_requested": body.get("speed", "normal"),
        }
        self.refunds[refund["id"]] = refund
        payment["amount_refunded"] += amount
        full = payment["amount_refunded"] == payment["amount"]
        payment.update(status="refunded" if full else "captured", refund_status="full" if full else "partial")
        self._emit("refund.created", {"refund": refund, "payment": payment})
        if refund["status"] == "processed":
            self._emit("refund.processed", {"refund": refund, "payment": payment})
        return refund

    def settle_refund(self, refund_id: str, *, succeed: bool = True) -> None:
        refund = self.refunds[refund_id]
        payment = self.payments[refund["payment_id"]]
        if succeed:
            refund["status"] = "processed"
            self._emit("refund.processed", {"refund": refund, "payment": payment})
            return
        refund["status"] = "failed"
        payment["amount_refunded"] -= refund["amount"]
        payment.update(status="captured", refund_status="partial" if payment["amount_refunded"] else None)
        self._emit("refund.failed", {"refund": refund, "payment": payment})

    def refunds_of(self, payment_id: str) -> list[dict[str, Any]]:
        return [r for r in self.refunds.values() if r["payment_id"] == payment_id]

    # --- disputes --------------------------------------------------------------------------------------------
    def open_dispute(self, payment_id: str, reason_code: str = "goods_or_services_not_received") -> dict[str, Any]:
        payment = self.payment(payment_id)
        if not payment["captured"]:
            raise bad_request("Only captured payments can be disputed")
        now = int(time.time())
        dispute = {
            "id": new_id("disp"),
            "entity": "dispute",
            "payment_id": payment_id,
            "amount": payment["amount"],
            "currency": payment["currency"],
            "amount_deducted": 0,
            "gateway_dispute_id": secrets.token_hex(6),
            "reason_code": reason_code,
            "respond_by": now + 7 * 86400,
            "status": "open",
            "phase": "chargeback",
            "comments": None,
            "created_at": now,
            "evidence": {"amount": payment["amount"], "summary": None, "others": None, "submitted_at": None},
        }
        self.disputes[dispute["id"]] = dispute
        self._emit("payment.dispute.created", {"payment": payment, "dispute": dispute})
        return dispute

    def dispute(self, dispute_id: str) -> dict[str, Any]:
        found = self.disputes.get(dispute_id)
        if found is None:
            raise not_found()
        return found

    def contest(self, dispute_id: str, body: dict[str, Any]) -> dict[str, Any]:
        dispute = self.dispute(dispute_id)
        if dispute["status"] not in ("open", "under_review") or dispute["evidence"].get("submitted_at"):
            raise bad_request("The dispute cannot be contested in its current state", field="id")
        action = body.get("action", "draft")
        if action not in ("draft", "submit"):
            raise bad_request("The selected action is invalid.", field="action")
        evidence = dispute["evidence"]
        for key in ("amount", "summary", "others"):
            if key in body:
                evidence[key] = body[key]
        if action == "submit":
            if not evidence.get("summary"):
                raise bad_request("The summary field is required when action is submit.", field="summary")
            evidence["submitted_at"] = int(time.time())
            dispute["status"] = "under_review"
            self._emit(
                "payment.dispute.under_review", {"payment": self.payments[dispute["payment_id"]], "dispute": dispute}
            )
        return dispute

    def accept(self, dispute_id: str) -> dict[str, Any]:
        dispute = self.dispute(dispute_id)
        return self.resolve(dispute["id"], won=False)

    def resolve(self, dispute_id: str, *, won: bool) -> dict[str, Any]:
        dispute = self.dispute(dispute_id)
        dispute.update(status="won" if won else "lost", amount_deducted=0 if won else dispute["amount"])
        event = "payment.dispute.won" if won else "payment.dispute.lost"
        self._emit(event, {"payment": self.payments[dispute["payment_id"]], "dispute": dispute})
        return dispute


def page(items: list[dict[str, Any]], query: dict[str, str]) -> dict[str, Any]:
    """A collection as Razorpay answers one: newest first, `from`/`to` inclusive on `created_at`, then skip/count."""
    try:
        start = int(query.get("from", 0))
        end = int(query.get("to", 2**62))
        skip = int(query.get("skip", 0))
        count = int(query.get("count", 10))
    except ValueError:
        raise bad_request("The from/to/skip/count must be integers.") from None
    if count > 100:
        raise bad_request("The count may not be greater than 100.", field="count")
    chosen = [item for item in items if start <= item["created_at"] <= end]
    chosen.sort(key=lambda item: item["created_at"], reverse=True)
    window = chosen[skip : skip + count]
    return {"entity": "collection", "count": len(window), "items": window}


__all__ = ["Ledger", "RazorpayError", "new_id", "page", "payment_signature"]
