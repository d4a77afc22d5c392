"""The audit trail and the ledger: readable by staff, exportable as CSV, and provably balanced."""

from __future__ import annotations

import csv
import io
import time
from collections.abc import Awaitable, Callable

import pytest

from db.ledger import ledger_mismatches
from db.models import Dispute, Payment
from payql.settings import Settings
from payql.wiring import Services
from tests.features.test_refunds import REFUND
from tests.payql.test_cli import cli_env
from tests.processes import cli
from tests.testkit import CHECKOUT, Shopper, checkout_input, make_price, new_key, sandbox_deliverer, settle

AUDIT = """query($id: ID!) { auditLog(entityId: $id) {
  actor action entityType entityId statusBefore statusAfter amount { amount currency } requestId sourceIp } }"""


async def refunded_order(shopper: Shopper, admin: Shopper) -> dict:  # type: ignore[type-arg]
    price = await make_price(6_000, "KWD")
    order: dict = (await shopper.data(CHECKOUT, {"input": checkout_input(price)}))["checkout"]  # type: ignore[type-arg]
    variables = {"input": {"paymentId": order["payment"]["id"], "amount": 1_250, "idempotencyKey": new_key()}}
    await admin.data(REFUND, variables)
    return order


async def test_staff_read_who_did_what_to_a_payment(shopper: Shopper, admin: Shopper) -> None:
    order = await refunded_order(shopper, admin)
    records = (await admin.data(AUDIT, {"id": order["payment"]["id"]}))["auditLog"]
    actions = [r["action"] for r in records]
    assert actions[-1] == "payment.created" and "payment.paid" in actions
    created = records[-1]
    assert created["actor"] == f"customer:{shopper.subject}"
    assert created["sourceIp"] == "127.0.0.1" and created["requestId"]
    assert created["amount"] == {"amount": 6_000, "currency": "KWD"}
    paid = next(r for r in records if r["action"] == "payment.paid")
    assert (paid["statusBefore"], paid["statusAfter"]) == ("PENDING", "PAID")


async def test_customers_cannot_read_the_audit_trail(shopper: Shopper, admin: Shopper) -> None:
    order = await refunded_order(shopper, admin)
    body = await shopper.gql(AUDIT, {"id": order["payment"]["id"]})
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"


async def test_audit_export_writes_csv(
    server: str, server_settings: Settings, shopper: Shopper, admin: Shopper
) -> None:
    since = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(time.time() - 5))
    order = await refunded_order(shopper, admin)
    result = await cli(cli_env(server_settings), "audit", "export", "--since", since)
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    mine = [row for row in rows if row["entity_id"] == order["payment"]["id"]]
    assert {row["action"] for row in mine} >= {"payment.created", "payment.paid"}
    assert all(row["currency"] == "KWD" for row in mine)
    assert "audit records exported" in result.stderr


async def tamper(payment_id: str, amount: str) -> Callable[[], Awaitable[object]]:
    """Make one stored amount of the payment disagree with its ledger; return how to undo it."""
    if amount == "captured":
        await Payment.filter(id=payment_id).update(amount_captured=5_999)
        return lambda: Payment.filter(id=payment_id).update(amount_captured=6_000)
    if amount == "refunded":
        await Payment.filter(id=payment_id).update(amount_refunded=1_249)
        return lambda: Payment.filter(id=payment_id).update(amount_refunded=1_250)
    # A dispute the ledger never saw withdraw its amount.
    dispute = await Dispute.create(
        payment_id=payment_id, gateway="sandbox", gateway_reference=f"dp_{new_key()}", currency="KWD", amount=300
    )
    return lambda: Dispute.filter(id=dispute.id).delete()


@pytest.mark.parametrize(
    ("amount", "stored", "ledger"),
    [
        ("captured", (5_999, 1_250, 0), (6_000, 1_250, 0)),
        ("refunded", (6_000, 1_249, 0), (6_000, 1_250, 0)),
        ("disputed", (6_000, 1_250, 300), (6_000, 1_250, 0)),
    ],
)
async def test_the_ledger_balances_and_a_tampered_amount_is_caught(
    server: str,
    server_settings: Settings,
    shopper: Shopper,
    admin: Shopper,
    services: Services,
    amount: str,
    stored: tuple[int, int, int],
    ledger: tuple[int, int, int],
) -> None:
    order = await refunded_order(shopper, admin)
    payment_id = order["payment"]["id"]
    assert not [m for m in await ledger_mismatches() if str(m.payment_id) == payment_id]
    # Other tests write payment rows by hand, so only this payment's absence is asserted.
    before = await cli(cli_env(server_settings), "audit", "check-ledger", check=False)
    assert payment_id not in before.stdout and "payments whose ledger does not balance" in before.stdout
    # Let the sandbox's webhooks for this payment land first, and hold new ones while the row is
    # tampered with: a re-read from the gateway would rightly "repair" it and write to the ledger.
    await settle(services)
    deliverer = sandbox_deliverer(services)
    assert deliverer is not None
    deliverer.switches.hold()
    undo = await tamper(payment_id, amount)
    try:
        [mismatch] = [m for m in await ledger_mismatches() if str(m.payment_id) == payment_id]
        assert (mismatch.stored_captured, mismatch.stored_refunded, mismatch.stored_disputed) == stored
        assert (mismatch.ledger_captured, mismatch.ledger_refunded, mismatch.ledger_disputed) == ledger
        result = await cli(cli_env(server_settings), "audit", "check-ledger", check=False)
        assert result.returncode == 1
        [line] = [line for line in result.stdout.splitlines() if line.startswith(payment_id)]
        assert f"{amount}={dict(zip(('captured', 'refunded', 'disputed'), stored, strict=True))[amount]}" in line
    finally:
        await undo()
        deliverer.switches.reset()
        await settle(services)
    assert not [m for m in await ledger_mismatches() if str(m.payment_id) == payment_id]
