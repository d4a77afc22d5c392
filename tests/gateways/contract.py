"""The gateway contract: what every `PaymentGateway` adapter must do alike, as scenarios over a harness.

A `GatewayHarness` wraps one adapter with the few gateway-specific steps a scenario needs (getting a payment
method that succeeds, driving PayPal's buyer approval and `complete`, producing a decline). The scenarios below
take a harness and only use the protocol. `ContractSuite` runs every scenario: each gateway's own test folder
has a `test_contract.py` whose `TestContract(ContractSuite)` builds its harness, so adding a gateway adds a file
there and touches nothing shared (`tests/gateways/test_contract.py` checks that every package has one).

Where a backend cannot show a behaviour, the harness says so with a reason (`not_applicable`), and the test is
skipped with that reason: never silently.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field

import pytest

from domain.money import Money
from domain.statuses import CaptureMethod, PaymentStatus, RefundStatus
from gateways.base import PaymentGateway
from gateways.catalog import package_of
from gateways.errors import (
    DECLINE_CODES,
    GatewayError,
    InvalidGatewayRequest,
    NotSupported,
    PaymentDeclined,
)
from gateways.payment_method_carry import COLLECTED_BY_GATEWAY, Carry, carry
from gateways.types import CaptureRequest, ChargeRequest, PaymentResult, RefundRequest, VoidRequest

UNKNOWN_STATUS = "something_new"

# Scenario names a harness may declare not applicable (with a reason).
IDEMPOTENT_CHARGE = "idempotent_charge"
REFUND_BEYOND_CAPTURED = "refund_beyond_captured"
# A gateway that captures only the whole authorized amount, or has no call to void an authorization, says so.
PARTIAL_CAPTURE = "partial_capture"
VOID_AUTHORIZATION = "void_authorization"


def new_key(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex}"


@dataclass
class GatewayHarness:
    """One adapter plus the gateway-specific steps the contract scenarios need.

    - `payment_method()` gives a payment method that succeeds when charged.
    - `after_charge(result, capture_method)` drives whatever the gateway needs after `charge` to reach
      PAID/AUTHORIZED (PayPal: the buyer approves, then `complete`); the identity for card gateways.
    - `attempt_declined(amount)` does what produces a decline on this backend; it must raise `PaymentDeclined`.
    - `payment_status_functions` / `refund_status_functions`: each transformer's status mapping, as
      one-argument callables (PayPal's take the object kind first, so there is one per kind).
    - `not_applicable`: scenario name → why the backend cannot show it.
    """

    name: str
    gateway: PaymentGateway
    payment_method: Callable[[], Awaitable[str]]
    attempt_declined: Callable[[Money], Awaitable[object]]
    payment_status_functions: Mapping[str, Callable[[str], PaymentStatus]]
    refund_status_functions: Mapping[str, Callable[[str], RefundStatus]]
    after_charge: Callable[[PaymentResult, CaptureMethod], Awaitable[PaymentResult]] | None = None
    return_url: str | None = "https://shop.example.test/return"
    description: str = "Contract order"
    # Refund statuses this gateway may answer for an accepted refund (PENDING where it settles later).
    accepted_refund_statuses: frozenset[RefundStatus] = frozenset({RefundStatus.SUCCEEDED})
    # localstripe releases the uncaptured rest of a partial capture as a refund of the charge (old Stripe).
    partial_capture_releases_as_refund: bool = False
    # Which `gateways.errors` class refuses a void of an automatically captured payment. Documented differences:
    # card gateways answer InvalidGatewayRequest; PayPal's adapter, finding no authorization on a captured
    # order, raises NotSupported before calling PayPal.
    void_after_capture_error: type[GatewayError] = InvalidGatewayRequest
    # The normalized code the backend's generic decline maps to (all keys of DECLINE_CODES → CARD_DECLINED).
    generic_decline_code: str = "generic_decline"
    # Whether PaymentDeclined.reference names the declined payment (localstripe's 402 body names no intent).
    decline_names_payment: bool = True
    not_applicable: dict[str, str] = field(default_factory=dict)

    def skip_unless_applicable(self, scenario: str) -> None:
        reason = self.not_applicable.get(scenario)
        if reason is not None:
            pytest.skip(f"not applicable to {self.name}: {reason}")

    def charge_request(
        self, amount: Money, capture_method: CaptureMethod, payment_method: str, idempotency_key: str | None = None
    ) -> ChargeRequest:
        payment_id = f"pay_{uuid.uuid4().hex}"
        return ChargeRequest(
            amount=amount,
            payment_method=payment_method,
            capture_method=capture_method,
            idempotency_key=idempotency_key or f"charge-{payment_id}",
            description=self.description,
            return_url=self.return_url,
            metadata={"payql_payment_id": payment_id},
        )

    async def pay(self, amount: int, currency: str, capture_method: CaptureMethod) -> PaymentResult:
        """A successful payment: PAID for automatic capture, AUTHORIZED for manual."""
        request = self.charge_request(Money(amount, currency), capture_method, await self.payment_method())
        result = await self.gateway.charge(request)
        if self.after_charge is not None:
            result = await self.after_charge(result, capture_method)
        return result

    async def decline(self, amount: int, currency: str) -> PaymentDeclined:
        with pytest.raises(PaymentDeclined) as caught:
            await self.attempt_declined(Money(amount, currency))
        return caught.value


# --- scenarios ------------------------------------------------------------------------------------------------
async def payment_method_declarations_hold(h: GatewayHarness) -> None:
    """What the package declares about payment methods, which routing and failover trust without a call: a
    gateway that collects one itself answers a charge carrying none with the next action that collects it
    (what a payment failed over to it gets); otherwise what its SDK makes has the declared token shape."""
    declared = package_of(h.gateway.name).capabilities
    if declared.collects_payment_method:
        request = h.charge_request(Money(1500, "USD"), CaptureMethod.AUTOMATIC, COLLECTED_BY_GATEWAY)
        started = await h.gateway.charge(request)
        assert started.status is PaymentStatus.REQUIRES_ACTION
        assert started.next_action is not None and started.amount == Money(1500, "USD")
        return
    tokenization = declared.client_tokenization
    if tokenization is None or tokenization.token_format is None:
        pytest.skip(f"{h.name}'s package declares no token shape: routing sends it every token")
    assert carry(await h.payment_method(), declared) is Carry.AS_SENT


async def automatic_capture_is_paid(h: GatewayHarness, amount: int, currency: str) -> None:
    paid = await h.pay(amount, currency, CaptureMethod.AUTOMATIC)
    assert paid.status is PaymentStatus.PAID
    assert paid.amount == Money(amount, currency)
    assert (paid.amount_authorized, paid.amount_captured, paid.amount_refunded) == (amount, amount, 0)
    assert paid.next_action is None and paid.decline_code is None


async def manual_capture_authorizes_then_captures(h: GatewayHarness, amount: int, currency: str) -> None:
    authorized = await h.pay(amount, currency, CaptureMethod.MANUAL)
    assert authorized.status is PaymentStatus.AUTHORIZED
    assert (authorized.amount_authorized, authorized.amount_captured) == (amount, 0)
    captured = await h.gateway.capture(
        CaptureRequest(authorized.reference, Money(amount, currency), idempotency_key=new_key("cap"))
    )
    assert captured.status is PaymentStatus.PAID
    assert captured.reference == authorized.reference
    assert (captured.amount_captured, captured.amount_refunded) == (amount, 0)


async def partial_capture(h: GatewayHarness, amount: int, currency: str) -> PaymentResult:
    h.skip_unless_applicable(PARTIAL_CAPTURE)
    part = amount * 2 // 5
    authorized = await h.pay(amount, currency, CaptureMethod.MANUAL)
    captured = await h.gateway.capture(
        CaptureRequest(authorized.reference, Money(part, currency), idempotency_key=new_key("cap"))
    )
    assert captured.status is PaymentStatus.PAID
    assert captured.amount == Money(amount, currency)  # the payment's amount, not the captured part
    if h.partial_capture_releases_as_refund:
        assert (captured.amount_captured, captured.amount_refunded) == (amount, amount - part)
    else:
        assert (captured.amount_captured, captured.amount_refunded) == (part, 0)
    return captured


async def void_authorization(h: GatewayHarness, amount: int, currency: str) -> None:
    h.skip_unless_applicable(VOID_AUTHORIZATION)
    authorized = await h.pay(amount, currency, CaptureMethod.MANUAL)
    voided = await h.gateway.void(VoidRequest(authorized.reference, idempotency_key=new_key("void")))
    assert voided.status is PaymentStatus.CANCELED
    assert voided.amount_captured == 0
    assert (await h.gateway.retrieve(authorized.reference)).status is PaymentStatus.CANCELED


async def void_after_capture_is_refused(h: GatewayHarness, amount: int, currency: str) -> GatewayError:
    paid = await h.pay(amount, currency, CaptureMethod.AUTOMATIC)
    with pytest.raises((InvalidGatewayRequest, NotSupported)) as caught:
        await h.gateway.void(VoidRequest(paid.reference, idempotency_key=new_key("void")))
    assert type(caught.value) is h.void_after_capture_error
    assert caught.value.reference == paid.reference
    after = await h.gateway.retrieve(paid.reference)
    assert (after.status, after.amount_captured) == (PaymentStatus.PAID, amount)
    return caught.value


async def void_after_manual_capture_is_refused(h: GatewayHarness, amount: int, currency: str) -> GatewayError:
    authorized = await h.pay(amount, currency, CaptureMethod.MANUAL)
    await h.gateway.capture(
        CaptureRequest(authorized.reference, Money(amount, currency), idempotency_key=new_key("cap"))
    )
    with pytest.raises(InvalidGatewayRequest) as caught:
        await h.gateway.void(VoidRequest(authorized.reference, idempotency_key=new_key("void")))
    assert caught.value.reference == authorized.reference
    assert (await h.gateway.retrieve(authorized.reference)).status is PaymentStatus.PAID
    return caught.value


async def full_refund(h: GatewayHarness, amount: int, currency: str) -> None:
    paid = await h.pay(amount, currency, CaptureMethod.AUTOMATIC)
    refund = await h.gateway.refund(RefundRequest(paid.reference, Money(amount, currency), new_key("ref")))
    assert refund.status in h.accepted_refund_statuses
    assert refund.amount == Money(amount, currency)
    assert refund.payment_reference == paid.reference
    after = await h.gateway.retrieve(paid.reference)
    assert (after.status, after.amount_captured, after.amount_refunded) == (PaymentStatus.PAID, amount, amount)


async def partial_refund(h: GatewayHarness, amount: int, currency: str) -> None:
    part = amount * 3 // 10
    paid = await h.pay(amount, currency, CaptureMethod.AUTOMATIC)
    first = await h.gateway.refund(RefundRequest(paid.reference, Money(part, currency), new_key("ref")))
    assert first.status in h.accepted_refund_statuses
    assert first.amount == Money(part, currency)
    assert first.payment_reference == paid.reference
    after_first = await h.gateway.retrieve(paid.reference)
    assert (after_first.status, after_first.amount_refunded) == (PaymentStatus.PAID, part)
    rest = await h.gateway.refund(RefundRequest(paid.reference, Money(amount - part, currency), new_key("ref")))
    assert rest.status in h.accepted_refund_statuses
    assert rest.amount == Money(amount - part, currency)
    assert (await h.gateway.retrieve(paid.reference)).amount_refunded == amount


async def refund_beyond_captured_is_refused(h: GatewayHarness, amount: int, currency: str) -> None:
    h.skip_unless_applicable(REFUND_BEYOND_CAPTURED)
    part = amount * 3 // 10
    paid = await h.pay(amount, currency, CaptureMethod.AUTOMATIC)
    with pytest.raises(InvalidGatewayRequest):
        await h.gateway.refund(RefundRequest(paid.reference, Money(amount + 1, currency), new_key("ref")))
    assert (await h.gateway.retrieve(paid.reference)).amount_refunded == 0
    await h.gateway.refund(RefundRequest(paid.reference, Money(part, currency), new_key("ref")))
    with pytest.raises(InvalidGatewayRequest):
        await h.gateway.refund(RefundRequest(paid.reference, Money(amount - part + 1, currency), new_key("ref")))
    assert (await h.gateway.retrieve(paid.reference)).amount_refunded == part


async def retrieve_matches_the_last_operation(h: GatewayHarness, amount: int, currency: str) -> None:
    def same(seen: PaymentResult, read: PaymentResult) -> None:
        assert read.reference == seen.reference
        assert read.status is seen.status
        assert read.amount == seen.amount
        assert (read.amount_captured, read.amount_refunded) == (seen.amount_captured, seen.amount_refunded)

    authorized = await h.pay(amount, currency, CaptureMethod.MANUAL)
    same(authorized, await h.gateway.retrieve(authorized.reference))
    captured = await h.gateway.capture(
        CaptureRequest(authorized.reference, Money(amount, currency), idempotency_key=new_key("cap"))
    )
    same(captured, await h.gateway.retrieve(authorized.reference))

    if VOID_AUTHORIZATION not in h.not_applicable:
        voidable = await h.pay(amount, currency, CaptureMethod.MANUAL)
        voided = await h.gateway.void(VoidRequest(voidable.reference, idempotency_key=new_key("void")))
        same(voided, await h.gateway.retrieve(voidable.reference))

    paid = await h.pay(amount, currency, CaptureMethod.AUTOMATIC)
    same(paid, await h.gateway.retrieve(paid.reference))
    await h.gateway.refund(RefundRequest(paid.reference, Money(1, currency), new_key("ref")))
    refunded = await h.gateway.retrieve(paid.reference)
    assert (refunded.status, refunded.amount_refunded) == (PaymentStatus.PAID, 1)


async def decline_is_normalized(h: GatewayHarness, amount: int, currency: str) -> PaymentDeclined:
    declined = await h.decline(amount, currency)
    assert declined.decline_code in DECLINE_CODES
    assert declined.decline_code == h.generic_decline_code
    assert (declined.reference is not None) is h.decline_names_payment
    assert declined.message  # safe to show a shopper
    return declined


async def idempotent_charge(h: GatewayHarness, amount: int, currency: str) -> None:
    h.skip_unless_applicable(IDEMPOTENT_CHARGE)
    request = h.charge_request(Money(amount, currency), CaptureMethod.AUTOMATIC, await h.payment_method())
    first = await h.gateway.charge(request)
    again = await h.gateway.charge(request)
    assert again.reference == first.reference
    assert again.status is first.status
    assert again.amount == first.amount


def unknown_statuses_are_never_paid(h: GatewayHarness) -> None:
    assert h.payment_status_functions and h.refund_status_functions
    for kind, status_of in h.payment_status_functions.items():
        status = status_of(UNKNOWN_STATUS)
        assert status is not PaymentStatus.PAID, kind
        assert status is PaymentStatus.PENDING, kind  # domain/statuses.py: unknown → PENDING
    for kind, refund_status_of in h.refund_status_functions.items():
        assert refund_status_of(UNKNOWN_STATUS) is RefundStatus.PENDING, kind


# --- the suite each gateway's test_contract.py subclasses ---------------------------------------------------------
# (amount in minor units, currency): a 2-decimal and a 0-decimal currency.
AMOUNTS = [pytest.param(1000, "USD", id="USD"), pytest.param(1500, "JPY", id="JPY")]


class ContractSuite:
    """Every scenario as a test. A subclass named `TestContract` defines `built_harness(self, request)`, a sync
    fixture built outside the event loop so it can ask for the gateway's own (async) fixtures by name."""

    @pytest.fixture
    def built_harness(self, request: pytest.FixtureRequest) -> GatewayHarness:
        raise NotImplementedError("a ContractSuite subclass defines built_harness")

    @pytest.fixture
    async def harness(self, built_harness: GatewayHarness) -> AsyncIterator[GatewayHarness]:
        yield built_harness
        await built_harness.gateway.aclose()

    @pytest.mark.parametrize(("amount", "currency"), AMOUNTS)
    async def test_automatic_capture_is_paid(self, harness: GatewayHarness, amount: int, currency: str) -> None:
        await automatic_capture_is_paid(harness, amount, currency)

    @pytest.mark.parametrize(("amount", "currency"), AMOUNTS)
    async def test_manual_capture_authorizes_then_captures(
        self, harness: GatewayHarness, amount: int, currency: str
    ) -> None:
        await manual_capture_authorizes_then_captures(harness, amount, currency)

    @pytest.mark.parametrize(("amount", "currency"), AMOUNTS)
    async def test_partial_capture(self, harness: GatewayHarness, amount: int, currency: str) -> None:
        await partial_capture(harness, amount, currency)

    @pytest.mark.parametrize(("amount", "currency"), AMOUNTS)
    async def test_void_authorization(self, harness: GatewayHarness, amount: int, currency: str) -> None:
        await void_authorization(harness, amount, currency)

    @pytest.mark.parametrize(("amount", "currency"), AMOUNTS)
    async def test_void_after_capture_is_refused(self, harness: GatewayHarness, amount: int, currency: str) -> None:
        await void_after_capture_is_refused(harness, amount, currency)

    async def test_void_after_manual_capture_is_refused(self, harness: GatewayHarness) -> None:
        await void_after_manual_capture_is_refused(harness, 1000, "USD")

    @pytest.mark.parametrize(("amount", "currency"), AMOUNTS)
    async def test_full_refund(self, harness: GatewayHarness, amount: int, currency: str) -> None:
        await full_refund(harness, amount, currency)

    @pytest.mark.parametrize(("amount", "currency"), AMOUNTS)
    async def test_partial_refund(self, harness: GatewayHarness, amount: int, currency: str) -> None:
        await partial_refund(harness, amount, currency)

    @pytest.mark.parametrize(("amount", "currency"), AMOUNTS)
    async def test_refund_beyond_captured_is_refused(self, harness: GatewayHarness, amount: int, currency: str) -> None:
        await refund_beyond_captured_is_refused(harness, amount, currency)

    @pytest.mark.parametrize(("amount", "currency"), AMOUNTS)
    async def test_retrieve_matches_the_last_operation(
        self, harness: GatewayHarness, amount: int, currency: str
    ) -> None:
        await retrieve_matches_the_last_operation(harness, amount, currency)

    @pytest.mark.parametrize(("amount", "currency"), AMOUNTS)
    async def test_decline_is_normalized(self, harness: GatewayHarness, amount: int, currency: str) -> None:
        await decline_is_normalized(harness, amount, currency)

    @pytest.mark.parametrize(("amount", "currency"), AMOUNTS)
    async def test_idempotent_charge(self, harness: GatewayHarness, amount: int, currency: str) -> None:
        await idempotent_charge(harness, amount, currency)

    async def test_unknown_statuses_are_never_paid(self, harness: GatewayHarness) -> None:
        unknown_statuses_are_never_paid(harness)

    async def test_payment_method_declarations_hold(self, harness: GatewayHarness) -> None:
        await payment_method_declarations_hold(harness)
