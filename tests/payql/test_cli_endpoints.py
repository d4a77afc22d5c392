"""`payql endpoints …`, run as a real subprocess against the test server's database: create prints
the secret once, list never does, test sends a signed event now, roll-secret and disable and delete
change the row with an audit record, and an SSRF target is refused with the reason."""

from __future__ import annotations

import uuid

from db.merchant_models import MerchantEndpoint
from db.models import AuditRecord
from payql.settings import Settings
from tests.merchant_receiver import receiving
from tests.payql.test_cli import cli_env
from tests.processes import cli


async def test_an_endpoint_from_creation_to_deletion(server: str, server_settings: Settings) -> None:
    env = cli_env(server_settings) | {"PAYQL_MERCHANT_WEBHOOKS_ALLOW_PRIVATE": "true"}
    async with receiving() as receiver:
        created = (await cli(env, "endpoints", "create", "--url", receiver.url, "--events", "order.paid")).stdout
        endpoint_id = created.split("\t", 1)[0]
        secret = created.strip().rsplit(" ", 1)[1]
        assert uuid.UUID(endpoint_id) and secret.startswith("whsec_")
        try:
            listed = (await cli(env, "endpoints", "list")).stdout
            assert endpoint_id in listed and secret not in listed
            sent = (await cli(env, "endpoints", "test", endpoint_id)).stdout
            assert "\tDELIVERED\t" in sent and "endpoint.test" in sent
            [request] = receiver.requests
            assert request.verifies_with(secret)
            rolled = (await cli(env, "endpoints", "roll-secret", endpoint_id, "--overlap-hours", "1")).stdout
            new_secret = rolled.strip().rsplit(" ", 1)[1]
            assert new_secret != secret and (await MerchantEndpoint.get(id=endpoint_id)).secret == new_secret
            deliveries = (await cli(env, "endpoints", "deliveries", "--endpoint", endpoint_id)).stdout
            assert request.event["id"] in deliveries
            assert "disabled" in (await cli(env, "endpoints", "disable", endpoint_id)).stdout
            assert "deleted" in (await cli(env, "endpoints", "delete", endpoint_id)).stdout
        finally:
            await MerchantEndpoint.filter(id=endpoint_id).delete()
    actions = [r.action for r in await AuditRecord.filter(entity_id=endpoint_id).order_by("id")]
    assert actions == [
        "merchant_endpoint.created",
        "merchant_endpoint.test_sent",
        "merchant_endpoint.secret_rolled",
        "merchant_endpoint.disabled",
        "merchant_endpoint.deleted",
    ]
    assert {r.actor for r in await AuditRecord.filter(entity_id=endpoint_id)} == {"admin:cli"}


async def test_a_loopback_url_is_refused_without_allow_private(server: str, server_settings: Settings) -> None:
    result = await cli(cli_env(server_settings), "endpoints", "create", "--url", "http://127.0.0.1:9/in", check=False)
    assert result.returncode == 2
    assert "INVALID_INPUT" in result.stderr and "127.0.0.1 is loopback" in result.stderr
