"""Refunds as their own entity: bounded by the capture under concurrency, idempotent, voids for
uncaptured payments, failures after success, and order cancellation that refunds once."""

from __future__ import annotations

import asyncio
from typing import Any

from db.models import AuditRecord, Order, Payment, PaymentEvent, Refund
from gateways.sandbox.processor import SandboxProcessor
from payql.wiring import Services
from tests.testkit import CHECKOUT, Shopper, checkout_input, make_price, new_key, settle

REFUND_FIELDS = (
    "refund { id status amount { amount currency } failureReason } order { id status } "
    "payment { id status amountCaptured { amount } } userErrors { code field message }"
)
REFUND = f"mutation($input: RefundPaymentInput!) {{ refundPayment(input: $input) {{ {REFUND_FIELDS} }} }}"
CANCEL_ORDER = f"mutation($input: CancelOrderInput!) {{ cancelOrder(input: $input) {{ {REFUND_FIELDS} }} }}"


async def paid(shopper: Shopper, amount: int = 10_000, currency: str = "USD", capture: str = "AUTOMATIC") -> dict:  # type: ignore[type-arg]
    price = await make_price(amount, currency)
    result: dict = (await shopper.data(CHECKOUT, {"input": checkout_input(price, capture_method=capture)}))["checkout"]  # type: ignore[type-arg]
    return result


async def refund(admin: Shopper, payment_id: str, amount: int | None = None, key: str | None = None) -> dict[str, Any]:
    variables = {"input": {"paymentId": payment_id, "reason": "customer request", "idempotencyKey": key or new_key()}}
    if amount is not None:
        variables["input"]["amount"] = amount
    result: dict[str, Any] = (await admin.data(REFUND, variables))["refundPayment"]
    return result


async def ledger_balances(payment_id: str) -> int:
    """Refunded minus reversed, from the append-only ledger, must equal the stored amount."""
    events = await PaymentEvent.filter(payment_id=payment_id, type__in=["REFUNDED", "REFUND_REVERSED"])
    total = sum(e.amount if e.type == "REFUNDED" else -e.amount for e in events)
    payment = await Payment.get(id=payment_id)
    assert total == payment.amount_refunded
    return total


async def test_a_full_refund_by_default(shopper: Shopper, admin: Shopper, sandbox: SandboxProcessor) -> None:
    order = await paid(shopper)
    result = await refund(admin, order["payment"]["id"])
    assert result["userErrors"] == []
    assert result["refund"]["status"] == "SUCCEEDED" and result["refund"]["amount"]["amount"] == 10_000
    assert result["order"]["status"] == "REFUNDED"
    assert await ledger_balances(order["payment"]["id"]) == 10_000
    payment = await Payment.get(id=order["payment"]["id"])
    assert (await sandbox.retrieve(payment.gateway_reference or "")).amount_refunded == 10_000


async def test_partial_refunds_then_the_rest(shopper: Shopper, admin: Shopper) -> None:
    order = await paid(shopper, 5_000, "JPY")
    first = await refund(admin, order["payment"]["id"], 1_500)
    assert first["order"]["status"] == "PARTIALLY_REFUNDED"
    assert first["refund"]["amount"] == {"amount": 1_500, "currency": "JPY"}
    rest = await refund(admin, order["payment"]["id"])
    assert rest["refund"]["amount"]["amount"] == 3_500 and rest["order"]["status"] == "REFUNDED"
    nothing_left = await refund(admin, order["payment"]["id"], 1)
    assert [e["code"] for e in nothing_left["userErrors"]] == ["INVALID_INPUT"]
    assert await ledger_balances(order["payment"]["id"]) == 5_000


async def test_twenty_concurrent_partial_refunds_never_exceed_the_capture(
    shopper: Shopper, admin: Shopper, sandbox: SandboxProcessor
) -> None:
    order = await paid(shopper, 10_000)
    payment_id = order["payment"]["id"]
    results = await asyncio.gather(*(refund(admin, payment_id, 700) for _ in range(20)))
    succeeded = [r for r in results if not r["userErrors"]]
    refused = [r["userErrors"][0]["code"] for r in results if r["userErrors"]]
    assert len(succeeded) == 14  # 14 x 700 = 9,800 fits in 10,000; a 15th would not
    assert refused == ["INVALID_INPUT"] * 6
    assert await Refund.filter(payment_id=payment_id, status="SUCCEEDED").count() == 14
    assert await ledger_balances(payment_id) == 9_800
    payment = await Payment.get(id=payment_id)
    assert (await sandbox.retrieve(payment.gateway_reference or "")).amount_refunded == 9_800
    assert (await Order.get(id=order["order"]["id"])).status == "PARTIALLY_REFUNDED"


async def test_a_refund_replayed_with_its_key_refunds_once(shopper: Shopper, admin: Shopper) -> None:
    order = await paid(shopper)
    key = new_key()
    first = await refund(admin, order["payment"]["id"], 2_000, key)
    again = await refund(admin, order["payment"]["id"], 2_000, key)
    assert again == first
    other = await refund(admin, order["payment"]["id"], 3_000, key)
    assert [e["code"] for e in other["userErrors"]] == ["IDEMPOTENCY_CONFLICT"]
    assert await Refund.filter(payment_id=order["payment"]["id"]).count() == 1


async def test_an_uncaptured_authorization_is_voided_not_refunded(shopper: Shopper, admin: Shopper) -> None:
    order = await paid(shopper, capture="MANUAL")
    result = await refund(admin, order["payment"]["id"])
    assert result["userErrors"] == [] and result["refund"] is None
    assert result["payment"]["status"] == "CANCELED"
    assert await Refund.filter(payment_id=order["payment"]["id"]).count() == 0


async def test_a_refund_that_fails_later_puts_the_money_back_in_our_books(
    shopper: Shopper, admin: Shopper, sandbox: SandboxProcessor, services: Services
) -> None:
    order = await paid(shopper, 8_000)
    done = await refund(admin, order["payment"]["id"], 3_000)
    refund_row = await Refund.get(id=done["refund"]["id"])
    await sandbox.fail_refund(refund_row.gateway_reference or "")
    await settle(services)
    refund_row = await Refund.get(id=refund_row.id)
    assert refund_row.status == "FAILED" and refund_row.failure_reason
    assert await ledger_balances(order["payment"]["id"]) == 0
    assert (await Order.get(id=order["order"]["id"])).status == "PAID"
    reversed_ = await PaymentEvent.get(payment_id=order["payment"]["id"], type="REFUND_REVERSED")
    assert reversed_.amount == 3_000
    failed = await AuditRecord.get(entity_id=str(refund_row.id), action="refund.failed")
    assert (failed.status_before, failed.status_after) == ("SUCCEEDED", "FAILED")


async def test_cancelling_a_paid_order_refunds_it_once_even_double_clicked(shopper: Shopper, admin: Shopper) -> None:
    order = await paid(shopper, 4_200)
    order_id = order["order"]["id"]
    key = new_key()

    async def cancel(with_key: str) -> dict[str, Any]:
        variables = {"input": {"orderId": order_id, "reason": "out of stock", "idempotencyKey": with_key}}
        result: dict[str, Any] = (await admin.data(CANCEL_ORDER, variables))["cancelOrder"]
        return result

    clicks = await asyncio.gather(cancel(key), cancel(key), cancel(new_key()))
    # The two copies with one key are one request: same order, same refund (a replay shows the
    # entities as they are now, so only their identities are compared).
    same_key = [(c["order"]["id"], (c["refund"] or {}).get("id")) for c in clicks[:2]]
    assert same_key[0] == same_key[1]
    assert all(c["userErrors"] == [] for c in clicks)
    assert await Refund.filter(payment__order_id=order_id).count() == 1
    assert (await Order.get(id=order_id)).status == "REFUNDED"
    assert await ledger_balances(order["payment"]["id"]) == 4_200


async def test_cancelling_an_unpaid_order_cancels_it(shopper: Shopper, admin: Shopper) -> None:
    price = await make_price(100)
    declined = (await shopper.data(CHECKOUT, {"input": checkout_input(price, "pm_card_chargeDeclined")}))["checkout"]
    variables = {"input": {"orderId": declined["order"]["id"], "idempotencyKey": new_key()}}
    result = (await admin.data(CANCEL_ORDER, variables))["cancelOrder"]
    assert result["order"]["status"] == "CANCELED" and result["refund"] is None


async def test_customers_cannot_refund(shopper: Shopper) -> None:
    order = await paid(shopper)
    result = await refund(shopper, order["payment"]["id"])
    assert [e["code"] for e in result["userErrors"]] == ["FORBIDDEN"]
    assert await Refund.filter(payment_id=order["payment"]["id"]).count() == 0
