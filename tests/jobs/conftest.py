"""A throwaway `redis-server` per test, on a random free port, in the test's temporary folder.

Tests here stop, restart and flush their server, so they never touch a shared Redis. A machine
without `redis-server` fails these tests with the reason; they are never skipped.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from pathlib import Path
from typing import IO

import pytest
import redis

from jobs.queue import JobSpec
from jobs.saq_queue import SaqJobQueue
from tests.jobs.saqkit import NAME, Runs, recording_specs
from tests.ports import free_port

START_TIMEOUT_SECONDS = 10.0


class RedisServer:
    """One `redis-server` child process without persistence: every start is an empty dataset."""

    def __init__(
        self, executable: str, directory: Path, *, config: Path | None = None, arguments: Sequence[str] = ()
    ) -> None:
        """`config` is a configuration file read first (a sentinel's, which it rewrites); `arguments`
        come after the defaults (`--replicaof host port`, `--sentinel`)."""
        self.executable = executable
        self.directory = directory
        self.config = config
        self.arguments = list(arguments)
        self.port = free_port()
        self._process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        assert self._process is None, "already running"
        self._log = (self.directory / "redis.log").open("ab")
        command = [self.executable, *([str(self.config)] if self.config else [])]
        command += ["--port", str(self.port), "--bind", "127.0.0.1", "--save", ""]
        command += ["--appendonly", "no", "--dir", str(self.directory), "--daemonize", "no", *self.arguments]
        self._process = subprocess.Popen(
            command,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        self._wait_for_ping()

    def _wait_for_ping(self) -> None:
        assert self._process is not None
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        client = redis.Redis(host="127.0.0.1", port=self.port, socket_connect_timeout=1, socket_timeout=1)
        try:
            while True:
                if self._process.poll() is not None:
                    log = (self.directory / "redis.log").read_text(errors="replace")
                    self.stop()
                    pytest.fail(f"redis-server on port {self.port} exited at start:\n{log}")
                try:
                    if client.ping():
                        return
                except redis.ConnectionError:
                    pass
                if time.monotonic() > deadline:
                    self.stop()
                    pytest.fail(f"redis-server on port {self.port} did not answer PING in {START_TIMEOUT_SECONDS}s")
                time.sleep(0.05)
        finally:
            client.close()

    def stop(self) -> None:
        """Kill the server at once (SIGKILL, no shutdown save), as a crash would."""
        if self._process is not None:
            self._process.kill()
            self._process.wait()
            self._process = None
        if self._log is not None:
            self._log.close()
            self._log = None

    def restart(self) -> None:
        """Kill and start again on the same port, with an empty dataset."""
        self.stop()
        self.start()

    def flushall(self) -> None:
        client = redis.Redis(host="127.0.0.1", port=self.port)
        try:
            client.flushall()
        finally:
            client.close()


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    executable = shutil.which("redis-server")
    if executable is None:
        pytest.fail("redis-server is not on PATH: these tests run their own Redis (e.g. apt-get install redis-server)")
    server = RedisServer(executable, tmp_path)
    server.start()
    try:
        yield server
    finally:
        server.stop()


# Fixtures shared by the saq queue and worker tests: recording jobs and a queue on the throwaway server.
@pytest.fixture
def runs() -> Runs:
    return Runs()


@pytest.fixture
def specs(runs: Runs) -> list[JobSpec]:
    return recording_specs(runs)


@pytest.fixture
async def queue(redis_server: RedisServer, specs: list[JobSpec]) -> AsyncIterator[SaqJobQueue]:
    queue = SaqJobQueue(redis_server.url, specs, name=NAME)
    await queue.start()
    yield queue
    await queue.aclose()
