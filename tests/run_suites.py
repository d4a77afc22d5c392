"""`make test`: run the whole suite on the embedded defaults and on real PostgreSQL and Redis, both
at once, each printed whole when it ends.

The server half runs when both servers answer. When they do not, it is skipped with the reason,
unless PAYQL_REQUIRE_SERVERS=1 (CI), where a missing server fails the run. Extra arguments are
passed to pytest. The last line sums both halves in the plain `N passed, N failed` form.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import subprocess
import sys
import tempfile
from typing import IO

import asyncpg
import redis.asyncio as aioredis

from tests.backends import DEFAULT_POSTGRES_URL, DEFAULT_REDIS_URL

COUNTS = re.compile(r"(\d+) (passed|failed|errors?|skipped|xfailed|xpassed)")


async def unreachable_servers() -> list[str]:
    problems: list[str] = []
    postgres_url = os.environ.get("PAYQL_TEST_POSTGRES_URL", DEFAULT_POSTGRES_URL)
    redis_url = os.environ.get("PAYQL_TEST_REDIS_URL", DEFAULT_REDIS_URL)
    try:
        connection = await asyncpg.connect(postgres_url.replace("postgres://", "postgresql://", 1), timeout=5)
        await connection.close()
    except (OSError, asyncpg.PostgresError, TimeoutError) as error:
        problems.append(f"PostgreSQL at {postgres_url} ({type(error).__name__}: {error})")
    client = aioredis.Redis.from_url(redis_url, socket_connect_timeout=5)
    try:
        await client.ping()
    except (OSError, aioredis.RedisError) as error:
        problems.append(f"Redis at {redis_url} ({type(error).__name__}: {error})")
    finally:
        await client.aclose()
    return problems


def start_pytest(backend: str, args: list[str], log: IO[str]) -> subprocess.Popen[str]:
    # The cache plugin is off: two runs at once would race on .pytest_cache.
    env = {**os.environ, "PAYQL_TEST_BACKEND": backend}
    command = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args]
    return subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT, text=True)


def finish_pytest(backend: str, process: subprocess.Popen[str], log: IO[str]) -> tuple[int, dict[str, int]]:
    """Wait for one backend's run, print its whole output, and read its summary line."""
    code = process.wait()
    log.seek(0)
    output = log.read()
    print(f"\n=== PayQL tests on the {backend} backend ===", flush=True)
    sys.stdout.write(output)
    lines = [line for line in output.splitlines() if line.strip()]
    counts: dict[str, int] = {}
    for number, word in COUNTS.findall(lines[-1] if lines else ""):
        key = "failed" if word.startswith("error") else word
        counts[key] = counts.get(key, 0) + int(number)
    return code, counts


def main() -> int:
    args = sys.argv[1:]
    backends = ["embedded"]
    problems = asyncio.run(unreachable_servers())
    if not problems:
        backends.append("servers")
    # The two backends run at once, each in its own process with its own databases, ports and key
    # prefix: the suite is mostly waiting on I/O, so this halves the wall time on two cores.
    totals: dict[str, int] = {}
    worst = 0
    with contextlib.ExitStack() as logs:
        runs = []
        for backend in backends:
            log = logs.enter_context(tempfile.TemporaryFile("w+", encoding="utf-8"))
            runs.append((backend, start_pytest(backend, args, log), log))
        print(f"running the {' and '.join(backends)} backends at once", flush=True)
        for backend, process, log in runs:
            code, counts = finish_pytest(backend, process, log)
            worst = max(worst, 0 if code == 0 else 1)
            for key, value in counts.items():
                totals[key] = totals.get(key, 0) + value

    if problems:
        reason = "; ".join(problems)
        if os.environ.get("PAYQL_REQUIRE_SERVERS") == "1":
            print(f"\nFAILED: PAYQL_REQUIRE_SERVERS=1 but a server is unreachable: {reason}", flush=True)
            worst = 1
            totals["failed"] = totals.get("failed", 0) + 1
        else:
            print(f"\nSKIPPED the PostgreSQL + Redis half of the suite: {reason}.", flush=True)
            print("Set PAYQL_TEST_POSTGRES_URL and PAYQL_TEST_REDIS_URL to run it.", flush=True)

    passed, failed, skipped = totals.get("passed", 0), totals.get("failed", 0), totals.get("skipped", 0)
    if passed + failed == 0 and worst == 0:
        worst = 1
        print("no test ran", flush=True)
    print(f"\npayql: {passed} passed, {failed} failed, {skipped} skipped", flush=True)
    return worst


if __name__ == "__main__":
    sys.exit(main())
