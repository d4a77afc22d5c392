"""For tests that mount the sandbox's routes on their own: the app's real guard with the test secrets,
a staff Authorization header it accepts, and the CSRF token of a 3-D Secure page."""

from __future__ import annotations

import re

import httpx

from gateways.sandbox.package import sandbox_guard
from gateways.sandbox.processor.route_guard import SandboxGuard
from gateways.sandbox.settings import SandboxSettings
from payql.auth import TokenVerifier
from payql.route_host import route_host
from payql.settings import Settings
from tests.testkit import TEST_JWT_SECRET, TEST_WEBHOOK_SECRET, token_for

STAFF_HEADERS = {"authorization": f"Bearer {token_for('sandbox-staff', admin=True)}"}
SHOPPER_HEADERS = {"authorization": f"Bearer {token_for('sandbox-shopper')}"}

_FORM_TOKEN = re.compile(r'name="csrf_token" value="([0-9a-f]+)"')


def guard_for_tests(*, tokenize_limit: str = "100000/minute") -> SandboxGuard:
    verifier = TokenVerifier(Settings(environment="development", jwt_secret=TEST_JWT_SECRET))
    sandbox = SandboxSettings(webhook_secrets=[TEST_WEBHOOK_SECRET], tokenize_rate_limit=tokenize_limit)
    return sandbox_guard(sandbox, route_host(tokens=lambda: verifier), "sandbox")


async def form_token(http: httpx.AsyncClient, pi_id: str) -> str:
    """The CSRF token the 3-D Secure page of `pi_id` carries in its form."""
    page = await http.get(f"/sandbox/authenticate/{pi_id}")
    found = _FORM_TOKEN.search(page.text)
    assert found is not None, page.text
    return found.group(1)
