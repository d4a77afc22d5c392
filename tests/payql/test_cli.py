"""The `payql` command, run as a real subprocess against the test server's database."""

from __future__ import annotations

import json
import time
import uuid

import jwt
import pytest

from db.models import WebhookEvent, WebhookStatus
from gateways.sandbox.processor import SandboxProcessor
from gateways.types import VerifiedEvent, WebhookDelivery
from payql.settings import Settings
from tests.processes import cli
from tests.testkit import TEST_DATA_KEY_ENV, TEST_JWT_SECRET, sandbox_settings
from webhooks.store import store_delivery


def cli_env(settings: Settings) -> dict[str, str]:
    env = {
        "PAYQL_ENVIRONMENT": "development",
        "PAYQL_DATABASE_URL": settings.database_url,
        "PAYQL_JWT_SECRET": TEST_JWT_SECRET,
        "PAYQL_SANDBOX_STATE_PATH": str(sandbox_settings(settings).state_path),
        "PAYQL_SANDBOX_WEBHOOK_SECRETS": ",".join(sandbox_settings(settings).webhook_secrets),
        "PAYQL_REDIS_KEY_PREFIX": settings.redis_key_prefix,
        "PAYQL_JOB_QUEUE": "in-process",
    } | TEST_DATA_KEY_ENV
    if settings.redis_url:
        env["PAYQL_REDIS_URL"] = settings.redis_url
    return env


async def test_token_mints_a_verifiable_development_jwt(server_settings: Settings) -> None:
    out = (await cli(cli_env(server_settings), "token", "--sub", "alice", "--admin", "--email", "a@example.com")).stdout
    claims = jwt.decode(out.strip(), TEST_JWT_SECRET, algorithms=["HS256"])
    assert (claims["sub"], claims["roles"], claims["email"]) == ("alice", ["admin"], "a@example.com")


async def test_token_is_refused_in_production(server_settings: Settings) -> None:
    env = cli_env(server_settings) | {"PAYQL_ENVIRONMENT": "production"}
    result = await cli(env, "token", "--sub", "alice", check=False)
    assert result.returncode == 2
    assert "  PAYQL_GATEWAYS: the sandbox gateway is for development only" in result.stderr.splitlines()


async def test_bad_settings_name_the_variable(server_settings: Settings) -> None:
    result = await cli(cli_env(server_settings) | {"PAYQL_PORT": "eighty"}, "migrate", check=False)
    assert result.returncode == 2 and "PAYQL_PORT" in result.stderr


async def test_migrate_and_seed_demo_are_safe_to_repeat(server: str, server_settings: Settings) -> None:
    env = cli_env(server_settings)
    assert "up to date" in (await cli(env, "migrate")).stdout
    await cli(env, "seed-demo")
    assert "(0 prices created)" in (await cli(env, "seed-demo")).stdout


async def dead_event(sandbox: SandboxProcessor) -> WebhookEvent:
    """A stored, dead event about an unknown payment (what an operator finds after a bad deploy)."""
    event = {"id": f"evt_cli_{uuid.uuid4().hex}", "type": "customer.created", "created": int(time.time())}
    row, _ = await store_delivery(
        "sandbox",
        VerifiedEvent(event["id"], event["type"], event["created"], event),
        WebhookDelivery({}, json.dumps(event).encode(), int(time.time())),
        None,
    )
    await WebhookEvent.filter(id=row.id).update(status=WebhookStatus.DEAD, attempts=8, last_error="boom: it broke")
    return row


async def test_webhooks_list_and_replay(server: str, server_settings: Settings, sandbox: SandboxProcessor) -> None:
    row = await dead_event(sandbox)
    env = cli_env(server_settings)
    listed = (await cli(env, "webhooks", "list", "--failed")).stdout
    line = next(line for line in listed.splitlines() if line.startswith(f"{row.id}\t"))
    assert "DEAD" in line and "attempts=8" in line and "boom: it broke" in line
    replayed = await cli(env, "webhooks", "replay", str(row.id))
    assert replayed.stdout.strip() == f"{row.id}\tIGNORED"
    refreshed = await WebhookEvent.get(id=row.id)
    assert (refreshed.status, refreshed.attempts) == ("IGNORED", 1)
    assert (await cli(env, "webhooks", "replay", check=False)).returncode == 2


@pytest.mark.parametrize("missing", [True, False])
async def test_reconcile_reports_a_charge_we_do_not_know(
    server: str, server_settings: Settings, sandbox: SandboxProcessor, missing: bool
) -> None:
    env = cli_env(server_settings)
    if missing:
        # Another integration on the same account charged a payment PayQL never created.
        await sandbox.create_payment_intent(
            amount=777, currency="usd", payment_method="pm_card_visa", idempotency_key=uuid.uuid4().hex
        )
        result = await cli(env, "reconcile", check=False)
        assert result.returncode == 1
        assert "discrepancy\tmissing_ours\tsandbox" in result.stdout
    else:
        since = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(time.time() + 3600))
        result = await cli(env, "reconcile", "--since", since)
        assert "checked: 0" in result.stdout
