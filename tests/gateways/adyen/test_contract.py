"""The gateway contract (`tests/gateways/contract.py`) against the Adyen adapter on the Adyen emulator.

Adyen's captures, cancellations and refunds are confirmed by notifications, so the harness's gateway is
`Notified` (see `notified.py`): the adapter over real HTTP, with the emulator's signed notifications verified
and applied by the adapter after each call. Refunds are accepted as PENDING (settled by the REFUND notification).
"""

from __future__ import annotations

import pytest

from domain.money import Money
from domain.statuses import CaptureMethod, RefundStatus
from gateways.adyen import transformers
from tests.adyen_emulator import AdyenEmulator
from tests.adyen_emulator.app import REFUSED_CARD
from tests.gateways.adyen.conftest import drop_in, make_gateway
from tests.gateways.adyen.notified import Notified
from tests.gateways.contract import ContractSuite, GatewayHarness


class TestContract(ContractSuite):
    @pytest.fixture
    def built_harness(self, request: pytest.FixtureRequest) -> GatewayHarness:
        running: AdyenEmulator = request.getfixturevalue("emulator")
        gateway = Notified(make_gateway(running), running)

        async def payment_method() -> str:
            return drop_in()

        async def attempt_declined(amount: Money) -> object:
            return await gateway.charge(built.charge_request(amount, CaptureMethod.AUTOMATIC, drop_in(REFUSED_CARD)))

        built = GatewayHarness(
            name="adyen-emulator",
            gateway=gateway,  # type: ignore[arg-type]
            payment_method=payment_method,
            attempt_declined=attempt_declined,
            payment_status_functions={"resultCode": transformers.payment_status},
            refund_status_functions={"notification": transformers.refund_status},
            accepted_refund_statuses=frozenset({RefundStatus.PENDING}),
        )
        return built
