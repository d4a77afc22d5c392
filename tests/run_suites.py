"""`make test`: run the whole suite on the embedded defaults, then on real PostgreSQL and Redis.

The server half runs when both servers answer. When they do not, it is skipped with the reason,
unless PAYQL_REQUIRE_SERVERS=1 (CI), where a missing server fails the run. Extra arguments are
passed to pytest. The last line sums both halves in the plain `N passed, N failed` form.
"""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys

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


def run_pytest(backend: str, args: list[str]) -> tuple[int, dict[str, int]]:
    print(f"\n=== PayQL tests on the {backend} backend ===", flush=True)
    env = {**os.environ, "PAYQL_TEST_BACKEND": backend}
    process = subprocess.Popen([sys.executable, "-m", "pytest", *args], env=env, stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    last = ""
    for line in process.stdout:
        sys.stdout.write(line)
        if line.strip():
            last = line
    code = process.wait()
    counts: dict[str, int] = {}
    for number, word in COUNTS.findall(last):
        key = "failed" if word.startswith("error") else word
        counts[key] = counts.get(key, 0) + int(number)
    return code, counts


def main() -> int:
    args = sys.argv[1:]
    totals: dict[str, int] = {}
    worst = 0
    code, counts = run_pytest("embedded", args)
    worst = max(worst, 0 if code == 0 else 1)
    for key, value in counts.items():
        totals[key] = totals.get(key, 0) + value

    problems = asyncio.run(unreachable_servers())
    if problems:
        reason = "; ".join(problems)
        if os.environ.get("PAYQL_REQUIRE_SERVERS") == "1":
            print(f"\nFAILED: PAYQL_REQUIRE_SERVERS=1 but a server is unreachable: {reason}", flush=True)
            worst = 1
            totals["failed"] = totals.get("failed", 0) + 1
        else:
            print(f"\nSKIPPED the PostgreSQL + Redis half of the suite: {reason}.", flush=True)
            print("Set PAYQL_TEST_POSTGRES_URL and PAYQL_TEST_REDIS_URL to run it.", flush=True)
    else:
        code, counts = run_pytest("servers", args)
        worst = max(worst, 0 if code == 0 else 1)
        for key, value in counts.items():
            totals[key] = totals.get(key, 0) + value

    passed, failed, skipped = totals.get("passed", 0), totals.get("failed", 0), totals.get("skipped", 0)
    if passed + failed == 0 and worst == 0:
        worst = 1
        print("no test ran", flush=True)
    print(f"\npayql: {passed} passed, {failed} failed, {skipped} skipped", flush=True)
    return worst


if __name__ == "__main__":
    sys.exit(main())
