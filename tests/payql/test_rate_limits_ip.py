"""Per client IP: anonymous requests and failed authentications are limited (HTTP 429 + Retry-After,
websockets refused at connection_init); a field-level RATE_LIMITED answer carries Retry-After too;
with Redis the counts are shared by every instance."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
from limits import parse
from redis.asyncio import Redis
from websockets.exceptions import ConnectionClosed

from payql.rate_limit import Authentication, ClientIpLimits, limits_storage
from payql.settings import SettingsError, load_settings
from payql.wiring import Services
from tests.backends import Backend
from tests.client_addresses import client_from, fresh_address
from tests.testkit import CHECKOUT, Shopper, checkout_input, make_price, token_for
from tests.wsclient import graphql_ws

PRODUCTS = {"query": "{ products { id } }"}


async def test_anonymous_requests_over_the_address_limit_get_429_with_retry_after(
    services: Services, server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(services.ip_limits.anonymous, "_limit", parse("3/minute"))
    async with client_from(server, fresh_address()) as client, client_from(server, fresh_address()) as neighbour:
        served = [(await client.post("/graphql", json=PRODUCTS)).status_code for _ in range(3)]
        refused = await client.post("/graphql", json=PRODUCTS)
        other_address = await neighbour.post("/graphql", json=PRODUCTS)
        signed_in = await client.post(
            "/graphql", json=PRODUCTS, headers={"authorization": f"Bearer {token_for('ip-limit-shopper')}"}
        )
    assert served == [200, 200, 200]
    assert refused.status_code == 429
    assert 1 <= int(refused.headers["retry-after"]) <= 60
    assert refused.json()["errors"][0]["extensions"]["code"] == "RATE_LIMITED"
    assert other_address.status_code == 200
    assert signed_in.status_code == 200  # a verified caller is limited per principal, not per address


async def test_a_bad_token_counts_as_a_failed_authentication(
    services: Services, server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(services.ip_limits.failed_authentication, "_limit", parse("2/minute"))
    bad = {"authorization": "Bearer not-a-token"}
    async with client_from(server, fresh_address()) as client:
        guesses = [(await client.post("/graphql", json=PRODUCTS, headers=bad)).status_code for _ in range(2)]
        refused = await client.post("/graphql", json=PRODUCTS, headers=bad)
        basic = await client.post("/graphql", json=PRODUCTS, headers={"authorization": "Basic dXNlcjpwYXNz"})
        anonymous = await client.post("/graphql", json=PRODUCTS)
    assert guesses == [200, 200]
    assert refused.status_code == 429
    assert int(refused.headers["retry-after"]) >= 1
    assert basic.status_code == 429  # any credentials that do not verify are a failed authentication
    assert anonymous.status_code == 200  # counted apart from failures


async def test_a_websocket_connection_init_counts_against_its_address(
    services: Services, server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(services.ip_limits.anonymous, "_limit", parse("1/minute"))
    address = fresh_address()
    async with graphql_ws(server, None, local_address=address):
        pass
    with pytest.raises(ConnectionClosed) as refused:
        async with graphql_ws(server, None, local_address=address):
            pass
    assert refused.value.rcvd is not None and refused.value.rcvd.code == 4403


async def test_a_rate_limited_mutation_answers_with_retry_after(
    services: Services, shopper: Shopper, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(services.deps.rate_limiter, "_limit", parse("1/minute"))
    price = await make_price(100)
    answers = [
        await shopper.http.post(
            "/graphql",
            json={"query": CHECKOUT, "variables": {"input": checkout_input(price)}},
            headers={"authorization": f"Bearer {shopper.token}"},
        )
        for _ in range(2)
    ]
    assert [answer.status_code for answer in answers] == [200, 200]  # a field error, not a refused request
    assert answers[0].json()["data"]["checkout"]["userErrors"] == []
    assert "retry-after" not in answers[0].headers
    assert [e["code"] for e in answers[1].json()["data"]["checkout"]["userErrors"]] == ["RATE_LIMITED"]
    assert 1 <= int(answers[1].headers["retry-after"]) <= 60


@pytest.fixture
async def two_redis_clients(backend: Backend) -> AsyncIterator[tuple[Redis, Redis]]:
    if backend.redis_url is None:
        pytest.skip("limits shared through Redis are proven with PAYQL_TEST_BACKEND=servers")
    first, second = Redis.from_url(backend.redis_url), Redis.from_url(backend.redis_url)
    yield first, second
    await first.aclose()
    await second.aclose()


async def test_two_instances_sharing_redis_share_the_address_limits(
    backend: Backend, two_redis_clients: tuple[Redis, Redis]
) -> None:
    prefix = f"{backend.redis_prefix}{uuid.uuid4().hex}:"
    first, second = (
        ClientIpLimits("3/minute", "1/minute", limits_storage(redis, prefix)) for redis in two_redis_clients
    )
    address = fresh_address()
    assert await first.wait_before(address, Authentication.NONE) is None
    assert await second.wait_before(address, Authentication.NONE) is None
    assert await first.wait_before(address, Authentication.NONE) is None
    assert await second.wait_before(address, Authentication.NONE) is not None
    assert await second.wait_before(address, Authentication.FAILED) is None
    assert await first.wait_before(address, Authentication.FAILED) is not None
    assert await first.wait_before(address, Authentication.VERIFIED) is None


def test_a_limit_that_does_not_parse_fails_start_up_naming_its_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PAYQL_FAILED_AUTH_RATE_LIMIT", "lots")
    with pytest.raises(SettingsError, match="PAYQL_FAILED_AUTH_RATE_LIMIT"):
        load_settings()
    monkeypatch.setenv("PAYQL_FAILED_AUTH_RATE_LIMIT", "10/minute")
    assert load_settings().failed_auth_rate_limit == "10/minute"
