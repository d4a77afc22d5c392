"""One PayQL server per test session, served by uvicorn on a random local port in the test loop.

The backend (SQLite or PostgreSQL + Redis) comes from `backends.py`; the schema is built by the
real migrations. Tests talk to the server over real HTTP and websockets and may read the
database directly, since the server shares the test process.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator

import httpx
import pytest
import uvicorn
from starlette.applications import Starlette

from db.merchant_models import MerchantEndpoint
from db.migrate import apply_migrations
from gateways.sandbox.package import PreparedSandbox
from gateways.sandbox.processor import SandboxProcessor
from jobs.saq_queue import SaqJobQueue
from jobs.worker import build_worker
from payql.app import create_app
from payql.settings import Settings
from payql.wiring import Services
from tests.backends import Backend, backend_name, create_backend, destroy_backend
from tests.client_addresses import PROXY_ADDRESS
from tests.ports import free_port
from tests.smtp_server import SmtpServer
from tests.testkit import (
    TEST_DATA_INDEX_KEY,
    TEST_DATA_KEY,
    TEST_JWT_SECRET,
    TEST_OLD_WEBHOOK_SECRET,
    TEST_WEBHOOK_SECRET,
    Shopper,
)


def pytest_report_header(config: pytest.Config) -> str:
    return f"payql test backend: {backend_name()}"


@pytest.fixture(scope="session")
async def backend(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Backend]:
    tmp = tmp_path_factory.mktemp("backend")
    try:
        created = await create_backend(tmp)
    except OSError as error:
        pytest.exit(f"PAYQL_TEST_BACKEND=servers but a server is unreachable: {error}", returncode=1)
    await apply_migrations(created.database_url)
    yield created
    await destroy_backend(created)


@pytest.fixture(scope="session")
async def mail_server() -> AsyncIterator[SmtpServer]:
    """The SMTP server the test PayQL server sends its email to."""
    server = SmtpServer()
    await server.start()
    yield server
    await server.stop()


@pytest.fixture(scope="session")
def server_settings(backend: Backend, mail_server: SmtpServer, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    port = free_port()
    return Settings(
        environment="development",
        database_url=backend.database_url,
        redis_url=backend.redis_url,
        redis_key_prefix=backend.redis_prefix,
        port=port,
        public_base_url=f"http://127.0.0.1:{port}",
        jwt_secret=TEST_JWT_SECRET,
        data_keys=TEST_DATA_KEY,
        data_index_key=TEST_DATA_INDEX_KEY,
        payment_rate_limit=os.environ.get("PAYQL_TEST_RATE_LIMIT", "100000/minute"),
        # Every test client shares 127.0.0.1; limit tests tighten these on their own address.
        anonymous_rate_limit="100000/minute",
        failed_auth_rate_limit="100000/minute",
        complete_payment_rate_limit="100000/minute",
        cors_origins=["https://shop.example"],
        trusted_proxies=[PROXY_ADDRESS],
        # Both halves of the suite share two cores: a thousand subscribers may wait past the
        # production default of 2 s for a pooled Redis connection. Exhaustion tests starve pools
        # of their own.
        redis_pool_timeout_seconds=15,
        idempotency_lease_seconds=30,
        # Fault tests arm one fault and watch what an unknown outcome leaves behind; retries within a
        # request are tested on their own (tests/features/test_failover.py).
        gateway_retry_attempts=1,
        gateway_settings={
            "sandbox": {
                "state_path": tmp_path_factory.mktemp("sandbox") / "sandbox.sqlite3",
                "tokenize_rate_limit": "100000/minute",
                "webhook_secrets": [TEST_WEBHOOK_SECRET, TEST_OLD_WEBHOOK_SECRET],
            }
        },
        smtp_host="127.0.0.1",
        smtp_port=mail_server.port,
        smtp_starttls=False,
        webhook_retry_base_seconds=0.05,
        webhook_retry_max_seconds=0.2,
        webhook_max_attempts=4,
        sweep_interval_seconds=0,
        reconcile_interval_seconds=0,
        dunning_interval_seconds=0,
        billing_update_payment_url="https://shop.example/account/billing",
        sweep_grace_seconds=0,
        orphan_age_seconds=0,
        # The merchant webhook receivers of the tests listen on 127.0.0.1.
        merchant_webhooks_allow_private=True,
        merchant_webhook_retry_base_seconds=0.05,
        merchant_webhook_retry_max_seconds=0.2,
        merchant_webhook_max_attempts=4,
        merchant_webhook_timeout_seconds=5,
    )


@pytest.fixture(scope="session")
def app(server_settings: Settings) -> Starlette:
    return create_app(server_settings)


@pytest.fixture(scope="session")
async def server(app: Starlette, server_settings: Settings) -> AsyncIterator[str]:
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=server_settings.port,
        log_config=None,
        lifespan="on",
        ws="websockets-sansio",
        # As `payql serve`: the app alone decides whom to believe (PAYQL_TRUSTED_PROXIES).
        proxy_headers=False,
        # The session's clients keep connections open across tests; with uvicorn's 5 s a pooled
        # connection can be closed by the server just as a busy CI machine sends on it (ReadError).
        timeout_keep_alive=300,
    )
    uvicorn_server = uvicorn.Server(config)
    task = asyncio.create_task(uvicorn_server.serve())
    while not uvicorn_server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.02)
    # With Redis the jobs go to saq, as in production; a worker runs them in the test loop.
    services: Services = app.state.services
    worker = None
    if isinstance(services.queue, SaqJobQueue):
        worker = build_worker(
            server_settings.redis_url or "", services.job_specs, name=f"{server_settings.redis_key_prefix}jobs"
        )
        await worker.queue.connect()
        worker_task = asyncio.create_task(worker.start())
    yield server_settings.public_base_url
    if worker is not None:
        await worker.stop()
        worker_task.cancel()
        await asyncio.gather(worker_task, return_exceptions=True)
        await worker.queue.disconnect()
    uvicorn_server.should_exit = True
    await task


@pytest.fixture(autouse=True)
async def no_merchant_endpoint_left_enabled(request: pytest.FixtureRequest) -> AsyncIterator[None]:
    """A test that leaves an enabled endpoint behind gives every later test's events a delivery to it,
    retried until it gives up: on the servers backend each retry waits for saq's one-second scheduler,
    and every later `settle` waits for them (it cost the suite minutes once)."""
    yield
    if "server" in request.fixturenames:
        left = await MerchantEndpoint.filter(enabled=True).values_list("url", flat=True)
        assert not left, f"this test left enabled merchant endpoints behind: {left}"


@pytest.fixture(scope="session")
def services(app: Starlette, server: str) -> Services:
    running: Services = app.state.services
    return running


@pytest.fixture(scope="session")
def sandbox(services: Services) -> SandboxProcessor:
    prepared = services.prepared["sandbox"]
    assert isinstance(prepared, PreparedSandbox)
    return prepared.processor


@pytest.fixture(scope="session")
async def http(server: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=server, timeout=60) as client:
        yield client


@pytest.fixture
def shopper(http: httpx.AsyncClient) -> Shopper:
    return Shopper(http, f"customer-{uuid.uuid4().hex[:10]}")


@pytest.fixture
def other_shopper(http: httpx.AsyncClient) -> Shopper:
    return Shopper(http, f"customer-{uuid.uuid4().hex[:10]}")


@pytest.fixture
def admin(http: httpx.AsyncClient) -> Shopper:
    return Shopper(http, f"staff-{uuid.uuid4().hex[:6]}", admin=True)
