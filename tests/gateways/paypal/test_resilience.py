"""OAuth token recovery, 429/5xx/timeouts → GatewayUnavailable, idempotent retries with one PayPal-Request-Id."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from apimatic_core.utilities.auth_helper import AuthHelper

from domain.money import Money
from domain.statuses import CaptureMethod, PaymentStatus
from gateways.errors import GatewayConfigurationError, GatewayUnavailable
from gateways.paypal import PayPalGateway
from gateways.types import CaptureRequest, ChargeRequest
from tests.gateways.paypal.conftest import approve, make_gateway
from tests.paypal_emulator import PayPalEmulator
from tests.testkit import eventually


def _charge(method: CaptureMethod = CaptureMethod.AUTOMATIC) -> ChargeRequest:
    return ChargeRequest(Money(2500, "EUR"), "paypal", method, str(uuid.uuid4()))


async def _captured(emulator: PayPalEmulator) -> bool:
    return len(emulator.ledger.captures) == 1


def _request_ids(emulator: PayPalEmulator, suffix: str) -> list[str | None]:
    return [rid for method, path, rid in emulator.calls.requests if method == "POST" and path.endswith(suffix)]


async def test_a_revoked_token_is_replaced_transparently(gateway: PayPalGateway, emulator: PayPalEmulator) -> None:
    created = await gateway.charge(_charge())
    assert emulator.calls.tokens_issued == 1
    emulator.expire_tokens()  # PayPal says 401 invalid_token although the SDK thinks the token is fresh
    assert (await gateway.retrieve(created.reference)).reference == created.reference
    assert emulator.calls.tokens_issued == 2
    await gateway.retrieve(created.reference)
    assert emulator.calls.tokens_issued == 2  # cached again


async def test_an_expired_token_is_renewed(
    gateway: PayPalGateway, emulator: PayPalEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    created = await gateway.charge(_charge())
    assert emulator.calls.tokens_issued == 1
    # Ten hours on, by the SDK's clock and by PayPal's: the token's `expires_in` has run out for both.
    later = AuthHelper.get_current_utc_timestamp() + 36_000
    monkeypatch.setattr(AuthHelper, "get_current_utc_timestamp", staticmethod(lambda: later))
    emulator.expire_tokens()

    await gateway.retrieve(created.reference)

    assert emulator.calls.tokens_issued == 2


async def test_bad_credentials_are_a_configuration_error(emulator: PayPalEmulator) -> None:
    gateway = PayPalGateway("emulator-client", "wrong", webhook_id=emulator.webhook_id, base_url=emulator.base_url)
    try:
        with pytest.raises(GatewayConfigurationError) as caught:
            await gateway.charge(_charge())
        assert "invalid_client" in caught.value.detail
    finally:
        await gateway.aclose()


@pytest.mark.parametrize("status", [429, 500, 503])
async def test_errors_are_unavailable_and_the_retry_captures_once(
    gateway: PayPalGateway, emulator: PayPalEmulator, status: int
) -> None:
    created = await gateway.charge(_charge())
    await approve(emulator, created.reference)
    emulator.fail_next(status, path="/capture")
    with pytest.raises(GatewayUnavailable) as caught:
        await gateway.complete(created.reference, capture=True)
    assert str(status) in caught.value.detail and "request_id=payql-capture-order-" in caught.value.detail
    paid = await gateway.complete(created.reference, capture=True)
    assert paid.status is PaymentStatus.PAID
    assert len(emulator.ledger.captures) == 1
    first, second = _request_ids(emulator, "/capture")
    assert first == second


async def test_a_lost_answer_is_recovered_by_the_same_request_id(
    gateway: PayPalGateway, emulator: PayPalEmulator
) -> None:
    created = await gateway.charge(_charge(CaptureMethod.MANUAL))
    await approve(emulator, created.reference)
    await gateway.complete(created.reference, capture=False)
    emulator.fail_next(500, after_effect=True, path="/capture")  # PayPal captured, then the answer was lost
    request = CaptureRequest(created.reference, Money(1000, "EUR"), "cap-lost", final=False)
    with pytest.raises(GatewayUnavailable):
        await gateway.capture(request)
    assert len(emulator.ledger.captures) == 1
    again = await gateway.capture(request)
    assert again.amount_captured == 1000
    assert len(emulator.ledger.captures) == 1
    first, second = _request_ids(emulator, "/capture")
    assert first == second


async def test_a_timeout_is_unavailable_and_the_retry_captures_once(emulator: PayPalEmulator) -> None:
    gateway = make_gateway(emulator, timeout=0.5)
    try:
        created = await gateway.charge(_charge())
        await approve(emulator, created.reference)
        emulator.fail_next(None, delay=1.0, path="/capture")
        with pytest.raises(GatewayUnavailable) as caught:
            await gateway.complete(created.reference, capture=True)
        assert "timeout" in caught.value.detail
        # The slow call completes on PayPal's side after our timeout; retry once it has.
        await eventually(lambda: _captured(emulator))
        paid = await gateway.complete(created.reference, capture=True)
        assert paid.status is PaymentStatus.PAID
        assert len(emulator.ledger.captures) == 1
    finally:
        await gateway.aclose()


async def test_concurrent_calls_share_one_token(gateway: PayPalGateway, emulator: PayPalEmulator) -> None:
    results = await asyncio.gather(*(gateway.charge(_charge()) for _ in range(6)))
    assert len({r.reference for r in results}) == 6
    assert emulator.calls.tokens_issued == 1
