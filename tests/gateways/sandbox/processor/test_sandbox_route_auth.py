"""The sandbox's routes on the real server: its controls need a staff token verified by the app, the
3-D Secure form needs its per-challenge CSRF token, and tokenization is rate limited per client.
A refused request answers 403 (or 429) and changes nothing."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import httpx
import pytest
from starlette.applications import Starlette
from starlette.routing import Mount

from gateways.sandbox.processor import SandboxProcessor, sandbox_routes
from gateways.sandbox.processor.objects import IntentStatus
from payql.wiring import Services
from tests.gateways.sandbox_access import SHOPPER_HEADERS, STAFF_HEADERS, form_token, guard_for_tests
from tests.testkit import sandbox_deliverer, token_for

DAY = 86_400

# Every route that changes sandbox state, other than tokenization and the 3-D Secure page's form.
CONTROLS = [
    ("POST", "/sandbox/clock/advance", {"seconds": 39 * 30 * DAY}),
    ("POST", "/sandbox/customers/cust_victim/clock/advance", {"seconds": 39 * 30 * DAY}),
    ("POST", "/sandbox/faults", {"mode": "unavailable", "count": 5}),
    ("DELETE", "/sandbox/faults", None),
    ("POST", "/sandbox/webhooks/switches", {"drop": 5}),
    ("DELETE", "/sandbox/webhooks/switches", None),
    ("POST", "/sandbox/disputes", {"payment_intent": "pi_sbx_victim", "reason": "fraudulent"}),
    ("POST", "/sandbox/disputes/dp_sbx_victim/close", {"won": False}),
    ("POST", "/sandbox/authenticate/pi_sbx_victim", {"outcome": "fail"}),
]
OTHER_SECRET_ADMIN = "Bearer " + token_for("x", admin=True).rsplit(".", 1)[0] + ".forged-signature"


def snapshot(services: Services, sandbox: SandboxProcessor) -> object:
    deliverer = sandbox_deliverer(services)
    assert deliverer is not None
    return (sandbox.clock.offset, deliverer.switches.snapshot())


@pytest.mark.parametrize(("method", "path", "body"), CONTROLS)
@pytest.mark.parametrize(
    "headers",
    [
        pytest.param({}, id="anonymous"),
        pytest.param(SHOPPER_HEADERS, id="shopper"),
        pytest.param({"authorization": OTHER_SECRET_ADMIN}, id="forged-admin"),
        pytest.param({"origin": "https://evil.example", "content-type": "text/plain"}, id="cross-site"),
    ],
)
async def test_sandbox_controls_refuse_callers_without_a_staff_token(
    http: httpx.AsyncClient,
    services: Services,
    sandbox: SandboxProcessor,
    method: str,
    path: str,
    body: dict[str, object] | None,
    headers: dict[str, str],
) -> None:
    before = snapshot(services, sandbox)
    response = await http.request(method, path, json=body, headers=headers)
    assert response.status_code == 403, response.text
    assert "staff token" in response.json()["error"]["message"]
    assert snapshot(services, sandbox) == before


async def test_an_anonymous_customer_clock_advance_charges_nothing(http: httpx.AsyncClient) -> None:
    customer = f"cust_{uuid.uuid4().hex[:8]}"
    refused = await http.post(f"/sandbox/customers/{customer}/clock/advance", json={"seconds": 39 * 30 * DAY})
    assert refused.status_code == 403
    # Staff reading the same clock (a zero move) find it where it was: nothing came due.
    staff = await http.post(f"/sandbox/customers/{customer}/clock/advance", json={"seconds": 0}, headers=STAFF_HEADERS)
    assert staff.status_code == 200, staff.text
    unmoved = await http.post(
        f"/sandbox/customers/{customer}/clock/advance", json={"seconds": DAY}, headers=STAFF_HEADERS
    )
    assert unmoved.json()["now"] - staff.json()["now"] < 2 * DAY


async def test_a_staff_token_drives_the_controls(http: httpx.AsyncClient, services: Services) -> None:
    assert (await http.delete("/sandbox/faults", headers=STAFF_HEADERS)).status_code == 204
    switched = await http.post("/sandbox/webhooks/switches", json={"delay": 0}, headers=STAFF_HEADERS)
    assert switched.status_code == 200, switched.text
    reset = await http.delete("/sandbox/webhooks/switches", headers=STAFF_HEADERS)
    assert reset.status_code == 200 and reset.json()["hold"] is False
    assert (deliverer := sandbox_deliverer(services)) is not None and deliverer.switches.snapshot()["delay"] == 0


async def pending_challenge(sandbox: SandboxProcessor) -> str:
    intent = await sandbox.create_payment_intent(
        amount=2500,
        currency="EUR",
        payment_method="pm_card_authenticationRequired",
        idempotency_key=str(uuid.uuid4()),
        return_url=None,
    )
    return intent.id


async def test_the_3ds_page_form_carries_a_csrf_token_per_challenge(
    http: httpx.AsyncClient, sandbox: SandboxProcessor
) -> None:
    first, second = await pending_challenge(sandbox), await pending_challenge(sandbox)
    first_token, second_token = await form_token(http, first), await form_token(http, second)
    assert first_token != second_token
    assert await form_token(http, first) == first_token
    page = await http.get(f"/sandbox/authenticate/{first}")
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
    assert page.headers["x-frame-options"] == "DENY"


@pytest.mark.parametrize(
    "form",
    [
        pytest.param({"outcome": "succeed"}, id="missing"),
        pytest.param({"outcome": "succeed", "csrf_token": "0" * 64}, id="wrong"),
        pytest.param({"outcome": "succeed", "csrf_token": ""}, id="empty"),
        pytest.param({"outcome": "succeed", "csrf_token": "é"}, id="not-ascii"),
    ],
)
async def test_a_3ds_form_post_without_its_token_is_403_and_changes_nothing(
    http: httpx.AsyncClient, sandbox: SandboxProcessor, form: dict[str, str]
) -> None:
    pi_id = await pending_challenge(sandbox)
    response = await http.post(f"/sandbox/authenticate/{pi_id}", data=form, headers={"origin": "https://evil.example"})
    assert response.status_code == 403
    assert "Nothing changed" in response.text
    assert (await sandbox.retrieve(pi_id)).status is IntentStatus.REQUIRES_ACTION


async def test_another_challenges_token_does_not_open_this_one(
    http: httpx.AsyncClient, sandbox: SandboxProcessor
) -> None:
    mine, theirs = await pending_challenge(sandbox), await pending_challenge(sandbox)
    form = {"outcome": "succeed", "csrf_token": await form_token(http, theirs)}
    assert (await http.post(f"/sandbox/authenticate/{mine}", data=form)).status_code == 403
    assert (await sandbox.retrieve(mine)).status is IntentStatus.REQUIRES_ACTION


async def test_the_3ds_form_with_its_token_completes_the_challenge(
    http: httpx.AsyncClient, sandbox: SandboxProcessor
) -> None:
    pi_id = await pending_challenge(sandbox)
    form = {"outcome": "succeed", "csrf_token": await form_token(http, pi_id)}
    response = await http.post(f"/sandbox/authenticate/{pi_id}", data=form)
    assert response.status_code == 200, response.text
    assert (await sandbox.retrieve(pi_id)).status is IntentStatus.SUCCEEDED


@pytest.fixture
async def limited_app() -> AsyncIterator[Starlette]:
    yield Starlette(
        routes=[
            Mount(
                "/sandbox", routes=sandbox_routes(SandboxProcessor(), guard=guard_for_tests(tokenize_limit="3/minute"))
            )
        ]
    )


def client_at(app: Starlette, address: str) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, client=(address, 40000))
    return httpx.AsyncClient(transport=transport, base_url="http://payql.test")


TEST_CARD = {"number": "4242424242424242", "exp_month": 12, "exp_year": datetime.now(UTC).year + 1, "cvc": "123"}


async def test_tokenization_is_rate_limited_per_client_with_retry_after(limited_app: Starlette) -> None:
    async with client_at(limited_app, "203.0.113.7") as flooder, client_at(limited_app, "203.0.113.8") as other:
        for _ in range(3):
            assert (await flooder.post("/sandbox/tokens", json=TEST_CARD)).status_code == 200
        refused = await flooder.post("/sandbox/tokens", json=TEST_CARD)
        assert refused.status_code == 429
        assert refused.json()["error"]["code"] == "rate_limited"
        assert 1 <= int(refused.headers["retry-after"]) <= 60
        assert "4242" not in refused.text
        assert (await other.post("/sandbox/tokens", json=TEST_CARD)).status_code == 200
