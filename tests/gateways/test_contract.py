"""The gateway contract (`contract.py`) run against every adapter: the sandbox, Stripe on localstripe and PayPal
on the emulator, each through the fixtures its own tests use (imported here, so no shared conftest is needed).
"""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator, Callable

import pytest

from domain.money import Money
from domain.statuses import CaptureMethod
from gateways import catalog
from gateways.paypal import transformers as paypal_transformers
from gateways.sandbox import SandboxGateway, SandboxProcessor
from gateways.sandbox import transformers as sandbox_transformers
from gateways.stripe import transformers as stripe_transformers
from gateways.stripe.adapter import StripeGateway
from gateways.stripe.client import StripeApi
from gateways.types import PaymentResult
from tests.gateways import contract
from tests.gateways.contract import GatewayHarness
from tests.gateways.paypal.conftest import approve, emulator, make_gateway  # noqa: F401  (emulator: fixture)
from tests.gateways.stripe.conftest import (  # noqa: F401  (localstripe, stripe_api: fixtures)
    CARD_DECLINED_AT_CHARGE,
    CARD_OK,
    SECRET_KEY,
    WEBHOOK_SECRET,
    card_payment_method,
    localstripe,
    stripe_api,
)
from tests.paypal_emulator import PayPalEmulator

HARNESSES = ["sandbox", "stripe-localstripe", "paypal-emulator"]
# (amount in minor units, currency): a 2-decimal and a 0-decimal currency.
AMOUNTS = [pytest.param(1000, "USD", id="USD"), pytest.param(1500, "JPY", id="JPY")]


def _sandbox_harness(request: pytest.FixtureRequest) -> GatewayHarness:
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


def _stripe_harness(request: pytest.FixtureRequest) -> GatewayHarness:
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
        # localstripe refuses `description` on PaymentIntent create ("Unexpected description"); real Stripe takes it.
        description="",
        partial_capture_releases_as_refund=True,
        generic_decline_code="card_declined",
        decline_names_payment=False,
        not_applicable={
            contract.IDEMPOTENT_CHARGE: (
                "localstripe ignores Idempotency-Key (each create makes a new PaymentIntent); real Stripe honours "
                "it, and the adapter sends the key on every mutating call"
            ),
            contract.REFUND_BEYOND_CAPTURED: (
                "localstripe does not check a refund against the charge (Refund only asserts amount > 0): a refund "
                "of captured + 1 succeeds and amount_refunded exceeds amount_captured; real Stripe refuses it with "
                "a 400 invalid_request_error, which the adapter maps to InvalidGatewayRequest"
            ),
        },
    )
    return built


def _paypal_harness(request: pytest.FixtureRequest) -> GatewayHarness:
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
        return await gateway.complete(created.reference, capture=True, idempotency_key=f"complete-{created.reference}")

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


_BUILDERS: dict[str, Callable[[pytest.FixtureRequest], GatewayHarness]] = {
    "sandbox": _sandbox_harness,
    "stripe-localstripe": _stripe_harness,
    "paypal-emulator": _paypal_harness,
}


@pytest.fixture(params=HARNESSES)
def built_harness(request: pytest.FixtureRequest) -> GatewayHarness:
    """Built outside the event loop, so it can ask for the gateways' own (async) fixtures by name."""
    return _BUILDERS[request.param](request)


@pytest.fixture
async def harness(built_harness: GatewayHarness) -> AsyncIterator[GatewayHarness]:
    yield built_harness
    await built_harness.gateway.aclose()


@pytest.mark.parametrize(("amount", "currency"), AMOUNTS)
async def test_automatic_capture_is_paid(harness: GatewayHarness, amount: int, currency: str) -> None:
    await contract.automatic_capture_is_paid(harness, amount, currency)


@pytest.mark.parametrize(("amount", "currency"), AMOUNTS)
async def test_manual_capture_authorizes_then_captures(harness: GatewayHarness, amount: int, currency: str) -> None:
    await contract.manual_capture_authorizes_then_captures(harness, amount, currency)


@pytest.mark.parametrize(("amount", "currency"), AMOUNTS)
async def test_partial_capture(harness: GatewayHarness, amount: int, currency: str) -> None:
    await contract.partial_capture(harness, amount, currency)


@pytest.mark.parametrize(("amount", "currency"), AMOUNTS)
async def test_void_authorization(harness: GatewayHarness, amount: int, currency: str) -> None:
    await contract.void_authorization(harness, amount, currency)


@pytest.mark.parametrize(("amount", "currency"), AMOUNTS)
async def test_void_after_capture_is_refused(harness: GatewayHarness, amount: int, currency: str) -> None:
    await contract.void_after_capture_is_refused(harness, amount, currency)


async def test_void_after_manual_capture_is_refused(harness: GatewayHarness) -> None:
    await contract.void_after_manual_capture_is_refused(harness, 1000, "USD")


@pytest.mark.parametrize(("amount", "currency"), AMOUNTS)
async def test_full_refund(harness: GatewayHarness, amount: int, currency: str) -> None:
    await contract.full_refund(harness, amount, currency)


@pytest.mark.parametrize(("amount", "currency"), AMOUNTS)
async def test_partial_refund(harness: GatewayHarness, amount: int, currency: str) -> None:
    await contract.partial_refund(harness, amount, currency)


@pytest.mark.parametrize(("amount", "currency"), AMOUNTS)
async def test_refund_beyond_captured_is_refused(harness: GatewayHarness, amount: int, currency: str) -> None:
    await contract.refund_beyond_captured_is_refused(harness, amount, currency)


@pytest.mark.parametrize(("amount", "currency"), AMOUNTS)
async def test_retrieve_matches_the_last_operation(harness: GatewayHarness, amount: int, currency: str) -> None:
    await contract.retrieve_matches_the_last_operation(harness, amount, currency)


@pytest.mark.parametrize(("amount", "currency"), AMOUNTS)
async def test_decline_is_normalized(harness: GatewayHarness, amount: int, currency: str) -> None:
    await contract.decline_is_normalized(harness, amount, currency)


@pytest.mark.parametrize(("amount", "currency"), AMOUNTS)
async def test_idempotent_charge(harness: GatewayHarness, amount: int, currency: str) -> None:
    await contract.idempotent_charge(harness, amount, currency)


async def test_unknown_statuses_are_never_paid(harness: GatewayHarness) -> None:
    contract.unknown_statuses_are_never_paid(harness)


def test_every_gateway_package_runs_the_contract() -> None:
    """A new package in gateways/ fails here until its harness joins HARNESSES (named "<package>[-where]")."""
    assert {harness.split("-")[0] for harness in HARNESSES} == set(catalog.available())
