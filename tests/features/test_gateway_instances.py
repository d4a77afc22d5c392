"""Named instances of a gateway package, through the whole server: `payql serve` with
PAYQL_GATEWAYS=sandbox,sandbox_backup runs two sandboxes side by side, each with its own processor, state
file, fault switches, webhook secret, routes (`/sandbox_backup/...`) and webhooks (`/webhooks/sandbox_backup`),
both listed by `gateways` and `paymentOptions`, and routed by PAYQL_ROUTING like any two gateways.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from db.models import Payment, WebhookEvent
from payql.settings import Settings
from tests.payql.test_cli import cli_env
from tests.ports import free_port
from tests.processes import PayQLProcess
from tests.testkit import CHECKOUT, Shopper, checkout_input, eventually, make_price, token_for

BACKUP = "sandbox_backup"
BACKUP_WEBHOOK_SECRET = "whsec_payql_test_backup_instance"
STAFF = {"authorization": f"Bearer {token_for('instances-staff', admin=True)}"}


@pytest.fixture
async def two_sandboxes(server_settings: Settings, server: str, tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    """`payql serve` on the test database with the sandbox and a backup instance, routed primary first."""
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    env = cli_env(server_settings) | {
        "PAYQL_PORT": str(port),
        "PAYQL_PUBLIC_BASE_URL": base_url,
        "PAYQL_GATEWAYS": f"sandbox,{BACKUP}",
        "PAYQL_ROUTING": f"*:sandbox,{BACKUP}",
        "PAYQL_SANDBOX_STATE_PATH": str(tmp_path / "sandbox.sqlite3"),
        "PAYQL_SANDBOX_BACKUP_STATE_PATH": str(tmp_path / "backup.sqlite3"),
        "PAYQL_SANDBOX_BACKUP_WEBHOOK_SECRETS": BACKUP_WEBHOOK_SECRET,
        "PAYQL_MAILBOX_PATH": str(tmp_path / "mailbox"),
        # Failover is decided per checkout here, not retried within one (tests/features/test_failover.py).
        "PAYQL_GATEWAY_RETRY_ATTEMPTS": "1",
        # This process shares the test server's database: no periodic job of its own may touch it.
        "PAYQL_SWEEP_INTERVAL_SECONDS": "0",
        "PAYQL_RECONCILE_INTERVAL_SECONDS": "0",
        "PAYQL_DUNNING_INTERVAL_SECONDS": "0",
        "PAYQL_DISPUTE_CHECK_INTERVAL_SECONDS": "0",
    }
    process = PayQLProcess(env, tmp_path / "serve.log", "serve")
    process.start()
    try:
        await process.wait_healthy(base_url)
        async with httpx.AsyncClient(base_url=base_url, timeout=30) as client:
            yield client
    finally:
        process.stop()


def chosen(price: Any, gateway: str | None, payment_method: str = "pm_card_visa") -> dict[str, Any]:
    values = checkout_input(price, payment_method)
    if gateway is None:
        del values["gateway"]  # the routing policy picks
    else:
        values["gateway"] = gateway
    return {"input": values}


async def attempts(order_id: str) -> list[tuple[str, str]]:
    return [(p.gateway, str(p.status)) for p in await Payment.filter(order_id=order_id).order_by("created_at")]


async def processed_webhook(gateway: str, reference: str) -> bool:
    events = await WebhookEvent.filter(gateway=gateway, processed_at__isnull=False)
    return any(reference in event.body for event in events)


async def test_both_instances_are_listed_and_each_takes_checkouts_and_sends_its_own_webhooks(
    two_sandboxes: httpx.AsyncClient,
) -> None:
    shopper = Shopper(two_sandboxes, "instances-shopper")
    listed = await shopper.data("{ gateways paymentOptions { gateway publicConfig { name value } } }")
    assert listed["gateways"] == ["sandbox", BACKUP]
    tokens_urls = {option["gateway"]: option["publicConfig"] for option in listed["paymentOptions"]}
    assert tokens_urls[BACKUP] == [{"name": "tokensUrl", "value": f"{two_sandboxes.base_url}/{BACKUP}/tokens"}]

    paid = {}
    for gateway in ("sandbox", BACKUP):
        done = (await shopper.data(CHECKOUT, chosen(await make_price(5100), gateway)))["checkout"]
        assert done["order"]["status"] == "PAID", done
        [payment] = done["order"]["payments"]
        assert payment["gateway"] == gateway
        paid[gateway] = payment["gatewayReference"]

    # Each instance signs with its own secret and posts to its own /webhooks/<name>, where it verifies.
    for gateway, reference in paid.items():
        await eventually(lambda gateway=gateway, reference=reference: processed_webhook(gateway, reference))
    # Separate processors: neither knows the other's payment.
    authenticate = f"/{BACKUP}/authenticate/{paid['sandbox']}"
    assert (await two_sandboxes.get(authenticate)).status_code == 404
    assert (await two_sandboxes.get(f"/sandbox/authenticate/{paid['sandbox']}")).status_code == 200


async def test_a_token_belongs_to_the_instance_that_made_it(two_sandboxes: httpx.AsyncClient) -> None:
    card = {"number": "4242424242424242", "exp_month": 12, "exp_year": 2040, "cvc": "123"}
    token = (await two_sandboxes.post(f"/{BACKUP}/tokens", json=card)).json()["id"]
    shopper = Shopper(two_sandboxes, "instances-token-shopper")

    on_backup = (await shopper.data(CHECKOUT, chosen(await make_price(5150), BACKUP, token)))["checkout"]
    elsewhere = (await shopper.data(CHECKOUT, chosen(await make_price(5151), "sandbox", token)))["checkout"]

    assert on_backup["order"]["status"] == "PAID"
    assert elsewhere["order"]["status"] != "PAID" and elsewhere["userErrors"], elsewhere


async def test_the_fault_switch_of_one_instance_leaves_the_other_alone(two_sandboxes: httpx.AsyncClient) -> None:
    shopper = Shopper(two_sandboxes, "instances-fault-shopper")
    armed = await two_sandboxes.post("/sandbox/faults", json={"mode": "unavailable", "count": 1}, headers=STAFF)
    assert armed.status_code == 200, armed.text

    on_backup = (await shopper.data(CHECKOUT, chosen(await make_price(5200), BACKUP)))["checkout"]
    on_primary = (await shopper.data(CHECKOUT, chosen(await make_price(5201), "sandbox")))["checkout"]

    assert on_backup["order"]["status"] == "PAID"
    assert [error["code"] for error in on_primary["userErrors"]] == ["GATEWAY_UNAVAILABLE"]
    assert await attempts(on_primary["order"]["id"]) == [("sandbox", "PENDING")]


async def test_routing_fails_over_from_the_primary_to_the_backup_instance(two_sandboxes: httpx.AsyncClient) -> None:
    shopper = Shopper(two_sandboxes, "instances-routed-shopper")
    armed = await two_sandboxes.post("/sandbox/faults", json={"mode": "unavailable", "count": 1}, headers=STAFF)
    assert armed.status_code == 200, armed.text

    routed = (await shopper.data(CHECKOUT, chosen(await make_price(5300), None)))["checkout"]

    assert routed["userErrors"] == []
    assert routed["order"]["status"] == "PAID"
    assert await attempts(routed["order"]["id"]) == [("sandbox", "FAILED"), (BACKUP, "PAID")]
