"""The emulator's vault and recurring billing: customers, payment methods vaulted from nonces, plans (made in the
Control Panel, so configured here), subscriptions with monthly billing cycles whose charges are sale transactions
naming their subscription, and what `subscription.update` does with `prorate_charges` (an upgrade charges the
prorated difference at once; a downgrade's difference becomes a credit balance)."""

from __future__ import annotations

import calendar
import secrets
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from tests.braintree_emulator.ledger import Ledger, ValidationFailed, now


def add_months(day: date, months: int) -> date:
    month = day.month - 1 + months
    year, month = day.year + month // 12, month % 12 + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


@dataclass
class Billing:
    ledger: Ledger
    plans: dict[str, dict[str, Any]] = field(default_factory=dict)  # id → billing_frequency (months), price
    customers: dict[str, dict[str, Any]] = field(default_factory=dict)
    payment_methods: dict[str, dict[str, Any]] = field(default_factory=dict)  # token → customer_id, nonce
    subscriptions: dict[str, dict[str, Any]] = field(default_factory=dict)

    def create_customer(self, params: dict[str, Any]) -> dict[str, Any]:
        customer_id = params.get("id") or secrets.token_hex(4)
        if customer_id in self.customers:
            raise ValidationFailed("customer", "id", "91609", "Customer ID has already been taken.")
        customer = {"id": customer_id, "email": params.get("email"), "created_at": now(), "credit_cards": []}
        self.customers[customer_id] = customer
        return customer

    def vault(self, params: dict[str, Any]) -> dict[str, Any]:
        customer_id = params.get("customer_id")
        if customer_id not in self.customers:
            raise ValidationFailed("payment_method", "customer_id", "93105", "Customer ID is invalid.")
        token = secrets.token_hex(4)
        card = {"token": token, "customer_id": customer_id, "bin": "401288", "last_4": "1881", "default": True}
        self.payment_methods[token] = {**card, "nonce": params.get("payment_method_nonce")}
        self.customers[customer_id]["credit_cards"].append(card)
        return card

    def create_subscription(self, params: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any] | None]:
        """The subscription and, unless it starts with a trial, its first charge (a declined one is returned with
        no subscription made, as Braintree answers it)."""
        subscription_id = params.get("id") or secrets.token_hex(3)
        if subscription_id in self.subscriptions:
            raise ValidationFailed("subscription", "id", "81906", "ID has already been taken.")
        plan = self.plans.get(str(params.get("plan_id")))
        if plan is None:
            raise ValidationFailed("subscription", "plan_id", "91904", "Plan ID is invalid.")
        token = str(params.get("payment_method_token") or "")
        if token not in self.payment_methods:
            raise ValidationFailed("subscription", "payment_method_token", "91903", "Payment method token is invalid.")
        price = Decimal(str(params.get("price") or plan["price"]))
        trial_days = int(params.get("trial_duration") or 0) if params.get("trial_period") else 0
        today = now().date()
        subscription: dict[str, Any] = {
            "id": subscription_id,
            "status": "Active",
            "plan_id": plan["id"],
            "price": f"{price}",
            "balance": "0.00",
            "merchant_account_id": params.get("merchant_account_id") or self.ledger.default_merchant_account,
            "payment_method_token": token,
            "trial_period": trial_days > 0,
            "trial_duration": trial_days or None,
            "trial_duration_unit": "day" if trial_days else None,
            "first_billing_date": today + timedelta(days=trial_days),
            "current_billing_cycle": 0,
            "number_of_billing_cycles": None,
            "never_expires": True,
            "failure_count": 0,
            "created_at": now(),
            "updated_at": now(),
            "transactions": [],
            "add_ons": [],
            "discounts": [],
            "status_history": [],
        }
        frequency = int(plan["billing_frequency"])
        if trial_days:
            subscription.update(
                billing_period_start_date=None,
                billing_period_end_date=None,
                next_billing_date=today + timedelta(days=trial_days),
                paid_through_date=None,
            )
            self.subscriptions[subscription_id] = subscription
            return subscription, None
        subscription.update(billing_period_start_date=today, billing_period_end_date=add_months(today, frequency))
        charge = self._charge(subscription, price)
        if charge["status"] not in ("authorized", "submitted_for_settlement"):
            return subscription, charge  # not stored: Braintree makes no subscription when its first charge fails
        subscription.update(
            current_billing_cycle=1,
            next_billing_date=subscription["billing_period_end_date"],
            paid_through_date=subscription["billing_period_end_date"],
        )
        self.subscriptions[subscription_id] = subscription
        return subscription, charge

    def update(self, subscription: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
        if subscription["status"] in ("Canceled", "Expired"):
            raise ValidationFailed("subscription", "status", "81901", "Cannot edit a canceled subscription.")
        if "payment_method_token" in params:
            if params["payment_method_token"] not in self.payment_methods:
                raise ValidationFailed(
                    "subscription", "payment_method_token", "91903", "Payment method token is invalid."
                )
            subscription["payment_method_token"] = params["payment_method_token"]
        if "number_of_billing_cycles" in params:
            cycles = params["number_of_billing_cycles"]
            subscription["number_of_billing_cycles"] = int(cycles) if cycles not in (None, "") else None
            subscription["never_expires"] = subscription["number_of_billing_cycles"] is None
        if "plan_id" in params:
            if params["plan_id"] not in self.plans:
                raise ValidationFailed("subscription", "plan_id", "91904", "Plan ID is invalid.")
            subscription["plan_id"] = params["plan_id"]
        if "price" in params:
            old, new = Decimal(subscription["price"]), Decimal(str(params["price"]))
            prorate = bool((params.get("options") or {}).get("prorate_charges"))
            difference = (new - old) * self._rest_of_period(subscription) if prorate else Decimal(0)
            difference = difference.quantize(Decimal("0.01"), ROUND_HALF_UP)
            if difference > 0:
                charge = self._charge(subscription, difference)
                if charge["status"] not in ("authorized", "submitted_for_settlement"):
                    raise ValidationFailed("subscription", "base", "91532", "Proration charge was declined.")
            elif difference < 0:
                subscription["balance"] = f"{Decimal(subscription['balance']) + difference}"
            subscription["price"] = f"{new}"
        subscription["updated_at"] = now()
        return subscription

    def cancel(self, subscription: dict[str, Any]) -> dict[str, Any]:
        if subscription["status"] == "Canceled":
            raise ValidationFailed("subscription", "status", "81905", "Subscription has already been canceled.")
        self._move(subscription, "Canceled")
        return subscription

    def bill_cycle(self, subscription: dict[str, Any]) -> dict[str, Any]:
        """The next billing date came: charge the cycle (less any credit balance), or end the subscription."""
        cycles = subscription["number_of_billing_cycles"]
        if cycles is not None and subscription["current_billing_cycle"] >= cycles:
            self._move(subscription, "Expired")
            return subscription
        plan = self.plans[subscription["plan_id"]]
        start = subscription["next_billing_date"]
        subscription.update(
            billing_period_start_date=start, billing_period_end_date=add_months(start, int(plan["billing_frequency"]))
        )
        balance = Decimal(subscription["balance"])
        due = max(Decimal(0), Decimal(subscription["price"]) + balance)
        subscription["balance"] = f"{min(Decimal(0), Decimal(subscription['price']) + balance)}"
        charge = self._charge(subscription, due)
        if charge["status"] in ("authorized", "submitted_for_settlement"):
            subscription.update(
                current_billing_cycle=subscription["current_billing_cycle"] + 1,
                next_billing_date=subscription["billing_period_end_date"],
                paid_through_date=subscription["billing_period_end_date"],
                failure_count=0,
            )
            if subscription["status"] == "Past Due":
                self._move(subscription, "Active")
        else:
            subscription["failure_count"] += 1
            subscription["balance"] = f"{Decimal(subscription['balance']) + due}"
            self._move(subscription, "Past Due")
        return charge

    def retry_charge(self, subscription: dict[str, Any], amount: Any) -> dict[str, Any]:
        due = Decimal(str(amount)) if amount not in (None, "") else Decimal(subscription["balance"])
        charge = self._charge(subscription, due)
        if charge["status"] in ("authorized", "submitted_for_settlement"):
            subscription["balance"] = f"{max(Decimal(0), Decimal(subscription['balance']) - due)}"
            subscription.update(
                failure_count=0,
                current_billing_cycle=subscription["current_billing_cycle"] + 1,
                next_billing_date=subscription["billing_period_end_date"],
                paid_through_date=subscription["billing_period_end_date"],
            )
            if subscription["status"] == "Past Due":
                self._move(subscription, "Active")
        return charge

    def _charge(self, subscription: dict[str, Any], amount: Decimal) -> dict[str, Any]:
        method = self.payment_methods[subscription["payment_method_token"]]
        charge = self.ledger.sale(
            {
                "amount": f"{amount}",
                "payment_method_nonce": method["nonce"],
                "merchant_account_id": subscription["merchant_account_id"],
                "options": {"submit_for_settlement": True},
            }
        )
        charge["subscription_id"] = subscription["id"]
        charge["subscription"] = {
            "billing_period_start_date": subscription.get("billing_period_start_date"),
            "billing_period_end_date": subscription.get("billing_period_end_date"),
        }
        subscription["transactions"].insert(0, charge)
        return charge

    def _rest_of_period(self, subscription: dict[str, Any]) -> Decimal:
        start, end = subscription.get("billing_period_start_date"), subscription.get("billing_period_end_date")
        if not start or not end:
            return Decimal(0)  # in a trial: nothing paid yet, nothing to prorate
        total = (end - start).days or 1
        return Decimal(max(0, (end - now().date()).days)) / Decimal(total)

    def _move(self, subscription: dict[str, Any], status: str) -> None:
        subscription["status"] = status
        subscription["updated_at"] = now()
        event = {
            "status": status,
            "timestamp": now(),
            "price": subscription["price"],
            "balance": subscription["balance"],
        }
        subscription["status_history"].insert(0, event)
