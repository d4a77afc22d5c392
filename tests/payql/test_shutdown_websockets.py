"""SIGTERM closes open GraphQL websockets with a "going away" code that clients reconnect on, at
once rather than after the shutdown grace, and the process ends within a bound."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import pytest
from websockets.exceptions import ConnectionClosed

from payql.settings import Settings
from tests.payql.test_cli import cli_env
from tests.ports import free_port
from tests.processes import PayQLProcess
from tests.testkit import token_for
from tests.wsclient import graphql_ws

GOING_AWAY = 1001  # RFC 6455: the server is going down; a client reconnects (elsewhere)
SERVICE_RESTART = 1012  # RFC 6455 registry: likewise, come back later
BOUND_SECONDS = 20


@pytest.mark.timeout(120)
async def test_sigterm_closes_websockets_with_a_code_clients_reconnect_on(
    server_settings: Settings, tmp_path: Path
) -> None:
    port = free_port()
    env = cli_env(server_settings) | {
        "PAYQL_PORT": str(port),
        "PAYQL_PUBLIC_BASE_URL": f"http://127.0.0.1:{port}",
        "PAYQL_SANDBOX_STATE_PATH": str(tmp_path / "sandbox.sqlite3"),
        "PAYQL_SANDBOX_DELIVER_WEBHOOKS": "false",
        # A long grace: the socket must be closed at once, not when the grace runs out.
        "PAYQL_SHUTDOWN_GRACE_SECONDS": "300",
        "PAYQL_SWEEP_INTERVAL_SECONDS": "0",
        "PAYQL_RECONCILE_INTERVAL_SECONDS": "0",
        "PAYQL_DUNNING_INTERVAL_SECONDS": "0",
        "PAYQL_DISPUTE_CHECK_INTERVAL_SECONDS": "0",
    }
    process = PayQLProcess(env, tmp_path / "serve.log", "serve")
    process.start()
    base_url = f"http://127.0.0.1:{port}"
    try:
        await process.wait_healthy(base_url)
        async with graphql_ws(base_url, token_for("shutdown-watcher")) as ws:
            assert process.process is not None
            process.process.send_signal(signal.SIGTERM)
            with pytest.raises(ConnectionClosed) as closed:
                await asyncio.wait_for(ws.connection.recv(), BOUND_SECONDS)
        assert closed.value.rcvd is not None, process.log()
        assert closed.value.rcvd.code in (GOING_AWAY, SERVICE_RESTART), process.log()
        await asyncio.wait_for(asyncio.to_thread(process.process.wait), BOUND_SECONDS)
    finally:
        process.stop()
