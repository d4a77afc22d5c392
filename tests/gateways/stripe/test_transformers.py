"""The Stripe → PayQL mappings on Stripe's own object shapes (no network)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from domain.statuses import CaptureMethod, PaymentStatus, RefundStatus
from gateways.errors import DECLINE_CODES
from gateways.stripe.transformers import (
    capture_method,
    charge_payment_result,
    decline_code,
    payment_result,
    payment_status,
    refund_reason,
    refund_status,
)

FIXTURES = Path(__file__).parents[2] / "fixtures" / "stripe"


def _intent(**changes: Any) -> dict[str, Any]:
    intent: dict[str, Any] = json.loads((FIXTURES / "payment_intent.succeeded.json").read_text())["data"]["object"]
    intent.update(changes)
    return intent


@pytest.mark.parametrize(
    ("stripe_status", "has_error", "expected"),
    [
        ("requires_payment_method", True, PaymentStatus.FAILED),
        ("requires_payment_method", False, PaymentStatus.PENDING),
        ("requires_confirmation", False, PaymentStatus.PENDING),
        ("requires_action", False, PaymentStatus.REQUIRES_ACTION),
        ("processing", False, PaymentStatus.PROCESSING),
        ("requires_capture", False, PaymentStatus.AUTHORIZED),
        ("succeeded", False, PaymentStatus.PAID),
        ("canceled", False, PaymentStatus.CANCELED),
        ("requires_source", False, PaymentStatus.PENDING),
        ("some_future_status", True, PaymentStatus.PENDING),
        ("", False, PaymentStatus.PENDING),
    ],
)
def test_payment_intent_statuses(stripe_status: str, has_error: bool, expected: PaymentStatus) -> None:
    assert payment_status(stripe_status, has_payment_error=has_error) is expected


def test_an_unknown_status_is_never_a_success() -> None:
    result = payment_result(_intent(status="succeeded_maybe", amount_received=2000))
    assert result.status is PaymentStatus.PENDING
    assert result.gateway_status == "succeeded_maybe"


@pytest.mark.parametrize(
    ("code", "stripe_decline", "expected"),
    [
        ("card_declined", "generic_decline", "generic_decline"),
        ("card_declined", None, "card_declined"),
        ("card_declined", "insufficient_funds", "insufficient_funds"),
        ("card_declined", "do_not_honor", "generic_decline"),
        ("card_declined", "lost_card", "card_declined"),
        ("expired_card", None, "expired_card"),
        ("processing_error", None, "processing_error"),
        ("card_declined", "authentication_required", "authentication_required"),
        ("payment_intent_authentication_failure", None, "authentication_required"),
        ("incorrect_cvc", None, "generic_decline"),
        (None, None, "generic_decline"),
    ],
)
def test_decline_codes_are_normalized_onto_our_keys(
    code: str | None, stripe_decline: str | None, expected: str
) -> None:
    assert decline_code(code, stripe_decline) == expected
    assert expected in DECLINE_CODES


def test_partial_capture_as_real_stripe_reports_it() -> None:
    result = payment_result(_intent(amount=2000, amount_received=1500, amount_capturable=0, latest_charge="ch_1"))

    assert result.status is PaymentStatus.PAID
    assert (result.amount_captured, result.amount_authorized, result.amount_refunded) == (1500, 1500, 0)


def test_refunds_come_from_an_expanded_charge() -> None:
    charge = {
        "id": "ch_1",
        "object": "charge",
        "status": "succeeded",
        "captured": True,
        "amount": 2000,
        "amount_captured": 2000,
        "amount_refunded": 700,
    }
    assert payment_result(_intent(latest_charge=charge)).amount_refunded == 700


def test_refunds_come_from_amount_refunded_when_the_charge_is_an_id() -> None:
    assert payment_result(_intent(latest_charge="ch_1", amount_refunded=300)).amount_refunded == 300
    assert payment_result(_intent(latest_charge="ch_1")).amount_refunded == 0


def test_without_amount_received_the_capture_comes_from_the_charge() -> None:
    charge = {"id": "ch_1", "status": "succeeded", "captured": True, "amount": 2000, "amount_refunded": 0}
    intent = _intent(latest_charge=charge)
    del intent["amount_received"], intent["amount_capturable"]

    assert payment_result(intent).amount_captured == 2000
    assert payment_result({**intent, "latest_charge": None}).amount_captured == 0


def test_currency_is_normalized_and_the_payql_id_read_from_metadata() -> None:
    result = payment_result(_intent(currency="jpy", amount=500, amount_received=500))
    assert (result.amount.amount, result.amount.currency) == (500, "JPY")
    assert payment_result(_intent(metadata={})).payql_payment_id is None


def test_a_redirect_next_action_keeps_its_url_for_the_sdk() -> None:
    intent = _intent(
        status="requires_action",
        next_action={"type": "redirect_to_url", "redirect_to_url": {"url": "https://hooks.stripe.com/x"}},
    )
    result = payment_result(intent)
    assert result.next_action is not None
    assert result.next_action.redirect_url == "https://hooks.stripe.com/x"


def test_refund_statuses_capture_methods_and_reasons() -> None:
    assert refund_status("succeeded") is RefundStatus.SUCCEEDED
    assert refund_status("requires_action") is RefundStatus.PENDING
    assert refund_status("canceled") is RefundStatus.CANCELED
    assert refund_status("brand_new") is RefundStatus.PENDING
    assert capture_method(CaptureMethod.MANUAL) == "manual"
    assert capture_method(CaptureMethod.AUTOMATIC) == "automatic"
    assert refund_reason("requested_by_customer") == "requested_by_customer"
    assert refund_reason("changed my mind") is None


def test_a_partially_captured_charge_only_keeps_the_captured_part_authorized() -> None:
    charge = json.loads((FIXTURES / "charge.refunded.json").read_text())["data"]["object"]
    charge.update(amount=2000, amount_captured=1500, amount_refunded=0, captured=True)

    result = charge_payment_result(charge)

    assert (result.amount_authorized, result.amount_captured) == (1500, 1500)
    assert result.status is PaymentStatus.PAID
    assert charge_payment_result({**charge, "captured": False, "amount_captured": 0}).status is PaymentStatus.AUTHORIZED
    with pytest.raises(ValueError, match="payment_intent"):
        charge_payment_result({**charge, "payment_intent": None})
