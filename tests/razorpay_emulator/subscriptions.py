"""The emulator's plans, subscriptions and their invoices (`razorpay` SDK `resources/plan.py`, `subscription.py`,
`invoice.py`; fixtures `fake_plan.json`, `fake_subscription.json`, `fake_subscription_cancelled.json`,
`fake_subscription_paused.json`, `fake_invoice.json`; Razorpay's "Subscriptions States" page).

A subscription is `created` until the shopper authenticates it in Checkout; with an immediate start the first
cycle is charged then (`active`), with a later `start_at` (a trial) it is `authenticated` until the first
charge. Each cycle is an invoice with its own order and payment; a failed charge leaves the invoice `issued` and
the subscription `pending`, and after `halt_after` failures `halted`. `cancel_at_cycle_end` keeps it active
with `end_at` at the current cycle's end (Razorpay's subscription object has no other mark of it).
"""

from __future__ import annotations

import time
from typing import Any

from tests.razorpay_emulator.errors import bad_request, not_found
from tests.razorpay_emulator.ledger import Emit, Ledger, new_id

# The emulator's cycle lengths; Razorpay bills calendar periods.
PERIOD_SECONDS = {"daily": 86_400, "weekly": 7 * 86_400, "monthly": 30 * 86_400, "yearly": 365 * 86_400}


class Billing:
    def __init__(self, ledger: Ledger, emit: Emit, *, halt_after: int = 3) -> None:
        self.plans: dict[str, dict[str, Any]] = {}
        self.subscriptions: dict[str, dict[str, Any]] = {}
        self.invoices: dict[str, dict[str, Any]] = {}
        self._ledger = ledger
        self._emit = emit
        self._halt_after = halt_after

    # --- plans -----------------------------------------------------------------------------------------------
    def create_plan(self, body: dict[str, Any]) -> dict[str, Any]:
        period, interval, item = body.get("period"), body.get("interval"), body.get("item")
        if period not in PERIOD_SECONDS:
            raise bad_request("The selected period is invalid.", field="period")
        if not isinstance(interval, int) or interval < 1:
            raise bad_request("The interval must be an integer.", field="interval")
        if not isinstance(item, dict) or not isinstance(item.get("amount"), int) or not item.get("currency"):
            raise bad_request("The item amount and currency are required.", field="item")
        now = int(time.time())
        plan = {
            "id": new_id("plan"),
            "entity": "plan",
            "interval": interval,
            "period": period,
            "item": {
                "id": new_id("item"),
                "active": True,
                "name": item.get("name"),
                "description": item.get("description"),
                "amount": item["amount"],
                "unit_amount": item["amount"],
                "currency": item["currency"],
                "type": "plan",
                "created_at": now,
                "updated_at": now,
            },
            "notes": body.get("notes") or [],
            "created_at": now,
        }
        self.plans[plan["id"]] = plan
        return plan

    def plan(self, plan_id: str) -> dict[str, Any]:
        if plan_id not in self.plans:
            raise not_found()
        return self.plans[plan_id]

    # --- subscriptions ---------------------------------------------------------------------------------------
    def create(self, body: dict[str, Any]) -> dict[str, Any]:
        plan = self.plan(str(body.get("plan_id")))
        total_count = body.get("total_count")
        if not isinstance(total_count, int) or total_count < 1:
            raise bad_request("The total count field is required.", field="total_count")
        start_at = body.get("start_at")
        now = int(time.time())
        sub = {
            "id": new_id("sub"),
            "entity": "subscription",
            "plan_id": plan["id"],
            "customer_id": None,
            "status": "created",
            "current_start": None,
            "current_end": None,
            "ended_at": None,
            "quantity": body.get("quantity", 1),
            "notes": body.get("notes") or [],
            "charge_at": start_at or None,
            "start_at": start_at,
            "end_at": None,
            "auth_attempts": 0,
            "total_count": total_count,
            "paid_count": 0,
            "customer_notify": bool(body.get("customer_notify", True)),
            "created_at": now,
            "expire_by": body.get("expire_by"),
            "short_url": f"https://rzp.io/i/{sub_suffix()}",
            "has_scheduled_changes": False,
            "change_scheduled_at": None,
            "source": "api",
            "offer_id": None,
            "remaining_count": total_count,
        }
        self.subscriptions[sub["id"]] = sub
        return sub

    def subscription(self, sub_id: str) -> dict[str, Any]:
        if sub_id not in self.subscriptions:
            raise not_found()
        return self.subscriptions[sub_id]

    def authenticate(self, sub_id: str) -> dict[str, Any]:
        """The shopper authenticates the subscription in Checkout: charged at once, or authenticated (trial)."""
        sub = self.subscription(sub_id)
        if sub["status"] != "created":
            raise bad_request("Subscription is not in created state")
        sub["customer_id"] = new_id("cust")
        if sub["start_at"] and sub["start_at"] > int(time.time()):
            sub["status"] = "authenticated"
            self._emit("subscription.authenticated", {"subscription": sub})
            return sub
        self.charge(sub_id)
        return sub

    def charge(self, sub_id: str, *, decline_reason: str | None = None) -> dict[str, Any]:
        """Bill the next cycle: an invoice with its order and payment; paid, or issued and the subscription pending."""
        sub = self.subscription(sub_id)
        if sub["status"] not in ("created", "authenticated", "active", "pending", "halted"):
            raise bad_request("The subscription cannot be charged in its current state")
        plan = self.plans[sub["plan_id"]]
        start = sub["current_end"] or int(time.time())
        end = start + PERIOD_SECONDS[plan["period"]] * plan["interval"]
        amount = plan["item"]["amount"] * sub["quantity"]
        order = self._ledger.create_order(
            {"amount": amount, "currency": plan["item"]["currency"], "notes": sub["notes"] or {}}
        )
        payment = self._ledger.pay(order["id"], decline_reason=decline_reason)
        invoice = {
            "id": new_id("inv"),
            "entity": "invoice",
            "type": "invoice",
            "subscription_id": sub_id,
            "customer_id": sub["customer_id"],
            "order_id": order["id"],
            "payment_id": payment["id"],
            "status": "issued",
            "amount": amount,
            "amount_paid": 0,
            "amount_due": amount,
            "currency": plan["item"]["currency"],
            "billing_start": start,
            "billing_end": end,
            "issued_at": int(time.time()),
            "paid_at": None,
            "date": int(time.time()),
            "notes": [],
            "line_items": [{"name": plan["item"]["name"], "amount": amount, "quantity": sub["quantity"]}],
            "created_at": int(time.time()),
        }
        self.invoices[invoice["id"]] = invoice
        if payment["status"] == "failed":
            failures = sum(
                1 for i in self.invoices.values() if i["subscription_id"] == sub_id and i["status"] == "issued"
            )
            sub["status"] = "halted" if failures >= self._halt_after else "pending"
            self._emit(f"subscription.{sub['status']}", {"subscription": sub})
            return invoice
        payment["invoice_id"] = invoice["id"]
        invoice.update(status="paid", amount_paid=amount, amount_due=0, paid_at=int(time.time()))
        first = sub["status"] in ("created", "authenticated")
        sub.update(status="active", current_start=start, current_end=end, charge_at=end)
        sub["paid_count"] += 1
        sub["remaining_count"] = sub["total_count"] - sub["paid_count"]
        if first:
            self._emit("subscription.activated", {"subscription": sub})
        self._emit("subscription.charged", {"subscription": sub, "payment": payment})
        self._emit("invoice.paid", {"invoice": invoice, "order": order, "payment": payment})
        return invoice

    def update(self, sub_id: str, body: dict[str, Any]) -> dict[str, Any]:
        sub = self.subscription(sub_id)
        if "plan_id" in body:
            plan = self.plan(str(body["plan_id"]))
            if body.get("schedule_change_at", "now") == "cycle_end":
                sub.update(has_scheduled_changes=True, change_scheduled_at=sub["current_end"])
                sub["_scheduled_plan_id"] = plan["id"]
            else:
                sub["plan_id"] = plan["id"]
        if "quantity" in body:
            sub["quantity"] = body["quantity"]
        self._emit("subscription.updated", {"subscription": sub})
        return sub

    def cancel(self, sub_id: str, body: dict[str, Any]) -> dict[str, Any]:
        sub = self.subscription(sub_id)
        if sub["status"] in ("cancelled", "completed", "expired"):
            raise bad_request("Subscription is not cancellable in cancelled status.")
        if body.get("cancel_at_cycle_end") in (1, True, "1", "true") and sub["current_end"]:
            sub["end_at"] = sub["current_end"]
        else:
            sub.update(status="cancelled", ended_at=int(time.time()), charge_at=None)
            self._emit("subscription.cancelled", {"subscription": sub})
        return sub

    def pause(self, sub_id: str) -> dict[str, Any]:
        sub = self.subscription(sub_id)
        if sub["status"] != "active":
            raise bad_request("Subscription cannot be paused unless it is active", field="id")
        sub.update(status="paused", charge_at=None)
        self._emit("subscription.paused", {"subscription": sub})
        return sub

    def resume(self, sub_id: str) -> dict[str, Any]:
        sub = self.subscription(sub_id)
        if sub["status"] != "paused":
            raise bad_request("Subscription cannot be resumed unless it is paused", field="id")
        sub.update(status="active", charge_at=sub["current_end"])
        self._emit("subscription.resumed", {"subscription": sub})
        return sub

    def invoice(self, invoice_id: str) -> dict[str, Any]:
        if invoice_id not in self.invoices:
            raise not_found()
        return self.invoices[invoice_id]


def sub_suffix() -> str:
    return new_id("x")[2:10]


def rendered(sub: dict[str, Any]) -> dict[str, Any]:
    """A subscription as the API answers it (without the emulator's own bookkeeping)."""
    return {k: v for k, v in sub.items() if not k.startswith("_")}
