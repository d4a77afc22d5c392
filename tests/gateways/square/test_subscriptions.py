"""Square declares no billing (Square Subscriptions and Catalog plans are not wired up): a subscription asked of
Square through PayQL is refused with NOT_SUPPORTED, and nothing reaches Square."""

from __future__ import annotations

from gateways.square.adapter import SquareGateway
from tests.features.subscriptions.kit import CREATE, recurring_price
from tests.gateways.square.conftest import NONCE_OK
from tests.square_emulator import SquareEmulator
from tests.testkit import Shopper, new_key


async def test_a_subscription_on_square_is_not_supported(
    square_in_payql: SquareGateway, emulator: SquareEmulator, shopper: Shopper
) -> None:
    price = await recurring_price(1_500)
    variables = {
        "input": {"priceId": str(price.id), "gateway": "square", "paymentMethod": NONCE_OK, "idempotencyKey": new_key()}
    }
    refused = (await shopper.data(CREATE, variables))["createSubscription"]
    assert [(e["code"], e["field"]) for e in refused["userErrors"]] == [("NOT_SUPPORTED", "gateway")]
    assert refused["subscription"] is None
    assert emulator.calls.requests == []
