"""Reconciliation with Square: a checkout whose CreatePayment answers were all lost (Square charged; no
notification reached PayQL) is settled from Square's own records: the orphan is found by our payment id in the
payment's `reference_id`, and the window comparison reads ListPayments."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from db.models import Payment
from gateways.square.adapter import SquareGateway
from jobs.reconcile import reconcile
from payql.wiring import Services
from tests.gateways.square.conftest import NONCE_OK
from tests.square_emulator import SquareEmulator
from tests.testkit import CHECKOUT, Shopper, checkout_input, make_price


async def charged_with_every_answer_lost(emulator: SquareEmulator, shopper: Shopper) -> Payment:
    emulator.webhook_url = None  # no notification arrives either
    emulator.fail_next(500, after_effect=True, path="/v2/payments", times=10)
    price = await make_price(3_300)
    result = (await shopper.data(CHECKOUT, {"input": checkout_input(price, NONCE_OK) | {"gateway": "square"}}))[
        "checkout"
    ]
    assert [e["code"] for e in result["userErrors"]] == ["GATEWAY_UNAVAILABLE"]
    payment = await Payment.get(id=result["payment"]["id"])
    assert payment.status == "PENDING" and payment.gateway_reference is None
    [charged] = emulator.ledger.payments.values()  # one Square payment, however often the call was retried
    assert charged.status == "COMPLETED"
    emulator.clear_faults()  # the retries gave up before using them all
    return payment


async def test_an_orphan_is_found_by_our_payment_id(
    square_in_payql: SquareGateway, emulator: SquareEmulator, shopper: Shopper, services: Services
) -> None:
    payment = await charged_with_every_answer_lost(emulator, shopper)
    report = await reconcile(
        services.jobs.gateways,
        since=datetime.now(UTC) + timedelta(hours=1),  # no list comparison: only the orphan read
        orphan_age=timedelta(0),
        order_expiry=timedelta(days=1),
    )
    assert report.settled >= 1
    settled = await Payment.get(id=payment.id)
    assert (settled.status, settled.amount_captured) == ("PAID", 3_300)
    assert settled.gateway_reference == next(iter(emulator.ledger.payments))


async def test_the_window_comparison_reads_squares_list(
    square_in_payql: SquareGateway, emulator: SquareEmulator, shopper: Shopper, services: Services
) -> None:
    payment = await charged_with_every_answer_lost(emulator, shopper)
    report = await reconcile(
        services.jobs.gateways,
        since=datetime.now(UTC) - timedelta(minutes=5),
        orphan_age=timedelta(days=1),  # nothing is an orphan yet: the list must do it
        order_expiry=timedelta(days=1),
    )
    assert "square" not in report.unreachable_gateways
    repaired = await Payment.get(id=payment.id)
    assert (repaired.status, repaired.amount_captured) == ("PAID", 3_300)
