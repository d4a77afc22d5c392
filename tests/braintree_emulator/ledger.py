"""The emulator's books: transactions (sales and their refunds, which are `credit` transactions) and disputes,
with the outcomes Braintree's sandbox gives its test nonces (the list in the SDK's `braintree/test/nonces.py`)."""

from __future__ import annotations

import itertools
import secrets
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from braintree.test.nonces import Nonces


class ValidationFailed(Exception):
    """A 422 api-error-response with validation errors on one object (no transaction)."""

    def __init__(self, on: str, attribute: str, code: str, message: str) -> None:
        super().__init__(message)
        self.on, self.attribute, self.code, self.message = on, attribute, code, message


@dataclass(frozen=True, slots=True)
class Outcome:
    status: str = "authorized"
    response_code: str = "1000"
    response_text: str = "Approved"
    response_type: str = "approved"
    rejection: str | None = None


_APPROVED = Outcome()
_DECLINED = Outcome("processor_declined", "2000", "Do Not Honor", "soft_declined")
_FAILED = Outcome("failed", "3000", "Processor Network Unavailable - Try Again", "hard_declined")

# Nonces whose 3-D Secure result shifts liability to the issuer (successful or attempted authentication).
LIABILITY_SHIFTED = frozenset(
    {
        Nonces.ThreeDSecureVisaFullAuthentication,
        Nonces.ThreeDSecureVisaAttemptsNonParticipating,
        Nonces.ThreeDSecureTwoVisaSuccessfulFrictionlessAuthentication,
        Nonces.ThreeDSecureTwoVisaSuccessfulStepUpAuthentication,
    }
)
_DECLINING = frozenset(
    {
        Nonces.ProcessorDeclinedVisa,
        Nonces.ProcessorDeclinedMasterCard,
        Nonces.ProcessorDeclinedAmEx,
        Nonces.ProcessorDeclinedDiscover,
    }
)
_KNOWN = frozenset(value for name, value in vars(Nonces).items() if not name.startswith("_"))


def outcome_of(nonce: str, *, three_d_secure_required: bool) -> Outcome:
    """What the sandbox answers a sale with this nonce; raises `ValidationFailed` for unusable nonces."""
    if nonce == Nonces.Consumed:
        raise ValidationFailed(
            "transaction", "payment_method_nonce", "91564", "Cannot use a payment_method_nonce more than once."
        )
    if nonce == Nonces.LuhnInvalid:
        raise ValidationFailed("credit_card", "number", "81715", "Credit card number is invalid.")
    if nonce not in _KNOWN:
        raise ValidationFailed("transaction", "payment_method_nonce", "91565", "Unknown payment_method_nonce.")
    if nonce in _DECLINING:
        return _DECLINED
    if nonce == Nonces.ProcessorFailureJCB:
        return _FAILED
    if nonce == Nonces.GatewayRejectedFraud:
        return Outcome("gateway_rejected", "", "", "", rejection="fraud")
    if nonce == Nonces.GatewayRejectedRiskThreshold:
        return Outcome("gateway_rejected", "", "", "", rejection="risk_threshold")
    if three_d_secure_required and nonce not in LIABILITY_SHIFTED:
        return Outcome("gateway_rejected", "", "", "", rejection="three_d_secure")
    return _APPROVED


def now() -> datetime:
    """Naive UTC, as the SDK's parser reads Braintree's datetimes (and its search criteria)."""
    return datetime.now(UTC).replace(tzinfo=None, microsecond=0)


@dataclass
class Ledger:
    merchant_accounts: dict[str, str]  # id → currency
    default_merchant_account: str
    transactions: dict[str, dict[str, Any]] = field(default_factory=dict)
    disputes: dict[str, dict[str, Any]] = field(default_factory=dict)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def new_id(self) -> str:
        return f"{next(self._ids):02d}{secrets.token_hex(3)}"

    def sale(self, params: dict[str, Any]) -> dict[str, Any]:
        account = params.get("merchant_account_id") or self.default_merchant_account
        if account not in self.merchant_accounts:
            raise ValidationFailed("transaction", "merchant_account_id", "91513", "Merchant account ID is invalid.")
        amount = _amount(params.get("amount"))
        nonce = str(params.get("payment_method_nonce") or "")
        options = params.get("options") or {}
        three_ds = options.get("three_d_secure") or {}
        outcome = outcome_of(nonce, three_d_secure_required=bool(three_ds.get("required")))
        created = now()
        transaction: dict[str, Any] = {
            "id": self.new_id(),
            "type": "sale",
            "status": outcome.status,
            "amount": f"{amount}",
            "currency_iso_code": self.merchant_accounts[account],
            "merchant_account_id": account,
            "order_id": params.get("order_id"),
            "created_at": created,
            "updated_at": created,
            "processor_response_code": outcome.response_code,
            "processor_response_text": outcome.response_text,
            "processor_response_type": outcome.response_type,
            "gateway_rejection_reason": outcome.rejection,
            "refund_ids": [],
            "refunded_transaction_id": None,
            "status_history": [{"status": outcome.status, "amount": f"{amount}", "timestamp": created}],
            "disputes": [],
            "payment_instrument_type": "credit_card",
            "credit_card": {"bin": "401288", "last_4": "1881", "card_type": "Visa"},
            "three_d_secure_info": _three_d_secure_info(nonce),
        }
        self.transactions[transaction["id"]] = transaction
        if outcome.status == "authorized" and options.get("submit_for_settlement"):
            self._move(transaction, "submitted_for_settlement", amount)
        return transaction

    def find(self, transaction_id: str) -> dict[str, Any] | None:
        return self.transactions.get(transaction_id)

    def submit_for_settlement(self, transaction: dict[str, Any], amount: Any) -> dict[str, Any]:
        if transaction["status"] != "authorized":
            raise ValidationFailed(
                "transaction", "base", "91507", "Cannot submit for settlement unless status is authorized."
            )
        settle = _amount(amount) if amount not in (None, "") else Decimal(transaction["amount"])
        if settle > Decimal(transaction["amount"]):
            raise ValidationFailed("transaction", "amount", "91522", "Settlement amount is too large.")
        self._move(transaction, "submitted_for_settlement", settle)
        return transaction

    def void(self, transaction: dict[str, Any]) -> dict[str, Any]:
        if transaction["status"] not in ("authorized", "submitted_for_settlement", "settlement_pending"):
            raise ValidationFailed(
                "transaction",
                "base",
                "91504",
                "Transaction can only be voided if status is "
                "authorized, submitted_for_settlement, or - for PayPal - settlement_pending.",
            )
        self._move(transaction, "voided", Decimal(transaction["amount"]))
        return transaction

    def settle(self, transaction: dict[str, Any]) -> dict[str, Any]:
        """The sandbox's settlement batch (the SDK's `testing.settle_transaction`)."""
        if transaction["status"] != "submitted_for_settlement":
            raise ValidationFailed("transaction", "base", "91507", "Cannot settle unless submitted for settlement.")
        self._move(transaction, "settled", Decimal(transaction["amount"]))
        return transaction

    def refund(self, transaction: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
        if transaction["type"] == "credit":
            raise ValidationFailed("transaction", "base", "91505", "Cannot refund credit.")
        if transaction["status"] not in ("settled", "settling"):
            raise ValidationFailed("transaction", "base", "91506", "Cannot refund transaction unless it is settled.")
        refunded = sum((Decimal(self.transactions[r]["amount"]) for r in transaction["refund_ids"]), start=Decimal(0))
        rest = Decimal(transaction["amount"]) - refunded
        if rest <= 0:
            raise ValidationFailed("transaction", "base", "91512", "Transaction has already been fully refunded.")
        amount = _amount(params["amount"]) if params.get("amount") not in (None, "") else rest
        if amount > rest:
            raise ValidationFailed("transaction", "amount", "91521", "Refund amount is too large.")
        created = now()
        refund = {
            **{k: v for k, v in transaction.items() if k not in ("disputes", "refund_ids", "three_d_secure_info")},
            "id": self.new_id(),
            "type": "credit",
            "status": "submitted_for_settlement",
            "amount": f"{amount}",
            "order_id": params.get("order_id") or transaction["order_id"],
            "created_at": created,
            "updated_at": created,
            "refund_ids": [],
            "refunded_transaction_id": transaction["id"],
            "status_history": [{"status": "submitted_for_settlement", "amount": f"{amount}", "timestamp": created}],
            "disputes": [],
        }
        self.transactions[refund["id"]] = refund
        transaction["refund_ids"].append(refund["id"])
        transaction["updated_at"] = created
        return refund

    def search(self, criteria: dict[str, Any]) -> list[dict[str, Any]]:
        """The criteria `TransactionSearch` sends: ids (list), order_id ({is}), type (list), created_at ({min})."""
        found = list(self.transactions.values())
        if "ids" in criteria:
            wanted = set(criteria["ids"] or [])
            found = [t for t in found if t["id"] in wanted]
        if "order_id" in criteria:
            found = [t for t in found if t["order_id"] == (criteria["order_id"] or {}).get("is")]
        if "type" in criteria:
            found = [t for t in found if t["type"] in (criteria["type"] or [])]
        if "created_at" in criteria:
            since = (criteria["created_at"] or {}).get("min")
            if isinstance(since, datetime):
                found = [t for t in found if t["created_at"] >= since]
        return sorted(found, key=lambda t: t["created_at"], reverse=True)

    def open_dispute(self, transaction: dict[str, Any], *, reason: str = "fraud") -> dict[str, Any]:
        received = date.today()
        dispute = {
            "id": f"dp_{secrets.token_hex(4)}",
            "amount": transaction["amount"],
            "amount_disputed": transaction["amount"],
            "amount_won": "0.00",
            "currency_iso_code": transaction["currency_iso_code"],
            "kind": "chargeback",
            "status": "open",
            "reason": reason,
            "received_date": received,
            "reply_by_date": received + timedelta(days=7),
            "created_at": now(),
            "updated_at": now(),
            "evidence": [],
            "status_history": [{"status": "open", "timestamp": now()}],
            "transaction": {
                "id": transaction["id"],
                "amount": transaction["amount"],
                "order_id": transaction["order_id"],
                "created_at": transaction["created_at"],
            },
        }
        self.disputes[dispute["id"]] = dispute
        transaction["disputes"].append({k: v for k, v in dispute.items() if k != "transaction"})
        return dispute

    def add_text_evidence(self, dispute: dict[str, Any], comments: str, category: str | None) -> dict[str, Any]:
        if dispute["status"] != "open":
            raise ValidationFailed(
                "dispute", "status", "95701", "Evidence can only be attached to disputes that are in an Open state"
            )
        evidence = {"id": secrets.token_hex(5), "comment": comments, "category": category, "created_at": now()}
        dispute["evidence"].append(evidence)
        return evidence

    def finalize(self, dispute: dict[str, Any]) -> None:
        if dispute["status"] != "open":
            raise ValidationFailed(
                "dispute", "status", "95705", "The dispute can only be finalized if it is in an Open state"
            )
        self.decide(dispute, "disputed")

    def decide(self, dispute: dict[str, Any], status: str) -> None:
        dispute["status"] = status
        dispute["updated_at"] = now()
        dispute["status_history"].append({"status": status, "timestamp": now()})

    def _move(self, transaction: dict[str, Any], status: str, amount: Decimal) -> None:
        moved = now()
        transaction["status"] = status
        transaction["amount"] = f"{amount}"
        transaction["updated_at"] = moved
        transaction["status_history"].append({"status": status, "amount": f"{amount}", "timestamp": moved})


def _amount(value: Any) -> Decimal:
    try:
        amount = Decimal(str(value))
    except ArithmeticError:
        raise ValidationFailed("transaction", "amount", "81503", "Amount is an invalid format.") from None
    if not amount.is_finite() or amount <= 0:
        raise ValidationFailed("transaction", "amount", "81503", "Amount is an invalid format.")
    return amount


def _three_d_secure_info(nonce: str) -> dict[str, Any] | None:
    if "three-d-secure" not in nonce:
        return None
    shifted = nonce in LIABILITY_SHIFTED
    return {
        "liability_shifted": shifted,
        "liability_shift_possible": True,
        "status": "authenticate_successful" if shifted else "authenticate_failed",
    }
