"""The sandbox's HTTP side: tokens, the 3-D Secure page, fault switches and the test clock."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from starlette.applications import Starlette
from starlette.routing import Mount

from gateways.sandbox.processor import SandboxProcessor, sandbox_routes
from gateways.sandbox.processor.errors import SandboxCardDeclined, SandboxUnavailable
from gateways.sandbox.processor.objects import IntentStatus
from tests.gateways.sandbox_access import STAFF_HEADERS, form_token, guard_for_tests

NEXT_YEAR = datetime.now(UTC).year + 1


@pytest.fixture
def processor() -> SandboxProcessor:
    return SandboxProcessor()


@pytest.fixture
async def client(processor: SandboxProcessor) -> AsyncIterator[httpx.AsyncClient]:
    app = Starlette(routes=[Mount("/sandbox", routes=sandbox_routes(processor, guard=guard_for_tests()))])
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://payql.test", headers=STAFF_HEADERS) as client:
        yield client


def card(number: str, **overrides: object) -> dict[str, object]:
    return {"number": number, "exp_month": 12, "exp_year": NEXT_YEAR, "cvc": "123", **overrides}


@pytest.mark.parametrize(
    ("number", "brand", "outcome"),
    [
        ("4242424242424242", "visa", None),
        ("5555555555554444", "mastercard", None),
        ("4000000000000002", "visa", "generic_decline"),
        ("4000000000009995", "visa", "insufficient_funds"),
        ("4000000000000069", "visa", "expired_card"),
        ("4000000000000119", "visa", "processing_error"),
        ("4000002500003155", "visa", "authentication"),
    ],
)
async def test_each_test_card_tokenizes_and_charges_as_documented(
    client: httpx.AsyncClient,
    processor: SandboxProcessor,
    caplog: pytest.LogCaptureFixture,
    number: str,
    brand: str,
    outcome: str | None,
) -> None:
    caplog.set_level(logging.DEBUG)

    response = await client.post("/sandbox/tokens", json=card(number))

    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"id", "brand", "last4"}
    assert body["id"].startswith("pm_sbx_")
    assert (body["brand"], body["last4"]) == (brand, number[-4:])
    assert number not in response.text
    assert body["id"] in caplog.text  # logging was captured, so the next check means something
    assert number not in caplog.text

    charge = processor.create_payment_intent(
        amount=100, currency="USD", payment_method=body["id"], idempotency_key="k1"
    )
    if outcome is None:
        assert (await charge).status is IntentStatus.SUCCEEDED
    elif outcome == "authentication":
        assert (await charge).status is IntentStatus.REQUIRES_ACTION
    else:
        with pytest.raises(SandboxCardDeclined) as raised:
            await charge
        assert raised.value.decline_code == outcome


async def test_card_numbers_with_spaces_are_accepted(client: httpx.AsyncClient) -> None:
    response = await client.post("/sandbox/tokens", json=card("4242 4242 4242 4242"))

    assert response.status_code == 200
    assert response.json()["last4"] == "4242"


@pytest.mark.parametrize("number", ["4111111111111111", "5105105105105100", "4242424242424241", "1234"])
async def test_a_card_that_is_not_a_test_card_is_refused_and_never_echoed(
    client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture, number: str
) -> None:
    caplog.set_level(logging.DEBUG)

    response = await client.post("/sandbox/tokens", json=card(number))

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "card_number_not_test"
    assert number not in response.text
    assert number not in caplog.text


async def test_a_malformed_token_body_does_not_echo_the_card(
    client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    number = "4111111111111111"

    broken_json = await client.post(
        "/sandbox/tokens", content=f'{{"number": "{number}", ', headers={"content-type": "application/json"}
    )
    number_as_int = await client.post("/sandbox/tokens", json=card(number) | {"number": int(number)})

    for response in (broken_json, number_as_int):
        assert response.status_code == 400
        assert number not in response.text
    assert number not in caplog.text


@pytest.mark.parametrize(
    "overrides",
    [
        {"exp_month": 13},
        {"exp_year": 2001},
        {"exp_month": "x"},
        {"cvc": "12"},
        {"cvc": 123},
    ],
)
async def test_bad_expiry_or_cvc_is_refused(client: httpx.AsyncClient, overrides: dict[str, object]) -> None:
    response = await client.post("/sandbox/tokens", json=card("4242424242424242", **overrides))

    assert response.status_code == 400
    assert "error" in response.json()


async def _pending(processor: SandboxProcessor, return_url: str | None, key: str = "k1") -> str:
    intent = await processor.create_payment_intent(
        amount=2500,
        currency="EUR",
        payment_method="pm_card_authenticationRequired",
        idempotency_key=key,
        return_url=return_url,
    )
    return intent.id


async def test_the_authentication_page_offers_complete_and_fail(
    client: httpx.AsyncClient, processor: SandboxProcessor
) -> None:
    pi_id = await _pending(processor, "https://shop.example.test/return")

    response = await client.get(f"/sandbox/authenticate/{pi_id}")

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    page = response.text
    assert pi_id in page and "25.00 EUR" in page
    assert '<form method="post">' in page
    assert 'name="outcome" value="succeed">Complete</button>' in page
    assert 'name="outcome" value="fail">Fail</button>' in page


async def test_the_authentication_page_of_an_unknown_payment_is_404_and_escaped(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get("/sandbox/authenticate/<script>alert(1)</script>")

    assert response.status_code == 404
    assert "<script>" not in response.text


async def test_completing_with_json_answers_json(client: httpx.AsyncClient, processor: SandboxProcessor) -> None:
    pi_id = await _pending(processor, None)

    response = await client.post(f"/sandbox/authenticate/{pi_id}", json={"outcome": "succeed"})

    assert response.status_code == 200
    assert response.json() == {"id": pi_id, "status": "succeeded"}
    assert (await processor.retrieve(pi_id)).status is IntentStatus.SUCCEEDED
    again = await client.post(f"/sandbox/authenticate/{pi_id}", json={"outcome": "fail"})
    assert again.status_code == 400
    assert (await processor.retrieve(pi_id)).status is IntentStatus.SUCCEEDED


async def test_failing_with_json(client: httpx.AsyncClient, processor: SandboxProcessor) -> None:
    pi_id = await _pending(processor, None)

    response = await client.post(f"/sandbox/authenticate/{pi_id}", json={"outcome": "fail"})

    assert response.json() == {"id": pi_id, "status": "requires_payment_method"}
    assert (await processor.retrieve(pi_id)).decline_code == "authentication_required"


@pytest.mark.parametrize(("outcome", "redirect_status"), [("succeed", "succeeded"), ("fail", "failed")])
async def test_the_page_form_redirects_to_the_return_url(
    client: httpx.AsyncClient, processor: SandboxProcessor, outcome: str, redirect_status: str
) -> None:
    pi_id = await _pending(processor, "https://shop.example.test/return?order=42")

    form = {"outcome": outcome, "csrf_token": await form_token(client, pi_id)}
    response = await client.post(f"/sandbox/authenticate/{pi_id}", data=form)

    assert response.status_code == 303
    location = urlsplit(response.headers["location"])
    assert (location.scheme, location.netloc, location.path) == ("https", "shop.example.test", "/return")
    assert parse_qs(location.query) == {
        "order": ["42"],
        "payment_intent": [pi_id],
        "redirect_status": [redirect_status],
    }


async def test_the_page_form_without_return_url_shows_the_result(
    client: httpx.AsyncClient, processor: SandboxProcessor
) -> None:
    pi_id = await _pending(processor, None)

    form = {"outcome": "succeed", "csrf_token": await form_token(client, pi_id)}
    response = await client.post(f"/sandbox/authenticate/{pi_id}", data=form)

    assert response.status_code == 200
    assert "succeeded" in response.text


@pytest.mark.parametrize("body", [{"outcome": "maybe"}, {}, ["succeed"]])
async def test_an_invalid_outcome_is_refused(
    client: httpx.AsyncClient, processor: SandboxProcessor, body: object
) -> None:
    pi_id = await _pending(processor, None)

    response = await client.post(f"/sandbox/authenticate/{pi_id}", json=body)

    assert response.status_code == 400
    assert (await processor.retrieve(pi_id)).status is IntentStatus.REQUIRES_ACTION


async def test_completing_an_unknown_payment_is_404(client: httpx.AsyncClient) -> None:
    response = await client.post("/sandbox/authenticate/pi_sbx_nope", json={"outcome": "succeed"})

    assert response.status_code == 404
    assert response.json()["error"]["code"] == "resource_missing"


async def test_faults_can_be_armed_and_cleared(client: httpx.AsyncClient, processor: SandboxProcessor) -> None:
    armed = await client.post("/sandbox/faults", json={"mode": "unavailable", "count": 2})
    assert armed.status_code == 200
    assert armed.json() == {"mode": "unavailable", "count": 2}
    with pytest.raises(SandboxUnavailable):
        await processor.list_payment_intents()

    cleared = await client.delete("/sandbox/faults")

    assert cleared.status_code == 204
    assert await processor.list_payment_intents() == []


async def test_an_armed_fault_answers_503_on_the_routes(client: httpx.AsyncClient) -> None:
    await client.post("/sandbox/faults", json={"mode": "unavailable", "count": 1})

    response = await client.post("/sandbox/tokens", json=card("4242424242424242"))

    assert response.status_code == 503
    assert (await client.post("/sandbox/tokens", json=card("4242424242424242"))).status_code == 200


@pytest.mark.parametrize(
    "body",
    [{"mode": "explode", "count": 1}, {"mode": "timeout", "count": 0}, {"mode": "timeout"}, {"count": 1}],
)
async def test_invalid_faults_are_refused(
    client: httpx.AsyncClient, processor: SandboxProcessor, body: dict[str, object]
) -> None:
    response = await client.post("/sandbox/faults", json=body)

    assert response.status_code == 400
    assert await processor.list_payment_intents() == []


async def test_the_clock_advances_through_the_route(client: httpx.AsyncClient, processor: SandboxProcessor) -> None:
    before = processor.clock.now()

    response = await client.post("/sandbox/clock/advance", json={"seconds": 86_400})

    assert response.status_code == 200
    assert response.json()["now"] >= before + 86_400
    assert processor.clock.offset == 86_400


@pytest.mark.parametrize("body", [{"seconds": -1}, {"seconds": 1.5}, {"seconds": True}, {}])
async def test_the_clock_refuses_to_go_back(
    client: httpx.AsyncClient, processor: SandboxProcessor, body: dict[str, object]
) -> None:
    response = await client.post("/sandbox/clock/advance", json=body)

    assert response.status_code == 400
    assert processor.clock.offset == 0


async def test_an_oversized_body_is_refused(client: httpx.AsyncClient) -> None:
    response = await client.post("/sandbox/tokens", json=card("4242424242424242", padding="x" * 20_000))

    assert response.status_code == 413
