"""The gateway contract (`tests/gateways/contract.py`) against the Razorpay adapter on the Razorpay emulator.

`after_charge` plays the shopper paying in Checkout, then completes with the signed values Checkout handed the SPA
(as PayPal's harness approves, then completes). Razorpay captures only the whole authorized amount and has no
call to void an authorization, so those two scenarios are declared not applicable.
"""

from __future__ import annotations

import pytest

from domain.money import Money
from domain.statuses import CaptureMethod, RefundStatus
from gateways.razorpay import transformers
from gateways.types import PaymentResult
from tests.gateways.contract import PARTIAL_CAPTURE, VOID_AUTHORIZATION, ContractSuite, GatewayHarness
from tests.gateways.razorpay.conftest import failure_values, make_gateway, pay_in_checkout
from tests.razorpay_emulator import RazorpayEmulator


class TestContract(ContractSuite):
    @pytest.fixture
    def built_harness(self, request: pytest.FixtureRequest) -> GatewayHarness:
        running: RazorpayEmulator = request.getfixturevalue("emulator")
        gateway = make_gateway(running)

        async def payment_method() -> str:
            return "razorpay"

        async def after_charge(created: PaymentResult, capture_method: CaptureMethod) -> PaymentResult:
            """The shopper pays in Checkout; the SPA sends back the signed values."""
            handed = await pay_in_checkout(running, created.reference)
            return await gateway.accept_shopper_return(
                created.reference,
                handed,
                capture=capture_method is CaptureMethod.AUTOMATIC,
                idempotency_key=f"complete-{created.reference}",
            )

        async def attempt_declined(amount: Money) -> object:
            created = await gateway.charge(built.charge_request(amount, CaptureMethod.AUTOMATIC, "razorpay"))
            handed = await pay_in_checkout(running, created.reference, decline_reason="payment_failed")
            return await gateway.accept_shopper_return(
                created.reference, failure_values(handed), capture=True, idempotency_key=f"complete-{created.reference}"
            )

        built = GatewayHarness(
            name="razorpay-emulator",
            gateway=gateway,
            payment_method=payment_method,
            attempt_declined=attempt_declined,
            after_charge=after_charge,
            payment_status_functions={"payment": transformers.payment_status, "order": transformers.order_status},
            refund_status_functions={"refund": transformers.refund_status},
            accepted_refund_statuses=frozenset({RefundStatus.SUCCEEDED, RefundStatus.PENDING}),
            not_applicable={
                PARTIAL_CAPTURE: "Razorpay's capture amount must equal the authorized amount (API reference, "
                "Capture a Payment)",
                VOID_AUTHORIZATION: "Razorpay has no call to void an authorization; an uncaptured payment is "
                "refunded automatically after the capture window",
            },
        )
        return built
