"""Where a shopper's payment method can go, table by table, from what packages declare (no gateway runs here)."""

from __future__ import annotations

import pytest

from gateways.catalog import package_of
from gateways.package import Capabilities, ClientTokenization
from gateways.payment_method_carry import Carry, Step, carry, failover_step, first_step

STRIPE = package_of("stripe").capabilities
SANDBOX = package_of("sandbox").capabilities
PAYPAL = package_of("paypal").capabilities
RAZORPAY = package_of("razorpay").capabilities
SQUARE = package_of("square").capabilities
ADYEN = package_of("adyen").capabilities
SQUARE_VERIFIED = '{"sourceId": "cnon:card-nonce-ok", "verificationToken": "verf:abc"}'
ADYEN_CARD = '{"type": "scheme", "encryptedCardNumber": "adyenjs_0_1_25$..."}'
# A gateway whose tokens cannot be told from another's (no declared format).
SHAPELESS = Capabilities(
    payments=True,
    manual_capture=True,
    refunds=True,
    billing=False,
    disputes=False,
    hosted_checkout=False,
    customer_directory=False,
    client_tokenization=ClientTokenization("some-sdk"),
)

STRIPE_TOKEN = "pm_1MqLiJLkdIwHu7ixUEgbFdYF"
SANDBOX_TOKEN = "pm_sbx_5226ab8ee6bf0a9c45832753"


@pytest.mark.parametrize(
    ("payment_method", "capabilities", "expected"),
    [
        (STRIPE_TOKEN, STRIPE, Carry.AS_SENT),
        ("pm_card_visa", STRIPE, Carry.AS_SENT),
        ("pm_card_visa", SANDBOX, Carry.AS_SENT),  # the named test methods work on both
        (SANDBOX_TOKEN, SANDBOX, Carry.AS_SENT),
        (SANDBOX_TOKEN, STRIPE, Carry.SHOPPER_COLLECTS),
        (STRIPE_TOKEN, SANDBOX, Carry.SHOPPER_COLLECTS),
        (STRIPE_TOKEN, PAYPAL, Carry.GATEWAY_COLLECTS),  # PayPal's approval redirect needs nothing first
        ("paypal_order:5O190127TN364715T", PAYPAL, Carry.AS_SENT),  # an order the buyer approved in the browser
        ("paypal_order:5O190127TN364715T", STRIPE, Carry.SHOPPER_COLLECTS),
        (STRIPE_TOKEN, RAZORPAY, Carry.GATEWAY_COLLECTS),  # Checkout collects after the Razorpay order
        (STRIPE_TOKEN, SHAPELESS, Carry.AS_SENT),  # cannot be told: sent, as before any format was known
        ("pm_" + "x" * 10 + " trailing", STRIPE, Carry.SHOPPER_COLLECTS),  # the whole value must match
        ("cnon:card-nonce-ok", SQUARE, Carry.AS_SENT),
        (SQUARE_VERIFIED, SQUARE, Carry.AS_SENT),  # with verifyBuyer's token
        (STRIPE_TOKEN, SQUARE, Carry.SHOPPER_COLLECTS),
        (ADYEN_CARD, ADYEN, Carry.AS_SENT),
        (SQUARE_VERIFIED, ADYEN, Carry.SHOPPER_COLLECTS),  # JSON, but not Drop-in's
        (ADYEN_CARD, SQUARE, Carry.SHOPPER_COLLECTS),
    ],
)
def test_how_a_payment_method_carries(payment_method: str, capabilities: Capabilities, expected: Carry) -> None:
    assert carry(payment_method, capabilities) is expected


@pytest.mark.parametrize(
    ("payment_method", "policy", "expected"),
    [
        (STRIPE_TOKEN, [STRIPE, SANDBOX], 0),
        (SANDBOX_TOKEN, [STRIPE, SANDBOX], 1),  # only the second knows it: it goes there first
        (SANDBOX_TOKEN, [STRIPE, PAYPAL], 0),  # nobody knows it: the policy's first answers for it
        ("paypal_order:5O190127TN364715T", [STRIPE, PAYPAL], 1),
        ("pm_card_visa", [SANDBOX, STRIPE], 0),
    ],
)
def test_where_a_new_payment_goes_first(payment_method: str, policy: list[Capabilities], expected: int) -> None:
    assert first_step(payment_method, policy) == expected


@pytest.mark.parametrize(
    ("payment_method", "left", "expected"),
    [
        ("pm_card_visa", [SANDBOX], Step(0, Carry.AS_SENT)),  # transparent
        (STRIPE_TOKEN, [PAYPAL], Step(0, Carry.GATEWAY_COLLECTS)),  # a redirect, already created
        (STRIPE_TOKEN, [SANDBOX, PAYPAL], Step(0, Carry.SHOPPER_COLLECTS)),  # the next in order is named
        (STRIPE_TOKEN, [PAYPAL, SANDBOX], Step(0, Carry.GATEWAY_COLLECTS)),
        ("pm_card_visa", [PAYPAL, SANDBOX], Step(1, Carry.AS_SENT)),  # transparent beats any shopper step
        (STRIPE_TOKEN, [], None),
    ],
)
def test_where_a_refused_payment_fails_over_to(payment_method: str, left: list[Capabilities], expected: Step) -> None:
    assert failover_step(payment_method, left) == expected
