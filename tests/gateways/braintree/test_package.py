"""The Braintree package: its settings, the public configuration the SPA reads, and the client-token route Drop-in
and Hosted Fields are started with (served by PayQL, minted by Braintree per request, rate-limited per client)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import httpx
import pytest
from pydantic import SecretStr
from starlette.applications import Starlette

from gateways.braintree.package import PACKAGE, PreparedBraintree
from gateways.braintree.settings import BraintreeSettings
from gateways.package import GatewayConfigurationError, RouteHost
from tests.braintree_emulator import BraintreeEmulator


def settings_for(emulator: BraintreeEmulator, **more: object) -> BraintreeSettings:
    return BraintreeSettings(
        merchant_id=emulator.merchant_id,
        public_key=emulator.public_key,
        private_key=SecretStr(emulator.private_key),
        merchant_accounts=["USD:payql_usd", "JPY:payql_jpy"],
        api_base=emulator.base_url,
        **more,
    )


def limiter(allowed: int) -> Callable[[str, str], Callable[[str], Awaitable[int | None]]]:
    """A rate limiter admitting `allowed` requests per client, then asking it to wait 60 seconds."""
    counts: dict[str, int] = {}

    def build(limit: str, namespace: str) -> Callable[[str], Awaitable[int | None]]:
        async def admit(client: str) -> int | None:
            counts[client] = counts.get(client, 0) + 1
            return None if counts[client] <= allowed else 60

        return admit

    return build


async def test_the_client_token_route_mints_a_token_per_request(emulator: BraintreeEmulator) -> None:
    prepared = PreparedBraintree(settings_for(emulator))
    app = Starlette(routes=list(prepared.routes(RouteHost(is_staff=lambda _: False, rate_limiter=limiter(2)))))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://payql.test") as client:
        first = await client.post("/client-token")
        second = await client.post("/client-token")
        limited = await client.post("/client-token")
    assert first.status_code == second.status_code == 200
    assert first.json()["clientToken"] != second.json()["clientToken"]
    assert first.headers["cache-control"] == "no-store"
    assert (limited.status_code, limited.headers["retry-after"]) == (429, "60")
    assert [path for _, path in emulator.calls].count(f"/merchants/{emulator.merchant_id}/client_token") == 2


async def test_the_client_token_route_answers_503_when_braintree_does_not(emulator: BraintreeEmulator) -> None:
    prepared = PreparedBraintree(settings_for(emulator))
    app = Starlette(routes=list(prepared.routes(RouteHost(is_staff=lambda _: False, rate_limiter=limiter(5)))))
    emulator.fail_next(500, path="/client_token")
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://payql.test") as client:
        assert (await client.post("/client-token")).status_code == 503


async def test_the_adapter_gets_the_merchant_accounts_and_key_pairs(emulator: BraintreeEmulator) -> None:
    settings = settings_for(emulator, previous_webhook_keys=[SecretStr("pub_old:priv_old")])
    assert settings.problems_when_enabled() == []
    assert settings.account_by_currency() == {"USD": "payql_usd", "JPY": "payql_jpy"}
    assert settings.webhook_key_pairs() == [(emulator.public_key, emulator.private_key), ("pub_old", "priv_old")]
    gateway = await PreparedBraintree(settings).open()
    assert gateway.name == "braintree"
    await gateway.aclose()


def test_public_config_names_the_client_token_url_and_an_optional_tokenization_key() -> None:
    bare = BraintreeSettings(merchant_id="m", public_key="p", private_key=SecretStr("s"))
    assert PACKAGE.public_config(bare, public_base_url="https://pay.example/") == {
        "clientTokenUrl": "https://pay.example/braintree/client-token"
    }
    keyed = bare.model_copy(update={"tokenization_key": "sandbox_abc_def"})
    assert PACKAGE.public_config(keyed, public_base_url="https://pay.example")["tokenizationKey"] == "sandbox_abc_def"


def test_settings_problems_name_their_variables() -> None:
    problems = BraintreeSettings(
        merchant_accounts=["USD"], previous_webhook_keys=[SecretStr("nocolon")]
    ).problems_when_enabled()
    assert any(p.startswith("PAYQL_BRAINTREE_MERCHANT_ID/") for p in problems)
    assert any(p.startswith("PAYQL_BRAINTREE_MERCHANT_ACCOUNTS:") for p in problems)
    assert any(p.startswith("PAYQL_BRAINTREE_PREVIOUS_WEBHOOK_KEYS:") for p in problems)
    with pytest.raises(GatewayConfigurationError):
        PreparedBraintree(BraintreeSettings())


def test_settings_read_comma_separated_environment_values(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PAYQL_BRAINTREE_MERCHANT_ACCOUNTS", "USD:acct_usd, EUR:acct_eur")
    monkeypatch.setenv("PAYQL_BRAINTREE_PREVIOUS_WEBHOOK_KEYS", "pub_1:priv_1,pub_2:priv_2")
    settings = BraintreeSettings(public_key="pub", private_key=SecretStr("priv"))
    assert settings.account_by_currency() == {"USD": "acct_usd", "EUR": "acct_eur"}
    assert [pair[0] for pair in settings.webhook_key_pairs()] == ["pub", "pub_1", "pub_2"]
