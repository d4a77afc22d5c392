"""PayQL behind PgBouncer in transaction mode, as the README's sizing section advises: several
`payql migrate` at once, then again, and a server's concurrent and repeated checkouts, through a
throwaway PgBouncer whose pool has two server connections (fewer than the runs and requests at once).

PgBouncer is a system package (`apt-get install -y pgbouncer`; `.ci/run` installs it); a machine
without it fails these tests with that reason.
"""

from __future__ import annotations

import asyncio
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import asyncpg
import httpx
import pytest

from tests.backends import Backend
from tests.db.test_migrations import fresh_database
from tests.ports import free_port
from tests.processes import PayQLProcess, cli, payql_environment
from tests.testkit import CHECKOUT, new_key, token_for

__all__ = ["fresh_database"]  # a fixture, used by name

SERVER_CONNECTIONS = 2
# What the README tells an operator to add to the URL behind PgBouncer in transaction mode.
BEHIND_PGBOUNCER = "statement_cache_size=0"
START_TIMEOUT_SECONDS = 10.0


class PgBouncer:
    """One `pgbouncer` child process in transaction mode in front of the test PostgreSQL."""

    def __init__(self, executable: str, upstream: str) -> None:
        parts = urlsplit(upstream)
        self.user = parts.username or "postgres"
        self.port = free_port()
        # PgBouncer refuses to run as root; as `nobody` it must read its files from a folder it can enter.
        self.folder = Path(tempfile.mkdtemp(prefix="payql-pgbouncer-"))
        self.folder.chmod(0o755)
        (self.folder / "users.txt").write_text(f'"{self.user}" ""\n')
        (self.folder / "pgbouncer.ini").write_text(
            "\n".join(
                [
                    "[databases]",
                    f"* = host={parts.hostname or '127.0.0.1'} port={parts.port or 5432}",
                    "[pgbouncer]",
                    "listen_addr = 127.0.0.1",
                    f"listen_port = {self.port}",
                    "unix_socket_dir =",
                    "auth_type = trust",
                    f"auth_file = {self.folder / 'users.txt'}",
                    "pool_mode = transaction",
                    f"default_pool_size = {SERVER_CONNECTIONS}",
                    "max_client_conn = 200",
                    "ignore_startup_parameters = extra_float_digits",
                    "",
                ]
            )
        )
        for path in self.folder.iterdir():
            path.chmod(0o644)
        # As `nobody` itself, not under a wrapper such as runuser, which forks: killing the wrapper would
        # leave PgBouncer running.
        nobody = pwd.getpwnam("nobody") if os.geteuid() == 0 else None
        self.log = (self.folder / "pgbouncer.log").open("wb")
        self.process = subprocess.Popen(
            [executable, str(self.folder / "pgbouncer.ini")],
            stdout=self.log,
            stderr=subprocess.STDOUT,
            user=nobody.pw_uid if nobody else None,
            group=nobody.pw_gid if nobody else None,
            extra_groups=[] if nobody else None,
        )

    def url(self, database_url: str, query: str = BEHIND_PGBOUNCER) -> str:
        """`database_url` (on the test PostgreSQL) through this PgBouncer."""
        name = urlsplit(database_url).path
        return f"postgres://{self.user}@127.0.0.1:{self.port}{name}" + (f"?{query}" if query else "")

    def output(self) -> str:
        return (self.folder / "pgbouncer.log").read_text(errors="replace")

    async def wait_ready(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while True:
            if self.process.poll() is not None:
                pytest.fail(f"pgbouncer exited at start:\n{self.output()}")
            try:
                connection = await asyncpg.connect(
                    f"postgresql://{self.user}@127.0.0.1:{self.port}/postgres", statement_cache_size=0, timeout=2
                )
            except (OSError, asyncpg.PostgresError, TimeoutError):
                if time.monotonic() > deadline:
                    pytest.fail(f"pgbouncer did not accept a connection in {START_TIMEOUT_SECONDS}s:\n{self.output()}")
                await asyncio.sleep(0.05)
                continue
            await connection.close()
            return

    def stop(self) -> None:
        self.process.kill()
        self.process.wait()
        self.log.close()
        shutil.rmtree(self.folder, ignore_errors=True)


@pytest.fixture
async def pgbouncer(backend: Backend) -> AsyncIterator[PgBouncer]:
    if not backend.is_postgres:
        pytest.skip("PgBouncer pools PostgreSQL connections; proven with PAYQL_TEST_BACKEND=servers")
    executable = shutil.which("pgbouncer") or shutil.which("pgbouncer", path="/usr/sbin")
    if executable is None:
        pytest.fail("pgbouncer is missing: apt-get install -y pgbouncer")
    assert backend.admin_postgres_url is not None
    bouncer = PgBouncer(executable, backend.admin_postgres_url)
    try:
        await bouncer.wait_ready()
        yield bouncer
    finally:
        bouncer.stop()
    with socket.socket() as probe:
        assert probe.connect_ex(("127.0.0.1", bouncer.port)) != 0, "a PgBouncer outlived its test"


async def direct(database_url: str) -> asyncpg.Connection:
    return await asyncpg.connect(database_url.replace("postgres://", "postgresql://", 1))


@pytest.mark.timeout(180)
async def test_migrates_at_once_and_again_through_pgbouncer_apply_each_migration_once(
    pgbouncer: PgBouncer, fresh_database: str, tmp_path: Path
) -> None:
    """Three runs at once with two server connections, then a fourth: a session's advisory lock would be
    taken on one server connection and released on another, and the fourth run would wait for it."""
    env = payql_environment(pgbouncer.url(fresh_database), tmp_path)
    at_once = await asyncio.gather(*(cli(env, "migrate", check=False) for _ in range(3)))
    assert [r.returncode for r in at_once] == [0, 0, 0], [r.stderr for r in at_once]
    again = await asyncio.wait_for(cli(env, "migrate", check=False), 60)
    assert again.returncode == 0, again.stderr
    connection = await direct(fresh_database)
    try:
        names = [row["name"] for row in await connection.fetch("SELECT name FROM tortoise_migrations")]
        held = await connection.fetchval(
            "SELECT count(*) FROM pg_locks JOIN pg_database ON pg_database.oid = pg_locks.database"
            " WHERE locktype = 'advisory' AND datname = current_database()"
        )
    finally:
        await connection.close()
    assert names and len(names) == len(set(names))
    assert held == 0


@pytest.mark.timeout(180)
async def test_a_server_behind_pgbouncer_charges_each_checkout_once(
    pgbouncer: PgBouncer, fresh_database: str, tmp_path: Path
) -> None:
    """Twelve checkouts, each sent twice at once, through a server whose pool (5) outnumbers PgBouncer's
    server connections (2): every statement of a transaction must reach the same server connection."""
    env = payql_environment(pgbouncer.url(fresh_database), tmp_path)
    await cli(env, "migrate")
    await cli(env, "seed-demo")
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    server = PayQLProcess(
        env | {"PAYQL_PORT": str(port), "PAYQL_PUBLIC_BASE_URL": base_url}, tmp_path / "serve.log", "serve"
    )
    server.start()
    try:
        await server.wait_healthy(base_url)
        shopper = f"customer-{uuid.uuid4().hex[:8]}"
        async with httpx.AsyncClient(
            base_url=base_url, timeout=60, headers={"authorization": f"Bearer {token_for(shopper)}"}
        ) as client:

            async def graphql(query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
                response = await client.post("/graphql", json={"query": query, "variables": variables or {}})
                assert response.status_code == 200, response.text
                body: dict[str, Any] = response.json()
                return body

            products = await graphql("{ products { prices { id type } } }")
            price_id = next(
                price["id"]
                for product in products["data"]["products"]
                for price in product["prices"]
                if price["type"] == "ONE_TIME"
            )
            inputs = [
                {
                    "input": {
                        "items": [{"priceId": price_id}],
                        "paymentMethod": "pm_card_visa",
                        "idempotencyKey": new_key(),
                    }
                }
                for _ in range(12)
            ]
            answers = await asyncio.gather(*(graphql(CHECKOUT, each) for each in inputs for _ in range(2)))
    finally:
        server.stop()
    assert "Traceback" not in server.log(), server.log()
    checkouts = [answer["data"]["checkout"] for answer in answers]
    assert [c["userErrors"] for c in checkouts] == [[]] * 24, checkouts
    assert {c["order"]["status"] for c in checkouts} == {"PAID"}
    assert all(checkouts[2 * n] == checkouts[2 * n + 1] for n in range(12))
    assert len({c["order"]["id"] for c in checkouts}) == 12
    connection = await direct(fresh_database)
    try:
        succeeded = await connection.fetchval("SELECT count(*) FROM payments WHERE status = 'PAID'")
    finally:
        await connection.close()
    assert succeeded == 12
