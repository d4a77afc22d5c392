"""The gateway contract (`tests/gateways/contract.py`) against the Square adapter on the Square emulator, over
real HTTP through the `squareup` SDK. A JPY payment is taken by the emulator's Japanese merchant (a Square account
takes its own country's currency only)."""

from __future__ import annotations

import pytest

from domain.money import Money
from domain.statuses import CaptureMethod, PaymentStatus, RefundStatus
from gateways.errors import NotSupported
from gateways.square import transformers
from gateways.types import CaptureRequest
from tests.gateways.contract import AMOUNTS, ContractSuite, GatewayHarness, new_key, partial_capture
from tests.gateways.square.conftest import NONCE_DECLINED, NONCE_OK, make_gateway
from tests.square_emulator import SquareEmulator


class TestContract(ContractSuite):
    @pytest.fixture
    def built_harness(self, request: pytest.FixtureRequest) -> GatewayHarness:
        running: SquareEmulator = request.getfixturevalue("emulator")
        callspec = getattr(request.node, "callspec", None)
        currency = callspec.params.get("currency", "USD") if callspec is not None else "USD"
        gateway = make_gateway(running, currency)

        async def payment_method() -> str:
            return NONCE_OK

        async def attempt_declined(amount: Money) -> object:
            return await gateway.charge(built.charge_request(amount, CaptureMethod.AUTOMATIC, NONCE_DECLINED))

        built = GatewayHarness(
            name="square-emulator",
            gateway=gateway,
            payment_method=payment_method,
            attempt_declined=attempt_declined,
            payment_status_functions={"payment": transformers.payment_status},
            refund_status_functions={"refund": transformers.refund_status},
            # Square answers a card refund PENDING; it completes (refund.updated) moments later.
            accepted_refund_statuses=frozenset({RefundStatus.PENDING, RefundStatus.SUCCEEDED}),
        )
        return built

    @pytest.mark.parametrize(("amount", "currency"), AMOUNTS)
    async def test_partial_capture(self, harness: GatewayHarness, amount: int, currency: str) -> None:
        """Square captures less than authorized by lowering the amount first (UpdatePayment), which it does not
        offer sellers in Japan: there a partial capture is NOT_SUPPORTED and the authorization is left as it was."""
        if currency != "JPY":
            await partial_capture(harness, amount, currency)
            return
        authorized = await harness.pay(amount, currency, CaptureMethod.MANUAL)
        with pytest.raises(NotSupported):
            await harness.gateway.capture(
                CaptureRequest(authorized.reference, Money(amount * 2 // 5, currency), idempotency_key=new_key("cap"))
            )
        after = await harness.gateway.retrieve(authorized.reference)
        assert (after.status, after.amount_authorized, after.amount_captured) == (PaymentStatus.AUTHORIZED, amount, 0)
