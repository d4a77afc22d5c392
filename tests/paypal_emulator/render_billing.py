"""Products, plans, subscriptions, v1 sales and sale refunds as PayPal's JSON (shapes from the Catalog Products
v1 and Billing Subscriptions v1 OpenAPI descriptions; sales as the v1 Payments API and PAYMENT.SALE.* events
carry them)."""

from __future__ import annotations

from typing import Any

from tests.paypal_emulator.ledger import Amount
from tests.paypal_emulator.subscriptions import Billing, Plan, Product, Sale, SaleRefund, Subscription


def _link(href: str, rel: str, method: str = "GET") -> dict[str, str]:
    return {"href": href, "rel": rel, "method": method}


def _v1_amount(amount: Amount) -> dict[str, Any]:
    total = amount.wire()["value"]
    return {"total": total, "currency": amount.currency, "details": {"subtotal": total}}


def product(p: Product, base: str) -> dict[str, Any]:
    href = f"{base}/v1/catalogs/products/{p.id}"
    body: dict[str, Any] = {"id": p.id, "name": p.name, "type": p.type, "create_time": p.create_time}
    if p.description:
        body["description"] = p.description
    body["update_time"] = p.create_time
    body["links"] = [_link(href, "self"), _link(href, "edit", "PATCH")]
    return body


def plan(p: Plan, base: str) -> dict[str, Any]:
    href = f"{base}/v1/billing/plans/{p.id}"
    cycles = []
    for cycle in p.billing_cycles:
        rendered = dict(cycle)
        if "pricing_scheme" in rendered:
            rendered["pricing_scheme"] = {"version": 1, **rendered["pricing_scheme"], "create_time": p.create_time}
        cycles.append(rendered)
    return {
        "id": p.id,
        "product_id": p.product_id,
        "name": p.name,
        "status": p.status,
        **({"description": p.description} if p.description else {}),
        "usage_type": "LICENSED",
        "billing_cycles": cycles,
        "payment_preferences": {
            "service_type": "PREPAID",
            "auto_bill_outstanding": True,
            "setup_fee_failure_action": "CONTINUE",
            "payment_failure_threshold": 0,
            **p.payment_preferences,
        },
        "quantity_supported": False,
        "create_time": p.create_time,
        "update_time": p.create_time,
        "links": [
            _link(href, "self"),
            _link(href, "edit", "PATCH"),
            _link(f"{href}/deactivate", "self", "POST"),
        ],
    }


def plan_summary(p: Plan, base: str) -> dict[str, Any]:
    """A plan as `GET /v1/billing/plans` lists it."""
    full = plan(p, base)
    keys = ("id", "product_id", "name", "status", "description", "usage_type", "create_time", "links")
    return {key: full[key] for key in keys if key in full}


def subscription(s: Subscription, billing: Billing, base: str) -> dict[str, Any]:
    href = f"{base}/v1/billing/subscriptions/{s.id}"
    p = billing.plans[s.plan_id]
    currency = p.price.currency
    executions = []
    trial = p.cycle("TRIAL")
    if trial is not None:
        total = int(trial.get("total_cycles") or 1)
        executions.append(
            {
                "tenure_type": "TRIAL",
                "sequence": trial.get("sequence", 1),
                "cycles_completed": s.trial_done,
                "cycles_remaining": max(total - s.trial_done, 0),
                "total_cycles": total,
            }
        )
    regular = p.cycle("REGULAR") or {}
    executions.append(
        {
            "tenure_type": "REGULAR",
            "sequence": regular.get("sequence", 1),
            "cycles_completed": s.cycles_done,
            "cycles_remaining": 0,
            "current_pricing_scheme_version": 1,
            "total_cycles": int(regular.get("total_cycles") or 0),
        }
    )
    billing_info: dict[str, Any] = {
        "outstanding_balance": Amount(currency, s.outstanding).wire(),
        "cycle_executions": executions,
        "failed_payments_count": s.failed_payments_count,
    }
    if s.last_payment is not None:
        billing_info["last_payment"] = {"amount": s.last_payment[0].wire(), "time": s.last_payment[1]}
    if s.last_failed is not None:
        billing_info["last_failed_payment"] = {
            "amount": s.last_failed[0].wire(),
            "time": s.last_failed[1],
            "reason_code": "PAYER_CANNOT_PAY",
        }
    if s.next_billing_time is not None:
        billing_info["next_billing_time"] = s.next_billing_time
    subscriber: dict[str, Any] = {}
    if s.email:
        subscriber["email_address"] = s.email
    if s.payer_id:
        subscriber["payer_id"] = s.payer_id
        subscriber["name"] = {"given_name": "John", "surname": "Doe"}
    body: dict[str, Any] = {
        "id": s.id,
        "plan_id": s.plan_id,
        "status": s.status,
        "status_update_time": s.status_update_time,
        "start_time": s.start_time,
        "quantity": "1",
        **({"custom_id": s.custom_id} if s.custom_id else {}),
        **({"status_change_note": s.status_change_note} if s.status_change_note else {}),
        **({"subscriber": subscriber} if subscriber else {}),
        "create_time": s.create_time,
        "update_time": s.update_time,
        "plan_overridden": False,
    }
    if s.status not in ("APPROVAL_PENDING", "APPROVED"):
        body["billing_info"] = billing_info
    links = []
    if s.status == "APPROVAL_PENDING":
        links.append(_link(approve_url(s, base), "approve"))
    links += [_link(href, "edit", "PATCH"), _link(href, "self")]
    if s.status == "ACTIVE":
        links += [_link(f"{href}/cancel", "cancel", "POST"), _link(f"{href}/suspend", "suspend", "POST")]
    if s.status == "SUSPENDED":
        links += [_link(f"{href}/cancel", "cancel", "POST"), _link(f"{href}/activate", "activate", "POST")]
    body["links"] = links
    return body


def approve_url(s: Subscription, base: str) -> str:
    return f"{base}/webapps/billing/subscriptions?ba_token=BA-{s.id.removeprefix('I-')}"


def revise_answer(s: Subscription, base: str) -> dict[str, Any]:
    return {
        "plan_id": s.pending_plan_id,
        "plan_overridden": False,
        "links": [
            _link(approve_url(s, base), "approve"),
            _link(f"{base}/v1/billing/subscriptions/{s.id}", "edit", "PATCH"),
            _link(f"{base}/v1/billing/subscriptions/{s.id}", "self"),
        ],
    }


def sale(x: Sale, base: str) -> dict[str, Any]:
    href = f"{base}/v1/payments/sale/{x.id}"
    return {
        "id": x.id,
        "state": x.state,
        "amount": _v1_amount(x.amount),
        "payment_mode": "INSTANT_TRANSFER",
        "protection_eligibility": "ELIGIBLE",
        "protection_eligibility_type": "ITEM_NOT_RECEIVED_ELIGIBLE,UNAUTHORIZED_PAYMENT_ELIGIBLE",
        "transaction_fee": {"value": "0.59", "currency": x.amount.currency},
        "billing_agreement_id": x.subscription_id,
        **({"custom": x.custom} if x.custom else {}),
        "create_time": x.create_time,
        "update_time": x.update_time,
        "links": [_link(href, "self"), _link(f"{href}/refund", "refund", "POST")],
    }


def sale_refund(r: SaleRefund, base: str) -> dict[str, Any]:
    return {
        "id": r.id,
        "state": r.state,
        "amount": {"total": r.amount.wire()["value"], "currency": r.amount.currency},
        "sale_id": r.sale_id,
        "create_time": r.create_time,
        "update_time": r.create_time,
        "links": [
            _link(f"{base}/v1/payments/refund/{r.id}", "self"),
            _link(f"{base}/v1/payments/sale/{r.sale_id}", "sale"),
        ],
    }


def capture_transaction(x: Sale) -> dict[str, Any]:
    """The answer to a capture of the outstanding balance (a `transaction`)."""
    return {
        "status": "COMPLETED",
        "id": x.id,
        "amount_with_breakdown": {"gross_amount": x.amount.wire(), "net_amount": x.amount.wire()},
        "time": x.create_time,
    }
