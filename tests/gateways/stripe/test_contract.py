"""The gateway contract (`tests/gateways/contract.py`) against the Stripe adapter on localstripe."""

from __future__ import annotations

import functools

import pytest

from domain.money import Money
from domain.statuses import CaptureMethod
from gateways.stripe import transformers as stripe_transformers
from gateways.stripe.adapter import StripeGateway
from gateways.stripe.client import StripeApi
from tests.gateways import contract
from tests.gateways.contract import ContractSuite, GatewayHarness
from tests.gateways.stripe.conftest import (
    CARD_DECLINED_AT_CHARGE,
    CARD_OK,
    SECRET_KEY,
    WEBHOOK_SECRET,
    card_payment_method,
)


class TestContract(ContractSuite):
    @pytest.fixture
    def built_harness(self, request: pytest.FixtureRequest) -> GatewayHarness:
        base_url: str = request.getfixturevalue("localstripe")
        api: StripeApi = request.getfixturevalue("stripe_api")
        gateway = StripeGateway(SECRET_KEY, webhook_secrets=[WEBHOOK_SECRET], base_url=base_url, timeout=10)

        async def attempt_declined(amount: Money) -> object:
            method = await card_payment_method(api, CARD_DECLINED_AT_CHARGE)
            return await gateway.charge(built.charge_request(amount, CaptureMethod.AUTOMATIC, method))

        built = GatewayHarness(
            name="stripe-localstripe",
            gateway=gateway,
            payment_method=functools.partial(card_payment_method, api, CARD_OK),
            attempt_declined=attempt_declined,
            payment_status_functions={"payment_intent": stripe_transformers.payment_status},
            refund_status_functions={"refund": stripe_transformers.refund_status},
            # Like the Stripe adapter tests: no return_url, so the adapter confirms without redirects.
            return_url=None,
            # localstripe refuses `description` on PaymentIntent create ("Unexpected description"); real Stripe
            # takes it.
            description="",
            partial_capture_releases_as_refund=True,
            generic_decline_code="card_declined",
            decline_names_payment=False,
            not_applicable={
                contract.IDEMPOTENT_CHARGE: (
                    "localstripe ignores Idempotency-Key (each create makes a new PaymentIntent); real Stripe "
                    "honours it, and the adapter sends the key on every mutating call"
                ),
                contract.REFUND_BEYOND_CAPTURED: (
                    "localstripe does not check a refund against the charge (Refund only asserts amount > 0): a "
                    "refund of captured + 1 succeeds and amount_refunded exceeds amount_captured; real Stripe "
                    "refuses it with a 400 invalid_request_error, which the adapter maps to InvalidGatewayRequest"
                ),
            },
        )
        return built
