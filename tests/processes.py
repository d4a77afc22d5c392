"""Running PayQL as real subprocesses (`payql serve`, `payql worker`, CLI commands) for tests
that kill, restart or inspect a server from outside."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx

from tests.testkit import TEST_DATA_KEY_ENV, TEST_JWT_SECRET

PAYQL = str(Path(sys.executable).parent / "payql")


def payql_environment(database_url: str, folder: Path) -> dict[str, str]:
    """What a development `payql` process of a test needs: its database, the test's secrets and data
    keys, its sandbox state, development secrets and mailbox in `folder`, and no periodic reconciliation."""
    return {
        "PAYQL_ENVIRONMENT": "development",
        "PAYQL_DATABASE_URL": database_url,
        "PAYQL_JWT_SECRET": TEST_JWT_SECRET,
        "PAYQL_SANDBOX_STATE_PATH": str(folder / "sandbox.sqlite3"),
        "PAYQL_DEVELOPMENT_SECRETS_PATH": str(folder / "development-secrets.json"),
        "PAYQL_MAILBOX_PATH": str(folder / "mailbox"),
        "PAYQL_RECONCILE_INTERVAL_SECONDS": "0",
    } | TEST_DATA_KEY_ENV


def run_cli(env: dict[str, str], *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([PAYQL, *args], env={**os.environ, **env}, capture_output=True, text=True, timeout=120)
    if check and result.returncode != 0:
        raise AssertionError(f"payql {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return result


async def cli(env: dict[str, str], *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """`run_cli` off the event loop: the test server shares this loop and must keep serving (and
    finish its open transactions) while the command runs, or the two would wait on each other."""
    return await asyncio.to_thread(run_cli, env, *args, check=check)


class PayQLProcess:
    """One `payql <command>` subprocess whose output goes to a log file."""

    def __init__(self, env: dict[str, str], log: Path, *args: str) -> None:
        self.env = {**os.environ, **env}
        self.log_path = log
        self.args = args
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        log = self.log_path.open("ab")
        self.process = subprocess.Popen([PAYQL, *self.args], env=self.env, stdout=log, stderr=subprocess.STDOUT)
        log.close()

    async def wait_healthy(self, base_url: str, timeout: float = 60, *, path: str = "/readyz") -> None:
        """Until `path` answers 200: `/readyz` (its database and Redis reachable), or `/healthz` (serving)."""

        async def poll() -> None:
            async with httpx.AsyncClient(base_url=base_url, timeout=2) as client:
                while True:
                    assert self.process is not None and self.process.poll() is None, self.log()
                    try:
                        if (await client.get(path)).status_code == 200:
                            return
                    except httpx.TransportError:
                        pass
                    await asyncio.sleep(0.1)

        await asyncio.wait_for(poll(), timeout)

    def kill(self) -> None:
        """SIGKILL: no shutdown hook, no flush, no goodbye."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=30)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
