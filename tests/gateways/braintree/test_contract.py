"""The gateway contract (`tests/gateways/contract.py`) against the Braintree adapter on the Braintree emulator.

A captured sale is `submitted_for_settlement`; Braintree refunds only settled transactions, so after an automatic
capture the harness runs the sandbox's settlement batch (the SDK's `testing.settle_transaction`), as a day passing
would. Declines use the SDK's test nonce `fake-processor-declined-visa-nonce` (2000 Do Not Honor)."""

from __future__ import annotations

import pytest
from braintree.test.nonces import Nonces

from domain.money import Money
from domain.statuses import CaptureMethod
from gateways.braintree import transformers
from gateways.types import PaymentResult
from tests.braintree_emulator import BraintreeEmulator
from tests.gateways.braintree.conftest import make_gateway, settle
from tests.gateways.contract import ContractSuite, GatewayHarness


class TestContract(ContractSuite):
    @pytest.fixture
    def built_harness(self, request: pytest.FixtureRequest) -> GatewayHarness:
        running: BraintreeEmulator = request.getfixturevalue("emulator")
        gateway = make_gateway(running)

        async def payment_method() -> str:
            return str(Nonces.Transactable)

        async def after_charge(created: PaymentResult, capture_method: CaptureMethod) -> PaymentResult:
            if capture_method is CaptureMethod.MANUAL:
                return created
            await settle(running, created.reference)
            return await gateway.retrieve(created.reference)

        async def attempt_declined(amount: Money) -> object:
            request = built.charge_request(amount, CaptureMethod.AUTOMATIC, str(Nonces.ProcessorDeclinedVisa))
            return await gateway.charge(request)

        built = GatewayHarness(
            name="braintree-emulator",
            gateway=gateway,
            payment_method=payment_method,
            attempt_declined=attempt_declined,
            after_charge=after_charge,
            payment_status_functions={"transaction": transformers.payment_status},
            refund_status_functions={"credit": transformers.refund_status},
        )
        return built
