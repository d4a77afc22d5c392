"""One PayQL server per test session, served by uvicorn on a random local port in the test loop.

The backend (SQLite or PostgreSQL + Redis) comes from `backends.py`; the schema is built by the
real migrations. Tests talk to the server over real HTTP and websockets and may read the
database directly, since the server shares the test process.
"""

from __future__ import annotations

import asyncio
import os
import socket
import uuid
from collections.abc import AsyncIterator

import httpx
import pytest
import uvicorn
from starlette.applications import Starlette

from db.migrate import apply_migrations
from gateways.sandbox.processor import SandboxProcessor
from payql.app import create_app
from payql.settings import Settings
from payql.wiring import Services
from tests.backends import Backend, backend_name, create_backend, destroy_backend
from tests.testkit import TEST_JWT_SECRET, Shopper


def pytest_report_header(config: pytest.Config) -> str:
    return f"payql test backend: {backend_name()}"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


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
def server_settings(backend: Backend, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    port = free_port()
    return Settings(
        environment="development",
        database_url=backend.database_url,
        redis_url=backend.redis_url,
        redis_key_prefix=backend.redis_prefix,
        port=port,
        public_base_url=f"http://127.0.0.1:{port}",
        jwt_secret=TEST_JWT_SECRET,
        sandbox_state_path=tmp_path_factory.mktemp("sandbox") / "sandbox.sqlite3",
        payment_rate_limit=os.environ.get("PAYQL_TEST_RATE_LIMIT", "100000/minute"),
        cors_origins=["https://shop.example"],
        idempotency_lease_seconds=30,
    )


@pytest.fixture(scope="session")
def app(server_settings: Settings) -> Starlette:
    return create_app(server_settings)


@pytest.fixture(scope="session")
async def server(app: Starlette, server_settings: Settings) -> AsyncIterator[str]:
    config = uvicorn.Config(
        app, host="127.0.0.1", port=server_settings.port, log_config=None, lifespan="on", ws="websockets-sansio"
    )
    uvicorn_server = uvicorn.Server(config)
    task = asyncio.create_task(uvicorn_server.serve())
    while not uvicorn_server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.02)
    yield server_settings.public_base_url
    uvicorn_server.should_exit = True
    await task


@pytest.fixture(scope="session")
def services(app: Starlette, server: str) -> Services:
    running: Services = app.state.services
    return running


@pytest.fixture(scope="session")
def sandbox(services: Services) -> SandboxProcessor:
    assert services.sandbox is not None
    return services.sandbox


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
