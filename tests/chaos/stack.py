"""The campaign's throwaway PayQL stack: its own database, its own `redis-server` (servers backend), two
`payql serve` instances and a `payql worker` (one serve with in-process jobs on the embedded backend), all
gateways the sandbox under two names, and the crashes the campaign injects into them."""

from __future__ import annotations

import asyncio
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg

from tests.backends import Backend, create_backend, destroy_backend
from tests.jobs.conftest import RedisServer
from tests.ports import free_port
from tests.processes import PayQLProcess, cli
from tests.testkit import TEST_DATA_KEY_ENV, TEST_JWT_SECRET, TEST_WEBHOOK_SECRET

PRIMARY = "sandbox"
BACKUP = "sandbox_backup"
GATEWAYS = (PRIMARY, BACKUP)


@dataclass
class Instance:
    process: PayQLProcess
    url: str
    alive: bool = False


@dataclass
class Stack:
    """Start with `open()`, end with `close()`. `instances` serve shoppers; `worker` is None on the embedded
    backend, where jobs run inside the one serve."""

    folder: Path
    backend: Backend
    env: dict[str, str]
    instances: list[Instance]
    worker: PayQLProcess | None
    redis: RedisServer | None
    kills: dict[str, int] = field(default_factory=dict)

    @property
    def on_servers(self) -> bool:
        return self.backend.is_postgres

    @property
    def mailbox(self) -> Path:
        return Path(self.env["PAYQL_MAILBOX_PATH"])

    def state_path(self, gateway: str) -> Path:
        return self.folder / f"{gateway}.sqlite3"

    def live_urls(self) -> list[str]:
        return [instance.url for instance in self.instances if instance.alive]

    async def start_instance(self, instance: Instance) -> None:
        instance.process.start()
        await instance.process.wait_healthy(instance.url, timeout=90)
        instance.alive = True

    async def kill_instance(self, index: int) -> None:
        """SIGKILL one serve (the campaign keeps another alive on the servers backend)."""
        instance = self.instances[index]
        instance.alive = False
        instance.process.kill()
        self.kills["serve"] = self.kills.get("serve", 0) + 1

    async def kill_worker(self) -> None:
        assert self.worker is not None
        self.worker.kill()
        self.kills["worker"] = self.kills.get("worker", 0) + 1
        self.worker.start()

    def restart_redis(self) -> None:
        assert self.redis is not None
        self.redis.restart()
        self.kills["redis"] = self.kills.get("redis", 0) + 1

    async def terminate_database_connections(self) -> int:
        """`pg_terminate_backend` on every connection to the campaign's database but this one."""
        assert self.backend.admin_postgres_url and self.backend.database_name
        admin = await asyncpg.connect(self.backend.admin_postgres_url.replace("postgres://", "postgresql://", 1))
        try:
            killed = await admin.fetchval(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                " WHERE datname = $1 AND pid <> pg_backend_pid()",
                self.backend.database_name,
            )
        finally:
            await admin.close()
        self.kills["postgres_connections"] = self.kills.get("postgres_connections", 0) + int(killed or 0)
        return int(killed or 0)

    async def revive(self) -> None:
        """Every process running again (after the faults stop)."""
        await asyncio.gather(*(self.start_instance(i) for i in self.instances if not i.alive))
        if self.worker is not None and (self.worker.process is None or self.worker.process.poll() is not None):
            self.worker.start()

    async def close(self) -> None:
        for instance in self.instances:
            instance.process.stop()
        if self.worker is not None:
            self.worker.stop()
        if self.redis is not None:
            self.redis.stop()
        await destroy_backend(self.backend)

    def logs(self) -> str:
        processes = [i.process for i in self.instances] + ([self.worker] if self.worker else [])
        return "".join(process.log() for process in processes)

    def errors(self, context_lines: int = 40, most: int = 10) -> str:
        """The first `most` ERROR lines and tracebacks of every process, each with the lines after it: what a
        failed campaign needs to show, wherever in the (long) logs it is."""
        log = self.logs().splitlines()
        starts = [n for n, line in enumerate(log) if " ERROR " in line or line.startswith("Traceback")]
        return "\n---\n".join("\n".join(log[n : n + context_lines]) for n in starts[:most])


async def open_stack(folder: Path, *, extra_env: dict[str, str] | None = None) -> Stack:
    backend = await create_backend(folder)
    redis: RedisServer | None = None
    if backend.is_postgres:
        executable = shutil.which("redis-server")
        if executable is None:
            raise RuntimeError("redis-server is not on PATH: the campaign restarts its own Redis")
        redis = RedisServer(executable, folder)
        redis.start()
    env = {
        "PAYQL_ENVIRONMENT": "development",
        "PAYQL_DATABASE_URL": backend.database_url,
        "PAYQL_JWT_SECRET": TEST_JWT_SECRET,
        "PAYQL_GATEWAYS": ",".join(GATEWAYS),
        "PAYQL_ROUTING": f"*:{PRIMARY},{BACKUP}",
        "PAYQL_SANDBOX_STATE_PATH": str(folder / f"{PRIMARY}.sqlite3"),
        "PAYQL_SANDBOX_WEBHOOK_SECRETS": TEST_WEBHOOK_SECRET,
        "PAYQL_SANDBOX_BACKUP_STATE_PATH": str(folder / f"{BACKUP}.sqlite3"),
        "PAYQL_SANDBOX_BACKUP_WEBHOOK_SECRETS": TEST_WEBHOOK_SECRET,
        "PAYQL_DEVELOPMENT_SECRETS_PATH": str(folder / "development-secrets.json"),
        "PAYQL_MAILBOX_PATH": str(folder / "mailbox"),
        # The campaign runs reconciliation itself once the faults stop.
        "PAYQL_RECONCILE_INTERVAL_SECONDS": "0",
        # Work a killed process had claimed comes back in seconds, not the production minutes.
        "PAYQL_SWEEP_INTERVAL_SECONDS": "2",
        "PAYQL_SWEEP_GRACE_SECONDS": "2",
        "PAYQL_OUTBOX_LEASE_SECONDS": "6",
        "PAYQL_WEBHOOK_LEASE_SECONDS": "10",
        "PAYQL_WORKER_SWEEP_SECONDS": "3",
        "PAYQL_WORKER_JOB_HEARTBEAT_SECONDS": "3",
        # A slow gateway (the sandbox's hold fault) is given up on quickly, so a run takes minutes, not hours.
        "PAYQL_GATEWAY_CALL_TIMEOUT_SECONDS": "2",
        "PAYQL_GATEWAY_REQUEST_DEADLINE_SECONDS": "5",
        # Shoppers of the campaign are many requests from one machine: the per-client limits are not under test.
        "PAYQL_PAYMENT_RATE_LIMIT": "10000/minute",
    } | TEST_DATA_KEY_ENV
    if redis is not None:
        env |= {"PAYQL_REDIS_URL": redis.url, "PAYQL_REDIS_KEY_PREFIX": backend.redis_prefix}
    env |= extra_env or {}
    await cli(env, "migrate")
    await cli(env, "seed-demo")
    count = 2 if backend.is_postgres else 1
    instances = []
    for index in range(count):
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        own = env | {"PAYQL_PORT": str(port), "PAYQL_PUBLIC_BASE_URL": url}
        instances.append(Instance(PayQLProcess(own, folder / f"serve-{index}.log", "serve"), url))
    worker = PayQLProcess(env, folder / "worker.log", "worker") if backend.is_postgres else None
    stack = Stack(folder, backend, env, instances, worker, redis)
    try:
        await asyncio.gather(*(stack.start_instance(instance) for instance in instances))
        if worker is not None:
            worker.start()
    except BaseException:
        await stack.close()
        raise
    return stack
