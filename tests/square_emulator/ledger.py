"""The emulator's books: merchants (one country and currency each, as a Square account is), card payments,
refunds and disputes, with Square's rules for each move (see `render.py` for how they are sent). Every change
calls `emit(event_type, object)` for the webhooks."""

from __future__ import annotations

import secrets
import string
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from tests.square_emulator.errors import SquareError, invalid, not_found

# Square's sandbox test payment tokens (developer.squareup.com/docs/devtools/sandbox/payments, "Payment tokens
# for testing the Payments API") and the error each produces. `None`: the payment succeeds.
TEST_NONCES: dict[str, str | None] = {
    "cnon:card-nonce-ok": None,
    "cnon:card-nonce-declined": "GENERIC_DECLINE",
    "cnon:card-nonce-rejected-cvv": "CVV_FAILURE",
    "cnon:card-nonce-rejected-postalcode": "ADDRESS_VERIFICATION_FAILURE",
    "cnon:card-nonce-rejected-expiration": "INVALID_EXPIRATION",
    "cnon:card-nonce-already-used": "CARD_TOKEN_USED",
}
# Errors about the token itself rather than the card: refused before any payment exists.
TOKEN_ERRORS = frozenset({"CARD_TOKEN_USED", "CARD_TOKEN_EXPIRED"})
# What an APPROVED card payment may have updated (`Payment.capabilities`); none for sellers in Japan, where
# UpdatePayment is not supported (developer.squareup.com/docs/payments-api/update-payments).
EDIT_CAPABILITIES = (
    "EDIT_AMOUNT_UP",
    "EDIT_AMOUNT_DOWN",
    "EDIT_TIP_AMOUNT_UP",
    "EDIT_TIP_AMOUNT_DOWN",
    "EDIT_DELAY_ACTION",
)
DELAY_DURATION = timedelta(hours=168)  # card-not-present delayed capture: 7 days

Emit = Callable[[str, Any], None]


class Declined(Exception):
    """CreatePayment declined the card: the FAILED payment exists and rides along in Square's error answer."""

    def __init__(self, payment: Payment, error: dict[str, Any]) -> None:
        super().__init__(error["code"])
        self.payment = payment
        self.error = error


def square_id(length: int = 29) -> str:
    alphabet = string.ascii_letters + string.digits
    return "".join(secrets.choice(alphabet) for _ in range(length))


def rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def now() -> datetime:
    return datetime.now(UTC)


def money(amount: int, currency: str) -> dict[str, Any]:
    return {"amount": amount, "currency": currency}


@dataclass
class Merchant:
    merchant_id: str
    access_token: str
    country: str
    currency: str
    location_id: str


@dataclass
class Refund:
    id: str
    payment_id: str
    merchant_id: str
    location_id: str
    order_id: str
    amount: int
    currency: str
    reason: str | None
    status: str = "PENDING"
    created_at: datetime = field(default_factory=now)
    updated_at: datetime = field(default_factory=now)


@dataclass
class Payment:
    id: str
    merchant: Merchant
    amount: int
    approved: int
    currency: str
    status: str  # APPROVED | PENDING | COMPLETED | CANCELED | FAILED
    card_status: str  # AUTHORIZED | CAPTURED | VOIDED | FAILED
    reference_id: str | None
    note: str | None
    order_id: str
    errors: list[dict[str, Any]] = field(default_factory=list)
    verification_token: str | None = None  # what CreatePayment carried (recorded for tests; not rendered)
    refund_ids: list[str] = field(default_factory=list)
    created_at: datetime = field(default_factory=now)
    updated_at: datetime = field(default_factory=now)
    captured_at: datetime | None = None
    voided_at: datetime | None = None
    version: int = 1

    @property
    def version_token(self) -> str:
        return f"{self.id[:8]}v{self.version}"

    def touch(self) -> None:
        self.version += 1
        self.updated_at = now()


@dataclass
class Evidence:
    id: str
    evidence_type: str
    evidence_text: str
    uploaded_at: datetime = field(default_factory=now)


@dataclass
class Dispute:
    id: str
    payment: Payment
    amount: int
    reason: str
    state: str = "EVIDENCE_REQUIRED"
    evidence: list[Evidence] = field(default_factory=list)
    created_at: datetime = field(default_factory=now)
    updated_at: datetime = field(default_factory=now)
    version: int = 1


class Ledger:
    def __init__(self, emit: Emit) -> None:
        self._emit = emit
        self.payments: dict[str, Payment] = {}
        self.refunds: dict[str, Refund] = {}
        self.disputes: dict[str, Dispute] = {}
        self.declines: list[str] = []
        self.hold_refunds = False  # refunds stay PENDING until `settle_refund`
        self.card_ids: set[str] = set()  # cards on file (CreateCard): a `source_id` that approves
        # Buyer verification (SCA): tokens of cards whose issuer requires it, and the verification tokens the Web
        # Payments SDK's verifyBuyer gave (verification token → the source it verified).
        self.sca_nonces: set[str] = set()
        self.verifications: dict[str, str] = {}

    # --- payments ------------------------------------------------------------------------------------------
    def create_payment(self, merchant: Merchant, body: dict[str, Any]) -> Payment:
        _required_str(body, "idempotency_key")
        source_id = _required_str(body, "source_id")
        amount_money = body.get("amount_money")
        if not isinstance(amount_money, dict):
            raise invalid("MISSING_REQUIRED_PARAMETER", "Field must be set", field="amount_money")
        amount, currency = amount_money.get("amount"), amount_money.get("currency")
        if not isinstance(amount, int) or isinstance(amount, bool) or amount <= 0:
            raise invalid("INVALID_VALUE", "Amount must be greater than zero.", field="amount_money.amount")
        location_id = body.get("location_id") or merchant.location_id
        if location_id != merchant.location_id:
            raise not_found("location", str(location_id))
        if currency != merchant.currency:
            raise invalid(
                "INVALID_VALUE",
                f"This merchant can only process payments in {merchant.currency}, but amount was provided in "
                f"{currency}.",
                field="amount_money.currency",
            )
        reference_id = body.get("reference_id")
        if isinstance(reference_id, str) and len(reference_id) > 40:
            raise invalid("VALUE_TOO_LONG", "Field must not be greater than 40 length", field="reference_id")
        note = body.get("note")
        if isinstance(note, str) and len(note) > 500:
            raise invalid("VALUE_TOO_LONG", "Field must not be greater than 500 length", field="note")
        if source_id not in TEST_NONCES and source_id not in self.card_ids and source_id not in self.sca_nonces:
            raise invalid("INVALID_VALUE", "Invalid source_id.", field="source_id")
        verification_token, needs_verification = self.verification(source_id, body)
        if needs_verification:
            decline: str | None = "CARD_DECLINED_VERIFICATION_REQUIRED"
        else:
            decline = TEST_NONCES.get(source_id) or (self.declines.pop(0) if self.declines else None)
        if decline in TOKEN_ERRORS:
            raise invalid(str(decline), "Card nonce already used; please request new nonce.", field="source_id")
        autocomplete = body.get("autocomplete", True) is not False
        order_id = body.get("order_id")
        payment = Payment(
            id=square_id(),
            merchant=merchant,
            amount=amount,
            approved=amount,
            currency=currency,
            status="APPROVED",
            card_status="AUTHORIZED",
            reference_id=reference_id if isinstance(reference_id, str) else None,
            note=note if isinstance(note, str) else None,
            order_id=order_id if isinstance(order_id, str) else square_id(),
            verification_token=verification_token,
        )
        self.payments[payment.id] = payment
        if decline is not None:
            payment.status, payment.card_status, payment.approved = "FAILED", "FAILED", 0
            error = {"category": "PAYMENT_METHOD_ERROR", "code": decline, "detail": f"Authorization error: '{decline}'"}
            payment.errors = [error]
            self._emit("payment.created", payment)
            raise Declined(payment, error)
        if autocomplete:
            payment.status, payment.card_status, payment.captured_at = "COMPLETED", "CAPTURED", payment.created_at
        self._emit("payment.created", payment)
        return payment

    def verification(self, source_id: str, body: dict[str, Any]) -> tuple[str | None, bool]:
        """The request's `verification_token`, checked: it must be one verifyBuyer gave for this very source
        (else 400 INVALID_VALUE); and whether the card still needs one (its issuer requires SCA and none came)."""
        token = body.get("verification_token")
        if token is None:
            return None, source_id in self.sca_nonces
        if not isinstance(token, str) or self.verifications.get(token) != source_id:
            raise invalid(
                "INVALID_VALUE", "The verification token is not valid for this source.", field="verification_token"
            )
        return token, False

    def payment(self, merchant: Merchant, payment_id: str) -> Payment:
        payment = self.payments.get(payment_id)
        if payment is None or payment.merchant is not merchant:
            raise not_found("payment", payment_id)
        return payment

    def update_payment(self, merchant: Merchant, payment_id: str, body: dict[str, Any]) -> Payment:
        _required_str(body, "idempotency_key")
        payment = self.payment(merchant, payment_id)
        if payment.status != "APPROVED":
            raise invalid("BAD_REQUEST", f"Payment {payment_id} is in {payment.status} state and cannot be updated.")
        change = body.get("payment")
        amount_money = change.get("amount_money") if isinstance(change, dict) else None
        if not isinstance(amount_money, dict):
            return payment
        amount = amount_money.get("amount")
        if amount_money.get("currency") != payment.currency:
            raise invalid("CURRENCY_MISMATCH", "The currency must match the payment's.", field="amount_money")
        if not isinstance(amount, int) or amount <= 0:
            raise invalid("INVALID_VALUE", "Amount must be greater than zero.", field="amount_money.amount")
        allowed = capabilities(payment)
        if amount > payment.amount and ("EDIT_AMOUNT_UP" not in allowed or amount > payment.approved):
            raise invalid(
                "BAD_REQUEST",
                "amount_money cannot be increased in value. EDIT_AMOUNT_UP capability is not available.",
                field="amount_money",
            )
        if amount < payment.amount and "EDIT_AMOUNT_DOWN" not in allowed:
            raise invalid(
                "BAD_REQUEST",
                "amount_money cannot be decreased in value. EDIT_AMOUNT_DOWN capability is not available.",
                field="amount_money",
            )
        payment.amount = amount
        payment.touch()
        self._emit("payment.updated", payment)
        return payment

    def complete_payment(self, merchant: Merchant, payment_id: str, body: dict[str, Any]) -> Payment:
        payment = self._approved(merchant, payment_id, body, "completed")
        payment.status, payment.card_status, payment.captured_at = "COMPLETED", "CAPTURED", now()
        payment.touch()
        self._emit("payment.updated", payment)
        return payment

    def cancel_payment(self, merchant: Merchant, payment_id: str) -> Payment:
        payment = self._approved(merchant, payment_id, {}, "canceled")
        payment.status, payment.card_status, payment.voided_at = "CANCELED", "VOIDED", now()
        payment.touch()
        self._emit("payment.updated", payment)
        return payment

    def _approved(self, merchant: Merchant, payment_id: str, body: dict[str, Any], verb: str) -> Payment:
        payment = self.payment(merchant, payment_id)
        token = body.get("version_token")
        if token is not None and token != payment.version_token:
            raise invalid("VERSION_MISMATCH", "The payment version does not match.", field="version_token")
        if payment.status != "APPROVED":
            raise invalid("BAD_REQUEST", f"Payment {payment_id} is {payment.status} and cannot be {verb}.")
        return payment

    def list_payments(self, merchant: Merchant, begin: datetime | None, end: datetime | None) -> list[Payment]:
        found = [
            p
            for p in self.payments.values()
            if p.merchant is merchant
            and (begin is None or p.created_at >= begin)
            and (end is None or p.created_at < end)
        ]
        return sorted(found, key=lambda p: p.created_at, reverse=True)

    # --- refunds -------------------------------------------------------------------------------------------
    def refund_payment(self, merchant: Merchant, body: dict[str, Any]) -> Refund:
        _required_str(body, "idempotency_key")
        payment = self.payment(merchant, _required_str(body, "payment_id"))
        amount_money = body.get("amount_money")
        if not isinstance(amount_money, dict):
            raise invalid("MISSING_REQUIRED_PARAMETER", "Field must be set", field="amount_money")
        amount = amount_money.get("amount")
        if payment.status == "APPROVED":
            raise SquareError(
                400,
                "REFUND_ERROR",
                "REFUND_ERROR_PAYMENT_NEEDS_COMPLETION",
                "The payment is approved and needs to be completed before it is refunded.",
            )
        if payment.status != "COMPLETED":
            raise invalid("BAD_REQUEST", f"Payment {payment.id} is {payment.status} and cannot be refunded.")
        if amount_money.get("currency") != payment.currency:
            raise invalid("CURRENCY_MISMATCH", "The refund currency must match the payment's.", field="amount_money")
        if any(self.refunds[r].status == "PENDING" for r in payment.refund_ids):
            raise SquareError(
                400, "REFUND_ERROR", "REFUND_ALREADY_PENDING", "The payment already has a pending refund."
            )
        if not isinstance(amount, int) or amount <= 0 or amount > payment.amount - completed_refunds(self, payment):
            raise SquareError(
                400,
                "REFUND_ERROR",
                "REFUND_AMOUNT_INVALID",
                "The requested refund amount exceeds the amount available to refund.",
                field="amount_money.amount",
            )
        reason = body.get("reason")
        refund = Refund(
            id=f"{payment.id}_{square_id(40)}",
            payment_id=payment.id,
            merchant_id=merchant.merchant_id,
            location_id=merchant.location_id,
            order_id=payment.order_id,
            amount=amount,
            currency=payment.currency,
            reason=reason if isinstance(reason, str) else None,
        )
        self.refunds[refund.id] = refund
        payment.refund_ids.append(refund.id)
        self._emit("refund.created", refund)
        return refund

    def settle_refund(self, refund_id: str, status: str = "COMPLETED") -> Refund:
        """The card network's answer to a PENDING refund: COMPLETED (counted in `refunded_money`) or FAILED."""
        refund = self.refunds[refund_id]
        if refund.status != "PENDING":
            return refund
        refund.status, refund.updated_at = status, now()
        payment = self.payments[refund.payment_id]
        self._emit("refund.updated", refund)
        if status == "COMPLETED":
            payment.touch()
            self._emit("payment.updated", payment)
        return refund

    def refund(self, merchant: Merchant, refund_id: str) -> Refund:
        refund = self.refunds.get(refund_id)
        if refund is None or refund.merchant_id != merchant.merchant_id:
            raise not_found("refund", refund_id)
        return refund

    # --- disputes ------------------------------------------------------------------------------------------
    def open_dispute(self, payment_id: str, *, reason: str = "NOT_AS_DESCRIBED", amount: int | None = None) -> Dispute:
        payment = self.payments[payment_id]
        dispute = Dispute(id=square_id(22), payment=payment, amount=amount or payment.amount, reason=reason)
        self.disputes[dispute.id] = dispute
        self._emit("dispute.created", dispute)
        return dispute

    def dispute(self, merchant: Merchant, dispute_id: str) -> Dispute:
        dispute = self.disputes.get(dispute_id)
        if dispute is None or dispute.payment.merchant is not merchant:
            raise not_found("dispute", dispute_id)
        return dispute

    def add_evidence_text(self, merchant: Merchant, dispute_id: str, body: dict[str, Any]) -> Evidence:
        _required_str(body, "idempotency_key")
        dispute = self.dispute(merchant, dispute_id)
        text = _required_str(body, "evidence_text")
        if len(text) > 500:
            raise invalid("VALUE_TOO_LONG", "Field must not be greater than 500 length", field="evidence_text")
        if dispute.state not in ("EVIDENCE_REQUIRED", "INQUIRY_EVIDENCE_REQUIRED"):
            raise invalid("BAD_REQUEST", f"Dispute {dispute_id} is {dispute.state}: no evidence can be added.")
        evidence = Evidence(square_id(22), str(body.get("evidence_type") or "GENERIC_EVIDENCE"), text)
        dispute.evidence.append(evidence)
        dispute.version += 1
        self._emit("dispute.evidence.created", dispute)
        return evidence

    def submit_evidence(self, merchant: Merchant, dispute_id: str) -> Dispute:
        dispute = self.dispute(merchant, dispute_id)
        if dispute.state in ("PROCESSING", "INQUIRY_PROCESSING"):
            return dispute  # submitted already
        if dispute.state not in ("EVIDENCE_REQUIRED", "INQUIRY_EVIDENCE_REQUIRED"):
            raise invalid("BAD_REQUEST", f"Dispute {dispute_id} is {dispute.state}: evidence cannot be submitted.")
        self._move(dispute, "PROCESSING" if dispute.state == "EVIDENCE_REQUIRED" else "INQUIRY_PROCESSING")
        return dispute

    def resolve_dispute(self, dispute_id: str, state: str) -> Dispute:
        """The bank's decision: WON or LOST (or the seller ACCEPTED)."""
        dispute = self.disputes[dispute_id]
        self._move(dispute, state)
        return dispute

    def _move(self, dispute: Dispute, state: str) -> None:
        dispute.state, dispute.updated_at = state, now()
        dispute.version += 1
        self._emit("dispute.state.updated", dispute)


def completed_refunds(ledger: Ledger, payment: Payment) -> int:
    return sum(ledger.refunds[r].amount for r in payment.refund_ids if ledger.refunds[r].status == "COMPLETED")


def capabilities(payment: Payment) -> tuple[str, ...]:
    return EDIT_CAPABILITIES if payment.status == "APPROVED" and payment.merchant.country != "JP" else ()


def _required_str(body: dict[str, Any], name: str) -> str:
    value = body.get(name)
    if not isinstance(value, str) or not value:
        raise invalid("MISSING_REQUIRED_PARAMETER", "Field must be set", field=name)
    if name == "idempotency_key" and len(value) > 45:
        raise invalid("VALUE_TOO_LONG", "Field must not be greater than 45 length", field=name)
    return value
