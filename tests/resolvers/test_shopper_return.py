"""completePayment with `returned`: values a gateway's checkout handed the SPA are verified by the gateway
(`ShopperReturnGateway`) before anything changes, refused for a gateway that takes none, and bounded.

The gateway here is the sandbox adapter taught to take a signed 3-D Secure result, standing in for a provider
whose flow hands the SPA a signed confirmation: the use case, not the provider, is under test."""

from __future__ import annotations

import hashlib
import hmac
import logging
from collections.abc import AsyncIterator, Mapping

import pytest

from db.models import Payment
from gateways.errors import ShopperReturnRejected
from gateways.registry import GatewayRegistry
from gateways.sandbox import SandboxGateway
from gateways.sandbox.processor import SandboxProcessor
from gateways.shopper_return import ShopperReturnGateway
from gateways.types import PaymentResult
from payql.wiring import Services
from resolvers.payments import MAX_RETURNED_VALUES
from tests.testkit import CHECKOUT, COMPLETE, Shopper, checkout_input, make_price

RETURNING = "returning"
KEY = b"returning-test-key"


def signature(reference: str) -> str:
    return hmac.new(KEY, reference.encode(), hashlib.sha256).hexdigest()


class SignedReturnSandbox(SandboxGateway):
    """Takes `{"reference", "signature"}` back from the SPA: an HMAC of the reference, then reads the payment."""

    def __init__(self, processor: SandboxProcessor) -> None:
        super().__init__(processor, public_base_url="http://127.0.0.1")
        self.processor = processor

    async def accept_shopper_return(
        self, reference: str, returned: Mapping[str, str], *, capture: bool, idempotency_key: str
    ) -> PaymentResult:
        claimed = returned.get("reference", "")
        if claimed != reference or not hmac.compare_digest(returned.get("signature", ""), signature(reference)):
            raise ShopperReturnRejected("signature mismatch", detail=f"claimed {claimed!r}")
        await self.processor.complete_authentication(reference, succeed=True)
        return await self.retrieve(reference)


@pytest.fixture
async def returning(
    sandbox: SandboxProcessor, services: Services, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[SignedReturnSandbox]:
    registry: GatewayRegistry = services.deps.gateways
    adapter = SignedReturnSandbox(sandbox)
    adapter.name = RETURNING
    assert isinstance(adapter, ShopperReturnGateway)
    monkeypatch.setitem(registry._gateways, RETURNING, adapter)
    yield adapter


async def needing_action(shopper: Shopper, gateway: str) -> tuple[str, str]:
    """A checkout left in REQUIRES_ACTION (3-D Secure): our payment id and its gateway reference."""
    price = await make_price(900)
    values = checkout_input(price, "pm_card_authenticationRequired") | {"gateway": gateway}
    started = (await shopper.data(CHECKOUT, {"input": values}))["checkout"]
    assert started["userErrors"] == [] and started["payment"]["status"] == "REQUIRES_ACTION"
    payment = await Payment.get(id=started["payment"]["id"])
    assert payment.gateway_reference
    return str(payment.id), payment.gateway_reference


async def complete(shopper: Shopper, payment_id: str, returned: dict[str, str]) -> dict[str, object]:
    values = [{"name": name, "value": value} for name, value in returned.items()]
    answer: dict[str, object] = (
        await shopper.data(COMPLETE, {"input": {"paymentId": payment_id, "returned": values}})
    )["completePayment"]
    return answer


def codes(answer: dict[str, object]) -> list[object]:
    errors = answer["userErrors"]
    assert isinstance(errors, list)
    return [error["code"] for error in errors]


async def test_verified_values_complete_the_payment(returning: SignedReturnSandbox, shopper: Shopper) -> None:
    payment_id, reference = await needing_action(shopper, RETURNING)
    answer = await complete(shopper, payment_id, {"reference": reference, "signature": signature(reference)})
    assert codes(answer) == []
    assert (await Payment.get(id=payment_id)).status == "PAID"


async def test_a_forged_signature_changes_nothing_and_is_logged(
    returning: SignedReturnSandbox, shopper: Shopper, caplog: pytest.LogCaptureFixture
) -> None:
    payment_id, reference = await needing_action(shopper, RETURNING)
    with caplog.at_level(logging.WARNING, logger="resolvers.payments"):
        answer = await complete(shopper, payment_id, {"reference": reference, "signature": "0" * 64})
    assert codes(answer) == ["INVALID_INPUT"]
    assert (await Payment.get(id=payment_id)).status == "REQUIRES_ACTION"
    assert (await returning.processor.retrieve(reference)).status == "requires_action"
    assert any("rejected returned values" in record.getMessage() for record in caplog.records)


async def test_another_payments_signature_is_refused(returning: SignedReturnSandbox, shopper: Shopper) -> None:
    payment_id, _ = await needing_action(shopper, RETURNING)
    _, other_reference = await needing_action(shopper, RETURNING)
    answer = await complete(
        shopper, payment_id, {"reference": other_reference, "signature": signature(other_reference)}
    )
    assert codes(answer) == ["INVALID_INPUT"]
    assert (await Payment.get(id=payment_id)).status == "REQUIRES_ACTION"


async def test_a_gateway_that_takes_no_returned_values_refuses_them(shopper: Shopper) -> None:
    payment_id, reference = await needing_action(shopper, "sandbox")
    answer = await complete(shopper, payment_id, {"reference": reference, "signature": signature(reference)})
    assert codes(answer) == ["INVALID_INPUT"]
    assert (await Payment.get(id=payment_id)).status == "REQUIRES_ACTION"


@pytest.mark.parametrize(
    "returned",
    [
        pytest.param({f"v{index}": "x" for index in range(MAX_RETURNED_VALUES + 1)}, id="too-many"),
        pytest.param({"signature": "x" * 9000}, id="too-long"),
        pytest.param({"": "x"}, id="unnamed"),
    ],
)
async def test_returned_values_are_bounded(
    returning: SignedReturnSandbox, shopper: Shopper, returned: dict[str, str]
) -> None:
    payment_id, _ = await needing_action(shopper, RETURNING)
    assert codes(await complete(shopper, payment_id, returned)) == ["INVALID_INPUT"]
    assert (await Payment.get(id=payment_id)).status == "REQUIRES_ACTION"


async def test_payment_options_show_which_gateways_take_returned_values(
    returning: SignedReturnSandbox, shopper: Shopper
) -> None:
    query = "{ paymentOptions { gateway capabilities { shopperReturn } } }"
    found = {
        o["gateway"]: o["capabilities"]["shopperReturn"] for o in (await shopper.data(query, {}))["paymentOptions"]
    }
    assert found["sandbox"] is False
