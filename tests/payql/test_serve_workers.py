"""`payql serve --workers 2`: two processes answer on one port, and /metrics counts the requests of
both (prometheus-client's multiprocess mode), whichever process serves the scrape."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from payql.settings import Settings
from tests.payql.test_cli import cli_env
from tests.ports import free_port
from tests.processes import PayQLProcess

REQUESTS = 40


def healthz_count(text: str) -> float:
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "payql_http_requests_total" and sample.labels.get("route") == "/healthz"
    )


@pytest.mark.timeout(120)
async def test_metrics_sum_every_worker_process(server_settings: Settings, tmp_path: Path) -> None:
    port = free_port()
    env = cli_env(server_settings) | {
        "PAYQL_PORT": str(port),
        "PAYQL_PUBLIC_BASE_URL": f"http://127.0.0.1:{port}",
        "PAYQL_SANDBOX_STATE_PATH": str(tmp_path / "sandbox.sqlite3"),
        "PAYQL_SANDBOX_DELIVER_WEBHOOKS": "false",
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "metrics"),
        # These processes share the test server's database: no periodic job of theirs may touch it.
        "PAYQL_SWEEP_INTERVAL_SECONDS": "0",
        "PAYQL_RECONCILE_INTERVAL_SECONDS": "0",
        "PAYQL_DUNNING_INTERVAL_SECONDS": "0",
        "PAYQL_DISPUTE_CHECK_INTERVAL_SECONDS": "0",
    }
    process = PayQLProcess(env, tmp_path / "serve.log", "serve", "--workers", "2")
    process.start()
    base_url = f"http://127.0.0.1:{port}"
    try:
        await process.wait_healthy(base_url)
        for _ in range(REQUESTS):
            # A new connection each time, so the kernel hands them to both processes.
            async with httpx.AsyncClient(base_url=base_url, timeout=10) as client:
                assert (await client.get("/healthz")).status_code == 200
        async with httpx.AsyncClient(base_url=base_url, timeout=10) as client:
            scrapes = [healthz_count((await client.get("/metrics")).text) for _ in range(4)]
    finally:
        process.stop()
    assert scrapes == [REQUESTS] * 4, process.log()
    assert len(list((tmp_path / "metrics").glob("counter_*.db"))) >= 2  # both processes wrote
