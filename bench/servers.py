"""What every benchmark needs: a throwaway PostgreSQL database and Redis prefix, and PayQL served
from it by `payql serve` in a process of its own (so the load generator does not share its loop).

PAYQL_BENCH_POSTGRES_URL and PAYQL_BENCH_REDIS_URL name the servers (local defaults otherwise).
Everything made here is removed afterwards: the database is dropped, the prefix's keys deleted
(saq's too, when a benchmark runs the Redis job queue: saq puts its own namespace before the prefix).
"""

from __future__ import annotations

import asyncio
import base64
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import asyncpg
import httpx
from redis.asyncio import Redis

DEFAULT_POSTGRES_URL = "postgres://postgres@127.0.0.1:5432/postgres"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
START_SECONDS = 60.0
PAYQL = str(Path(sys.executable).with_name("payql"))
# A `payql worker` that runs only the jobs a benchmark queues: no sweeps, reconciliation or dunning.
PERIODIC_OFF: Final = {
    "PAYQL_SWEEP_INTERVAL_SECONDS": "0",
    "PAYQL_RECONCILE_INTERVAL_SECONDS": "0",
    "PAYQL_DUNNING_INTERVAL_SECONDS": "0",
    "PAYQL_DISPUTE_CHECK_INTERVAL_SECONDS": "0",
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass(frozen=True)
class BenchDatabase:
    database_url: str  # postgres://…, as PayQL takes it
    redis_url: str
    redis_prefix: str
    jwt_secret: str
    work: Path  # logs, sandbox state, mailbox

    @property
    def asyncpg_url(self) -> str:
        return self.database_url.replace("postgres://", "postgresql://", 1)

    @classmethod
    @asynccontextmanager
    async def create(cls) -> AsyncIterator[BenchDatabase]:
        admin_url = os.environ.get("PAYQL_BENCH_POSTGRES_URL", DEFAULT_POSTGRES_URL)
        redis_url = os.environ.get("PAYQL_BENCH_REDIS_URL", DEFAULT_REDIS_URL)
        run = uuid.uuid4().hex[:10]
        name = f"payql_bench_{run}"
        admin = await asyncpg.connect(admin_url.replace("postgres://", "postgresql://", 1))
        try:
            await admin.execute(f'CREATE DATABASE "{name}"')
        finally:
            await admin.close()
        with tempfile.TemporaryDirectory(prefix="payql-bench-") as work:
            bench = cls(
                database_url=f"{admin_url.rpartition('/')[0]}/{name}",
                redis_url=redis_url,
                redis_prefix=f"payql_bench_{run}:",
                jwt_secret=secrets.token_urlsafe(48),
                work=Path(work),
            )
            try:
                environment = payql_environment(bench, bench.work, free_port())
                for command in (["migrate"], ["seed-demo"]):
                    await asyncio.to_thread(
                        subprocess.run,  # our own `payql` script, arguments of our own
                        [PAYQL, *command],
                        env=environment,
                        check=True,
                        capture_output=True,
                    )
                yield bench
            except BaseException:
                bench.show_logs()
                raise
            finally:
                await bench.drop(admin_url)

    def show_logs(self, lines: int = 40) -> None:
        """The end of every server's log, before the work folder goes: why a run failed."""
        for log in sorted(self.work.glob("*.log")):
            tail = log.read_text(errors="replace").splitlines()[-lines:]
            print(f"--- {log.name} (last {len(tail)} lines)", *tail, sep="\n", file=sys.stderr)

    async def drop(self, admin_url: str) -> None:
        admin = await asyncpg.connect(admin_url.replace("postgres://", "postgresql://", 1))
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{self.database_url.rpartition("/")[2]}" WITH (FORCE)')
        finally:
            await admin.close()
        redis = Redis.from_url(self.redis_url)
        try:
            for pattern in (self.redis_prefix, f"saq:{self.redis_prefix}", f"saq:job:{self.redis_prefix}"):
                keys = [key async for key in redis.scan_iter(match=pattern + "*")]
                if keys:
                    await redis.delete(*keys)
        finally:
            await redis.aclose()


def _key() -> str:
    return base64.b64encode(secrets.token_bytes(32)).decode()


# A rate limit no benchmark reaches (its one shopper would otherwise be limited as an abuser).
UNLIMITED = "1000000/minute"


def payql_environment(bench: BenchDatabase, work: Path, port: int, **overrides: str) -> dict[str, str]:
    """PayQL on the benchmark's servers, development mode with the sandbox, limits out of the way
    (a benchmark's one client would otherwise be rate limited as an abuser)."""
    environment = {
        "PAYQL_DATABASE_URL": bench.database_url,
        "PAYQL_REDIS_URL": bench.redis_url,
        "PAYQL_REDIS_KEY_PREFIX": bench.redis_prefix,
        "PAYQL_JOB_QUEUE": "in-process",
        "PAYQL_PORT": str(port),
        "PAYQL_PUBLIC_BASE_URL": f"http://127.0.0.1:{port}",
        "PAYQL_JWT_SECRET": bench.jwt_secret,
        "PAYQL_DATA_KEYS": _stable_key(work, "data"),
        "PAYQL_DATA_INDEX_KEY": _stable_key(work, "index"),
        "PAYQL_SANDBOX_WEBHOOK_SECRETS": "whsec_" + bench.redis_prefix.strip(":"),
        "PAYQL_SANDBOX_STATE_PATH": str(work / "sandbox.sqlite3"),
        "PAYQL_SANDBOX_DELIVER_WEBHOOKS": "false",
        "PAYQL_MAILBOX_PATH": str(work / "mailbox"),
        "PAYQL_DEVELOPMENT_SECRETS_PATH": str(work / "development-secrets.json"),
        "PAYQL_DATA_KEYS_FILE": str(work / "data-keys"),
        "PAYQL_PAYMENT_RATE_LIMIT": UNLIMITED,
        "PAYQL_ANONYMOUS_RATE_LIMIT": UNLIMITED,
        "PAYQL_FAILED_AUTH_RATE_LIMIT": UNLIMITED,
        "PAYQL_COMPLETE_PAYMENT_RATE_LIMIT": UNLIMITED,
        "PAYQL_MAX_LIVE_SUBSCRIPTIONS": "1000000",
        "PAYQL_LOG_LEVEL": "WARNING",
    }
    return os.environ | environment | overrides


def _stable_key(work: Path, name: str) -> str:
    """One key per benchmark run and purpose: every process of the run must open the same rows."""
    path = work / f"bench-{name}-key"
    if not path.exists():
        path.write_text(_key())
    return path.read_text()


def cpu_seconds(process: subprocess.Popen[bytes]) -> float:
    """The CPU time (user + system) the process has used so far, from Linux's /proc."""
    return _stat_cpu_seconds(Path(f"/proc/{process.pid}/stat").read_text())


def _stat_cpu_seconds(stat: str) -> float:
    """The user + system time in a /proc/<pid>/stat text."""
    fields = stat.rpartition(")")[2].split()
    # utime and stime are fields 14 and 15 of stat(5); the text after the command name starts at field 3.
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# The processes of the tiers behind the servers: PostgreSQL's backends and background workers, and Redis.
TIERS: Final = ("postgres", "redis-server")


def tier_cpu_seconds(names: tuple[str, ...] = TIERS) -> dict[str, float]:
    """The CPU time (user + system) used so far by every process with each command name, read from
    /proc: what PostgreSQL and Redis spend on a round is the difference between two readings. Counts
    every process of the name on the machine (run nothing else on them meanwhile); a process that ends
    between the readings takes its time with it (the pools keep their connections through a round)."""
    totals = dict.fromkeys(names, 0.0)
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:  # it ended while we looked
            continue
        name = text[text.index("(") + 1 : text.rindex(")")]
        if name in totals:
            totals[name] += _stat_cpu_seconds(text)
    return totals


def machine_busy_seconds(stat: str | None = None) -> float:
    """The CPU time every core of the machine has spent busy so far (all but idle and I/O wait), from
    /proc/stat's `cpu` line (or `stat`, that file's text): over a round, the difference between two
    readings, divided by the round's length, is how many cores the machine kept busy."""
    text = Path("/proc/stat").read_text() if stat is None else stat
    label, *ticks = text.splitlines()[0].split()
    if label != "cpu":
        raise ValueError("not a /proc/stat text")
    # user nice system idle iowait irq softirq steal (then guest time, already counted in user and nice).
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(tick) for tick in ticks[:8])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def start_process(command: list[str], environment: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as output:
        # The benchmark's own commands (payql, uvicorn), never input from elsewhere.
        return subprocess.Popen(command, env=environment, stdout=output, stderr=subprocess.STDOUT)  # noqa: S603


def stop_process(process: subprocess.Popen[bytes], *, interrupt: bool = False) -> None:
    """Terminate, or interrupt like Ctrl-C: a profiled server writes its profile only then
    (uvicorn re-raises the signal it stopped on, and only KeyboardInterrupt lets cProfile finish)."""
    if interrupt:
        process.send_signal(signal.SIGINT)
    else:
        process.terminate()
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


async def wait_until_healthy(url: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + START_SECONDS
    async with httpx.AsyncClient() as http:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"the server exited at start (status {process.returncode}); see its log")
            try:
                if (await http.get(url)).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.1)
    raise RuntimeError(f"{url} did not answer within {START_SECONDS} s")
