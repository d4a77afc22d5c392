"""The HTTP client the benchmarks send their load with: aiohttp's.

The load generator shares the machine with the servers it measures, so every millisecond of CPU it
spends on a request is taken from them. On the 2-vCPU machines here httpx's client spent 2.8 ms of
CPU a request at 32 in flight, and aiohttp's 0.11 ms (a trivial Starlette endpoint, 3,000 requests):
with httpx the load generator cost more than the checkout floor's whole server, capped every side
near 350 requests a second, and so flattered every ratio to a floor. httpx stays the client of the
benchmarks' set-up calls (health checks, the catalog), where its cost is not measured.

Never here: a retry, or a request the caller does not see fail.
"""

from __future__ import annotations

import aiohttp

# Errors `one_round` counts as a failed request, as the server's refusals are.
LOAD_ERRORS = (aiohttp.ClientError, TimeoutError)


def load_client(base_url: str, concurrency: int, headers: dict[str, str] | None = None) -> aiohttp.ClientSession:
    """A session holding up to `concurrency` keep-alive connections to `base_url` (paths are relative
    to it), each request given 60 s. Open it with `async with`."""
    return aiohttp.ClientSession(
        base_url,
        headers=headers,
        connector=aiohttp.TCPConnector(limit=concurrency),
        timeout=aiohttp.ClientTimeout(total=60),
    )
