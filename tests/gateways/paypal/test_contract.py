"""The gateway contract (`tests/gateways/contract.py`) against the PayPal adapter on the PayPal emulator."""

from __future__ import annotations

import functools

import pytest

from domain.money import Money
from domain.statuses import CaptureMethod
from gateways.paypal import transformers as paypal_transformers
from gateways.types import PaymentResult
from tests.gateways.contract import ContractSuite, GatewayHarness
from tests.gateways.paypal.conftest import approve, make_gateway
from tests.paypal_emulator import PayPalEmulator


class TestContract(ContractSuite):
    @pytest.fixture
    def built_harness(self, request: pytest.FixtureRequest) -> GatewayHarness:
        running: PayPalEmulator = request.getfixturevalue("emulator")
        gateway = make_gateway(running)

        async def payment_method() -> str:
            return "paypal"

        async def after_charge(created: PaymentResult, capture_method: CaptureMethod) -> PaymentResult:
            """The buyer approves on PayPal's page, then we capture (automatic) or authorize (manual) the order."""
            await approve(running, created.reference)
            return await gateway.complete(
                created.reference,
                capture=capture_method is CaptureMethod.AUTOMATIC,
                idempotency_key=f"complete-{created.reference}",
            )

        async def attempt_declined(amount: Money) -> object:
            created = await gateway.charge(built.charge_request(amount, CaptureMethod.AUTOMATIC, "paypal"))
            await approve(running, created.reference)
            running.decline_next("INSTRUMENT_DECLINED")
            return await gateway.complete(
                created.reference, capture=True, idempotency_key=f"complete-{created.reference}"
            )

        built = GatewayHarness(
            name="paypal-emulator",
            gateway=gateway,
            payment_method=payment_method,
            attempt_declined=attempt_declined,
            after_charge=after_charge,
            payment_status_functions={
                kind: functools.partial(paypal_transformers.payment_status, kind)
                for kind in ("order", "authorization", "capture")
            },
            refund_status_functions={"refund": paypal_transformers.refund_status},
        )
        return built
