"""The gateway contract (`tests/gateways/contract.py`) against the sandbox adapter over its in-process processor."""

from __future__ import annotations

import pytest

from domain.money import Money
from domain.statuses import CaptureMethod
from gateways.sandbox import SandboxGateway
from gateways.sandbox import transformers as sandbox_transformers
from gateways.sandbox.processor import SandboxProcessor
from tests.gateways.contract import ContractSuite, GatewayHarness


class TestContract(ContractSuite):
    @pytest.fixture
    def built_harness(self, request: pytest.FixtureRequest) -> GatewayHarness:
        gateway = SandboxGateway(SandboxProcessor(), "https://pay.example.test")

        async def payment_method() -> str:
            return "pm_card_visa"

        async def attempt_declined(amount: Money) -> object:
            harness_request = built.charge_request(amount, CaptureMethod.AUTOMATIC, "pm_card_chargeDeclined")
            return await gateway.charge(harness_request)

        built = GatewayHarness(
            name="sandbox",
            gateway=gateway,
            payment_method=payment_method,
            attempt_declined=attempt_declined,
            payment_status_functions={"payment_intent": sandbox_transformers.payment_status},
            refund_status_functions={"refund": sandbox_transformers.refund_status},
        )
        return built
